"""Capacity inside the contract: the highest arrival rate a scenario holds.

The search runs an open-model scenario at its contract rate, then at twice that, and so on
while every threshold of the scenario holds and the generator stays healthy; then it
bisects between the last rate that passed and the first that failed until the bracket is
within ``precision`` (10 %). Each step is one engine run: a short ramp from the previous
rate (set apart as warm-up, so it is recorded but not judged) and a dwell at the step's
rate, measured from the intended start as every open-model run is.

A step *fails* when a threshold breaches (or cannot be judged) in a trustworthy run, or
when iterations are dropped because every VU up to ``max_vus`` is busy (the server holds
them: that is saturation, the server's). It is *generator-bound* when the generator
itself could not keep up (schedule lag, iterations not started, its event loop stalling,
iterations raising): then the search stops, since no higher rate can be measured from
this process, and the answer says so (add workers with ``--certload-tx``).

:func:`search` takes the step runner as a callable, so the algorithm is tested on its own
(a model server) and the pytest glue only supplies how to run a step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import ConfigError
from ..metrics import HTTP_REQ_DURATION, HTTP_REQ_SERVICE_TIME, RateSink, TrendSink
from ..thresholds import Threshold, ThresholdResult, evaluate
from ..units import NS_PER_S, exact_ns
from .executors import ConstantArrivalRate, RampingArrivalRate, Stage
from .options import Scenario
from .results import RunResult

STEP_GRACEFUL_STOP_NS = 5 * NS_PER_S
"""How long a step's in-flight iterations may finish after its dwell; more than 1 % of
them still unanswered then is saturation (they would be lost samples otherwise)."""

__all__ = [
    "CapacityResult",
    "CapacityStep",
    "contract_rate",
    "format_rate",
    "search",
    "step_scenario",
    "summarize",
    "thresholds_for",
]


@dataclass(frozen=True)
class CapacityStep:
    """One rate tried: what it measured and what it concluded.

    ``verdict`` is ``pass``, ``fail`` (the server: a threshold, saturation, or requests
    still unanswered a while after the step) or
    ``generator`` (the generator could not drive it). Latencies are the scenario's
    ``http_req_duration`` after the ramp, in ms.
    """

    rate: float  # offered, iterations per second
    achieved: float | None
    verdict: str
    reason: str
    requests: int
    error_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "achieved": self.achieved,
            "verdict": self.verdict,
            "reason": self.reason,
            "requests": self.requests,
            "error_rate": self.error_rate,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CapacityStep:
        def num(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(
            rate=float(data["rate"]),
            achieved=num("achieved"),
            verdict=str(data["verdict"]),
            reason=str(data["reason"]),
            requests=int(data["requests"]),
            error_rate=num("error_rate"),
            p50_ms=num("p50_ms"),
            p95_ms=num("p95_ms"),
            p99_ms=num("p99_ms"),
        )


@dataclass
class CapacityResult:
    """The answer for one scenario, with every step in the order run."""

    scenario: str
    contract_rate: float
    precision: float
    max_rate: float
    steps: list[CapacityStep] = field(default_factory=list)
    stopped: str = ""  # why the search ended before its bracket closed, if it did

    @property
    def capacity(self) -> float | None:
        """The highest rate that passed (None when not even the contract rate did)."""
        passed = [s.rate for s in self.steps if s.passed]
        return max(passed) if passed else None

    @property
    def first_fail(self) -> CapacityStep | None:
        """The lowest rate the server failed at (a threshold or saturation)."""
        failed = [s for s in self.steps if s.verdict == "fail"]
        return min(failed, key=lambda s: s.rate) if failed else None

    @property
    def generator_bound(self) -> CapacityStep | None:
        """The step at which the generator, not the server, gave out (if it did)."""
        return next((s for s in self.steps if s.verdict == "generator"), None)

    def bound(self) -> tuple[str, float | None, str]:
        """What bounds the answer from above: ``("fail", rate, reason)`` (the server
        failed there), ``("generator", rate, reason)`` (the generator gave out first) or
        ``("none", None, why)`` (no rate failed: the ceiling or the time limit ended it)."""
        fail = self.first_fail
        bound = self.generator_bound
        if bound is not None and (fail is None or bound.rate < fail.rate):
            return "generator", bound.rate, bound.reason
        if fail is not None:
            return "fail", fail.rate, fail.reason
        return "none", None, self.stopped

    def line(self) -> str:
        """``capacity <scenario>: <rate>/s (first fail <rate>/s: <why>)``."""
        cap = self.capacity
        head = f"capacity {self.scenario}: " + (
            f"{format_rate(cap)}/s" if cap is not None else "none (the contract rate fails)"
        )
        kind, rate, reason = self.bound()
        if kind == "generator" and rate is not None:
            return (
                f"{head} (generator-bound at {format_rate(rate)}/s: {reason}; the "
                "server may hold more: add generator processes with --certload-tx)"
            )
        if kind == "fail" and rate is not None:
            return f"{head} (first fail {format_rate(rate)}/s: {reason})"
        return f"{head} (no failure up to the ceiling {format_rate(self.max_rate)}/s{self._why()})"

    def _why(self) -> str:
        return f"; {self.stopped}" if self.stopped else ""

    def to_dict(self) -> dict[str, Any]:
        fail = self.first_fail
        bound = self.generator_bound
        return {
            "scenario": self.scenario,
            "contract_rate": self.contract_rate,
            "capacity_rps": self.capacity,
            "first_fail_rps": None if fail is None else fail.rate,
            "first_fail_reason": None if fail is None else fail.reason,
            "generator_bound_rps": None if bound is None else bound.rate,
            "precision": self.precision,
            "max_rate": self.max_rate,
            "stopped": self.stopped,
            "line": self.line(),
            "steps": [s.to_dict() for s in self.steps],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CapacityResult:
        return cls(
            scenario=str(data["scenario"]),
            contract_rate=float(data["contract_rate"]),
            precision=float(data["precision"]),
            max_rate=float(data["max_rate"]),
            steps=[CapacityStep.from_dict(s) for s in data["steps"]],
            stopped=str(data.get("stopped", "")),
        )


def format_rate(value: float) -> str:
    """A rate as capacity answers write it: ``1,250`` from 100 up, else 3 digits."""
    return f"{value:,.0f}" if value >= 100 else f"{value:,.3g}"


def contract_rate(sc: Scenario) -> float:
    """The scenario's contract rate in iterations per second (a ramp: its highest
    target); ConfigError for a closed-model scenario, which has no rate to raise."""
    ex = sc.executor
    if isinstance(ex, ConstantArrivalRate):
        return ex.rate * NS_PER_S / ex.time_unit_ns
    if isinstance(ex, RampingArrivalRate):
        peak = max([ex.start_rate, *(float(_target(s)) for s in ex.stages)])
        return peak * NS_PER_S / ex.time_unit_ns
    raise ConfigError(
        f"scenario {sc.name!r} runs the closed model ({ex.kind}): it has no arrival rate "
        "to search; capacity applies to open-model scenarios (constant-arrival-rate, "
        "ramping-arrival-rate)"
    )


def _target(stage: Stage | Mapping[str, Any]) -> float:
    return float(stage.target if isinstance(stage, Stage) else stage["target"])


def step_scenario(
    sc: Scenario, rate: float, previous: float, *, dwell_ns: int, ramp_ns: int
) -> Scenario:
    """``sc`` as one search step: a ramp from ``previous`` to ``rate`` per second over
    ``ramp_ns`` (its warm-up), then ``dwell_ns`` at ``rate``; VUs scaled with the rate."""
    ex = sc.executor
    assert isinstance(ex, ConstantArrivalRate | RampingArrivalRate)
    factor = rate / contract_rate(sc)
    pre = max(1, math.ceil(ex.pre_allocated_vus * factor))
    # room for the server to hold requests: saturation shows as latency, not as a
    # generator that ran out of VUs at once
    most = max(pre, math.ceil(ex.vus_limit * factor * 2), math.ceil(rate * 2))
    ramp, dwell = exact_ns(ramp_ns), exact_ns(dwell_ns)
    stages = [Stage(ramp, rate), Stage(dwell, rate)] if ramp_ns else [Stage(dwell, rate)]
    step = RampingArrivalRate(
        stages, start_rate=previous, time_unit="1s", pre_allocated_vus=pre, max_vus=most
    )
    graceful = exact_ns(min(sc.graceful_stop_ns, STEP_GRACEFUL_STOP_NS))
    return replace(sc, executor=step, start_time=0, warmup=ramp, graceful_stop=graceful)


def thresholds_for(scenario: str, thresholds: Sequence[Threshold]) -> list[Threshold]:
    """The thresholds that judge ``scenario`` when it runs alone: every one but those
    whose selector names another scenario."""
    return [t for t in thresholds if t.tags.get("scenario", scenario) == scenario]


def summarize(
    rate: float, result: RunResult, scenario: str, verdicts: Sequence[ThresholdResult]
) -> CapacityStep:
    """One step's figures and verdict from its run."""
    sc = result.scenarios[scenario]
    health = sc.health
    latency = result.store.select("http_req_duration", {"scenario": scenario})
    failed = result.store.select("http_req_failed", {"scenario": scenario})
    q: dict[float, int] = {}
    requests = 0
    if isinstance(latency, TrendSink) and latency.count:
        q = latency.quantiles((50, 95, 99))
        requests = latency.count
    error_rate = failed.rate() if isinstance(failed, RateSink) and failed.total else None
    verdict, reason = _classify(result, scenario, verdicts)
    return CapacityStep(
        rate=rate,
        achieved=health.achieved_rate,
        verdict=verdict,
        reason=reason,
        requests=requests,
        error_rate=error_rate,
        p50_ms=q[50] / 1e6 if q else None,
        p95_ms=q[95] / 1e6 if q else None,
        p99_ms=q[99] / 1e6 if q else None,
    )


def _classify(
    result: RunResult, scenario: str, verdicts: Sequence[ThresholdResult]
) -> tuple[str, str]:
    sc = result.scenarios[scenario]
    if sc.health.unreachable:
        return "fail", f"unreachable: {sc.health.unreachable}"
    # dropped iterations mean every VU was held by the server: saturation, the server's.
    # Schedule lag is ambiguous: a generator short of CPU starts iterations late, and so
    # does one whose VUs pile up on a saturated server. The service time (from the actual
    # send) tells them apart: if the latency thresholds hold on it, the lag broke them
    lagging = [p for p in sc.health.problems if p.startswith("schedule lag")]
    generator = [
        p
        for p in sc.health.problems
        if "dropped iterations" not in p and not p.startswith("schedule lag")
    ]
    generator += [r.stalled for r in verdicts if r.stalled]
    if generator:
        return "generator", generator[0]
    # iterations the server still held when the step ended left no samples: the
    # thresholds then judge a remainder ("insufficient samples"), saturation is the cause
    health = sc.health
    if health.started and health.interrupted > 0.01 * health.started:
        return "fail", (
            f"saturated: {health.interrupted:,} of {health.started:,} iterations were still "
            f"waiting for the server {STEP_GRACEFUL_STOP_NS // NS_PER_S} s after the step ended"
        )
    broken = [r for r in verdicts if not r.ok]
    if broken and lagging and _lag_explains(result, broken):
        return "generator", (
            f"{lagging[0]}; the service time meets the latency thresholds that the latency "
            "from the intended start breaks"
        )
    if broken:
        r = broken[0]
        return "fail", f"{r.threshold.selector} {r.threshold.describe()}: {r.reason}"
    if lagging:
        return "generator", lagging[0]
    dropped = [p for p in sc.health.problems if "dropped iterations" in p]
    if dropped:
        return "fail", f"saturated: {dropped[0]}"
    if result.aborted:
        return "fail", f"aborted: {result.aborted}"
    return "pass", ""


def _lag_explains(result: RunResult, broken: Sequence[ThresholdResult]) -> bool:
    """True when every broken threshold is on ``http_req_duration`` and holds on
    ``http_req_service_time`` (the same requests, timed from their actual send)."""
    if any(r.threshold.metric != HTTP_REQ_DURATION or r.threshold.windowed for r in broken):
        return False
    again = [
        replace(
            r.threshold,
            metric=HTTP_REQ_SERVICE_TIME,
            selector=r.threshold.selector.replace(HTTP_REQ_DURATION, HTTP_REQ_SERVICE_TIME, 1),
        )
        for r in broken
    ]
    return all(v.ok for v in evaluate(again, result.store, min_tail_samples=1))


def search(
    run_step: Callable[[float, float], CapacityStep],
    *,
    scenario: str,
    contract: float,
    precision: float = 0.10,
    max_rate: float | None = None,
    deadline_s: float | None = None,
    first: CapacityStep | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> CapacityResult:
    """Search the highest passing rate; ``run_step(rate, from_rate)`` runs one step,
    ramping from ``from_rate``: the last rate that passed (never down from a failed one,
    whose backlog would spill into the step).

    ``first`` is the contract rate's step when it was already run (the test's own run).
    Stops at ``max_rate`` (default 20x the contract) and, if given, ``deadline_s`` from
    now (the answer then says so).
    """
    if contract <= 0:
        raise ConfigError(f"contract rate {contract!r} must be positive")
    if not 0 < precision < 1:
        raise ConfigError(
            f"capacity precision {precision!r} must be between 0 and 1 (0.1 means the "
            "bracket is closed when the first failing rate is within 10 % of the last pass)"
        )
    ceiling = max_rate if max_rate is not None else 20 * contract
    out = CapacityResult(scenario, contract, precision, ceiling)
    ends_at = None if deadline_s is None else clock() + deadline_s
    step = first if first is not None else run_step(contract, 0.0)
    out.steps.append(step)
    if not step.passed:
        return out
    low: float = contract
    high: float | None = None

    def out_of_time() -> bool:
        if ends_at is not None and clock() >= ends_at:
            out.stopped = f"the time limit of {deadline_s:g} s was reached"
            return True
        return False

    while True:
        if high is None and low >= ceiling:
            out.stopped = f"the rate ceiling of {format_rate(ceiling)}/s was reached"
            return out
        if high is not None and (high - low) / low <= precision:
            return out  # the bracket is closed
        if out_of_time():
            return out
        # double until a rate fails, then bisect the bracket
        rate = min(low * 2, ceiling) if high is None else (low + high) / 2
        step = run_step(rate, low)
        out.steps.append(step)
        if step.verdict == "generator":
            return out
        if step.passed:
            low = rate
        else:
            high = rate
