"""Exact merging of runs made by several workers (processes or machines) into one result.

Each worker runs its share of every scenario (``RunOptions.shard``); the controller
merges their metric stores exactly (HDR histograms bucket by bucket, counters and rates
by sum), re-derives every scenario's health from the merged figures and judges the
thresholds once, on the merged store.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..intervals import merge_intervals
from ..metrics import CounterSink, MetricStore, TrendSink
from ..thresholds import Threshold
from .causes import RequestErrors
from .health import HealthLimits, ScenarioHealth
from .judging import judge_run
from .results import RunResult, ScenarioResult
from .timeline import TimelineRow

__all__ = ["merge_results"]


def _merge_timelines(timelines: Sequence[list[TimelineRow]]) -> list[TimelineRow]:
    """Row-by-row sums; per-interval percentiles take the worst worker (an upper bound)."""
    longest = max((len(t) for t in timelines), default=0)
    rows: list[TimelineRow] = []
    for i in range(longest):
        parts = [t[i] for t in timelines if i < len(t)]
        rates = [p.target_rate for p in parts if p.target_rate is not None]
        rows.append(
            TimelineRow(
                start_ns=min(p.start_ns for p in parts),
                end_ns=max(p.end_ns for p in parts),
                iterations=sum(p.iterations for p in parts),
                dropped=sum(p.dropped for p in parts),
                requests=sum(p.requests for p in parts),
                failed=sum(p.failed for p in parts),
                p50_ns=max(p.p50_ns for p in parts),
                p95_ns=max(p.p95_ns for p in parts),
                p99_ns=max(p.p99_ns for p in parts),
                max_ns=max(p.max_ns for p in parts),
                target_rate=sum(rates) if rates else None,
                vus=sum(p.vus for p in parts),
            )
        )
    return rows


def merge_results(
    results: Sequence[RunResult],
    *,
    thresholds: Sequence[Threshold] = (),
    health: HealthLimits | None = None,
    min_tail_samples: int = 1,
    worker_names: Sequence[str] | None = None,
) -> RunResult:
    """One result from the workers' results: exact metrics, health and verdicts re-judged.

    A worker's own health problems are kept, prefixed by its name, so a worker that fell
    behind makes the merged run untrustworthy and is named in the message.
    """
    if not results:
        raise ValueError("merge_results() needs at least one result")
    names = list(worker_names or [f"worker {i}" for i in range(len(results))])
    limits = health or results[0].health_limits
    store = MetricStore()
    for r in results:
        store.merge(r.store)
    warm: MetricStore | None = None
    for r in results:
        if r.warmup_store is not None:
            warm = warm or MetricStore()
            warm.merge(r.warmup_store)
    scenarios: dict[str, ScenarioResult] = {}
    for name in results[0].scenarios:
        parts = [r.scenarios[name] for r in results if name in r.scenarios]
        hs = [p.health for p in parts]
        lag = store.select("schedule_lag", {"scenario": name})
        lag_p99 = lag.quantile(99) if isinstance(lag, TrendSink) and lag.count else None
        delay = store.select("http_req_generator_delay", {"scenario": name})
        delay_p99 = delay.quantile(99) if isinstance(delay, TrendSink) and delay.count else None
        rates = [h.target_rate for h in hs if h.target_rate is not None]
        achieved = [h.achieved_rate for h in hs if h.achieved_rate is not None]
        merged = ScenarioHealth(
            scenario=name,
            open_model=hs[0].open_model,
            scheduled=sum(h.scheduled for h in hs),
            started=sum(h.started for h in hs),
            dropped=sum(h.dropped for h in hs),
            interrupted=sum(h.interrupted for h in hs),
            lag_p99_ns=lag_p99,
            iteration_errors=sum(h.iteration_errors for h in hs),
            target_rate=sum(rates) if rates else None,
            achieved_rate=sum(achieved) if achieved else None,
            unreachable=next((h.unreachable for h in hs if h.unreachable), ""),
            delay_p99_ns=delay_p99,
            delay_unmeasured=sum(h.delay_unmeasured for h in hs),
            delay_unmeasured_why=next(
                (h.delay_unmeasured_why for h in hs if h.delay_unmeasured_why), ""
            ),
        )
        merged.judge(limits)
        for worker, r in zip(names, results, strict=True):
            part = r.scenarios.get(name)
            if part is None:
                merged.problems.append(f"{worker} returned no result for this scenario")
                continue
            part.health.judge(limits)
            merged.problems += [f"{worker}: {p}" for p in part.health.problems]
        errors: dict[str, int] = {}
        request_errors = RequestErrors()
        for p in parts:
            for message, count in p.error_samples.items():
                errors[message] = errors.get(message, 0) + count
            request_errors.merge(p.request_errors)
        scenarios[name] = ScenarioResult(
            name=name,
            executor=parts[0].executor,
            tags=parts[0].tags,
            start_offset_ns=min(p.start_offset_ns for p in parts),
            elapsed_ns=max(p.elapsed_ns for p in parts),
            health=merged,
            timeline=_merge_timelines([p.timeline for p in parts]),
            error_samples=errors,
            folded_names=sum(p.folded_names for p in parts),
            request_errors=request_errors,
            shares={
                worker: _requests(r.store, name)
                for worker, r in zip(names, results, strict=True)
                if name in r.scenarios
            },
            warmup_ns=parts[0].warmup_ns,
        )
    duration = max(r.duration_ns for r in results)
    result = RunResult(
        store=store,
        scenarios=scenarios,
        thresholds=[],
        started_at=min(r.started_at for r in results),
        duration_ns=duration,
        health_limits=limits,
        aborted=_aborted(names, results),
        intervals=merge_intervals([r.intervals for r in results]),
        interval_ns=results[0].interval_ns,
        warmup_store=warm,
        t0_ns=min((r.t0_ns for r in results if r.t0_ns), default=0),
        cpu_ns={worker: sum(r.cpu_ns.values()) for worker, r in zip(names, results, strict=True)},
    )
    result.thresholds = judge_run(thresholds, result, min_tail_samples=min_tail_samples)
    return result


def _requests(store: MetricStore, scenario: str) -> int:
    sink = store.select("http_reqs", {"scenario": scenario})
    return int(sink.count) if isinstance(sink, CounterSink) else 0


def _aborted(names: Sequence[str], results: Sequence[RunResult]) -> str:
    """Why the merged run ended early: one reason when every worker gives the same one
    (a stop request, an unreachable target), else each worker's, by name."""
    reasons = [(n, r.aborted) for n, r in zip(names, results, strict=True) if r.aborted]
    if len(reasons) == len(results) and len({reason for _, reason in reasons}) == 1:
        return reasons[0][1]
    return "; ".join(f"{n}: {reason}" for n, reason in reasons)
