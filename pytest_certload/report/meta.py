"""What every report says in words besides its figures: the target (certctl, or the
connector targets a run measured and their URLs; a test's own from
``@pytest.mark.certload(target=...)``), the profile (a smoke run is *indicative*), the
database's settings and size, a scenario's warm-up left out of the verdict, the windows a
windowed threshold breached, and the generator's stalls. The terminal, junit, the JSON
summary, the HTML report and the baseline table all use these, so they say the same
thing the same way."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..engine import RunResult
from ..engine.capacity import CapacityResult
from ..thresholds import ThresholdResult, WindowResult
from ..units import format_ms, format_offset
from .stats import window_origin_ns, window_value

__all__ = [
    "INDICATIVE_PROFILES",
    "MAX_WINDOWS_LISTED",
    "TLS_OFF",
    "breached_windows_text",
    "capacity_steps_text",
    "contacted_certctl",
    "counted_windows",
    "hiccup_text",
    "indicative",
    "measured_targets",
    "measured_text",
    "own_target",
    "profile_text",
    "target_text",
    "targets_text",
    "warmup_text",
    "window_text",
    "windows_tally",
]

#: what every report says when the session did not verify TLS (``--certload-ca insecure``)
TLS_OFF = "TLS verification was off (--certload-ca insecure): no server certificate was checked"

#: breached windows named one by one before "and N more"
MAX_WINDOWS_LISTED = 5

#: profiles whose figures are indicative only, and why (``--certload-profile``)
INDICATIVE_PROFILES = {
    "smoke": "every scenario shortened to its smoke duration, so its figures are not "
    "comparable with the contract's canonical runs",
}


def indicative(profile: str | None) -> bool:
    """Whether a session of ``profile`` measured indicative figures only."""
    return profile in INDICATIVE_PROFILES


def profile_text(profile: str | None) -> str:
    """``smoke (indicative: every scenario shortened ...)``, ``canonical``, or ``unknown``."""
    if profile in INDICATIVE_PROFILES:
        return f"{profile} (indicative: {INDICATIVE_PROFILES[profile]})"
    return profile or "unknown"


def target_text(target: Mapping[str, Any], *, unrecorded: str) -> str:
    """``the certctl reference double 0.1.0``, ``certctl 2.0.9 (commit 1a2b3c4d5e6f)`` (the
    commit its version endpoint reported) or the recorded label.

    ``target`` is a target record (``{"label": ..., "kind": ..., "version": ...}``);
    the reference double is never called certctl. ``unrecorded`` is said when nothing
    was recorded.
    """
    kind = target.get("kind")
    version = target.get("version")
    shown = version.get("version") if isinstance(version, Mapping) else version
    if kind == "double":
        return f"the certctl reference double {str(shown or '').removeprefix('double-')}".rstrip()
    if kind == "certctl":
        commit = version.get("commit") if isinstance(version, Mapping) else None
        built = f" (commit {str(commit)[:12]})" if commit else ""
        return f"certctl {shown or '(version unknown)'}{built}"
    return str(target.get("label") or unrecorded)


def own_target(session_target: str, record_target: str) -> str:
    """A test's own target label, shown beside the test when it is not the session's (a
    ``@pytest.mark.certload(target=...)`` label); ``""`` when the session's target says
    it all."""
    return record_target if record_target and record_target != session_target else ""


def measured_targets(results: Iterable[RunResult], urls: Mapping[str, Any]) -> dict[str, str]:
    """Connector target type -> URL of every target the runs measured (their scenarios
    tagged ``target_type``), in the order first measured; ``urls`` are the stack's (the
    target record's ``targets``)."""
    measured: dict[str, str] = {}
    for result in results:
        for scenario in result.scenarios.values():
            kind = scenario.tags.get("target_type")
            if kind and kind not in measured:
                measured[kind] = str(urls.get(kind) or "(URL not recorded)")
    return measured


def contacted_certctl(results: Iterable[RunResult]) -> bool:
    """Whether a run had a scenario that is not a connector target's (so it loaded
    certctl); False for no run at all."""
    return any(
        not scenario.tags.get("target_type")
        for result in results
        for scenario in result.scenarios.values()
    )


def targets_text(measured: Mapping[str, str]) -> str:
    """``nginx https://127.0.0.1:8441, f5 https://127.0.0.1:8444``."""
    return ", ".join(f"{kind} {url}" for kind, url in measured.items())


def measured_text(
    certctl: str, target: Mapping[str, Any], results: Sequence[RunResult]
) -> tuple[str, str]:
    """``(target, connector targets)`` as a report header says them. ``target`` is
    ``certctl`` (the text naming certctl) unless runs were made and none contacted
    certctl (a connector-tier-only session): then the connector targets measured, with
    their URLs. ``connector targets`` lists those beside certctl; it is empty when no
    connector target was measured or ``target`` already names them."""
    measured = measured_targets(results, target.get("targets") or {})
    if measured and not contacted_certctl(results):
        return f"connector targets {targets_text(measured)} (certctl was not contacted)", ""
    return certctl, targets_text(measured)


def warmup_text(figures: Mapping[str, Any]) -> str:
    """``warm-up 2s excluded from the verdict: 400 requests, p95 122 ms, p99 131 ms, 0
    failed`` from :func:`.stats.warmup_stats`."""
    excluded = format_offset(figures["excluded_ns"])
    asked = figures["warmup_ns"]
    length = (
        excluded
        if asked == figures["excluded_ns"]
        else f"{format_offset(asked)} ({excluded} in whole intervals)"
    )
    head = f"warm-up {length} excluded from the verdict"
    if not figures["recorded"]:
        return f"{head} (the run kept no figures of it)"
    parts: list[str] = []
    if figures["requests"]:
        parts.append(f"{figures['requests']:,} requests")
    else:
        parts.append(f"{figures['iterations']:,} iterations")
    metric = figures.get("latency_metric")
    if metric is not None:
        named = "" if metric == "http_req_duration" else f"{metric} "
        parts.append(f"{named}p95 {format_ms(figures['p95_ms'] * 1e6)}")
        parts.append(f"p99 {format_ms(figures['p99_ms'] * 1e6)}")
    if figures["requests"]:
        parts.append(f"{figures['failed']:,} failed")
    return f"{head}: {', '.join(parts)}"


def hiccup_text(figures: Mapping[str, Any]) -> str:
    """``generator stalled: max 203 ms late (limit 50 ms) in 1 of 30 intervals; p99 0.12
    ms`` from :func:`.stats.hiccup_stats` (said only when ``figures["stalled"]``)."""
    where = (
        f" in {figures['stalled_intervals']:,} of {figures['intervals']:,} intervals"
        if figures["intervals"]
        else ""
    )
    return (
        f"generator stalled: max {format_ms(figures['max_ns'])} late "
        f"(limit {format_ms(figures['limit_ns'])}){where}; p99 {format_ms(figures['p99_ns'])}"
    )


def counted_windows(r: ThresholdResult) -> list[WindowResult]:
    """The windows a verdict counts: all but a last one cut short and left unjudged."""
    return [w for w in r.windows if w.observed is not None or not w.partial]


def windows_tally(r: ThresholdResult) -> str:
    """``breached 2/10``, with the windows not judged and those where the generator
    stalled: ``breached 2/10, 1 not judged, 1 stalled``."""
    counted = counted_windows(r)
    breached = sum(1 for w in counted if w.breached)
    text = f"breached {breached}/{len(counted)}"
    blind = sum(1 for w in counted if w.observed is None)
    if blind:
        text += f", {blind} not judged"
    stalled = sum(1 for w in counted if w.stalled)
    if stalled:
        text += f", {stalled} stalled"
    return text


def window_text(result: RunResult, r: ThresholdResult, w: WindowResult) -> str:
    """``3s–4s: 900 ms over 20 samples``, and ``(generator stalled: 200 ms late)``."""
    text = f"{w.span()}: {window_value(result, r.threshold, w)} over {w.count:,} samples"
    if w.stalled:
        text += f" (generator stalled: {format_ms(w.hiccup_ns)} late)"
    return text


def breached_windows_text(
    result: RunResult, r: ThresholdResult, *, most: int = MAX_WINDOWS_LISTED
) -> str:
    """The breached windows, in time order, at most ``most`` then ``and N more``:
    ``breached windows (counted from 2s into the run): 3s–4s 163 ms; 6s–7s 164 ms
    (generator stalled: 200 ms late)``; empty when none breached."""
    breached: Sequence[WindowResult] = r.breached_windows
    if not breached:
        return ""
    shown = []
    for w in breached[:most]:
        item = f"{w.span()} {window_value(result, r.threshold, w)}"
        if w.stalled:
            item += f" (generator stalled: {format_ms(w.hiccup_ns)} late)"
        shown.append(item)
    more = f"; and {len(breached) - most} more" if len(breached) > most else ""
    origin = window_origin_ns(result, r.threshold)
    where = f" (counted from {format_offset(origin)} into the run)" if origin else ""
    return f"breached windows{where}: {'; '.join(shown)}{more}"


def capacity_steps_text(found: CapacityResult) -> str:
    """Every rate the capacity search tried, in order: ``167/s ✓ 334/s ✓ 668/s ✗``
    (``⊘``: the generator could not drive it)."""
    marks = {"pass": "✓", "fail": "✗", "generator": "⊘"}
    return " ".join(f"{step.rate:,.0f}/s {marks.get(step.verdict, '?')}" for step in found.steps)
