"""Thresholds over time: windowed judging, warm-up scopes and stall attribution.

A windowed threshold (``{"threshold": "p(95)<500", "window": "10s"}``) is judged in every
consecutive window of its length: tumbling windows, aligned to the start of the scenario
it selects (after that scenario's warm-up), made of whole timeline intervals (see
:mod:`.intervals`). It fails when any window breaches; the result names the worst window
and how many breached.

The min-sample rule applies per window: a full window whose samples cannot support the
aggregation leaves the threshold unjudged (a low rate for the window asked for: widen
the window or raise the rate); the last window, cut short by the run's end, is judged
only when it meets the rule and is otherwise reported as not judged.

Each window also carries the generator's longest stall in it (the hiccup meter). A breach
that falls only in windows where the generator stalled beyond the health limit is not
the server's: the result says so in ``stalled``, and the run is untrustworthy rather than
failed. The same holds for a whole-run threshold that is met once the stalled intervals
are left out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from .intervals import Interval, SeriesFilter, select_span
from .metrics import MetricType, Sink, TagSet, TrendSink
from .thresholds import Threshold, ThresholdResult, WindowResult, judge_sink
from .units import format_ms, format_offset

__all__ = ["Scope", "WindowWatch", "judge_windowed", "stall_check"]


@dataclass(frozen=True)
class Scope:
    """Where a run's intervals lie, scenario by scenario.

    ``starts`` is each scenario's start as an interval index (its measured start rounded
    to the interval grid) and ``ends`` its end offset in ns; ``warmups`` the first
    interval after its warm-up (equal to its start without one). ``tag_filter`` narrows
    every selection (one scenario's view of a shared run).
    """

    interval_ns: int
    starts: Mapping[str, int]
    warmups: Mapping[str, int]
    ends: Mapping[str, int]
    tag_filter: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        interval_ns: int,
        spans: Mapping[str, tuple[int, int, int]],
        tag_filter: Mapping[str, str] | None = None,
    ) -> Scope:
        """From each scenario's ``(start_offset_ns, elapsed_ns, warmup_ns)``."""
        starts: dict[str, int] = {}
        warmups: dict[str, int] = {}
        ends: dict[str, int] = {}
        for name, (start, elapsed, warmup) in spans.items():
            first = round(start / interval_ns)
            starts[name] = first
            warmups[name] = math.ceil((first * interval_ns + warmup) / interval_ns)
            ends[name] = start + elapsed
        return cls(interval_ns, starts, warmups, ends, dict(tag_filter or {}))

    def scenarios_of(self, t: Threshold) -> list[str]:
        """The scenarios whose samples ``t``'s selector can match."""
        wanted = t.tags.get("scenario", self.tag_filter.get("scenario"))
        if wanted is not None:
            return [wanted] if wanted in self.starts else []
        return list(self.starts)

    def keep(self, index: int) -> SeriesFilter | None:
        """Series of interval ``index`` that count: none of a scenario in its warm-up."""
        warming = {name for name, first in self.warmups.items() if index < first}
        if not warming:
            return None

        def keep(tags: TagSet) -> bool:
            return dict(tags).get("scenario") not in warming

        return keep

    def tags(self, t: Threshold) -> dict[str, str]:
        return {**self.tag_filter, **t.tags}


def _select(t: Threshold, intervals: Sequence[Interval], scope: Scope) -> tuple[Sink | None, int]:
    """``t``'s selection over ``intervals`` (warm-up left out) and the span they cover."""
    sink = select_span(intervals, t.metric, scope.tags(t), keep=scope.keep)
    span = intervals[-1].end_ns - intervals[0].start_ns if intervals else 0
    return sink, span


def _plan(
    t: Threshold, intervals: Sequence[Interval], scope: Scope
) -> tuple[int, int, list[list[Interval]]] | str:
    """``(origin index, intervals per window, the windows' intervals)``, or why not."""
    if t.window_ns % scope.interval_ns:
        return (
            f"the window {format_offset(t.window_ns)} is not a whole number of timeline "
            f"intervals ({format_offset(scope.interval_ns)}); use a multiple of the interval "
            f"or set a shorter interval"
        )
    names = scope.scenarios_of(t)
    if not names:
        return f"no scenario of this run matches {t.selector}; check the tag filter"
    origin = min(scope.warmups[n] for n in names)
    end_ns = max(scope.ends[n] for n in names)
    per = t.window_ns // scope.interval_ns
    windows: dict[int, list[Interval]] = {}
    for iv in intervals:
        # an interval counts when at least half of it lies inside the scenario: not the
        # few milliseconds a run's end cuts past its last whole interval
        if iv.index < origin or (2 * iv.index + 1) * scope.interval_ns > 2 * end_ns:
            continue
        windows.setdefault((iv.index - origin) // per, []).append(iv)
    if not windows:
        return "the scenario ran no whole interval after its warm-up, so there is no window"
    last = max(windows)
    return origin, per, [windows.get(k, []) for k in range(last + 1)]


def judge_windowed(
    t: Threshold,
    intervals: Sequence[Interval],
    scope: Scope,
    *,
    kind: MetricType,
    time: bool,
    min_tail_samples: int,
    hiccup_limit_ns: int,
) -> ThresholdResult:
    """Judge windowed threshold ``t`` in each of its windows (see the module docstring)."""

    def unjudged(reason: str, windows: tuple[WindowResult, ...] = ()) -> ThresholdResult:
        return ThresholdResult(t, ok=False, observed=None, count=0, reason=reason, windows=windows)

    plan = _plan(t, intervals, scope)
    if isinstance(plan, str):
        return unjudged(plan)
    origin, per, groups = plan
    results: list[WindowResult] = []
    origin_ns = origin * scope.interval_ns
    for k, group in enumerate(groups):
        start = k * t.window_ns
        nominal_end = (origin + (k + 1) * per) * scope.interval_ns
        end_ns = max(scope.ends[n] for n in scope.scenarios_of(t))
        partial = nominal_end > end_ns
        end = (min(nominal_end, end_ns) - origin_ns) if partial else (k + 1) * t.window_ns
        hiccup = max((iv.hiccup_max_ns() for iv in group), default=0)
        if group:
            sink, span = _select(t, group, scope)
        else:
            sink, span = None, 0
        judged = judge_sink(
            t,
            kind,
            time,
            sink,
            min_tail_samples=min_tail_samples,
            duration_ns=span or None,
        )
        reason = judged.reason
        if partial and not judged.judged:
            reason = f"not judged: the run ended {format_offset(end - start)} into it ({reason})"
        results.append(
            WindowResult(
                start_ns=start,
                end_ns=end,
                ok=judged.ok,
                observed=judged.observed,
                count=judged.count,
                reason=reason,
                partial=partial,
                hiccup_ns=hiccup,
                stalled=hiccup > hiccup_limit_ns,
            )
        )
    windows = tuple(results)
    counted = [w for w in windows if w.observed is not None or not w.partial]
    breached = [w for w in counted if w.breached]
    blind = [w for w in counted if w.observed is None]
    size = format_offset(t.window_ns)
    total = sum(w.count for w in counted)
    of = f"{len(counted)} window{'s' if len(counted) != 1 else ''} of {size}"
    result: ThresholdResult
    if breached:
        probe = ThresholdResult(t, False, None, 0, "", windows)
        worst = probe.worst_window()
        assert worst is not None
        extra = f"; {len(blind)} more could not be judged" if blind else ""
        result = ThresholdResult(
            t,
            ok=False,
            observed=worst.observed,
            count=total,
            reason=f"breached in {len(breached)} of {of}{extra}; worst {worst.span()}: "
            f"{worst.reason}",
            windows=windows,
        )
        if all(w.stalled for w in breached) and all(
            _excused(t, kind, time, w, groups[w.start_ns // t.window_ns], scope, min_tail_samples)
            for w in breached
        ):
            stalls = ", ".join(f"{w.span()} (late by {format_ms(w.hiccup_ns)})" for w in breached)
            result = replace(
                result,
                stalled=f"breached only in windows where the generator stalled beyond "
                f"{format_ms(hiccup_limit_ns)}, by no more than it stalled: {stalls}",
            )
        return result
    if blind:
        first = blind[0]
        more = f" (and {len(blind) - 1} more)" if len(blind) > 1 else ""
        return unjudged(
            f"could not be judged in window {first.span()}{more} of {of}: {first.reason}",
            windows,
        )
    judged_windows = [w for w in counted if w.observed is not None]
    if not judged_windows:
        return unjudged(f"no window could be judged: {windows[-1].reason}", windows)
    probe_worst = _closest(t, judged_windows)
    return ThresholdResult(
        t,
        ok=True,
        observed=probe_worst.observed,
        count=total,
        reason=f"met in every one of {of}; closest to the limit {probe_worst.span()}: "
        f"{probe_worst.reason}",
        windows=windows,
    )


def _creditable(t: Threshold, kind: MetricType, time: bool) -> bool:
    """Whether a stall of the generator can explain a breach of ``t``: an upper limit on
    a time trend (a stall delays answers; it cannot make them faster, nor fail them)."""
    return kind is MetricType.TREND and time and t.op in ("<", "<=")


def _credited(
    t: Threshold, intervals: Sequence[Interval], scope: Scope, hiccup_limit_ns: int
) -> Sink | None:
    """``t``'s selection over ``intervals``, every sample of a stalled interval lowered
    by that interval's stall: the most the stall can have added to it."""
    sink: TrendSink | None = None
    tags = scope.tags(t)
    for iv in intervals:
        one = iv.select(t.metric, tags, keep=scope.keep(iv.index))
        if not isinstance(one, TrendSink):
            continue
        stall = iv.hiccup_max_ns()
        if stall > hiccup_limit_ns:
            one = one.shifted(stall)
        if sink is None:
            sink = one
        else:
            sink.merge(one)
    return sink


def _excused(
    t: Threshold,
    kind: MetricType,
    time: bool,
    window: WindowResult,
    group: Sequence[Interval],
    scope: Scope,
    min_tail_samples: int,
) -> bool:
    """A stalled window's breach is the generator's if crediting its stall back meets
    the threshold."""
    if not _creditable(t, kind, time) or not group:
        return False
    again = judge_sink(
        t,
        kind,
        time,
        _credited(t, group, scope, window.hiccup_ns - 1),
        min_tail_samples=min_tail_samples,
        duration_ns=None,
    )
    return again.ok


def _closest(t: Threshold, windows: Sequence[WindowResult]) -> WindowResult:
    """The judged window nearest the limit (highest for < and <=, lowest for > and >=)."""
    if t.op in (">", ">="):
        return min(windows, key=lambda w: (w.observed or 0.0, w.start_ns))
    return max(windows, key=lambda w: (w.observed or 0.0, -w.start_ns))


def stall_check(
    result: ThresholdResult,
    intervals: Sequence[Interval],
    scope: Scope,
    *,
    kind: MetricType,
    time: bool,
    min_tail_samples: int,
    hiccup_limit_ns: int,
) -> ThresholdResult:
    """A breached whole-run threshold, re-judged with every sample of an interval where
    the generator stalled lowered by that stall: met then, the breach is the
    generator's (``stalled`` says so)."""
    t = result.threshold
    if not result.breached or t.windowed:
        return result
    names = scope.scenarios_of(t)
    if not names:
        return result
    first = min(scope.warmups[n] for n in names)
    end_ns = max(scope.ends[n] for n in names)
    mine = [
        iv
        for iv in intervals
        if iv.index >= first and (2 * iv.index + 1) * scope.interval_ns <= 2 * end_ns
    ]
    stalled = [iv for iv in mine if iv.hiccup_max_ns() > hiccup_limit_ns]
    if not stalled or not _creditable(t, kind, time):
        return result
    again = judge_sink(
        t,
        kind,
        time,
        _credited(t, mine, scope, hiccup_limit_ns),
        min_tail_samples=min_tail_samples,
        duration_ns=None,
    )
    if not again.ok:
        return result
    where = ", ".join(
        f"{format_offset(iv.index * scope.interval_ns)}–"
        f"{format_offset((iv.index + 1) * scope.interval_ns)} (late by "
        f"{format_ms(iv.hiccup_max_ns())})"
        for iv in stalled[:3]
    )
    more = f" and {len(stalled) - 3} more" if len(stalled) > 3 else ""
    return replace(
        result,
        stalled=f"met once the {len(stalled)} interval(s) where the generator stalled beyond "
        f"{format_ms(hiccup_limit_ns)} ({where}{more}) are credited their stall: "
        f"{again.reason}",
    )


class WindowWatch:
    """``abortOnFail`` for windowed thresholds while the run goes: fed every closed
    interval, it judges each window as it completes and reports a threshold once
    ``windowsToAbort`` consecutive windows breached (after ``delayAbortEval``)."""

    def __init__(
        self,
        thresholds: Sequence[Threshold],
        *,
        interval_ns: int,
        types: Callable[[str], tuple[MetricType, bool] | None],
        min_tail_samples: int,
    ) -> None:
        self.thresholds = [t for t in thresholds if t.windowed and t.abort_on_fail]
        self.interval_ns = interval_ns
        self._types = types
        self._min_tail = min_tail_samples
        self._pending: dict[int, list[Interval]] = {i: [] for i in range(len(self.thresholds))}
        self._streak: dict[int, int] = dict.fromkeys(self._pending, 0)

    def feed(self, interval: Interval, scope: Scope) -> list[str]:
        """Take one closed interval; the reasons to abort now (empty: go on)."""
        reasons: list[str] = []
        for i, t in enumerate(self.thresholds):
            if t.window_ns % self.interval_ns:
                continue
            names = scope.scenarios_of(t)
            if not names:
                continue
            origin = min(scope.warmups[n] for n in names)
            if interval.index < origin:
                continue
            per = t.window_ns // self.interval_ns
            pending = self._pending[i]
            pending.append(interval)
            if (interval.index - origin + 1) % per:
                continue
            self._pending[i] = []
            window_end_ns = (interval.index + 1) * self.interval_ns
            if window_end_ns - origin * self.interval_ns < t.delay_abort_eval_ns:
                continue
            kinds = self._types(t.metric)
            if kinds is None:
                continue
            sink, span = _select(t, pending, scope)
            verdict = judge_sink(
                t,
                kinds[0],
                kinds[1],
                sink,
                min_tail_samples=self._min_tail,
                duration_ns=span or None,
            )
            if not verdict.breached:
                self._streak[i] = 0
                continue
            self._streak[i] += 1
            if self._streak[i] >= t.windows_to_abort:
                k = (interval.index - origin) // per
                reasons.append(
                    f"{t.selector} {t.describe()} breached in {self._streak[i]} consecutive "
                    f"window(s), the last {format_offset(k * t.window_ns)}–"
                    f"{format_offset((k + 1) * t.window_ns)}: {verdict.reason}"
                    + (f" — declared at {t.source}" if t.source else "")
                )
        return reasons
