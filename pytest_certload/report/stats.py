"""Figures shared by every report (terminal, junit, JSON summary, HTML): per scenario,
its warm-up, the generator's hiccups, and where a windowed threshold's windows lie."""

from __future__ import annotations

from typing import Any

from ..engine import RunResult
from ..engine.judging import scope_of
from ..metrics import (
    BUILTIN_METRICS,
    GENERATOR_HICCUP,
    HTTP_REQ_DURATION,
    HTTP_REQ_FAILED,
    HTTP_REQS,
    ITERATION_DURATION,
    ITERATIONS,
    CounterSink,
    MetricType,
    RateSink,
    TrendSink,
)
from ..thresholds import Threshold, WindowResult
from ..units import format_ms

__all__ = [
    "active_span",
    "breached_window_spans",
    "custom_counters",
    "hiccup_stats",
    "protocols_text",
    "scenario_stats",
    "stalled_interval_spans",
    "warmup_stats",
    "window_origin_ns",
    "window_value",
]


def scenario_stats(result: RunResult, scenario: str) -> dict[str, Any]:
    """Requests, iterations, their rates, latency percentiles (ms), error rate and
    schedule lag.

    Latency is ``http_req_duration`` (from the intended start in the open model); when a
    scenario made no HTTP request, ``iteration_duration`` stands in for it. ``rps``
    (requests) and ``iter_rate`` (iterations) are per second of the scenario's own
    active time (:func:`active_span`). The figures are those the thresholds judged: a
    warm-up is left out of them, and out of the time the rates divide by.
    """
    store = result.store
    where = {"scenario": scenario}
    sc = result.scenarios[scenario]
    latency = store.select("http_req_duration", where)
    source = "http_req_duration"
    if not isinstance(latency, TrendSink) or not latency.count:
        latency = store.select("iteration_duration", where)
        source = "iteration_duration"
    reqs = store.select("http_reqs", where)
    failed = store.select("http_req_failed", where)
    iterations = store.select("iterations", where)
    lag = store.select("schedule_lag", where)
    start, end = active_span(result, scenario)
    elapsed = (end - start) or 1
    out: dict[str, Any] = {
        "scenario": scenario,
        "executor": sc.executor.get("executor"),
        "latency_metric": source,
        "requests": int(reqs.count) if isinstance(reqs, CounterSink) else 0,
        "iterations": int(iterations.count) if isinstance(iterations, CounterSink) else 0,
        "dropped": sc.health.dropped,
        "target_rate": sc.health.target_rate,
        "achieved_rate": sc.health.achieved_rate,
        "error_rate": failed.rate() if isinstance(failed, RateSink) and failed.total else None,
        "lag_p99_ms": lag.quantile(99) / 1e6 if isinstance(lag, TrendSink) and lag.count else None,
        "trustworthy": sc.health.trustworthy and not sc.health.unreachable,
        "protocols": _protocols(result, scenario),
    }
    out["rps"] = out["requests"] * 1e9 / elapsed if out["requests"] else 0.0
    out["iter_rate"] = out["iterations"] * 1e9 / elapsed if out["iterations"] else 0.0
    if isinstance(latency, TrendSink) and latency.count:
        q = latency.quantiles((50, 90, 95, 99))
        out.update(
            count=latency.count,
            avg_ms=latency.mean() / 1e6,
            min_ms=latency.min() / 1e6,
            p50_ms=q[50] / 1e6,
            p90_ms=q[90] / 1e6,
            p95_ms=q[95] / 1e6,
            p99_ms=q[99] / 1e6,
            max_ms=latency.max() / 1e6,
        )
    return out


def custom_counters(result: RunResult, scenario: str) -> dict[str, int]:
    """The scenario's own counters (not built-in metrics) that it added to, by name: e.g.
    the scale tier's ``bulk_enqueued``, ``bulk_skipped`` (added to with 0 too)."""
    out: dict[str, int] = {}
    for name in result.store.names():
        if name in BUILTIN_METRICS or result.store.type_of(name) is not MetricType.COUNTER:
            continue
        sink = result.store.select(name, {"scenario": scenario})
        if isinstance(sink, CounterSink):
            out[name] = int(sink.count)
    return out


def active_span(result: RunResult, scenario: str) -> tuple[int, int]:
    """``(start_ns, end_ns)`` from the run start of ``scenario``'s own active time: from
    its start (its ``startTime`` offset, an idle stagger, left out), after its warm-up,
    to its end. Every rate a report shows divides by this."""
    sc = result.scenarios[scenario]
    end = sc.start_offset_ns + sc.elapsed_ns
    excluded = result.warmup_excluded_ns(scenario)
    if not excluded:
        return sc.start_offset_ns, end
    start = round(sc.start_offset_ns / result.interval_ns) * result.interval_ns
    return min(start + excluded, end), end


def _protocols(result: RunResult, scenario: str) -> dict[str, int]:
    """Requests by the HTTP version they were answered in (k6's ``proto`` tag:
    ``HTTP/1.1``, ``HTTP/2.0``); requests that got no response have none."""
    out: dict[str, int] = {}
    for tags, sink in result.store.series(HTTP_REQS).items():
        found = dict(tags)
        proto = found.get("proto")
        if proto and found.get("scenario") == scenario and isinstance(sink, CounterSink):
            out[proto] = out.get(proto, 0) + int(sink.count)
    return dict(sorted(out.items()))


def protocols_text(result: RunResult) -> str:
    """The HTTP versions a run's requests were answered in, with how many and by which
    scenarios: ``HTTP/2.0: 1,200 requests`` or ``HTTP/2.0: 1,200 requests (a, b);
    HTTP/1.1: 108 requests (c)``; "" when no request got a response."""
    counts: dict[str, int] = {}
    names: dict[str, list[str]] = {}
    for name in result.scenarios:
        for proto, count in _protocols(result, name).items():
            counts[proto] = counts.get(proto, 0) + count
            names.setdefault(proto, []).append(name)
    if len(result.scenarios) == 1 or len(counts) == 1:
        return "; ".join(f"{proto}: {count:,} requests" for proto, count in counts.items())
    return "; ".join(
        f"{proto}: {count:,} requests ({', '.join(names[proto])})"
        for proto, count in sorted(counts.items(), key=lambda item: -item[1])
    )


def warmup_stats(result: RunResult, scenario: str) -> dict[str, Any] | None:
    """What ``scenario``'s warm-up measured, left out of the verdict; None without one.

    ``warmup_ns`` is the warm-up asked for, ``excluded_ns`` what was left out (rounded up
    to whole intervals) and ``start_ns``/``end_ns`` where that lies from the run start;
    then, from ``result.warmup_store``, requests, iterations, failed requests and the
    latency percentiles (ms) of those samples (``recorded`` is False when the run kept
    none of them).
    """
    excluded = result.warmup_excluded_ns(scenario)
    if not excluded:
        return None
    sc = result.scenarios[scenario]
    start = round(sc.start_offset_ns / result.interval_ns) * result.interval_ns
    out: dict[str, Any] = {
        "warmup_ns": sc.warmup_ns,
        "excluded_ns": excluded,
        "start_ns": start,
        "end_ns": start + excluded,
        "recorded": result.warmup_store is not None,
    }
    store = result.warmup_store
    if store is None:
        return out
    where = {"scenario": scenario}
    reqs = store.select(HTTP_REQS, where)
    failed = store.select(HTTP_REQ_FAILED, where)
    iterations = store.select(ITERATIONS, where)
    out.update(
        requests=int(reqs.count) if isinstance(reqs, CounterSink) else 0,
        iterations=int(iterations.count) if isinstance(iterations, CounterSink) else 0,
        failed=failed.trues if isinstance(failed, RateSink) else 0,
    )
    for metric in (HTTP_REQ_DURATION, ITERATION_DURATION):
        latency = store.select(metric, where)
        if isinstance(latency, TrendSink) and latency.count:
            q = latency.quantiles((95, 99))
            out.update(
                latency_metric=metric,
                p95_ms=q[95] / 1e6,
                p99_ms=q[99] / 1e6,
                max_ms=latency.max() / 1e6,
            )
            break
    return out


def hiccup_stats(result: RunResult) -> dict[str, Any] | None:
    """How late the generator's event loop ran (the hiccup meter), or None when it was
    not measured (a virtual clock, a run file written before it existed).

    ``max_ns``, ``p99_ns`` and ``samples`` of ``generator_hiccup``; ``limit_ns`` the health
    limit; ``stalled`` whether the maximum exceeded it, and then ``stalled_intervals`` of
    ``intervals`` the ones where it did.
    """
    sink = result.store.select(GENERATOR_HICCUP)
    if not isinstance(sink, TrendSink) or not sink.count:
        return None
    limit = result.health_limits.max_hiccup_ns
    worst = sink.max()
    stalled = worst > limit
    return {
        "max_ns": worst,
        "p99_ns": sink.quantile(99),
        "samples": sink.count,
        "limit_ns": limit,
        "stalled": stalled,
        "stalled_intervals": len(stalled_interval_spans(result)) if stalled else 0,
        "intervals": len(result.intervals),
    }


def window_origin_ns(result: RunResult, threshold: Threshold) -> int | None:
    """Where ``threshold``'s window 0 starts, in ns from the run start (its windows'
    offsets count from there: its scenarios' start after their warm-up, on the interval
    grid); None when it selects no scenario of the run."""
    scope = scope_of(result)
    names = scope.scenarios_of(threshold)
    if not names:
        return None
    return min(scope.warmups[n] for n in names) * result.interval_ns


def window_value(result: RunResult, threshold: Threshold, window: WindowResult) -> str:
    """A window's observed value in the threshold's unit: ``164 ms``, ``2.5%``, ``12/s``;
    ``not judged`` when it was not."""
    value = window.observed
    if value is None:
        return "not judged"
    if result.store.is_time(threshold.metric) and threshold.aggregation != "count":
        return format_ms(value * 1e6)
    if threshold.unit == "%":
        return f"{value * 100:.3g}%"
    if result.store.type_of(threshold.metric) is MetricType.COUNTER and (
        threshold.aggregation == "rate"
    ):
        return f"{value:,.4g}/s"
    return f"{value:,.4g}"


def breached_window_spans(result: RunResult, scenario: str) -> list[tuple[int, int, bool]]:
    """``(start_ns, end_ns, stalled)`` from the run start of every window a windowed
    threshold on ``scenario`` breached (``stalled``: the generator stalled in it), in
    time order, each span once."""
    scope = scope_of(result)
    spans: set[tuple[int, int, bool]] = set()
    for r in result.thresholds:
        t = r.threshold
        if not t.windowed or scenario not in scope.scenarios_of(t):
            continue
        origin = window_origin_ns(result, t)
        if origin is None:
            continue
        spans.update(
            (origin + w.start_ns, origin + w.end_ns, w.stalled) for w in r.breached_windows
        )
    return sorted(spans)


def stalled_interval_spans(result: RunResult) -> list[tuple[int, int]]:
    """``(start_ns, end_ns)`` from the run start of every interval in which the generator
    was late beyond the health limit (nominal interval bounds, as windows use)."""
    limit = result.health_limits.max_hiccup_ns
    step = result.interval_ns
    return [
        (iv.index * step, (iv.index + 1) * step)
        for iv in result.intervals
        if iv.hiccup_max_ns() > limit
    ]
