"""One request through each HTTP backend against a local server (keep-alive), and JWS.

The latency server (tests/support/latency_server.py, no delay) runs in its own process;
with nginx installed the fast backend is also measured against nginx, whose per-request
cost is lower and steadier.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_certload.http import make_client
from tests.support.servers import LatencyServer, NginxServer, latency_server, start_nginx

TIMEOUT_NS = 10_000_000_000


@pytest.fixture(scope="module")
def server() -> Iterator[LatencyServer]:
    with latency_server(delay_ms=0) as srv:
        yield srv


@pytest.fixture(scope="module")
def nginx() -> Iterator[NginxServer]:
    try:
        cm = start_nginx()
        srv = cm.__enter__()
    except FileNotFoundError as exc:
        pytest.skip(f"{exc}; apt-get install nginx to measure against it")
    try:
        yield srv
    finally:
        cm.__exit__(None, None, None)


def _bench_request(benchmark: Any, run_in_loop: Callable[..., Any], backend: str, url: str) -> None:
    client = make_client(backend, verify=False, timeout_ns=TIMEOUT_NS)
    run_in_loop(client.get, url)  # connect outside the measurement
    response = benchmark(run_in_loop, client.get, url)
    run_in_loop(client.aclose)
    assert response.status_code == 200


@pytest.mark.parametrize("backend", ["fast", "httpx"])
def test_one_request_latency_server(
    benchmark: Any, run_in_loop: Callable[..., Any], server: LatencyServer, backend: str
) -> None:
    _bench_request(benchmark, run_in_loop, backend, server.url + "/item")


@pytest.mark.parametrize("backend", ["fast", "httpx"])
def test_one_request_nginx(
    benchmark: Any, run_in_loop: Callable[..., Any], nginx: NginxServer, backend: str
) -> None:
    _bench_request(benchmark, run_in_loop, backend, nginx.url + "/")


HAS_ACME = importlib.util.find_spec("pytest_certload.certctl.acme") is not None


@pytest.mark.skipif(not HAS_ACME, reason="pytest_certload.certctl.acme is not there yet")
@pytest.mark.parametrize("alg", ["ES256", "RS256", "EdDSA"])
def test_sign_one_jws(benchmark: Any, alg: str) -> None:
    """sign_jws of a new-order payload with a kid (what every signed ACME POST costs)."""
    from pytest_certload.certctl.acme import AccountKey, sign_jws

    key = AccountKey.generate(alg)
    payload = {"identifiers": [{"type": "dns", "value": "bench.example.test"}]}
    body = benchmark(
        sign_jws,
        key,
        payload,
        url="https://127.0.0.1:8443/acme/profile/prof-standard-tls/new-order",
        nonce="bench-nonce",
        kid="https://127.0.0.1:8443/acme/profile/prof-standard-tls/account/acct-1",
    )
    assert body.startswith(b'{"protected":')
