"""The HTML report's server section of one run: what the stack and the generator did,
on the run's time axis.

A chart (inline SVG drawn by matplotlib) with three panels sharing one time axis, the
same as the scenarios' latency charts (seconds since the run start): each scenario's p95
per interval, CPU per service in % of one core (certctl, postgres, the other services,
the generator), and PostgreSQL's sessions (active, waiting, idle in transaction) with the
share of database time of the statement that took most of it. Below it a table per
service (CPU seconds, peak RSS, threads, file descriptors), the run's top statements, and
the notes on what could not be read.
"""

from __future__ import annotations

import html
import io
import math
import warnings
from typing import Any

from ..record import RunRecord
from ..telemetry import GENERATOR, ServerTelemetry

__all__ = ["server_section"]

_SERVICE_COLORS = {
    "certctl": "#1f77b4",
    "postgres": "#2ca02c",
    GENERATOR: "#7f7f7f",
    "nginx": "#9467bd",
    "apache": "#8c564b",
    "haproxy": "#e377c2",
    "f5": "#bcbd22",
}
_SESSION_COLORS = {"active": "#1f77b4", "waiting": "#d62728", "idle_in_transaction": "#ff7f0e"}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _mb(n: int | None) -> str:
    return "–" if n is None else f"{n / 1e6:,.1f}"


def _draw(record: RunRecord, server: ServerTelemetry, index: int) -> str:
    import matplotlib as mpl
    from matplotlib.figure import Figure

    result = record.result
    ticks = server.ticks
    mid = [(t.start_ns + t.end_ns) / 2e9 for t in ticks]
    with mpl.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": f"certload-server-{index}",
            "font.size": 9,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    ):
        fig = Figure(figsize=(11, 6.6))
        fig.subplots_adjust(left=0.06, right=0.985, top=0.95, bottom=0.08, hspace=0.45)
        ax_lat, ax_cpu, ax_db = fig.subplots(3, 1, sharex=True)

        ax_lat.set_title("p95 latency per interval, by scenario", loc="left")
        for name, sc in result.scenarios.items():
            rows = sc.timeline
            ax_lat.plot(
                [r.start_ns / 1e9 for r in rows],
                [r.p95_ns / 1e6 if r.requests else math.nan for r in rows],
                marker=".", ms=3, lw=1.2, label=name,
            )  # fmt: skip
        ax_lat.set_ylabel("ms")
        ax_lat.set_ylim(bottom=0)
        if result.scenarios:
            ax_lat.legend(loc="upper left", fontsize=8, ncols=min(4, len(result.scenarios)))

        ax_cpu.set_title("CPU per service (% of one core)", loc="left")
        for name in server.services:
            pct = [
                100 * t.cpu_ns.get(name, 0) / (t.end_ns - t.start_ns)
                if t.end_ns > t.start_ns and name in t.cpu_ns
                else math.nan
                for t in ticks
            ]
            ax_cpu.plot(
                mid, pct, lw=1.4, marker=".", ms=3, label=name,
                color=_SERVICE_COLORS.get(name),
            )  # fmt: skip
        ax_cpu.set_ylabel("% CPU")
        ax_cpu.set_ylim(bottom=0)
        if server.services:
            ax_cpu.legend(loc="upper left", fontsize=8, ncols=min(6, len(server.services)))
        else:
            ax_cpu.text(0.5, 0.5, "no process was sampled", ha="center", transform=ax_cpu.transAxes)

        ax_db.set_title("PostgreSQL sessions at each sample", loc="left")
        if any(t.sessions for t in ticks):
            for key, color in _SESSION_COLORS.items():
                ax_db.step(
                    [t.end_ns / 1e9 for t in ticks],
                    [t.sessions.get(key, math.nan) for t in ticks],
                    where="post", lw=1.4, label=key.replace("_", " "), color=color,
                )  # fmt: skip
            ax_db.legend(loc="upper left", fontsize=8, ncols=3)
        else:
            ax_db.text(
                0.5, 0.5, "no database statistics (see the notes)", ha="center",
                transform=ax_db.transAxes,
            )  # fmt: skip
        ax_db.set_ylabel("sessions")
        ax_db.set_ylim(bottom=0)
        ax_db.set_xlabel("time since run start (s)")
        ax_db.set_xlim(left=min(0.0, *(t.start_ns / 1e9 for t in ticks[:1])))

        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def _services_table(summary: dict[str, Any], services: list[str]) -> str:
    rows = []
    for name in services:
        if name == GENERATOR:
            gen = summary[GENERATOR]
            per = ", ".join(f"{k} {v:.2f} s" for k, v in gen["processes"].items())
            rows.append(
                f'<tr><td class="l">{_e(name)}</td><td>{gen["cpu_s"]:.2f}</td>'
                f'<td colspan="3" class="l">{_e(per)}; telemetry itself '
                f"{gen['telemetry_cpu_s']:.3f} s</td></tr>"
            )
            continue
        s = summary[name]
        rows.append(
            f'<tr><td class="l">{_e(name)}</td><td>{s["cpu_s"]:.2f}</td>'
            f"<td>{_mb(s['rss_max_bytes'])}</td><td>{s['threads_max']}</td>"
            f"<td>{s['fds_max']}</td></tr>"
        )
    head = (
        '<tr><th class="l">service</th><th>CPU s</th><th>peak RSS MB</th>'
        "<th>peak threads</th><th>peak fds</th></tr>"
    )
    return f'<table class="services">{head}{"".join(rows)}</table>'


def _statements_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    body = "".join(
        f'<tr><td class="l"><code>{_e(r["query"])}</code></td><td>{r["calls"]:,}</td>'
        f"<td>{r['total_ms']:,.1f}</td><td>{r['mean_ms'] if r['mean_ms'] is not None else '–'}"
        "</td></tr>"
        for r in rows
    )
    head = (
        '<tr><th class="l">statement (normalised)</th><th>calls</th><th>total ms</th>'
        "<th>mean ms</th></tr>"
    )
    return f'<h4>top statements</h4><table class="statements">{head}{body}</table>'


def server_section(record: RunRecord, index: int, *, charts: bool, install_hint: str) -> list[str]:
    """The server section of ``record`` (empty when telemetry was off)."""
    server = record.server
    if server is None:
        return []
    summary = server.summary()
    parts = [
        "<h3>Server</h3>",
        f'<figure class="chart server" id="server-{index}">'
        "<figcaption>the stack and the generator during the run</figcaption>",
    ]
    if not charts:
        parts.append(f'<p class="nochart">{_e(install_hint)}</p>')
    elif not server.ticks:
        parts.append('<p class="nochart">no sample was taken</p>')
    else:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parts.append(_draw(record, server, index))
        except Exception as exc:  # a chart must never cost the rest of the report
            parts.append(f'<p class="nochart">chart failed: {_e(repr(exc))}</p>')
    parts.append("</figure>")
    parts.append(_services_table(summary, server.services))
    parts.append(_statements_table(summary["postgres"]["top_statements"]))
    if server.notes:
        items = "".join(f"<li>note: {_e(n)}</li>" for n in server.notes)
        parts.append(f'<ul class="problems">{items}</ul>')
    return [p for p in parts if p]
