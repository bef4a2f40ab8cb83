"""Judge a run's thresholds: whole-run ones on its store, windowed ones window by window
on its intervals, and each breach checked against the generator's stalls.

One entry point, :func:`judge_run`, used by the run loop, the merge of ``--certload-tx``
workers and a shared run's members, so a verdict means the same wherever it is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..metrics import CounterSink
from ..thresholds import NO_SAMPLES, Threshold, ThresholdResult, evaluate
from ..windows import Scope, judge_windowed, stall_check
from .results import RunResult

__all__ = ["judge_run", "scope_of"]


def scope_of(result: RunResult) -> Scope:
    """Where ``result``'s scenarios lie on its interval grid."""
    return Scope.build(
        result.interval_ns,
        {
            name: (sc.start_offset_ns, sc.elapsed_ns, sc.warmup_ns)
            for name, sc in result.scenarios.items()
        },
        result.scope,
    )


def judge_run(
    thresholds: Sequence[Threshold], result: RunResult, *, min_tail_samples: int
) -> list[ThresholdResult]:
    """Every threshold's verdict on ``result``, in order; never raises."""
    whole = evaluate(
        [t for t in thresholds if not t.windowed],
        result.store,
        min_tail_samples=min_tail_samples,
        duration_ns=result.judged_duration_ns(),
    )
    by_threshold = dict(zip([t for t in thresholds if not t.windowed], whole, strict=True))
    scope = scope_of(result) if result.intervals else None
    limit = result.health_limits.max_hiccup_ns
    verdicts: list[ThresholdResult] = []
    for t in thresholds:
        kind = result.store.type_of(t.metric)
        time = result.store.is_time(t.metric)
        try:
            if not t.windowed:
                verdict = by_threshold[t]
                if scope is not None and kind is not None and verdict.breached:
                    verdict = stall_check(
                        verdict,
                        result.intervals,
                        scope,
                        kind=kind,
                        time=time,
                        min_tail_samples=min_tail_samples,
                        hiccup_limit_ns=limit,
                    )
            elif kind is None or scope is None:
                verdict = evaluate([t], result.store, min_tail_samples=min_tail_samples)[0]
                if scope is None and kind is not None:
                    verdict = ThresholdResult(
                        t,
                        ok=False,
                        observed=None,
                        count=0,
                        reason="the run kept no intervals to judge windows on (a run "
                        "file written before windows existed?)",
                    )
            else:
                verdict = judge_windowed(
                    t,
                    result.intervals,
                    scope,
                    kind=kind,
                    time=time,
                    min_tail_samples=min_tail_samples,
                    hiccup_limit_ns=limit,
                )
        except Exception as exc:  # judging comes after the load: never lose the run's data
            verdict = ThresholdResult(
                t,
                ok=False,
                observed=None,
                count=0,
                reason=f"could not be judged ({type(exc).__name__}: {exc}); the run's data "
                "is kept in the run file",
            )
        verdicts.append(_failures_named(verdict, result))
    return verdicts


def _failures_named(verdict: ThresholdResult, result: RunResult) -> ThresholdResult:
    """An unjudged threshold with no samples, in a run whose requests failed, says so:
    what it measures never completed (a tag filter is rarely the reason then)."""
    if verdict.observed is not None or not verdict.reason.startswith(NO_SAMPLES):
        return verdict
    parts = []
    for name, sc in result.scenarios.items():
        if sc.request_errors.failed:
            sink = result.store.select("http_reqs", {"scenario": name})
            requests = int(sink.count) if isinstance(sink, CounterSink) else 0
            parts.append(f"{name}: {sc.request_errors.breakdown(requests)}")
    if not parts:
        return verdict
    return replace(
        verdict,
        reason=f"{NO_SAMPLES} {verdict.threshold.selector}: requests failed "
        f"({'; '.join(parts)}), so what it measures never completed; see why requests failed",
    )
