"""Comparing a run with a baseline: per scenario, gated metric and quantile.

A regression needs **both** a practical effect (``current - baseline > max(10 % of
baseline, 1 ms)``) and statistical evidence (the current quantile's confidence interval
lies entirely above the baseline's; see :mod:`.intervals`). A quantile is *not judged*
when either run has too few samples for its interval (at 95 %: a p99 needs 368, a p95
72); that is reported, never silently passed as a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import BaselineError
from ..metrics import TrendSink
from ..units import format_ms
from .intervals import min_samples, quantile_interval
from .model import Baseline

__all__ = ["Comparison", "Finding", "Rule", "compare"]


@dataclass(frozen=True)
class Rule:
    """When a difference is a regression (see the module docstring)."""

    min_relative: float = 0.10
    min_absolute_ns: int = 1_000_000
    confidence: float = 0.95
    quantiles: tuple[float, ...] = (50.0, 95.0, 99.0)

    def __post_init__(self) -> None:
        if not 0 < self.confidence < 1:
            raise BaselineError(f"confidence {self.confidence!r} is outside (0, 1); use e.g. 0.95.")
        if self.min_relative < 0 or self.min_absolute_ns < 0:
            raise BaselineError("minimum effects must be >= 0, e.g. 10 % and 1 ms.")


@dataclass(frozen=True)
class Finding:
    """One scenario/metric/quantile compared."""

    scenario: str
    metric: str
    quantile: float
    verdict: str  # "regression", "improvement", "same", "not judged"
    baseline_ns: int | None = None
    current_ns: int | None = None
    baseline_ci: tuple[int, int] | None = None
    current_ci: tuple[int, int] | None = None
    reason: str = ""

    @property
    def selector(self) -> str:
        return f"{self.metric}{{scenario:{self.scenario}}}"


@dataclass
class Comparison:
    """Every finding of one comparison, and what could not be compared."""

    baseline: Baseline
    current: Baseline
    rule: Rule
    findings: list[Finding]
    missing: list[str]

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == "regression"]

    @property
    def ok(self) -> bool:
        return not self.regressions


def _judge(
    scenario: str, metric: str, q: float, base: TrendSink, cur: TrendSink, rule: Rule
) -> Finding:
    b_lo, b_hi = quantile_interval(base.count, q, rule.confidence)
    c_lo, c_hi = quantile_interval(cur.count, q, rule.confidence)
    b_q = base.quantile(q)
    c_q = cur.quantile(q)
    common: dict[str, Any] = {"baseline_ns": b_q, "current_ns": c_q}
    if b_hi > base.count or c_hi > cur.count:
        return Finding(
            scenario,
            metric,
            q,
            "not judged",
            **common,
            reason=f"too few samples for a {rule.confidence:.0%} interval of p({q:g}): it "
            f"needs {min_samples(q, rule.confidence):,} in each run (baseline {base.count:,}, "
            f"current {cur.count:,})",
        )
    b_ci = _interval(base, b_lo, b_hi)
    c_ci = _interval(cur, c_lo, c_hi)
    floor = max(rule.min_relative * b_q, rule.min_absolute_ns)
    delta = c_q - b_q
    kwargs: dict[str, Any] = {**common, "baseline_ci": b_ci, "current_ci": c_ci}
    if delta > floor and c_ci[0] > b_ci[1]:
        return Finding(scenario, metric, q, "regression", **kwargs)
    if -delta > floor and c_ci[1] < b_ci[0]:
        return Finding(scenario, metric, q, "improvement", **kwargs)
    if delta > floor:
        kwargs["reason"] = "larger than the minimum effect but within the noise"
    elif delta > 0 and c_ci[0] > b_ci[1]:
        kwargs["reason"] = f"significant but below the minimum effect ({format_ms(floor)})"
    return Finding(scenario, metric, q, "same", **kwargs)


def _interval(sink: TrendSink, lo: int, hi: int) -> tuple[int, int]:
    """The values at ranks ``lo`` and ``hi`` (0 for rank 0: no lower bound)."""
    values = sink.at_ranks([r for r in (lo, hi) if r])
    return (values[lo] if lo else 0, values[hi])


def compare(baseline: Baseline, current: Baseline, rule: Rule | None = None) -> Comparison:
    """Judge every gated metric of every scenario the two runs share."""
    rule = rule or Rule()
    findings: list[Finding] = []
    missing: list[str] = []
    for name, base_sc in baseline.scenarios.items():
        cur_sc = current.scenarios.get(name)
        if cur_sc is None:
            missing.append(f"scenario {name!r} of the baseline did not run this time")
            continue
        for metric in base_sc.gated:
            cur_sink = cur_sc.trends.get(metric)
            if cur_sink is None:
                missing.append(f"{metric}{{scenario:{name}}} was not recorded this time")
                continue
            for q in rule.quantiles:
                findings.append(_judge(name, metric, q, base_sc.trends[metric], cur_sink, rule))
    for name in current.scenarios:
        if name not in baseline.scenarios:
            missing.append(f"scenario {name!r} has no baseline in {baseline.name!r}")
    return Comparison(baseline, current, rule, findings, missing)
