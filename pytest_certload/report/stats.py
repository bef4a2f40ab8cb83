"""Per-scenario figures shared by every report (terminal, junit, JSON summary)."""

from __future__ import annotations

from typing import Any

from ..engine import RunResult
from ..metrics import CounterSink, RateSink, TrendSink

__all__ = ["scenario_stats"]


def scenario_stats(result: RunResult, scenario: str) -> dict[str, Any]:
    """Requests, achieved rate, latency percentiles (ms), error rate and schedule lag.

    Latency is ``http_req_duration`` (from the intended start in the open model); when a
    scenario made no HTTP request, ``iteration_duration`` stands in for it.
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
    elapsed = sc.elapsed_ns or 1
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
    }
    out["rps"] = out["requests"] * 1e9 / elapsed if out["requests"] else 0.0
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
