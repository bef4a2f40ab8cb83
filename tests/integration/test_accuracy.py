"""Measurement accuracy against a real local server with controlled latency.

The latency server runs in its own process and sleeps a known time per request. Bounds
are generous (this machine is shared and noisy): the point is that the measurement is
right in kind, e.g. that a server stall shows up in the open model's latency from the
intended start and hides in a closed loop's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_certload.engine import (
    VU,
    ConstantArrivalRate,
    ConstantVUs,
    HTTPOptions,
    RunOptions,
    RunResult,
    Scenario,
    run_sync,
)
from pytest_certload.engine.health import HealthLimits
from pytest_certload.metrics import TrendSink
from tests.support.servers import LatencyServer, latency_server

MS = 1_000_000
LENIENT = RunOptions(
    health=HealthLimits(max_lag_p99_ns=500 * MS, max_delay_p99_ns=500 * MS),
    http=HTTPOptions(backend="fast"),
)


@pytest.fixture
def server() -> Iterator[LatencyServer]:
    with latency_server(delay_ms=20) as srv:
        yield srv


def _trend(result: RunResult, metric: str, scenario: str) -> TrendSink:
    sink = result.store.select(metric, {"scenario": scenario})
    assert isinstance(sink, TrendSink)
    return sink


@pytest.mark.parametrize("backend", ["fast", "httpx"])
def test_measured_median_matches_the_injected_delay(server: LatencyServer, backend: str) -> None:
    async def hit(vu: VU) -> None:
        await vu.http.get(server.url + "/x", name="/x")

    options = RunOptions(health=LENIENT.health, http=HTTPOptions(backend=backend))
    result = run_sync(
        [Scenario("steady", hit, ConstantArrivalRate(50, "3s", pre_allocated_vus=10))],
        options=options,
    )
    assert result.trustworthy, result.untrustworthy
    latency = _trend(result, "http_req_duration", "steady")
    service = _trend(result, "http_req_service_time", "steady")
    assert latency.count == 150
    assert 20 * MS <= latency.quantile(50) <= 60 * MS
    assert 20 * MS <= service.quantile(50) <= latency.quantile(50)


def _stall_scenarios(server: LatencyServer, main: Scenario) -> list[Scenario]:
    """``main`` plus a one-shot scenario that stalls the server for 1 s at t = 2 s."""

    async def stall(vu: VU) -> None:
        await vu.http.post(server.url + "/_control/stall?seconds=1", name="stall")

    trigger = Scenario(
        "stall_trigger",
        stall,
        ConstantArrivalRate(1, "1s", pre_allocated_vus=1),
        start_time="2s",
    )
    return [main, trigger]


def test_stall_shows_in_open_model_p99_and_hides_in_closed_loop() -> None:
    with latency_server(delay_ms=5) as srv:

        async def hit(vu: VU) -> None:
            await vu.http.get(srv.url + "/x", name="/x")

        open_run = run_sync(
            _stall_scenarios(
                srv,
                Scenario(
                    "open", hit, ConstantArrivalRate(100, "6s", pre_allocated_vus=50, max_vus=300)
                ),
            ),
            options=LENIENT,
        )
        srv.control("reset")
        closed_run = run_sync(
            _stall_scenarios(srv, Scenario("closed", hit, ConstantVUs(5, "6s"))),
            options=LENIENT,
        )
    open_latency = _trend(open_run, "http_req_duration", "open")
    closed_latency = _trend(closed_run, "http_req_duration", "closed")
    # ~100 of 600 open-model requests were due during the stall: p99 is near the stall
    assert open_latency.quantile(99) >= 500 * MS
    # the closed loop only had its 5 VUs waiting: the stall is < 1 % of its requests
    assert closed_latency.count > 1000
    assert closed_latency.quantile(99) < 100 * MS
    assert closed_latency.max() >= 500 * MS  # the stall did happen to the closed loop too
    print(
        f"stall of 1 s: open-model p99 {open_latency.quantile(99) / MS:.0f} ms over "
        f"{open_latency.count} requests; closed-loop p99 {closed_latency.quantile(99) / MS:.1f} ms"
        f" over {closed_latency.count} requests (max {closed_latency.max() / MS:.0f} ms)"
    )
