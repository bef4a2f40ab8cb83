"""The HTML report of a session: one self-contained file, readable offline.

Per test: the figures table, every threshold with its verdict (a windowed one with a
strip of its windows and the ones it breached), each scenario's warm-up left out of the
verdict, generator-health problems and stalls, and per scenario one chart (inline SVG
drawn by matplotlib) with four panels: latency over time (p50/p95/p99 per interval, the
warm-up shaded, breached windows in red, where the generator stalled hatched), the
latency distribution as an HDR percentile plot, achieved against target rate, and failed
requests / dropped iterations over time; with telemetry, a server section: each
scenario's p95, CPU per service and PostgreSQL's sessions on one time axis, the services'
peaks, the top statements (:mod:`.server_html`). A test that ran a capacity search
(``--certload-capacity``) gets, per searched scenario, the knee: latency percentiles and
error rate against the offered rate, one point per step (pass, fail and generator-bound
marked apart), the bracket of the answer shaded, the contract rate marked, the answer
line as caption and the steps as a table. The header names the target as recorded by the
stack (the certctl reference double is never called certctl) and the machine.

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
from ..engine.capacity import CapacityResult, CapacityStep, format_rate
from ..metrics import HTTP_REQ_DURATION, HTTP_REQ_FAILED, TrendSink
from ..record import REPORT_FILE, RunRecord, SessionRecord, now_iso
from ..thresholds import ThresholdResult, WindowResult
from ..units import format_offset
from .diagnoses import diagnose
from .meta import (
    TLS_OFF,
    breached_windows_text,
    counted_windows,
    hiccup_text,
    indicative,
    measured_text,
    own_target,
    profile_text,
    target_text,
    warmup_text,
    window_text,
    windows_tally,
)
from .server_html import server_section
from .stats import (
    breached_window_spans,
    custom_counters,
    hiccup_stats,
    protocols_text,
    scenario_stats,
    stalled_interval_spans,
    warmup_stats,
    window_origin_ns,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "BREACHED_LABEL",
    "CONTRACT_LABEL",
    "INSTALL_HINT",
    "STALLED_LABEL",
    "WARMUP_LABEL",
    "charts_available",
    "render",
    "write_report",
]

INSTALL_HINT = "charts need matplotlib: pip install 'pytest-certload[report]'"
#: percentiles of the HDR percentile plot (those beyond the sample count are dropped)
_PERCENTILES = (
    0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 97.5, 99.0, 99.5, 99.75, 99.9,
    99.95, 99.99, 99.995, 99.999, 99.9995, 99.9999,
)  # fmt: skip
_COLORS = {"p50": "#1f77b4", "p95": "#ff7f0e", "p99": "#d62728", "target": "#555555"}
#: what the time panels shade: the warm-up, breached windows, where the generator stalled
WARMUP_LABEL = "warm-up (not judged)"
BREACHED_LABEL = "breached window"
STALLED_LABEL = "generator stalled"
#: what the knee chart marks: the contract rate (the thresholds' load) and step verdicts
CONTRACT_LABEL = "contract rate"
_VERDICTS = {
    # verdict: (legend label, marker, filled)
    "pass": ("pass", "o", True),
    "fail": ("fail (the server)", "X", True),
    "generator": ("generator-bound", "s", False),
}

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
ul.warmup{font-size:.85rem;color:#57606a}
tr.windows td{border-top:none;font-size:.8rem}
.wstrip{display:flex;flex-wrap:wrap;gap:1px;margin:.1rem 0 .25rem}
.wstrip span{display:inline-block;width:.55rem;height:.9rem;border-radius:1px}
.w-ok{background:#4ac26b}.w-breached{background:#cf222e}.w-unjudged{background:#d0d7de}
.w-stalled{background:repeating-linear-gradient(45deg,#57606a 0 2px,#d0d7de 2px 4px)}
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
        marked = _time_marks(ax_time, result, sc)
        ax_time.set_xlabel("time since run start (s)")
        ax_time.set_ylabel("ms")
        ax_time.set_ylim(bottom=0)
        if marked:  # a second legend row: room for it above the curves
            ax_time.set_ylim(top=ax_time.get_ylim()[1] * 1.3)
        ax_time.legend(loc="upper left", fontsize=8, ncols=3 if marked else 1)

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
        _warmup_span(ax_rate, result, sc, label=False)
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
        _warmup_span(ax_err, result, sc, label=False)
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
        if th.metric != metric or th.percentile is None or th.describe() in seen:
            continue
        if dict(th.tags).get("scenario") not in (scenario, None):
            continue
        if top and th.limit > 3 * top:
            continue
        seen.add(th.describe())
        ax.axhline(th.limit, ls="--", lw=1, color="#cf222e" if not r.ok else "#1a7f37")
        ax.annotate(
            f"{th.describe()} {'✓' if r.ok else '✗'}",
            (0.99, th.limit),
            xycoords=("axes fraction", "data"),
            ha="right",
            va="bottom",
            fontsize=8,
            color="#cf222e" if not r.ok else "#1a7f37",
        )


def _warmup_span(ax: Axes, result: RunResult, sc: ScenarioResult, *, label: bool) -> bool:
    """Shade the scenario's warm-up, left out of the verdict; whether it had one."""
    figures = warmup_stats(result, sc.name)
    if figures is None:
        return False
    ax.axvspan(
        figures["start_ns"] / 1e9, figures["end_ns"] / 1e9, color="#8c959f", alpha=0.2, lw=0,
        label=WARMUP_LABEL if label else "_nolegend_", zorder=0,
    )  # fmt: skip
    return True


def _time_marks(ax: Axes, result: RunResult, sc: ScenarioResult) -> bool:
    """Shade, over time, the warm-up, the windows a windowed threshold on this scenario
    breached (red), and where the generator stalled beyond the health limit (hatched:
    a breached window there, or any such interval of the scenario); whether any was."""
    marked = _warmup_span(ax, result, sc, label=True)
    end = sc.start_offset_ns + sc.elapsed_ns
    breached = breached_window_spans(result, sc.name)
    stalled = {(a, b) for a, b, stall in breached if stall}
    hiccups = hiccup_stats(result)
    if hiccups is not None and hiccups["stalled"]:
        stalled.update((a, min(b, end)) for a, b in stalled_interval_spans(result) if a < end)
    labelled = False
    for a, b, stall in breached:
        if stall:
            continue
        ax.axvspan(
            a / 1e9, b / 1e9, color="#cf222e", alpha=0.13, lw=0, zorder=0,
            label="_nolegend_" if labelled else BREACHED_LABEL,
        )  # fmt: skip
        labelled = True
    labelled = False
    for a, b in sorted(stalled):
        ax.axvspan(
            # no fill: SVG fades a pattern with its fill, hatch lines included
            a / 1e9, b / 1e9, facecolor="none", edgecolor="#57606a", hatch="///", lw=0,
            zorder=0, label="_nolegend_" if labelled else STALLED_LABEL,
        )  # fmt: skip
        labelled = True
    return marked or bool(breached or stalled)


# -- the knee of a capacity search ----------------------------------------------------------


def _step_values(steps: Sequence[CapacityStep], attr: str, scale: float = 1.0) -> list[float]:
    values = [getattr(s, attr) for s in steps]
    return [math.nan if v is None else v * scale for v in values]


def _scoped(th_tags: Mapping[str, str], scenario: str) -> bool:
    """Whether a threshold selects exactly what a step measured: the scenario, or all."""
    return all(k == "scenario" and v == scenario for k, v in th_tags.items())


def _knee_limits(
    thresholds: Sequence[ThresholdResult], scenario: str, metric: str
) -> list[tuple[str, float]]:
    """``(text, limit)`` of the thresholds on ``metric`` of the scenario a knee panel can
    show: latency percentiles (ms) or the failed-request rate (as %)."""
    out: dict[str, float] = {}
    for r in thresholds:
        th = r.threshold
        if th.metric != metric or not _scoped(th.tags, scenario):
            continue
        if metric == HTTP_REQ_DURATION and th.percentile is not None:
            out.setdefault(th.describe(), th.limit)
        elif metric == HTTP_REQ_FAILED and th.aggregation == "rate":
            out.setdefault(th.describe(), th.limit * 100)
    return list(out.items())


def _limit_lines(ax: Axes, limits: Sequence[tuple[str, float]], top: float) -> float:
    """Dotted lines at the contract's limits that fit the scale; the highest drawn."""
    highest = 0.0
    for text, limit in limits:
        if top and limit > 3 * top:
            continue
        highest = max(highest, limit)
        ax.axhline(limit, ls="--", lw=1, color="#57606a")
        ax.annotate(
            text, (0.99, limit), xycoords=("axes fraction", "data"), ha="right", va="bottom",
            fontsize=8, color="#57606a",
        )  # fmt: skip
    return highest


def _knee_marks(ax: Axes, found: CapacityResult, *, label: bool) -> list[Any]:
    """Shade the bracket of the answer (capacity .. first fail, hatched up to where the
    generator gave out) and mark the contract rate; the legend handles."""
    from matplotlib.patches import Patch

    handles: list[Any] = []
    low = found.capacity
    kind, high, _ = found.bound()
    if low is not None and high is not None:
        if kind == "generator":
            ax.axvspan(low, high, facecolor="none", edgecolor="#8c959f", hatch="//", lw=0, zorder=0)
            handles.append(
                Patch(
                    facecolor="none",
                    edgecolor="#8c959f",
                    hatch="//",
                    label=f"bracket {format_rate(low)}–{format_rate(high)}/s (generator-bound)",
                )
            )
        else:
            ax.axvspan(low, high, color="#cf222e", alpha=0.13, lw=0, zorder=0)
            handles.append(
                Patch(
                    color="#cf222e",
                    alpha=0.13,
                    label=f"bracket {format_rate(low)}–{format_rate(high)}/s (capacity–first fail)",
                )
            )
    line = ax.axvline(found.contract_rate, ls=":", lw=1.5, color=_COLORS["target"])
    line.set_label(f"{CONTRACT_LABEL} {format_rate(found.contract_rate)}/s")
    handles.append(line)
    return handles if label else []


def _verdict_points(
    ax: Axes, steps: Sequence[CapacityStep], ys: Sequence[float], color: str, size: float = 6
) -> None:
    """One marker per step, its shape and fill by verdict."""
    for verdict, (_, marker, filled) in _VERDICTS.items():
        xs = [s.rate for s, y in zip(steps, ys, strict=True) if s.verdict == verdict]
        vs = [y for s, y in zip(steps, ys, strict=True) if s.verdict == verdict]
        if xs:
            ax.plot(
                xs, vs, ls="none", marker=marker, ms=size + (1 if marker == "X" else 0),
                color=color, mfc=color if filled else "white", mew=1.3, zorder=3,
            )  # fmt: skip


def _draw_knee(found: CapacityResult, thresholds: Sequence[ThresholdResult], salt: str) -> str:
    """A capacity search as an inline ``<svg>``: latency percentiles and error rate
    against the offered rate, one point per step, sorted by rate."""
    import matplotlib as mpl
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    steps = sorted(found.steps, key=lambda s: s.rate)
    rates = [s.rate for s in steps]
    with mpl.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": salt,
            "font.size": 9,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    ):
        fig = Figure(figsize=(11, 3.9))
        fig.subplots_adjust(left=0.06, right=0.985, top=0.9, bottom=0.14, wspace=0.2)
        ax_lat, ax_err = fig.subplots(1, 2)
        _, high, _ = found.bound()
        right = max([*rates, high or 0.0, found.contract_rate]) * 1.08

        ax_lat.set_title(f"{HTTP_REQ_DURATION} per step (after its ramp)", loc="left")
        passed: list[float] = []
        every: list[float] = []
        for key in ("p50", "p95", "p99"):
            ys = _step_values(steps, f"{key}_ms")
            ax_lat.plot(rates, ys, lw=1.2, color=_COLORS[key], zorder=2)
            _verdict_points(ax_lat, steps, ys, _COLORS[key])
            every += [y for y in ys if not math.isnan(y)]
            passed += [y for s, y in zip(steps, ys, strict=True) if s.passed and not math.isnan(y)]
        top = max(every, default=0.0)
        drawn = _limit_lines(
            ax_lat, _knee_limits(thresholds, found.scenario, HTTP_REQ_DURATION), top
        )
        handles = _knee_marks(ax_lat, found, label=True)
        # a failing step's latency can be 100x a passing one's: log scale keeps both legible
        if passed and min(passed) > 0 and top > 20 * max(passed):
            ax_lat.set_yscale("log")
        else:
            ax_lat.set_ylim(bottom=0, top=max(top, drawn, 1e-3) * 1.15)
        ax_lat.set_xlim(0, right)
        ax_lat.set_xlabel("offered rate (iterations/s)")
        ax_lat.set_ylabel("ms")
        series = [Line2D([], [], color=_COLORS[k], lw=1.2, label=k) for k in ("p50", "p95", "p99")]
        marks = [
            Line2D(
                [],
                [],
                ls="none",
                marker=marker,
                color="#1b1f23",
                ms=6,
                mfc="#1b1f23" if filled else "white",
                label=text,
            )
            for verdict, (text, marker, filled) in _VERDICTS.items()
            if any(s.verdict == verdict for s in steps)
        ]
        ax_lat.legend(handles=[*series, *marks, *handles], loc="best", fontsize=7, ncols=2)

        ax_err.set_title("failed requests per step", loc="left")
        errors = _step_values(steps, "error_rate", 100)
        ax_err.plot(rates, errors, lw=1.2, color="#d62728", zorder=2)
        _verdict_points(ax_err, steps, errors, "#d62728")
        worst = max([e for e in errors if not math.isnan(e)], default=0.0)
        drawn = _limit_lines(
            ax_err, _knee_limits(thresholds, found.scenario, HTTP_REQ_FAILED), worst
        )
        _knee_marks(ax_err, found, label=False)
        ax_err.set_xlim(0, right)
        ax_err.set_ylim(bottom=0, top=max(worst, drawn, 0.1) * 1.15)
        ax_err.set_xlabel("offered rate (iterations/s)")
        ax_err.set_ylabel("% of requests")

        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def _steps_table(found: CapacityResult) -> str:
    """Every step in the order run: what it offered, achieved, measured and concluded."""
    head = (
        "<tr><th>#</th><th>offered/s</th><th>achieved/s</th><th class=l>verdict</th>"
        "<th>requests</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>errors</th>"
        "<th class=l>why</th></tr>"
    )
    body = []
    for n, s in enumerate(found.steps, 1):
        err = s.error_rate
        body.append(
            f"<tr class=step-{_e(s.verdict)}><td>{n}</td><td>{_e(format_rate(s.rate))}</td>"
            f"<td>{_e(format_rate(s.achieved)) if s.achieved is not None else '–'}</td>"
            f"<td class=l>{_e(_VERDICTS.get(s.verdict, (s.verdict,))[0])}</td>"
            f"<td>{s.requests:,}</td><td>{_num(s.p50_ms)}</td><td>{_num(s.p95_ms)}</td>"
            f"<td>{_num(s.p99_ms)}</td><td>{'–' if err is None else f'{err:.2%}'}</td>"
            f"<td class=l>{_e(s.reason)}</td></tr>"
        )
    return f"<table class=steps>{head}{''.join(body)}</table>"


def _knee_section(record: RunRecord, start_index: int, charts: bool) -> list[str]:
    """A test's capacity searches, one figure per scenario; nothing without one."""
    if not record.capacity:
        return []
    parts = ["<h3>Capacity</h3>"]
    for k, found in enumerate(record.capacity):
        kind, high, _ = found.bound()
        data = {
            "scenario": found.scenario,
            "contract": f"{found.contract_rate:g}",
            "capacity": "" if found.capacity is None else f"{found.capacity:g}",
            "bound": kind,  # what closes the bracket: fail, generator or none
            "bound-rate": "" if high is None else f"{high:g}",
            "steps": str(len(found.steps)),
        }
        attrs = " ".join(f'data-{key}="{_e(value)}"' for key, value in data.items())
        parts.append(
            f'<figure class="chart knee" {attrs} id="knee-{start_index}-{k}">'
            f"<figcaption>{_e(found.line())}</figcaption>"
        )
        if not found.steps:
            parts.append('<p class="nochart">no step was run</p>')
        elif charts:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    parts.append(
                        _draw_knee(
                            found, record.result.thresholds, f"certload-knee-{start_index}-{k}"
                        )
                    )
            except Exception as exc:  # a chart must never cost the rest of the report
                parts.append(f'<p class="nochart">chart failed: {_e(repr(exc))}</p>')
        else:
            parts.append(f'<p class="nochart">{_e(INSTALL_HINT)}</p>')
        parts += [_steps_table(found), "</figure>"]
    return parts


# -- HTML -------------------------------------------------------------------------------------


def _target_block(session: SessionRecord) -> list[str]:
    details: Mapping[str, Any] = session.target_details
    version = details.get("version")
    what, connectors = measured_text(
        target_text(
            session.target_record,
            unrecorded="not recorded (the tests did not use the certload stack)",
        ),
        session.target_record,
        [record.result for record in session.records],
    )
    out = [f"<dt>target</dt><dd>{_e(what)}</dd>"]
    if connectors:
        out.append(f"<dt>connector targets</dt><dd>{_e(connectors)}</dd>")
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


def _comparability_block(session: SessionRecord) -> list[str]:
    """The profile (a smoke run is marked indicative) and the database's settings."""
    shown = _e(profile_text(session.profile))
    mark = ' class="warn indicative"' if indicative(session.profile) else ""
    out = [f"<dt>profile</dt><dd{mark}>{shown}</dd>"]
    if session.database is not None:
        out.append(f"<dt>database</dt><dd>{_e(session.database.text())}</dd>")
    return out


def _stats_table(result: RunResult) -> str:
    head = (
        "<tr><th class=l>scenario</th><th>requests</th><th>req/s</th><th>iterations</th>"
        '<th>iter/s</th><th title="the arrival rate asked for (iterations/s)">target iter/s</th>'
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
            f"<td>{_num(s['rps'], '.1f')}</td><td>{s['iterations']:,}</td>"
            f"<td>{_num(s['iter_rate'], '.1f')}</td><td>{_num(s['target_rate'], '.1f')}</td>"
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
            f"<td class=l><code>{_e(th.describe())}</code></td>"
            f"<td>{_num(r.observed, '.3f')}</td><td>{r.count:,}</td>"
            f"<td class=l>{_e(r.reason or r.message())}</td><td class=l>{_e(th.source)}</td></tr>"
            + _windows_row(result, r)
        )
    return f"<table class=thresholds>{head}{''.join(body)}</table>"


def _window_class(w: WindowResult) -> str:
    if w.breached:
        return "w-stalled" if w.stalled else "w-breached"
    return "w-ok" if w.observed is not None else "w-unjudged"


def _windows_row(result: RunResult, r: ThresholdResult) -> str:
    """Under a windowed threshold: one block per window (its figures in the tooltip),
    the tally and the breached windows; nothing for a whole-run threshold."""
    if not r.windows:
        return ""
    origin = window_origin_ns(result, r.threshold)
    blocks = []
    for w in r.windows:
        title = window_text(result, r, w) if w.observed is not None else f"{w.span()}: {w.reason}"
        if origin is not None:
            run_span = f"{format_offset(origin + w.start_ns)}–{format_offset(origin + w.end_ns)}"
            title += f" ({run_span} of the run)"
        blocks.append(f'<span class="{_window_class(w)}" title="{_e(title)}"></span>')
    tally = f"windows of {format_offset(r.threshold.window_ns)}: {windows_tally(r)}"
    listed = breached_windows_text(result, r)
    text = f"{tally}; {listed}" if listed else tally
    return (
        f"<tr class=windows><td></td><td class=l colspan=6>"
        f'<div class="wstrip" data-windows="{len(counted_windows(r))}">{"".join(blocks)}</div>'
        f"{_e(text)}</td></tr>"
    )


def _diagnoses_block(result: RunResult) -> list[str]:
    """Why the run went wrong (the test's failure message says the same): each
    diagnosis with its per-status breakdown and its details."""
    found = diagnose(result)
    if not found:
        return []
    items = []
    for d in found:
        breakdown = d.breakdown()
        details = "".join(f"<li>{_e(line)}</li>" for line in d.details)
        items.append(
            f'<li class="diagnosis" data-kind="{_e(d.kind)}" data-id="{_e(d.id)}">'
            f"<b>{_e(d.summary)}</b>"
            + (f'<div class="breakdown">by status: {_e(breakdown)}</div>' if breakdown else "")
            + (f"<ul>{details}</ul>" if details else "")
            + "</li>"
        )
    return ["<h3>Diagnoses</h3>", f'<ul class="problems diagnoses">{"".join(items)}</ul>']


def _anchor(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "run"


def _record_section(
    record: RunRecord, outcome: str, start_index: int, charts: bool, target: str = ""
) -> str:
    result = record.result
    verdict = result.verdict
    label = f" [{record.label}]" if record.label else ""
    parts = [
        f'<section class="test" id="{_e(_anchor(record.nodeid))}-{start_index}">',
        f"<h2><code>{_e(record.nodeid)}</code>{_e(label)} "
        f'<span class="verdict v-{_e(verdict)}">{_e(verdict)}</span>'
        + (f" <small>(test {_e(outcome)})</small>" if outcome else "")
        + "</h2>",
        *([f'<p class="target">target: {_e(target)}</p>'] if target else []),
        f"<p>started {_e(result.started_at)}, {result.duration_ns / 1e9:.1f} s"
        + (
            f"; shared run <code>{_e(record.group)}</code> with "
            + ", ".join(f"<code>{_e(n)}</code>" for n in record.ran_with)
            if record.ran_with
            else ""
        )
        + "</p>",
        *(
            [f'<p class="rows">rows before the run: {_e(record.database.text())}</p>']
            if record.database is not None
            else []
        ),
        _stats_table(result),
    ]
    if protocols := protocols_text(result):
        parts.append(f"<p>HTTP versions: {_e(protocols)}</p>")
    warmups = [
        f"<li><code>{_e(name)}</code>: {_e(warmup_text(figures))}</li>"
        for name in result.scenarios
        if (figures := warmup_stats(result, name)) is not None
    ]
    if warmups:
        parts.append(f'<ul class="warmup">{"".join(warmups)}</ul>')
    counted = [
        f"<li><code>{_e(name)}</code>: "
        + ", ".join(f"<code>{_e(k)}</code> {v:,}" for k, v in counters.items())
        + "</li>"
        for name in result.scenarios
        if (counters := custom_counters(result, name))
    ]
    if counted:
        parts.append(f'<ul class="counters">{"".join(counted)}</ul>')
    parts += ["<h3>Thresholds</h3>", _threshold_table(result)]
    problems = [f"untrustworthy: {p}" for p in result.untrustworthy]
    problems += [f"unreachable: {u}" for u in result.unreachable]
    if result.aborted:
        problems.append(f"aborted: {result.aborted}")
    if problems:
        items = "".join(f"<li>{_e(p)}</li>" for p in problems)
        parts.append(f'<ul class="problems bad">{items}</ul>')
    parts += _diagnoses_block(result)
    hiccups = hiccup_stats(result)
    if hiccups is not None and hiccups["stalled"]:
        parts.append(f'<p class="warn stall">{_e(hiccup_text(hiccups))}</p>')
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
    parts += _knee_section(record, start_index, charts)
    parts += server_section(record, start_index, charts=charts, install_hint=INSTALL_HINT)
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
        *_comparability_block(session),
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
    if session.database is not None and (warning := session.database.warning()):
        body.append(f'<p class="warn database">{_e(warning)}</p>')
    if not charts:
        body.append(f'<p class="warn">{_e(INSTALL_HINT)}</p>')
    body.append("</header>")
    index = 0
    for record in session.records:
        own = own_target(session.target, record.target)
        body.append(_record_section(record, session.outcome(record.nodeid), index, charts, own))
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
