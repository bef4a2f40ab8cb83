"""The capacity search on model servers: exact, fast, no network.

A model step passes while the offered rate is within the server's capacity, fails above
it, and reports the generator as the limit above what the generator can drive.
"""

from __future__ import annotations

import pytest

from pytest_certload.engine import ConstantArrivalRate, ConstantVUs, RampingArrivalRate, Scenario
from pytest_certload.engine.capacity import (
    CapacityResult,
    CapacityStep,
    contract_rate,
    search,
    step_scenario,
    thresholds_for,
)
from pytest_certload.engine.executors import Stage
from pytest_certload.errors import ConfigError
from pytest_certload.thresholds import parse_thresholds

S = 1_000_000_000


def _step(rate: float, verdict: str, reason: str = "") -> CapacityStep:
    return CapacityStep(rate, rate, verdict, reason, 100, 0.0, 1.0, 2.0, 3.0)


def model(capacity: float, generator: float = float("inf")):
    tried: list[tuple[float, float]] = []

    def run_step(rate: float, from_rate: float) -> CapacityStep:
        tried.append((rate, from_rate))
        if rate > generator:
            return _step(rate, "generator", "schedule lag p99 80 ms")
        if rate > capacity:
            return _step(rate, "fail", "http_req_duration p(95)<500: observed 900 ms")
        return _step(rate, "pass")

    return run_step, tried


@pytest.mark.parametrize("capacity", [200.0, 333.0, 1000.0, 1750.0])
def test_the_search_brackets_the_capacity_within_the_precision(capacity: float) -> None:
    run_step, tried = model(capacity)
    found = search(run_step, scenario="s", contract=100, precision=0.1)
    assert found.capacity is not None
    assert capacity / 1.1 <= found.capacity <= capacity
    fail = found.first_fail
    assert fail is not None
    assert capacity < fail.rate <= found.capacity * 1.1
    # doubling first, then bisection; every step ramps up from the last rate that passed
    rates = [r for r, _ in tried]
    assert rates[:2] == [100, 200]
    for rate, from_rate in tried[1:]:
        assert from_rate < rate
        assert any(s.rate == from_rate and s.passed for s in found.steps)
    assert found.line().startswith(f"capacity s: {found.capacity:,.0f}/s (first fail ")
    assert "http_req_duration p(95)<500" in found.line()


def test_a_failing_contract_rate_ends_the_search_at_once() -> None:
    run_step, _ = model(50)
    found = search(run_step, scenario="s", contract=100)
    assert [s.rate for s in found.steps] == [100]
    assert found.capacity is None
    assert found.line().startswith("capacity s: none (the contract rate fails)")


def test_the_generator_giving_out_first_is_named_not_blamed_on_the_server() -> None:
    run_step, _ = model(capacity=10_000, generator=500)
    found = search(run_step, scenario="s", contract=100)
    assert found.capacity == 400
    assert found.first_fail is None
    bound = found.generator_bound
    assert bound is not None
    assert bound.rate == 800
    assert found.line() == (
        "capacity s: 400/s (generator-bound at 800/s: schedule lag p99 80 ms; the server "
        "may hold more: add generator processes with --certload-tx)"
    )


def test_the_ceiling_and_the_time_limit_stop_the_search() -> None:
    run_step, _ = model(capacity=10_000)
    found = search(run_step, scenario="s", contract=100, max_rate=500)
    assert [s.rate for s in found.steps] == [100, 200, 400, 500]
    assert found.stopped == "the rate ceiling of 500/s was reached"
    assert "no failure up to the ceiling 500/s" in found.line()

    ticks = iter([0.0, 1.0, 50.0, 200.0])
    run_step, _ = model(capacity=10_000)
    timed = search(run_step, scenario="s", contract=100, deadline_s=100, clock=lambda: next(ticks))
    assert [s.rate for s in timed.steps] == [100, 200, 400]
    assert timed.stopped == "the time limit of 100 s was reached"


def test_a_given_first_step_is_not_run_again() -> None:
    run_step, tried = model(capacity=150)
    found = search(run_step, scenario="s", contract=100, first=_step(100, "pass"))
    assert tried[0] == (200, 100)
    assert found.steps[0].rate == 100


def test_bad_precision_is_refused() -> None:
    run_step, _ = model(100)
    with pytest.raises(ConfigError, match=r"capacity precision 1\.5 must be between 0 and 1"):
        search(run_step, scenario="s", contract=100, precision=1.5)


def test_results_round_trip() -> None:
    run_step, _ = model(300)
    found = search(run_step, scenario="s", contract=100)
    again = CapacityResult.from_dict(found.to_dict())
    assert again == found
    assert found.to_dict()["capacity_rps"] == found.capacity


async def _noop(vu: object) -> None:
    return None


def test_contract_rates_and_step_scenarios() -> None:
    per_minute = Scenario("m", _noop, ConstantArrivalRate(600, "10s", time_unit="1m"))
    assert contract_rate(per_minute) == 10
    ramp = Scenario("r", _noop, RampingArrivalRate([Stage("5s", 20), Stage("5s", 50)], max_vus=40))
    assert contract_rate(ramp) == 50
    with pytest.raises(ConfigError, match="runs the closed model"):
        contract_rate(Scenario("c", _noop, ConstantVUs(5, "10s")))
    step = step_scenario(ramp, 100, 50, dwell_ns=8 * S, ramp_ns=2 * S)
    ex = step.executor
    assert isinstance(ex, RampingArrivalRate)
    assert ex.start_rate == 50
    assert [(s.duration_ns, s.target) for s in ex.stages] == [(2 * S, 100), (8 * S, 100)]
    assert ex.vus_limit >= 160  # the contract's VUs, scaled with the rate, with room
    assert step.warmup_ns == 2 * S
    assert step.graceful_stop_ns == 5 * S


def test_thresholds_of_other_scenarios_are_left_out() -> None:
    parsed = parse_thresholds(
        {
            "http_req_duration{scenario:a}": ["p(95)<100"],
            "http_req_duration{scenario:b}": ["p(95)<100"],
            "http_req_failed": ["rate<0.01"],
        },
        source="x",
    )
    assert [t.selector for t in thresholds_for("a", parsed)] == [
        "http_req_duration{scenario:a}",
        "http_req_failed",
    ]
