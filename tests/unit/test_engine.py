"""Executors' schedules (pure) and the runner on a virtual clock (exact, no real time)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from pytest_certload.engine import (
    VU,
    ConstantArrivalRate,
    ConstantVUs,
    RampingArrivalRate,
    RampingVUs,
    RunOptions,
    RunResult,
    Scenario,
    Stage,
    StopRequest,
    VirtualClock,
    arrival_offsets_ns,
    executor_from_dict,
    merge_results,
    run,
    vu_steps,
)
from pytest_certload.engine.executors import VUStep
from pytest_certload.engine.health import HealthLimits
from pytest_certload.engine.vu import ScenarioContext
from pytest_certload.errors import ConfigError
from pytest_certload.metrics import CounterSink, MetricStore, TrendSink, declare_builtins
from pytest_certload.thresholds import parse_thresholds

S = 1_000_000_000
MS = 1_000_000


# -- schedules -------------------------------------------------------------------------


def test_constant_arrival_rate_offsets_are_exact() -> None:
    offsets = list(arrival_offsets_ns(ConstantArrivalRate(50, "2s")))
    assert len(offsets) == 100
    assert offsets[:3] == [0, 20 * MS, 40 * MS]
    assert offsets[-1] == 1980 * MS


def test_constant_arrival_rate_time_unit_minute() -> None:
    offsets = list(arrival_offsets_ns(ConstantArrivalRate(100, "1m", time_unit="1m")))
    assert len(offsets) == 100
    assert offsets[1] == 600 * MS


def test_ramping_arrival_rate_linear_ramp_solves_the_integral() -> None:
    # rate 0 -> 10/s over 10 s: N(t) = t**2 / 2, so iteration k is due at sqrt(2k) s
    offsets = list(arrival_offsets_ns(RampingArrivalRate([Stage("10s", 10)], start_rate=0)))
    assert len(offsets) == 50
    for k in (0, 1, 2, 8, 49):
        assert offsets[k] == pytest.approx((2 * k) ** 0.5 * S, abs=2)


def test_ramping_arrival_rate_flat_stage_equals_constant() -> None:
    ramp = RampingArrivalRate([{"duration": "2s", "target": 25}], start_rate=25)
    assert list(arrival_offsets_ns(ramp)) == list(arrival_offsets_ns(ConstantArrivalRate(25, "2s")))


def test_ramping_arrival_rate_multi_stage_counts() -> None:
    ramp = RampingArrivalRate(
        [Stage("2s", 10), Stage("2s", 10), Stage("2s", 0)], start_rate=0
    )  # 10 + 20 + 10 arrivals
    offsets = list(arrival_offsets_ns(ramp))
    assert len(offsets) == 40
    assert offsets == sorted(offsets)
    assert offsets[-1] < 6 * S


def test_vu_steps_constant_and_ramping() -> None:
    assert vu_steps(ConstantVUs(5, "10s")) == [VUStep(0, 5), VUStep(10 * S, 0)]
    steps = vu_steps(RampingVUs([Stage("4s", 4), Stage("2s", 0)], start_vus=0))
    assert steps == [
        VUStep(0, 0),
        VUStep(1 * S, 1),
        VUStep(2 * S, 2),
        VUStep(3 * S, 3),
        VUStep(4 * S, 4),
        VUStep(4 * S + S // 2, 3),
        VUStep(5 * S, 2),
        VUStep(5 * S + S // 2, 1),
        VUStep(6 * S, 0),
    ]


def test_executor_from_k6_options() -> None:
    ex = executor_from_dict(
        {
            "executor": "constant-arrival-rate",
            "rate": 50,
            "timeUnit": "1s",
            "duration": "5m",
            "preAllocatedVUs": 50,
            "maxVUs": 200,
        }
    )
    assert ex == ConstantArrivalRate(50, "5m", "1s", 50, 200)
    assert ex.target_rate_per_s == 50


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ConstantArrivalRate(50, "5x"), "'5x' is not a valid duration of constant-arrival"),
        (lambda: ConstantArrivalRate(-1, "5s"), "-1 is not a valid rate of constant-arrival-rate"),
        (
            lambda: ConstantArrivalRate(5, "5s", pre_allocated_vus=10, max_vus=2),
            "max_vus (2) is below pre_allocated_vus (10)",
        ),
        (lambda: ConstantVUs(0, "5s"), "0 is not a valid vus of constant-vus"),
        (lambda: RampingVUs([]), "ramping-vus needs at least one stage"),
        (lambda: RampingVUs([{"duration": "1s"}]), "a stage needs exactly 'duration' and 'target'"),
        (
            lambda: executor_from_dict({"executor": "shared-iterations"}),
            "'shared-iterations' is not",
        ),
        (
            lambda: Scenario("bad name", _noop, ConstantVUs(1, "1s")),
            "'bad name' is not a valid scenario",
        ),
    ],
)
def test_bad_executor_options_name_the_value(build: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build()
    assert message in str(info.value)


def test_with_duration_scales_ramps() -> None:
    ramp = RampingArrivalRate([Stage("60s", 10), Stage("240s", 10)])
    short = ramp.with_duration(30 * S)
    assert short.duration_ns == 30 * S
    assert [s.duration_ns for s in short.stages] == [6 * S, 24 * S]  # type: ignore[union-attr]


# -- runner on a virtual clock -----------------------------------------------------------


async def _noop(vu: VU) -> None:
    return None


def _run(scenarios: Sequence[Scenario], **kwargs: Any) -> RunResult:
    async def main() -> RunResult:
        clock = VirtualClock()
        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.run)
            try:
                return await run(scenarios, clock=clock, **kwargs)
            finally:
                clock.stop()

    return anyio.run(main)


def _trend(result: RunResult, name: str, **tags: str) -> TrendSink:
    sink = result.store.select(name, tags)
    assert isinstance(sink, TrendSink)
    return sink


def _count(result: RunResult, name: str, **tags: str) -> float:
    sink = result.store.select(name, tags)
    return sink.count if isinstance(sink, CounterSink) else 0


def test_open_model_runs_on_schedule_with_exact_timing() -> None:
    async def work(vu: VU) -> None:
        await vu.sleep(0.05)

    result = _run([Scenario("s", work, ConstantArrivalRate(10, "2s", pre_allocated_vus=2))])
    health = result.scenarios["s"].health
    assert (health.scheduled, health.started, health.dropped) == (20, 20, 0)
    assert health.trustworthy
    assert _trend(result, "iteration_duration", scenario="s").max() == pytest.approx(
        50 * MS, rel=1e-3
    )
    assert _trend(result, "schedule_lag", scenario="s").max() == 0
    assert result.ok


def test_open_model_keeps_arriving_while_iterations_are_slow() -> None:
    """Iteration k starts at k*100ms even though each takes 1 s: the open model."""
    starts: list[int] = []

    async def slow(vu: VU) -> None:
        starts.append(vu.intended_start_ns or 0)
        await vu.sleep(1)

    result = _run(
        [Scenario("s", slow, ConstantArrivalRate(10, "2s", pre_allocated_vus=1, max_vus=20))]
    )
    assert len(starts) == 20
    assert [b - a for a, b in itertools.pairwise(starts)] == [100 * MS] * 19
    executor = result.scenarios["s"].executor
    assert (executor["executor"], executor["rate"], executor["max_vus"]) == (
        "constant-arrival-rate",
        10,
        20,
    )
    assert result.scenarios["s"].health.dropped == 0


def test_dropped_iterations_make_the_run_untrustworthy() -> None:
    async def slow(vu: VU) -> None:
        await vu.sleep(1)

    result = _run(
        [Scenario("s", slow, ConstantArrivalRate(10, "2s", pre_allocated_vus=2, max_vus=3))]
    )
    health = result.scenarios["s"].health
    assert health.dropped == 20 - health.started
    assert health.dropped > 10
    assert _count(result, "dropped_iterations", scenario="s") == health.dropped
    assert not result.trustworthy
    assert any(
        "dropped iterations" in line and "raise max_vus" in line for line in result.untrustworthy
    )


def test_graceful_stop_interrupts_iterations_and_bounds_the_run() -> None:
    async def hang(vu: VU) -> None:
        await vu.sleep(3600)

    result = _run(
        [Scenario("s", hang, ConstantArrivalRate(2, "1s", pre_allocated_vus=2), graceful_stop="2s")]
    )
    assert result.scenarios["s"].health.interrupted == 2
    assert result.duration_ns == 3 * S
    assert _count(result, "iterations", scenario="s") == 0


def test_start_time_offsets_scenarios() -> None:
    seen: dict[str, int] = {}
    clock_box: list[VirtualClock] = []

    async def mark(vu: VU) -> None:
        seen.setdefault(vu.scenario, vu.context.clock.now_ns())

    async def main() -> RunResult:
        clock = VirtualClock()
        clock_box.append(clock)
        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.run)
            try:
                return await run(
                    [
                        Scenario("first", mark, ConstantArrivalRate(1, "2s")),
                        Scenario("second", mark, ConstantArrivalRate(1, "2s"), start_time="5s"),
                    ],
                    clock=clock,
                )
            finally:
                clock.stop()

    result = anyio.run(main)
    assert seen == {"first": 0, "second": 5 * S}
    assert result.scenarios["second"].start_offset_ns == 5 * S


def test_closed_model_ramping_vus_follows_the_steps() -> None:
    per_vu: dict[int, int] = {}

    async def tick(vu: VU) -> None:
        per_vu[vu.id_in_scenario] = per_vu.get(vu.id_in_scenario, 0) + 1
        await vu.sleep(0.1)

    _run(
        [
            Scenario(
                "s",
                tick,
                RampingVUs([Stage("2s", 2), Stage("2s", 2)], start_vus=0, graceful_ramp_down="0s"),
            )
        ]
    )
    # VU 1 joins at 1 s and VU 2 at 2 s; both run until 4 s, 10 iterations per second
    assert per_vu == {1: 30, 2: 20}


def test_constant_vus_loop_back_to_back() -> None:
    result = _run([Scenario("s", _sleepy, ConstantVUs(3, "1s"))])
    assert _count(result, "iterations", scenario="s") == 3 * 4  # 250 ms each, 4 per VU


async def _sleepy(vu: VU) -> None:
    await vu.sleep("250ms")


def test_iteration_errors_are_counted_and_sampled() -> None:
    async def broken(vu: VU) -> None:
        raise KeyError("missing")

    result = _run([Scenario("s", broken, ConstantArrivalRate(10, "1s"))])
    sc = result.scenarios["s"]
    assert sc.health.iteration_errors == 10
    (message,) = sc.error_samples
    assert message.startswith("KeyError: 'missing' at ")
    assert any("10 of 10 iterations raised" in p for p in sc.health.problems)


def test_health_limits_are_configurable() -> None:
    async def slow(vu: VU) -> None:
        await vu.sleep(1)

    options = RunOptions(health=HealthLimits(max_dropped_ratio=1.0, min_rate_ratio=0.0))
    result = _run(
        [Scenario("s", slow, ConstantArrivalRate(10, "2s", pre_allocated_vus=1, max_vus=1))],
        options=options,
    )
    assert result.scenarios["s"].health.dropped > 0
    assert result.trustworthy


def test_thresholds_are_judged_on_custom_metrics() -> None:
    async def record(vu: VU) -> None:
        vu.trend("step", (vu.iteration + 1) * MS)
        vu.counter("shaped_429")

    result = _run(
        [
            Scenario(
                "s",
                record,
                ConstantArrivalRate(100, "1s", pre_allocated_vus=1),
                metrics={"step": "time", "shaped_429": "counter"},
            )
        ],
        thresholds={"step": ["max<1"], "shaped_429": ["count==100"]},
    )
    verdicts = {r.threshold.expression: r.ok for r in result.thresholds}
    assert verdicts == {"max<1": False, "count==100": True}
    assert not result.ok


def test_abort_on_fail_stops_the_run_early() -> None:
    async def record(vu: VU) -> None:
        vu.counter("bad")

    result = _run(
        [Scenario("s", record, ConstantArrivalRate(10, "60s"))],
        thresholds={"bad": [{"threshold": "count<5", "abortOnFail": True, "delayAbortEval": "2s"}]},
    )
    assert result.aborted.startswith("abortOnFail threshold breached: bad count<5")
    assert result.duration_ns < 4 * S


def test_health_limits_parse_and_reject() -> None:
    limits = HealthLimits.parse("rate=0.9,lag_p99=20ms")
    assert (limits.min_rate_ratio, limits.max_lag_p99_ns) == (0.9, 20 * MS)
    with pytest.raises(ConfigError, match=r"'speed=1' is not a valid health limit \(from x\)"):
        HealthLimits.parse("speed=1", source="x")
    with pytest.raises(ConfigError, match="'2' is not a valid value for rate"):
        HealthLimits.parse("rate=2")


def test_shards_split_the_schedule_and_merge_exactly() -> None:
    starts: dict[int, list[int]] = {0: [], 1: [], 2: []}

    def scenario(shard: int) -> Scenario:
        async def work(vu: VU) -> None:
            starts[shard].append(vu.intended_start_ns or 0)
            vu.trend("work", (len(starts[shard]) + shard) * MS)
            await vu.sleep(0.05)

        return Scenario("s", work, ConstantArrivalRate(30, "2s", pre_allocated_vus=6))

    whole = _run([scenario(2)])
    parts = [_run([scenario(i)], options=RunOptions(shard=(i, 2))) for i in (0, 1)]
    assert sorted(starts[0] + starts[1]) == starts[2]
    assert len(starts[0]) == len(starts[1]) == 30
    # through the wire format and back, then merged
    merged = merge_results(
        [RunResult.from_dict(p.to_dict()) for p in parts],
        thresholds=parse_thresholds({"iteration_duration": ["p(95)<100"]}, source="test"),
        worker_names=["gw0", "gw1"],
    )
    for metric in ("iteration_duration", "schedule_lag"):
        a, b = _trend(merged, metric, scenario="s"), _trend(whole, metric, scenario="s")
        assert a.counts() == b.counts()
    assert _count(merged, "iterations", scenario="s") == 60
    health = merged.scenarios["s"].health
    assert (health.scheduled, health.started, health.target_rate) == (60, 60, 30.0)
    assert [r.ok for r in merged.thresholds] == [True]
    assert merged.trustworthy


def test_a_lagging_worker_makes_the_merged_run_untrustworthy_by_name() -> None:
    async def slow(vu: VU) -> None:
        await vu.sleep(1)

    fine = _run(
        [Scenario("s", slow, ConstantArrivalRate(10, "2s", pre_allocated_vus=20))],
        options=RunOptions(shard=(0, 2)),
    )
    starved = _run(
        [Scenario("s", slow, ConstantArrivalRate(10, "2s", pre_allocated_vus=1, max_vus=1))],
        options=RunOptions(shard=(1, 2)),
    )
    merged = merge_results([fine, starved], worker_names=["gw0", "gw1"])
    assert not merged.trustworthy
    assert any(line.startswith("s: gw1: ") and "dropped" in line for line in merged.untrustworthy)
    assert not any("gw0" in line for line in merged.untrustworthy)


# -- results: one serialised form ---------------------------------------------------------


def test_a_run_result_round_trips_through_json_exactly() -> None:
    async def work(vu: VU) -> None:
        await vu.sleep(0.01 * (1 + vu.iteration % 3))
        vu.counter("done")

    result = _run(
        [
            Scenario("open", work, ConstantArrivalRate(20, "2s", pre_allocated_vus=2)),
            Scenario("closed", work, ConstantVUs(2, "1s"), start_time="500ms"),
        ],
        thresholds={
            "iteration_duration{scenario:open}": ["p(95)<35", "max<1"],
            "done": [{"threshold": "count>1", "abortOnFail": True, "delayAbortEval": "1s"}],
        },
    )
    data = json.loads(json.dumps(result.to_dict()))
    again = RunResult.from_dict(data)
    assert again.to_dict() == data
    assert again.thresholds == result.thresholds
    assert [r.ok for r in again.thresholds] == [True, False, True]
    assert again.thresholds[2].threshold.delay_abort_eval_ns == S
    assert again.scenarios["open"].timeline == result.scenarios["open"].timeline
    assert again.scenarios["closed"].health == result.scenarios["closed"].health
    assert again.verdict == result.verdict == "breached"
    # durations are integer nanoseconds all the way down
    row = data["scenarios"]["open"]["timeline"][0]
    assert isinstance(row["start_ns"], int)
    assert isinstance(row["p99_ns"], int)


def test_the_clock_of_the_run_times_every_request() -> None:
    """Request timing reads the scenario's clock, so a virtual clock makes it exact."""
    clock = VirtualClock()
    store = MetricStore()
    declare_builtins(store)

    class Answer:
        status_code = 200
        content = b"ok"
        timings = None

    class SlowClient:
        async def request(self, method: str, url: str, **kwargs: Any) -> Answer:
            await clock.sleep(7 * MS)
            return Answer()

        async def aclose(self) -> None:
            return None

    ctx = ScenarioContext(
        name="s",
        tags={"scenario": "s"},
        store=store,
        client_factory=SlowClient,  # type: ignore[arg-type]
        open_model=True,
        clock=clock,
    )
    vu = VU(ctx, 1, 1)
    vu.current_lag_ns = 3 * MS  # an open-model iteration that started 3 ms late

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.run)
            try:
                await vu.http.get("http://sut.invalid/x")
            finally:
                clock.stop()

    anyio.run(main)
    service = store.select("http_req_service_time")
    latency = store.select("http_req_duration")
    assert isinstance(service, TrendSink)
    assert isinstance(latency, TrendSink)
    assert (service.sum, latency.sum) == (7 * MS, 10 * MS)  # one sample each, exact


def test_the_unreachable_rule_is_a_health_limit() -> None:
    limits = HealthLimits()
    assert HealthLimits.parse(limits.spec()) == limits
    assert limits.unreachable(answered=0, failures=10, elapsed_ns=2 * S)
    assert not limits.unreachable(answered=0, failures=9, elapsed_ns=60 * S)
    assert not limits.unreachable(answered=0, failures=500, elapsed_ns=S)
    assert not limits.unreachable(answered=1, failures=500, elapsed_ns=60 * S)
    patient = HealthLimits(unreachable_failures=50, unreachable_after_ns=10 * S)
    assert not patient.unreachable(answered=0, failures=10, elapsed_ns=2 * S)
    # run files written before the rename still read
    old = {**limits.to_dict(), "unreachable_connect_errors": 7}
    del old["unreachable_failures"]
    assert HealthLimits.from_dict(old).unreachable_failures == 7


def test_a_stop_request_ends_the_run_within_an_interval_and_keeps_its_data() -> None:
    stop = StopRequest()

    async def work(vu: VU) -> None:
        await vu.sleep(0.01)
        if vu.iteration == 20:
            stop.set("SIGTERM")

    result = _run(
        [Scenario("s", work, ConstantArrivalRate(10, "60s", pre_allocated_vus=2))],
        options=RunOptions(stop=stop),
    )
    assert result.aborted == "stopped: SIGTERM"
    assert result.duration_ns < 10 * S
    assert _count(result, "iterations", scenario="s") >= 20


def test_a_stop_request_tells_its_callbacks_once_with_the_first_reason() -> None:
    stop = StopRequest()
    heard: list[str] = []
    forgotten: list[str] = []
    stop.add_callback(heard.append)
    stop.add_callback(forgotten.append)
    stop.remove_callback(forgotten.append)
    stop.remove_callback(forgotten.append)  # removing twice is harmless
    stop.set("SIGTERM")
    stop.set("a second SIGTERM")
    assert (stop.reason, heard, forgotten) == ("SIGTERM", ["SIGTERM"], [])
    late: list[str] = []
    stop.add_callback(late.append)  # added after the stop: told at once
    assert late == ["SIGTERM"]


# -- closed-model start spread (ours, not k6's) -------------------------------------------


def _first_starts(scenarios: Sequence[Scenario], **kwargs: Any) -> dict[int, int]:
    """Each VU's first iteration start (ns from the earliest one), by VU index from 0."""
    first: dict[int, int] = {}

    async def mark(vu: VU) -> None:
        if vu.iteration == 0:
            first[vu.id_in_scenario - 1] = vu.intended_start_ns or 0
        await vu.sleep("50ms")

    _run([Scenario(sc.name, mark, sc.executor) for sc in scenarios], **kwargs)
    t0 = min(first.values())
    return {index: t - t0 for index, t in sorted(first.items())}


def test_constant_vus_start_together_unless_spread() -> None:
    together = _first_starts([Scenario("s", _noop, ConstantVUs(10, "2s"))])
    assert set(together.values()) == {0}  # k6's behaviour: every VU at once
    spread = _first_starts([Scenario("s", _noop, ConstantVUs(10, "2s", start_spread="1s"))])
    assert list(spread.values()) == [k * 100 * MS for k in range(10)]


def test_ramping_vus_spread_the_vus_that_join_together() -> None:
    ramp = RampingVUs([Stage("2s", 4)], start_vus=4, start_spread="400ms")
    assert list(_first_starts([Scenario("s", _noop, ramp)]).values()) == [
        0,
        100 * MS,
        200 * MS,
        300 * MS,
    ]


def test_start_spread_interleaves_the_shards_of_a_distributed_run() -> None:
    first: dict[tuple[int, int], int] = {}

    def scenario(shard: int) -> Scenario:
        async def mark(vu: VU) -> None:
            if vu.iteration == 0:
                first[(shard, vu.id_in_scenario)] = vu.intended_start_ns or 0
            await vu.sleep("50ms")

        return Scenario("s", mark, ConstantVUs(4, "2s", start_spread="1s"))

    for i in (0, 1):
        _run([scenario(i)], options=RunOptions(shard=(i, 2)))
    # worker 0 has VUs 0 and 2 of the run, worker 1 VUs 1 and 3: 0, 250, 500, 750 ms
    assert sorted(first.values()) == [first[(0, 1)], first[(1, 1)], first[(0, 2)], first[(1, 2)]]
    assert first[(1, 2)] - first[(0, 1)] == 750 * MS
    assert first[(0, 2)] - first[(0, 1)] == 500 * MS


@pytest.mark.parametrize(
    "executor",
    [
        ConstantVUs(5, "10s", start_spread="1s"),
        ConstantVUs(5, "10s"),
        RampingVUs([Stage("0s", 10), Stage("5s", 10)], start_vus=0, start_spread="500ms"),
        ConstantArrivalRate(50, "5m", "1s", 50, 200),
        RampingArrivalRate([Stage("10s", 10)], start_rate=2, time_unit="1m"),
    ],
    ids=lambda ex: ex.kind,
)
def test_an_executor_round_trips_through_its_description(executor: Any) -> None:
    described = executor.describe()
    again = executor_from_dict(json.loads(json.dumps(described)))
    assert again.describe() == described
    assert type(again) is type(executor)


def test_start_spread_options_and_their_errors() -> None:
    ex = executor_from_dict(
        {"executor": "constant-vus", "vus": 100, "duration": "30s", "startSpread": "2s"}
    )
    assert ex == ConstantVUs(100, "30s", start_spread="2s")
    assert ex.describe()["start_spread_ns"] == 2 * S
    assert ex.with_duration(S).describe()["start_spread_ns"] == S  # clipped to the duration
    with pytest.raises(ConfigError, match=r"start_spread \('5s'\) of constant-vus is longer than"):
        ConstantVUs(10, "2s", start_spread="5s")
    with pytest.raises(ConfigError, match=r"'1x' is not a valid start_spread of ramping-vus"):
        RampingVUs([Stage("2s", 4)], start_spread="1x")


# -- generator delay: recorded where measured, judged in both models ------------------------


def test_recording_client_records_the_split_and_counts_what_was_not_measured() -> None:
    from pytest_certload.http import Timings

    clock = VirtualClock()
    store = MetricStore()
    declare_builtins(store)
    answers = iter(
        [
            Timings(server_time=20 * MS, generator_delay=3 * MS),
            Timings(delay_unmeasured="the kernel returned no receive timestamp"),
            Timings(),
        ]
    )

    class Answer:
        status_code = 200
        content = b"ok"

        def __init__(self) -> None:
            self.timings = next(answers)

    class StampingClient:
        async def request(self, method: str, url: str, **kwargs: Any) -> Answer:
            return Answer()

        async def aclose(self) -> None:
            return None

    ctx = ScenarioContext(
        name="s",
        tags={"scenario": "s"},
        store=store,
        client_factory=StampingClient,  # type: ignore[arg-type]
        open_model=False,
        clock=clock,
    )
    vu = VU(ctx, 1, 1)

    async def main() -> None:
        for _ in range(3):
            await vu.http.get("http://sut.invalid/x")

    anyio.run(main)
    server = store.select("http_req_server_time")
    delay = store.select("http_req_generator_delay")
    assert isinstance(server, TrendSink)
    assert isinstance(delay, TrendSink)
    assert (server.count, server.sum, delay.count, delay.sum) == (1, 20 * MS, 1, 3 * MS)
    assert (ctx.delay_unmeasured, ctx.delay_unmeasured_why) == (
        2,
        "the kernel returned no receive timestamp",
    )


async def _delayed(vu: VU) -> None:
    """An iteration whose (simulated) responses waited 10 ms, 1 in 10 of them 80 ms."""
    vu.trend("http_req_generator_delay", (80 if vu.iteration % 10 == 9 else 10) * MS)
    await vu.sleep("10ms")


def test_generator_delay_p99_makes_a_closed_model_run_untrustworthy() -> None:
    result = _run([Scenario("s", _delayed, ConstantVUs(2, "1s"))])
    health = result.scenarios["s"].health
    assert health.delay_p99_ns == pytest.approx(80 * MS, rel=1e-3)
    assert result.verdict == "untrustworthy"
    assert result.untrustworthy == [
        "s: generator delay p99 80 ms (at most 50 ms allowed): responses waited in the "
        "kernel for the event loop; fewer VUs per process, less CPU per iteration, "
        "or --certload-tx"
    ]
    lenient = RunOptions(health=HealthLimits.parse("delay_p99=100ms"))
    assert _run([Scenario("s", _delayed, ConstantVUs(2, "1s"))], options=lenient).trustworthy


def test_generator_delay_p99_is_judged_in_the_open_model_too() -> None:
    result = _run([Scenario("s", _delayed, ConstantArrivalRate(50, "1s", pre_allocated_vus=5))])
    assert result.scenarios["s"].health.lag_p99_ns == 0
    assert any("generator delay p99 80 ms" in line for line in result.untrustworthy)


def test_merged_workers_rejudge_the_generator_delay_by_name() -> None:
    async def calm(vu: VU) -> None:
        vu.trend("http_req_generator_delay", 2 * MS)
        await vu.sleep("10ms")

    fine = _run([Scenario("s", calm, ConstantVUs(2, "1s"))], options=RunOptions(shard=(0, 2)))
    busy = _run([Scenario("s", _delayed, ConstantVUs(2, "1s"))], options=RunOptions(shard=(1, 2)))
    merged = merge_results(
        [RunResult.from_dict(r.to_dict()) for r in (fine, busy)], worker_names=["gw0", "gw1"]
    )
    health = merged.scenarios["s"].health
    assert health.delay_p99_ns == pytest.approx(80 * MS, rel=1e-3)  # from the merged store
    assert any(
        line.startswith("s: gw1: generator delay p99 80 ms") for line in merged.untrustworthy
    )
    assert not any("gw0" in line for line in merged.untrustworthy)


def test_health_says_when_the_generator_delay_was_not_measured() -> None:
    from pytest_certload.engine.health import ScenarioHealth

    health = ScenarioHealth("s", False, 0, 10, 0, 0, None, 0, None, 1.0)
    assert health.delay_note == ""
    health.delay_unmeasured, health.delay_unmeasured_why = 10, "the httpx backend ..."
    assert health.delay_note == "generator delay not measured: the httpx backend ..."
    health.delay_p99_ns = 3 * MS
    assert (
        health.delay_note == "generator delay not measured for 10 responses: the httpx backend ..."
    )
    health.judge(HealthLimits())
    assert health.trustworthy  # not measured is a note, never a problem
    # health written before the generator delay existed still reads
    old = health.to_dict()
    for key in ("delay_p99_ns", "delay_unmeasured", "delay_unmeasured_why"):
        del old[key]
    assert ScenarioHealth.from_dict(old).delay_note == ""


def test_health_limits_parse_the_delay_limit() -> None:
    limits = HealthLimits.parse("delay_p99=20ms")
    assert limits.max_delay_p99_ns == 20 * MS
    assert "delay_p99=20ms" in limits.spec()
    assert HealthLimits().max_delay_p99_ns == 50 * MS
    with pytest.raises(ConfigError, match=r"'fast' is not a valid delay_p99; use a number with"):
        HealthLimits.parse("delay_p99=fast")
