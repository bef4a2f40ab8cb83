"""The merge policy of a distributed run: every worker's share into one judged result.

Workers that died, failed or started late are named in the merged result's health, so
the run is untrustworthy by name while the other workers' data is kept.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..engine import RunOptions, RunResult, Scenario, ScenarioHealth, ScenarioResult, merge_results
from ..metrics import MetricStore, declare_builtins
from ..thresholds import Threshold, evaluate

__all__ = ["DistributedRun", "WorkerReport", "merge_workers"]


@dataclass
class WorkerReport:
    """One worker of a distributed run: who it was and what it sent back."""

    name: str  # the gateway id: "tx0", "tx1", ... unless the spec gives id=
    spec: str
    shard: tuple[int, int]
    host: str = ""
    pid: int = 0
    python: str = ""
    clock_offset_ns: int = 0  # worker wall clock minus the controller's
    rtt_ns: int = 0  # round trip of the best clock exchange
    late_ns: int | None = None  # how long after the agreed instant its t0 was fixed
    #: when the controller lost it (its connection closed, or it was given up), from the
    #: agreed start instant; None while it was not lost
    lost_ns: int | None = None
    result: RunResult | None = None  # its share, as received (thresholds unjudged)
    problem: str = ""  # why its share is missing or untrusted ("" if fine)

    @property
    def label(self) -> str:
        where = f" on {self.host}" if self.host else ""
        return f"{self.name} ({self.spec}{where})"


@dataclass
class DistributedRun:
    """The merged result (one verdict) and each worker's own share."""

    merged: RunResult
    workers: list[WorkerReport] = field(default_factory=list)


def merge_workers(
    workers: Sequence[WorkerReport],
    scenarios: Sequence[Scenario],
    thresholds: Sequence[Threshold],
    options: RunOptions,
    *,
    stop_reason: str = "",
) -> RunResult:
    """One result for the run: the workers' shares merged exactly and judged once.

    ``stop_reason`` is why the controller stopped the run (its ``RunOptions.stop``); the
    merged ``aborted`` then starts with ``stopped: <reason>``, once, followed by any other
    reason a worker ended early for.
    """
    done = [w for w in workers if w.result is not None and not w.problem]
    limits = options.health
    if done:
        merged = merge_results(
            [w.result for w in done if w.result is not None],
            thresholds=thresholds,
            health=limits,
            min_tail_samples=options.min_tail_samples,
            worker_names=[w.name for w in done],
        )
    else:
        merged = _empty_result(scenarios, thresholds, options)
    problems = [f"{w.label} {w.problem}; its share is missing" for w in workers if w.problem]
    problems += [
        f"{w.label} fixed its start {w.late_ns / 1e6:.1f} ms after the agreed instant, so "
        "its share of the schedule ran late (a slow or overloaded host?)"
        for w in done
        if w.late_ns is not None and w.late_ns > limits.max_lag_p99_ns
    ]
    for sc in merged.scenarios.values():
        sc.health.problems += problems
    if stop_reason:
        stopped = f"stopped: {stop_reason}"
        others = [
            f"{w.name}: {w.result.aborted}"
            for w in done
            if w.result is not None and w.result.aborted not in ("", stopped)
        ]
        merged.aborted = "; ".join([stopped, *others])
    return merged


def _empty_result(
    scenarios: Sequence[Scenario], thresholds: Sequence[Threshold], options: RunOptions
) -> RunResult:
    """No worker returned anything: a result with no data whose health says so."""
    store = MetricStore()
    declare_builtins(store)
    results: dict[str, ScenarioResult] = {}
    for sc in scenarios:
        health = ScenarioHealth(
            scenario=sc.name,
            open_model=sc.open_model,
            scheduled=0,
            started=0,
            dropped=0,
            interrupted=0,
            lag_p99_ns=None,
            iteration_errors=0,
            target_rate=None,
            achieved_rate=None,
        )
        results[sc.name] = ScenarioResult(
            name=sc.name,
            executor=sc.executor.describe(),
            tags={"scenario": sc.name, **sc.tags},
            start_offset_ns=sc.start_time_ns,
            elapsed_ns=0,
            health=health,
            timeline=[],
            error_samples={},
        )
    return RunResult(
        store=store,
        scenarios=results,
        thresholds=evaluate(thresholds, store, min_tail_samples=options.min_tail_samples),
        started_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        duration_ns=0,
        health_limits=options.health,
    )
