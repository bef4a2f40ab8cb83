"""The HTML report of a session: one self-contained file, readable offline.

Per test: the figures table, every threshold with its verdict, generator-health problems,
and per scenario one chart (inline SVG drawn by matplotlib) with four panels: latency
over time (p50/p95/p99 per interval), the latency distribution as an HDR percentile plot,
achieved against target rate, and failed requests / dropped iterations over time. The
header names the target as recorded by the stack (the certctl reference double is never
called certctl) and the machine.

Charts need matplotlib (``pip install 'pytest-certload[report]'``); without it the
report is written with its tables and a note where each chart would be.
"""

from __future__ import annotations

import html
import io
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine import RunResult, ScenarioResult, TimelineRow
from ..metrics import TrendSink
from ..record import REPORT_FILE, RunRecord, SessionRecord, now_iso
from .meta import TLS_OFF, target_text
from .stats import scenario_stats

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["INSTALL_HINT", "charts_available", "render", "write_report"]

INSTALL_HINT = "charts need matplotlib: pip install 'pytest-certload[report]'"
#: percentiles of the HDR percentile plot (those beyond the sample count are dropped)
_PERCENTILES = (
    0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 97.5, 99.0, 99.5, 99.75, 99.9,
    99.95, 99.99, 99.995, 99.999, 99.9995, 99.9999,
)  # fmt: skip
_COLORS = {"p50": "#1f77b4", "p95": "#ff7f0e", "p99": "#d62728", "target": "#555555"}

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;
margin:1.5rem auto;max-width:1200px;padding:0 1rem;color:#1b1f23;line-height:1.4}
h1{font-size:1.5rem;margin:0 0 .5rem}h2{font-size:1.15rem;margin:2rem 0 .5rem;
border-bottom:1px solid #d0d7de;padding-bottom:.25rem}h3{font-size:1rem;margin:1rem 0 .25rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.85rem}
th,td{border:1px solid #d0d7de;padding:.2rem .45rem;text-align:right;vertical-align:top}
th{background:#f6f8fa}td.l,th.l{text-align:left}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.1rem 1rem;font-size:.9rem}
dl.meta dt{font-weight:600}dl.meta dd{margin:0}
.ok{color:#1a7f37}.bad{color:#cf222e}.warn{background:#fff8c5;border:1px solid #d4a72c;
padding:.4rem .6rem;border-radius:4px}
.verdict{font-weight:600;padding:.05rem .4rem;border-radius:3px;font-size:.85rem}
.v-passed{background:#dafbe1}.v-breached{background:#ffebe9}
.v-untrustworthy,.v-unreachable{background:#fff8c5}
figure.chart{margin:.75rem 0 1.5rem;border:1px solid #d0d7de;border-radius:4px;padding:.5rem}
figure.chart figcaption{font-size:.9rem;font-weight:600;margin-bottom:.25rem}
figure.chart svg{width:100%;height:auto}
p.nochart{color:#57606a;font-style:italic}
ul.problems{font-size:.85rem}code{font-size:.85em}
"""


def charts_available() -> bool:
    """True when matplotlib can be imported (charts are drawn)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None, fmt: str = ".2f") -> str:
    return "–" if value is None else format(value, fmt)


# -- charts ------------------------------------------------------------------------------


def _latency_sink(result: RunResult, scenario: str, metric: str) -> TrendSink | None:
    sink = result.store.select(metric, {"scenario": scenario})
    return sink if isinstance(sink, TrendSink) and sink.count else None


def _percentile_curve(sink: TrendSink) -> tuple[list[float], list[float], list[float]]:
    """(x = 1/(1-p), latency ms, percentile) for the percentiles the sample count supports."""
    n = sink.count
    usable = [p for p in _PERCENTILES if n * (1 - p / 100) >= 1] + [100.0]
    q = sink.quantiles(usable)
    top = 1 / (1 - max(p for p in usable if p < 100) / 100) * 10 if len(usable) > 1 else 10
    xs = [1 / (1 - p / 100) if p < 100 else top for p in usable]
    return xs, [q[p] / 1e6 for p in usable], usable


def _masked(rows: Sequence[TimelineRow], attr: str) -> list[float]:
    return [getattr(r, attr) / 1e6 if r.requests else math.nan for r in rows]


def _draw(
    sc: ScenarioResult,
    result: RunResult,
    latency_metric: str,
    index: int,
) -> str:
    """One scenario's four-panel chart as an inline ``<svg>`` element."""
    import matplotlib as mpl
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

    rows = sc.timeline
    t = [r.start_ns / 1e9 for r in rows]
    with mpl.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": f"certload-{index}",
            "font.size": 9,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    ):
        # fixed margins, no layout engine: constrained layout would double the cost
        fig = Figure(figsize=(11, 6.4))
        fig.subplots_adjust(left=0.06, right=0.985, top=0.95, bottom=0.085, hspace=0.42)
        (ax_time, ax_dist), (ax_rate, ax_err) = fig.subplots(2, 2)

        # latency over time
        ax_time.set_title("latency per interval (from intended start)", loc="left")
        for key in ("p50", "p95", "p99"):
            ax_time.plot(
                t, _masked(rows, f"{key}_ns"), marker=".", ms=3, lw=1.2, label=key,
                color=_COLORS[key],
            )  # fmt: skip
        if not any(r.requests for r in rows):
            ax_time.text(
                0.5, 0.5, "no HTTP requests: see the distribution of\n" + latency_metric,
                ha="center", va="center", transform=ax_time.transAxes,
            )  # fmt: skip
        _threshold_lines(ax_time, result, sc.name, latency_metric, rows)
        ax_time.set_xlabel("time since run start (s)")
        ax_time.set_ylabel("ms")
        ax_time.set_ylim(bottom=0)
        ax_time.legend(loc="upper left", fontsize=8)

        # HDR percentile distribution
        sink = _latency_sink(result, sc.name, latency_metric)
        ax_dist.set_title(f"{latency_metric} distribution (HDR percentile plot)", loc="left")
        if sink is not None:
            xs, ys, ps = _percentile_curve(sink)
            ax_dist.plot(xs, ys, marker=".", ms=4, lw=1.4, color=_COLORS["p99"])
            ax_dist.set_xscale("log")
            ticks = [
                x for x, p in zip(xs, ps, strict=True) if p in (0, 50, 90, 99, 99.9, 99.99, 100)
            ]
            ax_dist.xaxis.set_major_locator(FixedLocator(ticks))
            ax_dist.xaxis.set_minor_locator(NullLocator())
            labels = {x: f"{p:g}%" if p < 100 else "max" for x, p in zip(xs, ps, strict=True)}
            ax_dist.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: labels.get(x, "")))
            ax_dist.set_xlabel(f"percentile ({sink.count:,} samples)")
        else:
            ax_dist.text(0.5, 0.5, "no samples", ha="center", transform=ax_dist.transAxes)
        ax_dist.set_ylabel("ms")
        ax_dist.set_ylim(bottom=0)

        # achieved vs target rate
        ax_rate.set_title("iterations per second: achieved vs target", loc="left")
        achieved = [
            r.iterations / ((r.end_ns - r.start_ns) / 1e9)
            if r.end_ns > r.start_ns and (r.iterations or r.target_rate is not None)
            else math.nan  # the drain after the last scheduled iteration
            for r in rows
        ]
        ax_rate.plot(t, achieved, lw=1.4, marker=".", ms=3, label="achieved", color="#1f77b4")
        targets = [r.target_rate if r.target_rate is not None else math.nan for r in rows]
        if any(not math.isnan(x) for x in targets):
            ax_rate.plot(t, targets, "--", lw=2, label="target", color=_COLORS["target"], alpha=0.8)
        ax_rate.set_xlabel("time since run start (s)")
        ax_rate.set_ylabel("iterations/s")
        peak = max([1.0, *(x for x in (*achieved, *targets) if not math.isnan(x))])
        ax_rate.set_ylim(bottom=0, top=peak * 1.15)
        ax_rate.legend(loc="lower right", fontsize=8)

        # errors over time
        ax_err.set_title("failed requests and dropped iterations per interval", loc="left")
        spans = sorted((r.end_ns - r.start_ns) / 1e9 for r in rows)
        width = spans[len(spans) // 2] * 0.4 if spans else 0.4
        ax_err.bar(
            [x - width / 2 for x in t], [r.failed for r in rows], width=width,
            label="failed requests", color="#d62728",
        )  # fmt: skip
        ax_err.bar(
            [x + width / 2 for x in t], [r.dropped for r in rows], width=width,
            label="dropped iterations", color="#9467bd",
        )  # fmt: skip
        ax_err.set_xlabel("time since run start (s)")
        ax_err.set_ylabel("count")
        highest = max([1, *(r.failed for r in rows), *(r.dropped for r in rows)])
        ax_err.set_ylim(bottom=0, top=highest * 1.15)
        ax_err.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax_err.legend(loc="upper right", fontsize=8)

        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def _threshold_lines(
    ax: Axes, result: RunResult, scenario: str, metric: str, rows: Sequence[TimelineRow]
) -> None:
    """Dashed lines at this scenario's latency-percentile limits that fit the scale."""
    top = max([0.0, *(r.p99_ns / 1e6 for r in rows if r.requests)])
    seen: set[str] = set()
    for r in result.thresholds:
        th = r.threshold
        if th.metric != metric or th.percentile is None or th.expression in seen:
            continue
        if dict(th.tags).get("scenario") not in (scenario, None):
            continue
        if top and th.limit > 3 * top:
            continue
        seen.add(th.expression)
        ax.axhline(th.limit, ls="--", lw=1, color="#cf222e" if not r.ok else "#1a7f37")
        ax.annotate(
            f"{th.expression} {'✓' if r.ok else '✗'}",
            (0.99, th.limit),
            xycoords=("axes fraction", "data"),
            ha="right",
            va="bottom",
            fontsize=8,
            color="#cf222e" if not r.ok else "#1a7f37",
        )


# -- HTML -------------------------------------------------------------------------------------


def _target_block(session: SessionRecord) -> list[str]:
    details: Mapping[str, Any] = session.target_details
    version = details.get("version")
    what = target_text(
        session.target_record, unrecorded="not recorded (the tests did not use the certload stack)"
    )
    out = [f"<dt>target</dt><dd>{_e(what)}</dd>"]
    if details.get("tls_verify") is False:
        out.append(f'<dt>TLS</dt><dd class="bad">{_e(TLS_OFF)}</dd>')
    if session.target:
        out.append(f"<dt>target label</dt><dd>{_e(session.target)}</dd>")
    for key in ("url", "provider"):
        if details.get(key):
            out.append(f"<dt>{_e(key)}</dt><dd>{_e(details[key])}</dd>")
    if isinstance(version, Mapping):
        extra = ", ".join(f"{k}={v}" for k, v in version.items() if k != "version")
        if extra:
            out.append(f"<dt>target build</dt><dd>{_e(extra)}</dd>")
    return out


def _stats_table(result: RunResult) -> str:
    head = (
        "<tr><th class=l>scenario</th><th>requests</th><th>rate/s</th><th>target/s</th>"
        "<th>p50 ms</th><th>p90 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th>"
        "<th>errors</th><th>dropped</th><th>lag p99 ms</th><th class=l>latency metric</th></tr>"
    )
    body = []
    for name in result.scenarios:
        s = scenario_stats(result, name)
        err = s["error_rate"]
        body.append(
            "<tr>"
            f"<td class=l><code>{_e(name)}</code></td><td>{s['requests']:,}</td>"
            f"<td>{_num(s['rps'], '.1f')}</td><td>{_num(s['target_rate'], '.1f')}</td>"
            f"<td>{_num(s.get('p50_ms'))}</td><td>{_num(s.get('p90_ms'))}</td>"
            f"<td>{_num(s.get('p95_ms'))}</td><td>{_num(s.get('p99_ms'))}</td>"
            f"<td>{_num(s.get('max_ms'), '.1f')}</td>"
            f"<td>{'–' if err is None else f'{err:.2%}'}</td><td>{s['dropped']:,}</td>"
            f"<td>{_num(s['lag_p99_ms'])}</td><td class=l><code>{_e(s['latency_metric'])}</code>"
            "</td></tr>"
        )
    return f"<table class=stats>{head}{''.join(body)}</table>"


def _threshold_table(result: RunResult) -> str:
    if not result.thresholds:
        return "<p>No thresholds were declared.</p>"
    head = (
        "<tr><th></th><th class=l>metric</th><th class=l>threshold</th><th>observed</th>"
        "<th>samples</th><th class=l>detail</th><th class=l>declared at</th></tr>"
    )
    body = []
    for r in result.thresholds:
        th = r.threshold
        mark = '<span class="ok">✓</span>' if r.ok else '<span class="bad">✗</span>'
        body.append(
            f"<tr class={'ok' if r.ok else 'bad'}><td>{mark}</td>"
            f"<td class=l><code>{_e(th.selector)}</code></td>"
            f"<td class=l><code>{_e(th.expression)}</code></td>"
            f"<td>{_num(r.observed, '.3f')}</td><td>{r.count:,}</td>"
            f"<td class=l>{_e(r.reason or r.message())}</td><td class=l>{_e(th.source)}</td></tr>"
        )
    return f"<table class=thresholds>{head}{''.join(body)}</table>"


def _anchor(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "run"


def _record_section(record: RunRecord, outcome: str, start_index: int, charts: bool) -> str:
    result = record.result
    verdict = result.verdict
    label = f" [{record.label}]" if record.label else ""
    parts = [
        f'<section class="test" id="{_e(_anchor(record.nodeid))}-{start_index}">',
        f"<h2><code>{_e(record.nodeid)}</code>{_e(label)} "
        f'<span class="verdict v-{_e(verdict)}">{_e(verdict)}</span>'
        + (f" <small>(test {_e(outcome)})</small>" if outcome else "")
        + "</h2>",
        f"<p>started {_e(result.started_at)}, {result.duration_ns / 1e9:.1f} s"
        + (
            f"; shared run <code>{_e(record.group)}</code> with "
            + ", ".join(f"<code>{_e(n)}</code>" for n in record.ran_with)
            if record.ran_with
            else ""
        )
        + "</p>",
        _stats_table(result),
        "<h3>Thresholds</h3>",
        _threshold_table(result),
    ]
    problems = [f"untrustworthy: {p}" for p in result.untrustworthy]
    problems += [f"unreachable: {u}" for u in result.unreachable]
    if result.aborted:
        problems.append(f"aborted: {result.aborted}")
    problems += [f"cause: {c}" for c in result.causes()]
    if problems:
        items = "".join(f"<li>{_e(p)}</li>" for p in problems)
        parts.append(f'<ul class="problems bad">{items}</ul>')
    if result.notes:
        items = "".join(f"<li>note: {_e(n)}</li>" for n in result.notes)
        parts.append(f'<ul class="problems">{items}</ul>')
    for offset, (name, sc) in enumerate(result.scenarios.items()):
        index = start_index + offset
        metric = scenario_stats(result, name)["latency_metric"]
        caption = f"{name}: {sc.executor.get('executor', '')}"
        parts.append(
            f'<figure class="chart" data-scenario="{_e(name)}" id="chart-{index}">'
            f"<figcaption>{_e(caption)}</figcaption>"
        )
        if charts:
            try:
                with warnings.catch_warnings():  # the user's filters (e.g. "error") do not
                    warnings.simplefilter("ignore")  # apply to matplotlib's font notices
                    parts.append(_draw(sc, result, metric, index))
            except Exception as exc:  # a chart must never cost the rest of the report
                parts.append(f'<p class="nochart">chart failed: {_e(repr(exc))}</p>')
        else:
            parts.append(f'<p class="nochart">{_e(INSTALL_HINT)}</p>')
        parts.append("</figure>")
    parts.append("</section>")
    return "\n".join(parts)


def render(session: SessionRecord, *, generated_at: str | None = None) -> str:
    """The whole report as one HTML document (no external resources)."""
    charts = charts_available()
    host = session.machine
    when = generated_at or now_iso()
    meta = _target_block(session)
    meta += [
        f"<dt>machine</dt><dd>{_e(host['hostname'])}: {_e(host['cpus'])} CPUs, "
        f"{_e(host['platform'])}, Python {_e(host['python'])}</dd>",
        f"<dt>profile</dt><dd>{_e(session.profile or '?')}</dd>",
        f"<dt>HTTP backend</dt><dd>{_e(session.http_backend or '?')}</dd>",
        f"<dt>generator</dt><dd>pytest-certload {_e(session.generator_version)}</dd>",
        f"<dt>generated</dt><dd>{_e(when)}</dd>",
    ]
    body = [
        "<header><h1>pytest-certload report</h1>",
        f'<dl class="meta">{"".join(meta)}</dl>',
    ]
    if session.target_details.get("kind") == "double":
        body.append(
            '<p class="warn">These figures measure the <b>certctl reference double</b>, a '
            "stand-in written for pytest-certload, not certctl. Use <code>--certctl-bin</code>"
            " or <code>--certctl-url</code> for certctl's figures.</p>"
        )
    if not charts:
        body.append(f'<p class="warn">{_e(INSTALL_HINT)}</p>')
    body.append("</header>")
    index = 0
    for record in session.records:
        body.append(_record_section(record, session.outcome(record.nodeid), index, charts))
        index += len(record.result.scenarios)
    body.append(
        "<footer><p><small>Latency is measured from each iteration's intended start (open "
        "model); percentiles are nearest-rank, reported as the highest value of their HDR "
        "bucket. Interval percentiles come from per-interval histograms.</small></p></footer>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>pytest-certload report</title>"
        f"<style>{_CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_report(session: SessionRecord) -> Path:
    """Write the session's ``report.html`` (atomically, scrubbed); return its path."""
    return session.write_output(REPORT_FILE, render(session))
