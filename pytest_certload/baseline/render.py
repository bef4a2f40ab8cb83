"""Baselines and comparisons in words: report lines and the measured-baseline table."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ..engine.capacity import format_rate
from ..report.meta import indicative, profile_text, target_text
from ..units import format_ms
from .compare import CapacityFinding, Comparison, Finding, Rule
from .model import Baseline, CapacityBaseline

__all__ = [
    "CAPACITY_RULE",
    "ReportLine",
    "capacity_finding_text",
    "comparison_lines",
    "finding_text",
    "markdown_table",
    "rule_text",
]

#: the capacity rule in one line (:mod:`.compare` has it in full)
CAPACITY_RULE = (
    "capacity regression = capacity down by more than both brackets (C_now + w_now + w_base "
    "< C_base, w = max(first fail - capacity, precision x capacity)); generator-bound "
    "answers are not compared"
)


class ReportLine(NamedTuple):
    """One line of a comparison; ``bad`` marks a regression or a failed comparison."""

    text: str
    bad: bool = False


def rule_text(rule: Rule) -> str:
    return (
        f"regression = increase > {rule.min_relative:.0%} and > "
        f"{format_ms(rule.min_absolute_ns)}, with the {rule.confidence:.0%} intervals "
        "of the two quantiles apart"
    )


def finding_text(f: Finding) -> str:
    """``http_req_duration{scenario:x} p(95): regression: 20.1 ms -> 30.2 ms (+50.2 %, ...)``."""
    head = f"{f.selector} p({f.quantile:g})"
    if f.baseline_ns is None or f.current_ns is None:
        return f"{head}: {f.verdict}: {f.reason}"
    delta = f.current_ns - f.baseline_ns
    rel = delta / f.baseline_ns if f.baseline_ns else math.inf
    sign = "+" if delta >= 0 else "-"
    text = (
        f"{head}: {f.verdict}: {format_ms(f.baseline_ns)} -> "
        f"{format_ms(f.current_ns)} ({sign}{abs(rel):.1%}, {sign}{format_ms(abs(delta))})"
    )
    if f.baseline_ci and f.current_ci:
        text += (
            f"; intervals [{format_ms(f.baseline_ci[0])}, {format_ms(f.baseline_ci[1])}]"
            f" vs [{format_ms(f.current_ci[0])}, {format_ms(f.current_ci[1])}]"
        )
    return text + (f"; {f.reason}" if f.reason else "")


def _answer(c: CapacityBaseline) -> str:
    """``700/s (first fail 750/s)``, ``400/s (generator-bound at 800/s)`` or
    ``2,000/s (no failing rate)``."""
    head = f"{format_rate(c.capacity_rps)}/s" if c.capacity_rps is not None else "none"
    if c.generator_bound and c.generator_bound_rps is not None:
        return f"{head} (generator-bound at {format_rate(c.generator_bound_rps)}/s)"
    if c.first_fail_rps is not None:
        return f"{head} (first fail {format_rate(c.first_fail_rps)}/s)"
    return f"{head} (no failing rate)"


def capacity_finding_text(f: CapacityFinding) -> str:
    """``capacity agent_storm (tests/...::test_agent_storm): regression: 700/s (first fail
    750/s) -> 400/s (first fail 440/s); 400/s is more than both brackets ...``."""
    return (
        f"capacity {f.scenario} ({f.test}): {f.verdict}: {_answer(f.baseline)} -> "
        f"{_answer(f.current)}" + (f"; {f.reason}" if f.reason else "")
    )


def comparison_lines(c: Comparison, *, verbose: bool = True) -> list[ReportLine]:
    """The comparison as lines; ``verbose=False`` leaves out the unchanged quantiles."""
    base = c.baseline
    out = [
        ReportLine(
            f"baseline {base.name!r}: captured {base.captured_at} at {_short(base.commit)} "
            f"on {_machine_text(base.machine)}, target {_target_text(base.target)}, "
            f"profile {profile_text(base.profile)}"
        ),
        ReportLine(
            f"this run: target {_target_text(c.current.target)}, "
            f"profile {profile_text(c.current.profile)}"
        ),
        ReportLine(f"rule: {rule_text(c.rule)}"),
    ]
    kinds = {base.target_kind, c.current.target_kind}
    if len(kinds) > 1 and "unknown" not in kinds:
        out.append(
            ReportLine(
                f"! the baseline measured {_target_text(base.target)} but this run measured "
                f"{_target_text(c.current.target)}: the comparison mixes targets"
            )
        )
    out += [ReportLine(f"! {flag}") for flag in c.flags]
    shown = [f for f in c.findings if verbose or f.verdict != "same"]
    for f in shown:
        bad = f.verdict == "regression"
        out.append(ReportLine(f"  {'✗' if bad else '·'} {finding_text(f)}", bad))
    if len(shown) < len(c.findings):
        out.append(
            ReportLine(
                f"  · {len(c.findings) - len(shown)} more quantile(s) unchanged "
                "(within the noise or below the minimum effect; -v lists them)"
            )
        )
    if c.capacity:
        out.append(ReportLine(CAPACITY_RULE))
    for cf in c.capacity:
        bad = cf.verdict == "regression"
        out.append(ReportLine(f"  {'✗' if bad else '·'} {capacity_finding_text(cf)}", bad))
    out += [ReportLine(f"  ! {m}") for m in c.missing]
    regressions = len(c.regressions) + len(c.capacity_regressions)
    if regressions:
        out.append(ReportLine(f"{regressions} regression(s) against baseline {base.name!r}", True))
    else:
        out.append(ReportLine(f"no regression against baseline {base.name!r}"))
    return out


def _short(commit: str) -> str:
    return commit[:10] if commit else "unknown commit"


def _machine_text(machine: Mapping[str, Any]) -> str:
    parts = [str(machine.get("runner") or machine.get("hostname") or "unknown host")]
    if machine.get("cpus"):
        parts.append(f"{machine['cpus']} CPUs")
    platform = str(machine.get("platform") or "")
    if platform:
        parts.append("-".join(platform.split("-")[:2]))  # e.g. Linux-6.8.0
    return ", ".join(parts)


def _target_text(target: Mapping[str, Any]) -> str:
    return target_text(target, unrecorded="an unrecorded target")


def _captured(b: Baseline) -> str:
    """Date, pytest-certload's commit, machine; the target (certctl's version and commit,
    or the reference double), ``smoke profile (indicative)`` and ``fsync off`` when so."""
    date = b.captured_at[:10] or "unknown date"
    text = f"{date}, `{_short(b.commit)}`, {_machine_text(b.machine)}"
    text += f"; against {_target_text(b.target)}"
    if indicative(b.profile):
        text += f"; {b.profile} profile (indicative)"
    if b.database is not None and b.database.not_durable:
        text += f"; {', '.join(b.database.not_durable)} off"
    return text


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.2%}"


def markdown_table(baselines: Iterable[Baseline], *, markdown: bool = True) -> str:
    """The operator page's "measured baseline" table: one row per scenario and metric."""
    header = ["Scenario", "Metric", "p50", "p95", "p99", "Error rate", "Iterations", "Captured"]
    rows: list[list[str]] = []
    for b in baselines:
        for name, sc in b.scenarios.items():
            for metric in sc.gated:
                sink = sc.trends[metric]
                q = sink.quantiles((50, 95, 99))
                is_latency = metric == sc.latency_metric
                rows.append(
                    [
                        f"`{name}`",
                        f"`{metric}`",
                        format_ms(q[50]),
                        format_ms(q[95]),
                        format_ms(q[99]),
                        _pct(sc.error_rate) if is_latency else "—",
                        f"{sc.iterations:,}" if is_latency else "—",
                        _captured(b),
                    ]
                )
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    plain = [[c.replace("`", "") for c in r] for r in [header, *rows]]
    widths = [max(len(r[i]) for r in plain) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in plain
    )
