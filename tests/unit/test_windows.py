"""Thresholds over time, on known data: windows, the partial last window, the min-sample
rule per window, the worst window, stalls of the generator, warm-up and abortOnFail.

Intervals are built by hand (one store per second) or come from the engine on a virtual
clock, so every figure here is exact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from pytest_certload.engine import (
    VU,
    ConstantArrivalRate,
    RunOptions,
    RunResult,
    Scenario,
    judge_run,
)
from pytest_certload.engine.health import HealthLimits
from pytest_certload.errors import ThresholdSyntaxError
from pytest_certload.intervals import Interval, merge_intervals
from pytest_certload.metrics import (
    GENERATOR_HICCUP,
    MetricStore,
    MetricType,
    TrendSink,
    declare_builtins,
    tagset,
)
from pytest_certload.thresholds import Threshold, parse_thresholds
from pytest_certload.windows import Scope, judge_windowed
from tests.unit.test_engine import _run

S = 1_000_000_000
MS = 1_000_000
TAGS = tagset({"scenario": "s"})


def _intervals(
    per_second: Sequence[Sequence[int]], *, hiccups: dict[int, int] | None = None
) -> list[Interval]:
    """One interval per second; ``per_second[i]`` the latencies (ms) recorded in it."""
    out = []
    for i, values in enumerate(per_second):
        store = MetricStore()
        declare_builtins(store)
        for ms in values:
            store.add_trend("http_req_duration", ms * MS, TAGS)
        if hiccups and i in hiccups:
            store.add_trend(GENERATOR_HICCUP, hiccups[i] * MS)
        out.append(Interval.cut(i, i * S, (i + 1) * S, store))
    return out


def _one(expression: str, **extra: Any) -> Threshold:
    (t,) = parse_thresholds(
        {"http_req_duration": [{"threshold": expression, **extra}]}, source="test_windows"
    )
    return t


def _judge(
    t: Threshold,
    intervals: Sequence[Interval],
    *,
    end_s: float | None = None,
    warmup_s: float = 0,
    min_tail: int = 1,
) -> Any:
    end = int((end_s if end_s is not None else len(intervals)) * S)
    scope = Scope.build(S, {"s": (0, end, int(warmup_s * S))})
    return judge_windowed(
        t,
        intervals,
        scope,
        kind=MetricType.TREND,
        time=True,
        min_tail_samples=min_tail,
        hiccup_limit_ns=50 * MS,
    )


def test_each_window_is_judged_and_the_worst_one_is_named() -> None:
    slow = [10] * 20
    data = [slow] * 10
    data[3] = [900] * 20
    data[6] = [600] * 20
    result = _judge(_one("p(95)<500", window="1s"), _intervals(data))
    assert not result.ok
    assert result.breached
    assert len(result.windows) == 10
    assert [w.start_ns // S for w in result.breached_windows] == [3, 6]
    worst = result.worst_window()
    assert (worst.start_ns, worst.end_ns, worst.count) == (3 * S, 4 * S, 20)
    assert result.observed == pytest.approx(900, rel=1e-3)
    assert result.reason.startswith("breached in 2 of 10 windows of 1s; worst 3s–4s: observed")
    assert "over 20 samples (limit 500 ms)" in result.reason
    assert result.message().startswith("http_req_duration p(95)<500 per 1s window: breached")


def test_windows_group_whole_intervals_and_the_whole_run_can_pass() -> None:
    data = [[10] * 50 for _ in range(10)]
    data[5] = [800] * 20 + [10] * 30  # 4 % of the run, 20 % of its 2 s window
    intervals = _intervals(data)
    result = _judge(_one("p(95)<500", window="2s"), intervals)
    assert [(w.start_ns // S, w.end_ns // S) for w in result.windows] == [
        (0, 2),
        (2, 4),
        (4, 6),
        (6, 8),
        (8, 10),
    ]
    assert [w.ok for w in result.windows] == [True, True, False, True, True]
    assert result.worst_window().span() == "4s–6s"
    whole = judge_run(
        parse_thresholds({"http_req_duration": ["p(95)<500"]}, source="x"),
        _result(intervals),
        min_tail_samples=1,
    )
    assert whole[0].ok, whole[0].reason


def _result(intervals: list[Interval], *, warmup_ns: int = 0) -> RunResult:
    """A RunResult over hand-made intervals (the store merges them all)."""
    from pytest_certload.engine import ScenarioHealth, ScenarioResult

    store = MetricStore()
    declare_builtins(store)
    for iv in intervals:
        for part in iv.parts:
            store.merge(MetricStore.from_dict(part))
    health = ScenarioHealth("s", True, 0, 0, 0, 0, None, 0, None, None)
    sc = ScenarioResult(
        name="s",
        executor={},
        tags={"scenario": "s"},
        start_offset_ns=0,
        elapsed_ns=len(intervals) * S,
        health=health,
        timeline=[],
        error_samples={},
        warmup_ns=warmup_ns,
    )
    return RunResult(
        store=store,
        scenarios={"s": sc},
        thresholds=[],
        started_at="2026-11-30T00:00:00+00:00",
        duration_ns=len(intervals) * S,
        health_limits=HealthLimits(),
        intervals=intervals,
        interval_ns=S,
    )


def test_the_partial_last_window_counts_only_with_enough_samples() -> None:
    # the run ended 0.5 s into its third 2 s window (4.5 s); p(95) needs 20 samples there
    data = [[10] * 40, [10] * 40, [10] * 40, [10] * 40, [900] * 5]
    t = _one("p(95)<500", window="2s")
    few = _judge(t, _intervals(data), end_s=4.5)
    assert few.ok, few.reason
    last = few.windows[-1]
    assert last.partial
    assert last.observed is None
    assert (last.start_ns, last.end_ns) == (4 * S, int(4.5 * S))
    assert last.reason.startswith("not judged: the run ended 500ms into it (insufficient samples")
    assert few.reason.startswith("met in every one of 2 windows of 2s")

    data[4] = [900] * 45  # enough samples now, and slow
    enough = _judge(t, _intervals(data), end_s=4.5)
    assert enough.breached
    assert enough.windows[-1].partial
    assert enough.worst_window().span() == "4s–4.5s"


def test_a_full_window_with_too_few_samples_leaves_the_threshold_unjudged() -> None:
    data = [[10] * 40, [10] * 3, [10] * 40]
    result = _judge(_one("p(90)<500", window="1s"), _intervals(data))
    assert not result.ok
    assert result.observed is None
    assert result.reason.startswith("could not be judged in window 1s–2s of 3 windows of 1s: ")
    assert "insufficient samples: p(90) needs at least 10 samples (got 3)" in result.reason


def test_an_empty_window_in_the_middle_is_not_skipped() -> None:
    data = [[10] * 40, [], [10] * 40]
    result = _judge(_one("p(50)<500", window="1s"), _intervals(data))
    assert not result.ok
    assert not result.judged
    assert "window 1s–2s" in result.reason
    assert "no samples recorded" in result.reason


def test_a_breach_only_where_the_generator_stalled_is_untrustworthy() -> None:
    data = [[10] * 40 for _ in range(5)]
    data[2] = [600] * 40  # 100 ms over the limit, in a window where the loop was 200 ms late
    intervals = _intervals(data, hiccups={2: 200})
    result = _judge(_one("p(95)<500", window="1s"), intervals)
    assert result.breached
    assert result.windows[2].stalled
    assert result.windows[2].hiccup_ns >= 200 * MS
    assert result.stalled.startswith(
        "breached only in windows where the generator stalled beyond 50 ms, by no more than "
        "it stalled: 2s–3s (late by 200"
    )
    # a stall cannot explain more than itself: 900 ms against a 500 ms limit is the server's
    data[2] = [900] * 40
    beyond = _judge(_one("p(95)<500", window="1s"), _intervals(data, hiccups={2: 200}))
    assert beyond.breached
    assert beyond.windows[2].stalled
    assert not beyond.stalled
    # a breach elsewhere too: the server's, whatever the stall
    data[2] = [600] * 40
    data[4] = [700] * 40
    both = _judge(_one("p(95)<500", window="1s"), _intervals(data, hiccups={2: 200}))
    assert both.breached
    assert not both.stalled


def test_a_whole_run_breach_met_without_the_stalled_intervals_is_untrustworthy() -> None:
    data = [[10] * 40 for _ in range(5)]
    data[2] = [700] * 40  # 40 of 200 samples slow: whole-run p(95) breaches
    result = _result(_intervals(data, hiccups={2: 300}))
    (verdict,) = judge_run(
        parse_thresholds({"http_req_duration": ["p(95)<500"]}, source="x"),
        result,
        min_tail_samples=1,
    )
    assert verdict.breached
    assert verdict.stalled.startswith(
        "met once the 1 interval(s) where the generator stalled beyond 50 ms (2s–3s (late by "
        "300 ms)) are credited their stall"
    )
    result.thresholds = [verdict]
    assert result.verdict == "untrustworthy"
    assert any("generator stalled" in line for line in result.untrustworthy)


def test_warm_up_intervals_are_left_out_of_windows() -> None:
    data = [[900] * 40, [900] * 40, [10] * 40, [10] * 40]
    t = _one("p(95)<500", window="1s")
    assert _judge(t, _intervals(data)).breached
    warmed = _judge(t, _intervals(data), warmup_s=2)
    assert warmed.ok
    assert len(warmed.windows) == 2
    # window offsets count from the end of the warm-up
    assert [w.start_ns // S for w in warmed.windows] == [0, 1]


def test_a_window_that_is_not_whole_intervals_is_refused_when_judged() -> None:
    result = _judge(_one("p(95)<500", window="1500ms"), _intervals([[10] * 40] * 3))
    assert not result.judged
    assert result.reason.startswith("the window 1.5s is not a whole number of timeline intervals")


def test_window_syntax_errors_name_the_value() -> None:
    def error(entry: dict[str, Any]) -> str:
        with pytest.raises(ThresholdSyntaxError) as info:
            parse_thresholds({"x": [entry]}, source="here")
        return str(info.value)

    assert "window of x 'p(95)<1'" in error({"threshold": "p(95)<1", "window": "soon"})
    assert "must be longer than zero" in error({"threshold": "p(95)<1", "window": "0s"})
    assert "windowsToAbort of x 'p(95)<1' (declared at here) needs a window" in error(
        {"threshold": "p(95)<1", "windowsToAbort": 2}
    )
    assert "applies only with abortOnFail" in error(
        {"threshold": "p(95)<1", "window": "1s", "windowsToAbort": 2}
    )
    assert "1 or more; got 0" in error(
        {"threshold": "p(95)<1", "window": "1s", "abortOnFail": True, "windowsToAbort": 0}
    )
    (ok,) = parse_thresholds(
        {
            "x": [
                {"threshold": "p(95)<1", "window": "10s", "abortOnFail": True, "windowsToAbort": 3}
            ]
        },
        source="here",
    )
    assert (ok.window_ns, ok.windows_to_abort, ok.describe()) == (
        10 * S,
        3,
        "p(95)<1 per 10s window",
    )
    assert Threshold.from_dict(ok.to_dict()) == ok


def test_merged_intervals_keep_every_part() -> None:
    a = _intervals([[10] * 5, [20] * 5])
    b = _intervals([[30] * 5])
    merged = merge_intervals([a, b])
    assert [len(iv.parts) for iv in merged] == [2, 1]
    sink = merged[0].select("http_req_duration", {"scenario": "s"})
    assert isinstance(sink, TrendSink)
    assert sink.count == 10


# -- through the engine, on a virtual clock ---------------------------------------------


def _work(slow_between: tuple[float, float]) -> Callable[[VU], Any]:
    async def work(vu: VU) -> None:
        now = vu.intended_start_ns or 0
        slow = slow_between[0] * S <= now < slow_between[1] * S
        vu.trend("work", (800 if slow else 10) * MS)

    return work


def test_the_engine_keeps_intervals_and_judges_windows() -> None:
    result = _run(
        # 20 slow samples: 4 % of the run, 40 % of the window 3s–4s
        [Scenario("s", _work((3, 3.4)), ConstantArrivalRate(50, "10s"), metrics={"work": "time"})],
        thresholds={"work": ["p(95)<500", {"threshold": "p(95)<500", "window": "1s"}]},
    )
    whole, windowed = result.thresholds
    assert whole.ok, whole.reason
    assert windowed.breached
    assert [w.start_ns // S for w in windowed.breached_windows] == [3]
    assert len(result.intervals) >= 10
    assert result.verdict == "breached"
    again = RunResult.from_dict(result.to_dict())
    assert again.thresholds[1].windows == windowed.windows
    assert (
        judge_run(
            parse_thresholds({"work": [{"threshold": "p(95)<500", "window": "1s"}]}, source="x"),
            again,
            min_tail_samples=1,
        )[0].windows
        == windowed.windows
    )


def test_warm_up_is_recorded_apart_and_not_judged() -> None:
    def scenario(warmup: str) -> Scenario:
        return Scenario(
            "s",
            _work((0, 2)),
            ConstantArrivalRate(50, "10s"),
            metrics={"work": "time"},
            warmup=warmup,
        )

    cold = _run([scenario("0s")], thresholds={"work": ["p(95)<500"]})
    assert cold.thresholds[0].breached
    assert cold.warmup_store is None
    warm = _run([scenario("2s")], thresholds={"work": ["p(95)<500"]})
    assert warm.thresholds[0].ok, warm.thresholds[0].reason
    assert warm.warmup_store is not None
    excluded = warm.warmup_store.select("work", {"scenario": "s"})
    judged = warm.store.select("work", {"scenario": "s"})
    assert isinstance(excluded, TrendSink)
    assert isinstance(judged, TrendSink)
    assert (excluded.count, judged.count) == (100, 400)
    assert excluded.min() >= 799 * MS
    assert judged.max() < 11 * MS
    assert warm.warmup_excluded_ns("s") == 2 * S


def test_warm_up_must_leave_something_to_judge() -> None:
    from pytest_certload.errors import ConfigError

    with pytest.raises(ConfigError, match="the warmup 10s of scenario 's' is not shorter"):
        Scenario("s", _work((0, 0)), ConstantArrivalRate(50, "10s"), warmup="10s")


def test_windowed_abort_on_fail_waits_for_consecutive_breaches() -> None:
    def thresholds(count: int) -> dict[str, Any]:
        return {
            "work": [
                {
                    "threshold": "p(95)<500",
                    "window": "1s",
                    "abortOnFail": True,
                    "windowsToAbort": count,
                }
            ]
        }

    sc = Scenario("s", _work((3, 5)), ConstantArrivalRate(50, "20s"), metrics={"work": "time"})
    two = _run([sc], thresholds=thresholds(2))
    assert two.aborted.startswith("abortOnFail threshold breached: work p(95)<500 per 1s window")
    assert "breached in 2 consecutive window(s), the last 4s–5s" in two.aborted
    assert two.duration_ns < 7 * S
    three = _run([sc], thresholds=thresholds(3))
    assert not three.aborted  # only two slow windows in a row
    assert three.thresholds[0].breached


def test_options_interval_sets_the_window_grain() -> None:
    result = _run(
        [Scenario("s", _work((1, 1.5)), ConstantArrivalRate(100, "3s"), metrics={"work": "time"})],
        thresholds={"work": [{"threshold": "p(95)<500", "window": "500ms"}]},
        options=RunOptions(interval="500ms"),
    )
    (verdict,) = result.thresholds
    assert [w.start_ns / S for w in verdict.breached_windows] == [1.0]


def test_the_hdr_interval_log_reads_back_with_hdrhistogram(tmp_path: Any) -> None:
    from hdrh.histogram import HdrHistogram
    from hdrh.log import HistogramLogReader

    from pytest_certload.intervals import write_hdr_log
    from pytest_certload.metrics import HDR_HIGHEST, HDR_LOWEST, HDR_SIGNIFICANT_FIGURES

    intervals = _intervals([[10] * 5, [20] * 7, [], [40] * 3], hiccups={1: 3})
    path = tmp_path / "run.hlog"
    write_hdr_log(path, intervals, ["s"], started_at_s=1_764_460_800.0, comment="test")
    reader = HistogramLogReader(
        str(path), HdrHistogram(HDR_LOWEST, HDR_HIGHEST, HDR_SIGNIFICANT_FIGURES)
    )
    seen = []
    try:
        while (hist := reader.get_next_interval_histogram()) is not None:
            seen.append((hist.get_tag(), hist.get_total_count(), hist.get_max_value() // MS))
    finally:
        reader.close()
    assert seen == [
        ("http_req_duration.s", 5, 10),
        ("http_req_duration.s", 7, 20),
        ("generator_hiccup", 1, 3),
        ("http_req_duration.s", 3, 40),
    ]
    assert reader.get_start_time_sec() == 1_764_460_800.0


def test_a_run_stopped_while_an_interval_is_folded_loses_nothing() -> None:
    from pytest_certload.engine.keeper import IntervalKeeper
    from pytest_certload.metrics import CounterSink

    live, store, warm = MetricStore(), MetricStore(), MetricStore()
    declare_builtins(live)
    for i in range(50):
        live.add_trend("http_req_duration", (i + 1) * MS, TAGS)
        live.add_counter("http_reqs", 1, TAGS)
        live.add_rate("http_req_failed", False, TAGS)
    keeper = IntervalKeeper(live, store, warm, {}, spread=True)
    keeper.cut(S)

    async def main() -> bool:
        async with anyio.create_task_group() as tg:
            tg.start_soon(keeper.run)
            for _ in range(3):  # let it fold a metric or two, then stop it mid-interval
                await anyio.lowlevel.checkpoint()
            tg.cancel_scope.cancel()
        return not keeper.intervals

    import anyio.lowlevel

    assert anyio.run(main)  # cancelled before the interval was complete
    keeper.drain()
    assert len(keeper.intervals) == 1
    reqs = store.select("http_reqs", {})
    latency = store.select("http_req_duration", {})
    assert isinstance(reqs, CounterSink)
    assert reqs.count == 50
    assert isinstance(latency, TrendSink)
    assert latency.count == 50
    assert keeper.intervals[0].select("http_req_duration", {}) is not None


def test_intervals_cut_while_one_is_folded_keep_their_own_index() -> None:
    from pytest_certload.engine.keeper import IntervalKeeper

    live, store, warm = MetricStore(), MetricStore(), MetricStore()
    declare_builtins(live)
    keeper = IntervalKeeper(live, store, warm, {}, spread=True)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(keeper.run)
            for i in range(4):
                live.add_trend("http_req_duration", (i + 1) * MS, TAGS)
                live.add_counter("http_reqs", 1, TAGS)
                keeper.cut((i + 1) * S)
                await anyio.lowlevel.checkpoint()  # the keeper is mid-fold when the next cut comes
            for _ in range(50):
                await anyio.lowlevel.checkpoint()
            tg.cancel_scope.cancel()

    import anyio.lowlevel

    anyio.run(main)
    keeper.drain()
    assert [iv.index for iv in keeper.intervals] == [0, 1, 2, 3]
    assert [iv.start_ns // S for iv in keeper.intervals] == [0, 1, 2, 3]
