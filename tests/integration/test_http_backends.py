"""Each HTTP backend against real servers in their own processes.

The controlled-latency server (plain and TLS, with a CA generated here) checks
status, body, timings and that measured durations cover the injected delay;
nginx with TLS and HTTP/2 checks both backends' HTTP/2; the certctl reference
double (with its PostgreSQL) checks that ``HEAD newNonce``, answered over HTTP/1.1 like
Go's net/http without Content-Length, keeps the connection, and that the double's h2 is
what a default client speaks. ``test_http2.py`` has the HTTP/2 behaviours in detail.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import anyio
import pytest
from anyio.from_thread import start_blocking_portal

from pytest_certload.certctl import AcmeDirectory, CertctlSetup, bearer
from pytest_certload.engine import VU, ConstantVUs, HTTPOptions, RunOptions, Scenario, run
from pytest_certload.errors import TransportError
from pytest_certload.http import BACKENDS, HTTPStatusError, make_client, tls_probe
from pytest_certload.stack import StackInfo
from pytest_certload.stack.local import LocalStack
from tests.support.servers import (
    LatencyServer,
    TLSFiles,
    generate_tls,
    latency_server,
    nginx_server,
)

pytestmark = pytest.mark.anyio

DELAY_MS = 20
DELAY_NS = DELAY_MS * 1_000_000
TIMEOUT_NS = 10_000_000_000


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ],
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return generate_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def plain_server() -> Iterator[LatencyServer]:
    with latency_server(delay_ms=DELAY_MS) as server:
        yield server


@pytest.fixture(scope="module")
def tls_server(tls_files: TLSFiles) -> Iterator[LatencyServer]:
    with latency_server(delay_ms=DELAY_MS, tls=tls_files) as server:
        yield server


@pytest.fixture
def server(request: pytest.FixtureRequest, plain_server: LatencyServer) -> Iterator[LatencyServer]:
    """The plain or TLS latency server, reset to its start-up settings."""
    chosen: LatencyServer = (
        request.getfixturevalue("tls_server") if request.param == "tls" else plain_server
    )
    chosen.control("reset")
    yield chosen
    chosen.control("reset")


both_servers = pytest.mark.parametrize("server", ["plain", "tls"], indirect=True)


def verify_for(server: LatencyServer) -> str | bool:
    return server.tls.ca if server.tls is not None else True


@both_servers
@pytest.mark.parametrize("backend", BACKENDS)
async def test_status_body_and_timings_cover_the_injected_delay(
    backend: str, server: LatencyServer
) -> None:
    client = make_client(backend, verify=verify_for(server), timeout_ns=TIMEOUT_NS)
    try:
        first = await client.get(server.url + "/first")
        second = await client.get(server.url + "/second")
    finally:
        await client.aclose()
    for resp in (first, second):
        assert resp.status_code == 200
        assert resp.content == b"ok\n"
        assert resp.http_version == "HTTP/1.1"
        t = resp.timings
        assert t.duration is not None
        assert t.waiting is not None
        assert t.duration >= DELAY_NS
        assert t.sending is not None
        assert t.receiving is not None
        # the server's clock starts once the request is in; the first byte comes after
        assert t.sending + t.waiting >= DELAY_NS
        assert t.duration < DELAY_NS + 2_000_000_000
        assert t.sending >= 0
        assert t.receiving >= 0
        assert t.sending + t.waiting + t.receiving == t.duration
    assert first.timings.connecting is not None
    assert first.timings.connecting > 0
    if server.tls is not None:
        assert first.timings.tls_handshaking is not None
        assert first.timings.tls_handshaking > 0
    assert second.timings.connecting == 0
    assert second.timings.tls_handshaking == 0
    assert server.stats()["requests"] == 2


@both_servers
@pytest.mark.parametrize("backend", BACKENDS)
async def test_fresh_connection_pays_connect_and_tls_every_time(
    backend: str, server: LatencyServer
) -> None:
    client = make_client(
        backend, verify=verify_for(server), fresh_connection=True, timeout_ns=TIMEOUT_NS
    )
    try:
        responses = [await client.get(server.url + "/") for _ in range(3)]
    finally:
        await client.aclose()
    for resp in responses:
        assert resp.status_code == 200
        assert resp.timings.connecting is not None
        assert resp.timings.connecting > 0
        if server.tls is not None:
            assert resp.timings.tls_handshaking is not None
            assert resp.timings.tls_handshaking > 0
        else:
            assert resp.timings.tls_handshaking == 0


@pytest.mark.parametrize("server", ["tls"], indirect=True)
async def test_tls_probe_reports_handshake_timings(server: LatencyServer) -> None:
    assert server.tls is not None
    resp = await tls_probe(server.url, verify=server.tls.ca, timeout_ns=TIMEOUT_NS, path="/probe")
    assert resp.status_code == 200
    assert resp.url == server.url + "/probe"
    assert resp.timings.connecting
    assert resp.timings.tls_handshaking
    resp13 = await tls_probe(server.url, verify=server.tls.ca, min_tls_version="1.3")
    assert resp13.status_code == 200


@pytest.mark.parametrize("server", ["tls"], indirect=True)
@pytest.mark.parametrize("backend", BACKENDS)
async def test_untrusted_certificate_is_kind_tls(backend: str, server: LatencyServer) -> None:
    client = make_client(backend, verify=True, timeout_ns=TIMEOUT_NS)  # system store only
    try:
        with pytest.raises(TransportError) as info:
            await client.get(server.url + "/untrusted")
    finally:
        await client.aclose()
    assert info.value.kind == "tls"
    assert info.value.url == server.url + "/untrusted"
    assert "certificate verify failed" in str(info.value).lower()


@pytest.mark.parametrize("server", ["plain"], indirect=True)
@pytest.mark.parametrize("backend", BACKENDS)
async def test_delay_beyond_the_timeout_is_kind_timeout(
    backend: str, server: LatencyServer
) -> None:
    server.control("delay", ms=2000)
    client = make_client(backend, timeout_ns=200_000_000)
    start = time.monotonic()
    try:
        with pytest.raises(TransportError) as info:
            await client.get(server.url + "/slow")
    finally:
        await client.aclose()
    assert info.value.kind == "timeout"
    assert 0.15 < time.monotonic() - start < 1.5


@pytest.mark.parametrize("server", ["plain"], indirect=True)
async def test_stall_holds_every_response_until_its_end(server: LatencyServer) -> None:
    server.control("delay", ms=0)
    server.control("stall", seconds=0.3)
    client = make_client("fast", timeout_ns=TIMEOUT_NS)
    try:
        resp = await client.get(server.url + "/stalled")
    finally:
        await client.aclose()
    assert resp.timings.duration is not None
    assert resp.timings.duration >= 250_000_000  # control call itself took part of the 0.3 s


@pytest.mark.parametrize("server", ["plain"], indirect=True)
@pytest.mark.parametrize("backend", BACKENDS)
async def test_injected_failures_are_statuses(backend: str, server: LatencyServer) -> None:
    server.control("status", code=503, ratio=0.5)
    client = make_client(backend, timeout_ns=TIMEOUT_NS)
    try:
        responses = [await client.get(server.url + "/") for _ in range(4)]
    finally:
        await client.aclose()
    assert [r.status_code for r in responses] == [200, 503, 200, 503]
    assert responses[1].content == b"injected failure\n"
    with pytest.raises(HTTPStatusError, match=r"server error '503' for GET http://"):
        responses[1].raise_for_status()
    assert server.stats()["failed"] == 2


@pytest.mark.parametrize("server", ["plain"], indirect=True)
async def test_many_concurrent_delayed_requests_overlap(server: LatencyServer) -> None:
    """200 clients x 20 ms: the server's timers and the clients run them concurrently."""
    count = 200
    durations: list[int] = []

    async def one() -> None:
        client = make_client("fast", timeout_ns=TIMEOUT_NS)
        try:
            resp = await client.get(server.url + "/")
            assert resp.status_code == 200
            assert resp.timings.duration is not None
            durations.append(resp.timings.duration)
        finally:
            await client.aclose()

    start = time.monotonic()
    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(one)
    elapsed = time.monotonic() - start
    assert len(durations) == count
    assert min(durations) >= DELAY_NS
    assert elapsed < count * DELAY_MS / 1000 / 2  # far from serial (4 s)
    assert server.stats()["requests"] == count


async def test_fast_backend_against_nginx_keep_alive() -> None:
    with nginx_server() as nginx:
        client = make_client("fast", timeout_ns=TIMEOUT_NS)
        try:
            responses = [await client.get(nginx.url + "/") for _ in range(50)]
            head = await client.head(nginx.url + "/")
        finally:
            await client.aclose()
    assert {r.content for r in responses} == {b"ok\n"}
    assert sum(1 for r in responses if r.timings.connecting) == 1
    assert head.content == b""
    assert head.headers["content-length"] == "3"


async def test_httpx_http2_against_nginx(tls_files: TLSFiles, tmp_path: Path) -> None:
    with nginx_server(tls=tls_files, http2=True) as nginx:
        client = make_client("httpx", http2=True, verify=tls_files.ca, timeout_ns=TIMEOUT_NS)
        try:
            first = await client.get(nginx.url + "/")
            second = await client.get(nginx.url + "/")
        finally:
            await client.aclose()
    assert first.http_version == "HTTP/2"
    assert first.content == b"ok\n"
    assert first.timings.tls_handshaking
    assert first.timings.connecting
    assert second.timings.connecting == 0
    assert second.timings.duration is not None
    assert second.timings.duration > 0


async def _count_protocol(url: str, vu: VU) -> None:
    r = await vu.http.get(url, name="/")
    vu.counter("responses_by_protocol", 1, tags={"proto": r.http_version})


async def test_asking_a_scenario_for_http2_gets_http2(tls_files: TLSFiles) -> None:
    """``HTTPOptions(http2=True)`` speaks h2 on the default (fast) backend."""
    with nginx_server(tls=tls_files, http2=True) as nginx:
        sc = Scenario("h2", partial(_count_protocol, nginx.url + "/"), ConstantVUs(1, "300ms"))
        options = RunOptions(http=HTTPOptions(http2=True, verify=str(tls_files.ca)))
        result = await run([sc], options=options)
    by_protocol = {
        dict(tags)["proto"]: sink.count
        for tags, sink in result.store.series("responses_by_protocol").items()
    }
    assert set(by_protocol) == {"HTTP/2"}, by_protocol
    assert by_protocol["HTTP/2"] > 0
    assert {dict(tags)["proto"] for tags in result.store.series("http_reqs")} == {"HTTP/2.0"}


@pytest.fixture(scope="module")
def double_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    """PostgreSQL and the certctl reference double (no sidecars), for this module."""
    with start_blocking_portal(backend="asyncio") as portal:
        local = LocalStack(targets=(), base_dir=tmp_path_factory.mktemp("double"))
        info = portal.call(local.start)
        try:
            yield info
        finally:
            portal.call(local.stop)


@pytest.fixture(scope="module")
def double_directory(double_stack: StackInfo) -> AcmeDirectory:
    with CertctlSetup(
        double_stack.certctl_url, double_stack.token, verify=double_stack.verify()
    ) as setup:
        return setup.acme_directory("prof-standard-tls")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_double_new_nonce_head_without_content_length_keeps_the_connection(
    backend: str, double_stack: StackInfo, double_directory: AcmeDirectory
) -> None:
    count = 200
    assert double_stack.ca is not None
    client = make_client(
        backend, verify=str(double_stack.ca), timeout_ns=TIMEOUT_NS, http_version="1.1"
    )
    headers = bearer(double_stack.token)
    try:
        heads = [
            await client.head(double_directory.new_nonce, headers=headers) for _ in range(count)
        ]
    finally:
        await client.aclose()
    assert {(h.status_code, h.content, h.http_version) for h in heads} == {(200, b"", "HTTP/1.1")}
    # the premise: the double answers like certctl (Go): no Content-Length, no Connection
    assert not any("content-length" in h.headers or "connection" in h.headers for h in heads)
    assert len({h.headers["replay-nonce"] for h in heads}) == count
    assert heads[0].timings.tls_handshaking
    assert [h for h in heads[1:] if h.timings.connecting or h.timings.tls_handshaking] == []


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_double_speaks_http2_to_a_default_client(
    backend: str, double_stack: StackInfo, double_directory: AcmeDirectory
) -> None:
    """The double offers h2 (granian, ALPN) as certctl does, and ``auto`` takes it: one
    connection carries every request; HEAD newNonce ends at its headers."""
    assert double_stack.ca is not None
    client = make_client(backend, verify=str(double_stack.ca), timeout_ns=TIMEOUT_NS)
    headers = bearer(double_stack.token)
    try:
        directory = await client.get(double_directory.url, headers=headers)
        heads = [await client.head(double_directory.new_nonce, headers=headers) for _ in range(50)]
    finally:
        await client.aclose()
    assert directory.http_version == "HTTP/2"
    assert directory.json()["newNonce"] == double_directory.new_nonce
    assert {(h.status_code, h.content, h.http_version) for h in heads} == {(200, b"", "HTTP/2")}
    assert len({h.headers["replay-nonce"] for h in heads}) == 50
    assert directory.timings.tls_handshaking
    assert [h for h in heads if h.timings.connecting or h.timings.tls_handshaking] == []
