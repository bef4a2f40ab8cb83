"""The real cause of failed requests, against real servers in their own processes.

A wrong status is named with the start of its body; a target whose every request fails
below HTTP (an untrusted certificate, http:// to a TLS port, https:// to a plain port)
ends the run early as unreachable, naming the kind and the first error.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_certload.engine import (
    VU,
    ConstantArrivalRate,
    HTTPOptions,
    RunOptions,
    RunResult,
    Scenario,
    run_sync,
)
from pytest_certload.engine.health import HealthLimits
from pytest_certload.http import BACKENDS
from pytest_certload.metrics import CounterSink
from tests.support.servers import LatencyServer, TLSFiles, generate_tls, latency_server

#: long enough that a run which is not stopped early could not pass for one that was
PLANNED = "60s"
HEALTH = HealthLimits(
    max_lag_p99_ns=500_000_000, max_delay_p99_ns=500_000_000, unreachable_after_ns=1_000_000_000
)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return generate_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(tls_files: TLSFiles) -> Iterator[LatencyServer]:
    with latency_server(tls=tls_files) as server:
        yield server


@pytest.fixture(scope="module")
def plain_server() -> Iterator[LatencyServer]:
    with latency_server() as server:
        yield server


async def get_item(vu: VU) -> None:
    await vu.http.get(vu.tags["url"], name="/item")


def _run(url: str, http: HTTPOptions, duration: str = PLANNED, rate: int = 20) -> RunResult:
    executor = ConstantArrivalRate(rate, duration, pre_allocated_vus=5, max_vus=20)
    scenario = Scenario("issuance", get_item, executor, tags={"url": url})
    return run_sync([scenario], options=RunOptions(http=http, health=HEALTH))


def _ended_early_as_unreachable(result: RunResult, kind: str, url: str) -> str:
    """The checks every unreachable case shares; returns the first error's text."""
    assert result.verdict == "unreachable"
    (unreachable,) = result.unreachable
    assert unreachable.startswith(f"{kind}: ")
    assert f" (to {url})" in unreachable
    assert result.aborted == f"unreachable: {unreachable}"
    health = result.scenarios["issuance"].health
    assert health.started < 20 * 60  # stopped long before the 1,200 iterations of its 60 s
    errors = result.scenarios["issuance"].request_errors
    assert errors.statuses == {}
    assert set(errors.transport) == {kind}
    assert errors.transport_failures >= HEALTH.unreachable_failures
    assert errors.transport_failures == _requests(result)  # every request, none answered
    return unreachable


def _requests(result: RunResult) -> int:
    sink = result.store.select("http_reqs", {"scenario": "issuance"})
    assert isinstance(sink, CounterSink)
    return int(sink.count)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_untrusted_certificate_is_unreachable_naming_tls(
    backend: str, tls_server: LatencyServer
) -> None:
    url = tls_server.url + "/item"
    result = _run(url, HTTPOptions(backend=backend, verify=True))  # the system store only
    unreachable = _ended_early_as_unreachable(result, "tls", url)
    assert "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed" in unreachable
    (cause,) = result.causes()
    n = _requests(result)
    assert cause == f"issuance: {n:,} of {n:,} requests failed below HTTP: {unreachable}"
    assert tls_server.stats()["requests"] == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_http_to_a_tls_port_is_unreachable_with_the_https_hint(
    backend: str, tls_server: LatencyServer, tls_files: TLSFiles
) -> None:
    url = tls_server.url.replace("https://", "http://") + "/item"
    result = _run(url, HTTPOptions(backend=backend, verify=tls_files.ca))
    unreachable = _ended_early_as_unreachable(result, "reset", url)
    assert unreachable.endswith(
        f"(to {url}); if that port serves TLS, the URL must start with https://"
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_https_to_a_plain_port_is_unreachable_naming_tls(
    backend: str, plain_server: LatencyServer
) -> None:
    url = plain_server.url.replace("http://", "https://") + "/item"
    result = _run(url, HTTPOptions(backend=backend))
    unreachable = _ended_early_as_unreachable(result, "tls", url)
    assert "WRONG_VERSION_NUMBER" in unreachable


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_wrong_status_is_named_with_its_body(backend: str, plain_server: LatencyServer) -> None:
    plain_server.control("reset")
    plain_server.control("status", code=503, ratio=0.5)  # every second request
    try:
        result = _run(plain_server.url + "/item", HTTPOptions(backend=backend), "1s")
    finally:
        plain_server.control("reset")
    assert result.verdict == "passed"  # no threshold: the causes are data, not a verdict
    assert result.causes() == ["issuance: 10 of 20 requests answered 503 (body: injected failure)"]
    errors = result.scenarios["issuance"].request_errors
    assert (errors.statuses, errors.transport) == ({503: 10}, {})
