"""The end-of-run table: one row per scenario, then every threshold with ✓ or ✗.

Under a scenario's row, its warm-up when one was left out of the verdict; under a
windowed threshold that breached, the windows it breached in; after the thresholds, the
generator's stalls when a hiccup exceeded the health limit. An ordinary run has none of
these lines.
"""

from __future__ import annotations

from ..record import SessionRecord
from ..telemetry import GENERATOR, ServerTelemetry
from .meta import (
    TLS_OFF,
    breached_windows_text,
    capacity_steps_text,
    hiccup_text,
    own_target,
    warmup_text,
)
from .stats import hiccup_stats, protocols_text, scenario_stats, warmup_stats

__all__ = ["render"]

_COLUMNS = (
    ("scenario", "<", 28),
    ("requests", ">", 9),
    ("rate/s", ">", 8),
    ("p50 ms", ">", 8),
    ("p90 ms", ">", 8),
    ("p95 ms", ">", 8),
    ("p99 ms", ">", 8),
    ("max ms", ">", 9),
    ("errors", ">", 7),
    ("lag p99", ">", 8),
)


def _num(value: float | None, fmt: str = ".1f") -> str:
    if value is None:
        return "-"
    return format(value, fmt)


def _row(cells: list[str]) -> str:
    return " ".join(
        f"{cell:{align}{width}}" for cell, (_, align, width) in zip(cells, _COLUMNS, strict=True)
    ).rstrip()


def server_text(server: ServerTelemetry) -> str:
    """One line on a run's telemetry: CPU seconds (and peak RSS) per service, the
    generator's CPU, the peak of waiting sessions; ``telemetry: N notes`` when some
    figure could not be read (summary.json and the HTML report list them)."""
    summary = server.summary()
    parts = []
    for name in server.services:
        s = summary[name]
        if s.get("cpu_s") is None:
            continue
        if name not in ("certctl", "postgres", GENERATOR) and s["cpu_s"] < 0.05:
            continue  # an idle connector target
        rss = s.get("rss_max_bytes")
        parts.append(f"{name} {s['cpu_s']:.1f} s CPU" + (f" ({rss / 1e6:,.0f} MB)" if rss else ""))
    waiting = summary["postgres"].get("waiting_max")
    if waiting:
        parts.append(f"postgres peak {waiting} session(s) waiting")
    if server.notes:
        parts.append(f"{len(server.notes)} note(s) in summary.json")
    return ", ".join(parts) or "nothing could be sampled"


def render(session: SessionRecord) -> list[str]:
    """Lines of the certload section of the terminal summary."""
    lines: list[str] = []
    target = session.target or "(not recorded: the test did not use the certload stack)"
    lines.append(f"target: {target}")
    if session.target_details.get("tls_verify") is False:
        lines.append(f"! {TLS_OFF}")
    lines.append(_row([name for name, _, _ in _COLUMNS]))
    for record in session.records:
        result = record.result
        label = f" [{record.label}]" if record.label else ""
        outcome = session.outcome(record.nodeid)
        lines.append(
            f"{record.nodeid}{label}: {result.verdict}" + (f" (test {outcome})" if outcome else "")
        )
        if own := own_target(session.target, record.target):
            lines.append(f"  target: {own}")
        if record.ran_with:
            lines.append(f"  shared run {record.group!r} with {', '.join(record.ran_with)}")
        for name in result.scenarios:
            s = scenario_stats(result, name)
            err = s["error_rate"]
            lines.append(
                _row(
                    [
                        f"  {name}"[:28],
                        f"{s['requests']:,}",
                        _num(s["rps"]),
                        _num(s.get("p50_ms"), ".2f"),
                        _num(s.get("p90_ms"), ".2f"),
                        _num(s.get("p95_ms"), ".2f"),
                        _num(s.get("p99_ms"), ".2f"),
                        _num(s.get("max_ms"), ".1f"),
                        "-" if err is None else f"{err:.2%}",
                        _num(s["lag_p99_ms"], ".2f"),
                    ]
                )
            )
            warmup = warmup_stats(result, name)
            if warmup is not None:
                lines.append(f"    {warmup_text(warmup)}")
        if protocols := protocols_text(result):
            lines.append(f"    HTTP versions: {protocols}")
        for r in result.thresholds:
            mark = "✓" if r.ok else "✗"
            lines.append(f"    {mark} {r.message()}")
            strip = breached_windows_text(result, r)
            if strip:
                lines.append(f"        {strip}")
        hiccups = hiccup_stats(result)
        if hiccups is not None and hiccups["stalled"]:
            lines.append(f"    ! {hiccup_text(hiccups)}")
        for cause in result.causes():
            lines.append(f"    ! cause: {cause}")
        for problem in result.untrustworthy:
            lines.append(f"    ! untrustworthy: {problem}")
        for url in result.unreachable:
            lines.append(f"    ! unreachable: {url}")
        if result.aborted:
            lines.append(f"    ! aborted: {result.aborted}")
        for found in record.capacity:
            lines.append(f"  {found.line()}")
            lines.append(f"    steps: {capacity_steps_text(found)}")
        for note in result.notes:
            lines.append(f"    - note: {note}")
        if record.server is not None:
            lines.append(f"  server: {server_text(record.server)}")
    lines += [f"! could not write {problem}" for problem in session.write_errors]
    return lines
