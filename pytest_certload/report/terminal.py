"""The end-of-run table: one row per scenario, then every threshold with ✓ or ✗.

The header says what was measured and how comparable it is: the target (certctl's
version and commit), the profile (a smoke run is *indicative*), the database's settings
(and a warning when commits did not wait for the disk); each test then the rows of the
tables it touches, before its run. ``req/s`` is requests per second and ``iter/s``
iterations per second, both over the scenario's own active time: compare an arrival
rate (iterations) with ``iter/s``, never with ``req/s`` (an iteration may make several
requests).

Under a scenario's row, its warm-up when one was left out of the verdict; under a
windowed threshold that breached, the windows it breached in; after the thresholds, the
generator's stalls when a hiccup exceeded the health limit; then the run's diagnoses
(:mod:`.diagnoses`: failed requests by status, certctl's API limiter, known certctl
defects), as the failure message gives them. An ordinary run has none of these lines.
"""

from __future__ import annotations

from ..record import SessionRecord
from ..telemetry import GENERATOR, ServerTelemetry
from .diagnoses import diagnose
from .meta import (
    TLS_OFF,
    breached_windows_text,
    capacity_steps_text,
    hiccup_text,
    measured_text,
    own_target,
    profile_text,
    warmup_text,
)
from .stats import custom_counters, hiccup_stats, protocols_text, scenario_stats, warmup_stats

__all__ = ["render"]

_COLUMNS = (
    ("scenario", "<", 28),
    ("requests", ">", 9),
    ("req/s", ">", 8),
    ("iter/s", ">", 8),
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


def comparability_lines(session: SessionRecord) -> list[str]:
    """The profile and the database's settings, with a ``!`` line when commits did not
    wait for the disk."""
    lines = [f"profile: {profile_text(session.profile)}"]
    if session.database is not None:
        lines.append(f"database: {session.database.text()}")
        if warning := session.database.warning():
            lines.append(f"! {warning}")
    return lines


def render(session: SessionRecord) -> list[str]:
    """Lines of the certload section of the terminal summary."""
    lines: list[str] = []
    target, connectors = measured_text(
        session.target or "(not recorded: the test did not use the certload stack)",
        session.target_record,
        [record.result for record in session.records],
    )
    lines.append(f"target: {target}")
    if connectors:
        lines.append(f"connector targets: {connectors}")
    if session.target_details.get("tls_verify") is False:
        lines.append(f"! {TLS_OFF}")
    lines += comparability_lines(session)
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
        if record.database is not None:
            lines.append(f"  rows before the run: {record.database.text()}")
        for name in result.scenarios:
            s = scenario_stats(result, name)
            err = s["error_rate"]
            lines.append(
                _row(
                    [
                        f"  {name}"[:28],
                        f"{s['requests']:,}",
                        _num(s["rps"]),
                        _num(s["iter_rate"]),
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
            counters = custom_counters(result, name)
            if counters:
                lines.append(
                    "    counters: " + ", ".join(f"{k} {v:,}" for k, v in counters.items())
                )
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
        for diagnosis in diagnose(result):  # the same words as the failure message
            lines += [f"    ! {line}" for line in diagnosis.lines()]
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
