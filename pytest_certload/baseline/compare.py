"""Comparing a run with a baseline: per scenario, gated metric and quantile.

A regression needs **both** a practical effect (``current - baseline > max(10 % of
baseline, 1 ms)``) and statistical evidence (the current quantile's confidence interval
lies entirely above the baseline's; see :mod:`.intervals`). A quantile is *not judged*
when either run has too few samples for its interval (at 95 %: a p99 needs 368, a p95
72); that is reported, never silently passed as a verdict.

A capacity search (``--certload-capacity``) is judged per test and scenario by its
bracket: the true capacity lies between the highest passing rate ``C`` and the lowest
failing one ``F``; the bracket's width ``w`` is ``max(F - C, precision x C)`` (the
precision alone when no rate failed). It is a **regression** when
``C_now + w_now + w_base < C_base``: this run's whole bracket, widened by the baseline's,
lies below the baseline's capacity, so it failed at a rate well below one the baseline
passed. Two searches of one server never are one: each bracket holds the knee, so they
overlap; and a step whose verdict flips anywhere within a band of ``precision x knee``
around it cannot make one either (``C_base - w_base`` lies below that band, and this run
passes every rate below it). An **improvement** is the mirror image. A generator-bound
answer on either side is **not comparable** (the generator's limit, not the server's);
a lower answer from a search that found no failing rate (the ceiling or the time limit
ended it) is **not judged**: it is only a lower bound.

What was measured must match before the figures are judged. Runs of **another profile**
(smoke against canonical) are refused: :func:`compare` raises
:class:`~pytest_certload.errors.BaselineError` saying so (:func:`profile_mismatch`).
Other differences are **flagged** and judged anyway (:attr:`Comparison.flags`): a table a
scenario declared with a row count that differs by more than :data:`ROWS_TOLERANCE`
(and more than :data:`ROWS_SLACK` rows) from the baseline's, and database settings that
differ (``fsync off -> on``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..engine.capacity import format_rate
from ..errors import BaselineError
from ..metrics import TrendSink
from ..report.meta import profile_text
from ..units import format_ms
from .intervals import min_samples, quantile_interval
from .model import Baseline, CapacityBaseline, ScenarioBaseline

__all__ = [
    "ROWS_SLACK",
    "ROWS_TOLERANCE",
    "CapacityFinding",
    "Comparison",
    "Finding",
    "Rule",
    "compare",
    "compare_capacity",
    "database_flags",
    "profile_mismatch",
]

#: a table's row count differs from the baseline's when it differs by more than this
#: fraction of the larger count ...
ROWS_TOLERANCE = 0.01
#: ... and by more than this many rows
ROWS_SLACK = 10


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


@dataclass(frozen=True)
class CapacityFinding:
    """One test's capacity search of one scenario, compared (see the module docstring)."""

    test: str
    scenario: str
    verdict: str  # "regression", "improvement", "same", "not comparable", "not judged"
    baseline: CapacityBaseline
    current: CapacityBaseline
    reason: str = ""


@dataclass
class Comparison:
    """Every finding of one comparison, and what could not be compared."""

    baseline: Baseline
    current: Baseline
    rule: Rule
    findings: list[Finding]
    missing: list[str]
    capacity: list[CapacityFinding] = field(default_factory=list)
    #: what makes the two runs measure different things besides the code (database size
    #: and settings): reported, never a regression
    flags: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == "regression"]

    @property
    def capacity_regressions(self) -> list[CapacityFinding]:
        return [f for f in self.capacity if f.verdict == "regression"]

    @property
    def ok(self) -> bool:
        return not self.regressions and not self.capacity_regressions


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


def _r(value: float | None) -> str:
    return "none" if value is None else f"{format_rate(value)}/s"


def compare_capacity(base: CapacityBaseline, cur: CapacityBaseline) -> CapacityFinding:
    """Judge one capacity search against its baseline (see the module docstring)."""

    def found(verdict: str, reason: str) -> CapacityFinding:
        return CapacityFinding(base.test, base.scenario, verdict, base, cur, reason)

    for side, c in (("the baseline's", base), ("this run's", cur)):
        if c.generator_bound:
            return found(
                "not comparable",
                f"{side} search was generator-bound at {_r(c.generator_bound_rps)} "
                f"({c.generator_bound_reason or 'the generator gave out'}): its capacity is a "
                "lower bound of the server's; search again with more generator processes "
                "(--certload-tx)",
            )
    c_base, c_now = base.capacity_rps or 0.0, cur.capacity_rps or 0.0
    w_base, w_now = base.width_rps, cur.width_rps
    if c_now + w_now + w_base < c_base:
        if cur.first_fail_rps is None:
            return found(
                "not judged",
                f"this run's search found no failing rate ({cur.stopped or 'it ended'}): "
                f"its {_r(cur.capacity_rps)} is only a lower bound, below the baseline's "
                f"{_r(base.capacity_rps)}",
            )
        return found(
            "regression",
            f"{_r(cur.capacity_rps)} is more than both brackets ({_r(w_now)} + {_r(w_base)}) "
            f"below the baseline's {_r(base.capacity_rps)}; this run failed at "
            f"{_r(cur.first_fail_rps)}",
        )
    if c_base + w_base + w_now < c_now:
        if base.first_fail_rps is None:
            return found(
                "same",
                f"the baseline's search found no failing rate ({base.stopped or 'it ended'}): "
                f"its {_r(base.capacity_rps)} is only a lower bound",
            )
        return found(
            "improvement",
            f"{_r(cur.capacity_rps)} is more than both brackets ({_r(w_base)} + {_r(w_now)}) "
            f"above the baseline's {_r(base.capacity_rps)}, which failed at "
            f"{_r(base.first_fail_rps)}",
        )
    return found("same", "the two brackets are within the searches' precision of each other")


def _capacity_findings(
    baseline: Baseline, current: Baseline, missing: list[str]
) -> list[CapacityFinding]:
    now = {(c.test, c.scenario): c for c in current.capacity}
    before = {(c.test, c.scenario): c for c in baseline.capacity}
    out = []
    for key, base in before.items():
        cur = now.get(key)
        if cur is None:
            missing.append(
                f"the capacity of {key[1]!r} in {key[0]} was not searched this time "
                "(run with --certload-capacity)"
            )
            continue
        out.append(compare_capacity(base, cur))
    for test, scenario in now:
        if (test, scenario) not in before:
            missing.append(
                f"the capacity of {scenario!r} in {test} has no baseline in {baseline.name!r}"
            )
    return out


def profile_mismatch(baseline: Baseline, profile: str | None) -> str:
    """Why a run of ``profile`` is not compared with ``baseline``; ``""`` when it is (the
    same profile, or either unknown)."""
    if not baseline.profile or not profile or baseline.profile == profile:
        return ""
    return (
        f"baseline {baseline.name!r} was captured with the {profile_text(baseline.profile)} "
        f"profile and this run used {profile_text(profile)}: their scenarios ran for "
        "different durations, so the figures are not compared. Compare with a baseline "
        f"captured with --certload-profile {profile} (save one with 'python -m "
        "pytest_certload.baseline save NAME' after such a session), or run with "
        f"--certload-profile {baseline.profile}."
    )


def _row_flags(name: str, base: ScenarioBaseline, cur: ScenarioBaseline) -> list[str]:
    if base.rows is None or cur.rows is None:
        return []
    changed = []
    unread = []
    for table in base.rows.tables:
        if table not in cur.rows.tables:
            continue
        before, now = base.rows.rows.get(table), cur.rows.rows.get(table)
        if before is None or now is None:
            unread.append(table)
            continue
        if abs(now - before) > max(ROWS_TOLERANCE * max(before, now), ROWS_SLACK):
            rel = f"{(now - before) / before:+.0%}" if before else "new rows"
            changed.append(f"{table} {before:,} -> {now:,} rows ({rel})")
    out = []
    if changed:
        out.append(
            f"{name} ran on a database of another size than the baseline's: "
            f"{'; '.join(changed)}; a latency that grows with a table's size is not comparable"
        )
    if unread:
        note = cur.rows.note or base.rows.note
        out.append(
            f"{name}: the size of {', '.join(unread)} was not compared (not counted on one "
            f"side{': ' + note if note else ''})"
        )
    return out


def database_flags(baseline: Baseline, current: Baseline) -> list[str]:
    """Every way the two runs' databases differ (size per scenario, settings)."""
    flags = []
    if baseline.database is not None and current.database is not None:
        settings = baseline.database.differences(current.database)
        if settings:
            flags.append(
                f"the database's settings differ from the baseline's: {', '.join(settings)}; "
                "what a write costs differs with them"
            )
    for name, base_sc in baseline.scenarios.items():
        cur_sc = current.scenarios.get(name)
        if cur_sc is not None:
            flags += _row_flags(name, base_sc, cur_sc)
    return flags


def compare(baseline: Baseline, current: Baseline, rule: Rule | None = None) -> Comparison:
    """Judge every gated metric of every scenario the two runs share.

    Raises :class:`~pytest_certload.errors.BaselineError` when the two ran with different
    profiles; flags differences of the database (:func:`database_flags`).
    """
    refused = profile_mismatch(baseline, current.profile)
    if refused:
        raise BaselineError(refused)
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
    capacity = _capacity_findings(baseline, current, missing)
    flags = database_flags(baseline, current)
    return Comparison(baseline, current, rule, findings, missing, capacity, flags)
