"""The generator's own delay, from the kernel's receive timestamps, against a real server
with a known service time (``tests/support/latency_server.py``).

The issue: same server, same load, our closed-model p95 was 4x k6's, because one event
loop serving 100 VUs whose iterations start together queues their responses behind each
other. ``http_req_server_time`` must stay at the server's service time while
``http_req_duration`` grows with our own delay, and the generator-delay health limit must
call such a run untrustworthy. Bounds are generous: the machine is shared and noisy.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_certload.engine import (
    VU,
    ConstantVUs,
    HTTPOptions,
    RunOptions,
    RunResult,
    Scenario,
    run_sync,
)
from pytest_certload.http import _rxtime
from pytest_certload.metrics import TrendSink
from tests.support.servers import LatencyServer, generate_tls, latency_server

MS = 1_000_000
DELAY_MS = 20
BURN_NS = 3 * MS  # CPU per iteration, after its request: 100 VUs make ~300 ms per round
FAST = RunOptions(http=HTTPOptions(backend="fast"))

pytestmark = pytest.mark.skipif(
    bool(_rxtime.unavailable_reason()), reason=_rxtime.unavailable_reason() or "n/a"
)


@pytest.fixture(scope="module")
def server() -> Iterator[LatencyServer]:
    with latency_server(delay_ms=DELAY_MS) as srv:
        yield srv


def _trend(result: RunResult, metric: str, scenario: str) -> TrendSink:
    sink = result.store.select(metric, {"scenario": scenario})
    assert isinstance(sink, TrendSink), f"no {metric} samples"
    return sink


def _burn(ns: int) -> None:
    """Keep the event loop busy (the generator's own CPU work, e.g. signing a JWS)."""
    end = time.perf_counter_ns() + ns
    while time.perf_counter_ns() < end:
        pass


def test_a_busy_generator_inflates_duration_not_server_time_and_is_untrustworthy(
    server: LatencyServer,
) -> None:
    async def busy(vu: VU) -> None:
        await vu.http.get(server.url + "/x", name="/x")
        _burn(BURN_NS)

    result = run_sync([Scenario("busy", busy, ConstantVUs(100, "3s"))], options=FAST)
    server_time = _trend(result, "http_req_server_time", "busy")
    duration = _trend(result, "http_req_duration", "busy")
    delay = _trend(result, "http_req_generator_delay", "busy")
    assert server_time.count == duration.count == delay.count > 200
    print(
        f"100 synchronized VUs, {BURN_NS / MS:g} ms CPU each, server {DELAY_MS} ms: "
        f"server time p50 {server_time.quantile(50) / MS:.1f} ms, duration p50 "
        f"{duration.quantile(50) / MS:.1f} ms p95 {duration.quantile(95) / MS:.1f} ms, "
        f"generator delay p99 {delay.quantile(99) / MS:.1f} ms ({duration.count} requests)"
    )
    # the server's part stays at its service time...
    assert DELAY_MS * MS <= server_time.quantile(50) <= (DELAY_MS + 30) * MS
    # ...while what we call latency carries our own queueing
    assert duration.quantile(50) >= server_time.quantile(50) + 50 * MS
    assert duration.quantile(95) >= 4 * DELAY_MS * MS
    assert delay.quantile(99) > 50 * MS
    assert result.verdict == "untrustworthy"
    (problem,) = [p for p in result.untrustworthy if "generator delay" in p]
    assert problem.startswith("busy: generator delay p99 ")
    assert "(at most 50 ms allowed): responses waited in the kernel for the event loop" in problem
    assert result.notes == []


def test_an_idle_generator_sees_the_server_time_as_the_duration(server: LatencyServer) -> None:
    async def hit(vu: VU) -> None:
        await vu.http.get(server.url + "/x", name="/x")

    result = run_sync([Scenario("calm", hit, ConstantVUs(5, "2s"))], options=FAST)
    server_time = _trend(result, "http_req_server_time", "calm")
    duration = _trend(result, "http_req_duration", "calm")
    assert DELAY_MS * MS <= server_time.quantile(50) <= (DELAY_MS + 30) * MS
    assert duration.quantile(50) <= server_time.quantile(50) + 20 * MS


def test_the_httpx_backend_records_no_delay_and_says_why(server: LatencyServer) -> None:
    async def hit(vu: VU) -> None:
        await vu.http.get(server.url + "/x", name="/x")

    result = run_sync(
        [Scenario("h", hit, ConstantVUs(2, "1s"))],
        options=RunOptions(http=HTTPOptions(backend="httpx")),
    )
    for metric in ("http_req_server_time", "http_req_generator_delay"):
        sink = result.store.select(metric, {"scenario": "h"})
        assert sink is None or (isinstance(sink, TrendSink) and sink.count == 0)
    assert result.scenarios["h"].health.delay_p99_ns is None
    assert result.notes == [
        "h: generator delay not measured: the httpx backend reads its sockets through "
        "httpcore, which keeps the kernel's receive timestamps from us; the fast backend "
        "measures it"
    ]
    assert result.trustworthy, result.untrustworthy


def test_server_time_over_tls_is_the_service_time(tmp_path: Path) -> None:
    tls = generate_tls(tmp_path)
    with latency_server(delay_ms=DELAY_MS, tls=tls) as srv:

        async def hit(vu: VU) -> None:
            await vu.http.get(srv.url + "/x", name="/x")

        result = run_sync(
            [Scenario("tls", hit, ConstantVUs(2, "1s"))],
            options=RunOptions(http=HTTPOptions(backend="fast", verify=tls.ca)),
        )
    server_time = _trend(result, "http_req_server_time", "tls")
    assert server_time.count >= 20
    assert DELAY_MS * MS <= server_time.quantile(50) <= (DELAY_MS + 30) * MS
    assert result.notes == []
