"""HTTP/2 in the fast backend against servers in their own processes.

The controlled-latency server speaks HTTP/2 with the ``h2`` library (ALPN ``h2`` over
TLS, prior knowledge in cleartext) and can reset streams, send GOAWAY, hold a HEAD
stream open and send large bodies; nginx is a second, independent implementation. Each
test names the behaviour it pins down and fails without it: ALPN picks h2 (one
connection), timings cover a known delay, GOAWAY and RST_STREAM are clear errors that
never hang, HEAD returns at its headers, many streams run at once on one connection,
flow control moves bodies larger than every window, and ``http_version`` is honoured.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial

import anyio
import pytest

from pytest_certload.engine import VU, ConstantVUs, HTTPOptions, RunOptions, Scenario, run
from pytest_certload.errors import TransportError
from pytest_certload.http import make_client
from tests.support.servers import LatencyServer, TLSFiles, generate_tls, latency_server

pytestmark = pytest.mark.anyio

DELAY_MS = 20
DELAY_NS = DELAY_MS * 1_000_000
TIMEOUT_NS = 20_000_000_000


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
def h2_server_process(tls_files: TLSFiles) -> Iterator[LatencyServer]:
    with latency_server(delay_ms=DELAY_MS, tls=tls_files, http2=True) as server:
        yield server


@pytest.fixture
def h2_server(h2_server_process: LatencyServer) -> Iterator[LatencyServer]:
    """The HTTP/2 (and HTTP/1.1) TLS latency server, reset to its start-up settings."""
    h2_server_process.control("reset")
    yield h2_server_process
    h2_server_process.control("reset")


async def test_alpn_picks_h2_and_one_connection_carries_every_request(
    h2_server: LatencyServer,
) -> None:
    fast = make_client("fast", verify=_ca(h2_server), timeout_ns=TIMEOUT_NS)
    try:
        responses = [await fast.get(f"{h2_server.url}/{i}") for i in range(5)]
    finally:
        await fast.aclose()
    assert {(r.status_code, r.content, r.http_version) for r in responses} == {
        (200, b"ok\n", "HTTP/2")
    }
    assert responses[0].timings.connecting
    assert responses[0].timings.tls_handshaking
    assert [r for r in responses[1:] if r.timings.connecting or r.timings.tls_handshaking] == []
    assert h2_server.stats()["h2_accepted"] == 1


async def test_http_version_1_1_offers_only_http1_and_2_refuses_a_server_without_h2(
    h2_server: LatencyServer, tls_files: TLSFiles
) -> None:
    one = make_client("fast", verify=tls_files.ca, timeout_ns=TIMEOUT_NS, http_version="1.1")
    try:
        assert (await one.get(h2_server.url + "/")).http_version == "HTTP/1.1"
    finally:
        await one.aclose()
    assert h2_server.stats()["h2_accepted"] == 0
    with latency_server(tls=tls_files) as h1_only:
        two = make_client("fast", verify=tls_files.ca, timeout_ns=TIMEOUT_NS, http_version="2")
        try:
            with pytest.raises(TransportError) as info:
                await two.get(h1_only.url + "/")
        finally:
            await two.aclose()
    assert info.value.kind == "protocol"
    assert "did not agree to HTTP/2 in TLS ALPN (it chose no protocol" in str(info.value)
    assert "use 'auto' to speak what the server offers" in str(info.value)


async def test_timings_cover_the_known_delay(h2_server: LatencyServer) -> None:
    fast = make_client("fast", verify=_ca(h2_server), timeout_ns=TIMEOUT_NS)
    try:
        first = await fast.get(h2_server.url + "/first")
        second = await fast.get(h2_server.url + "/second")
    finally:
        await fast.aclose()
    for resp in (first, second):
        t = resp.timings
        assert resp.http_version == "HTTP/2"
        assert t.sending is not None
        assert t.waiting is not None
        assert t.receiving is not None
        assert t.duration == t.sending + t.waiting + t.receiving
        assert t.sending >= 0
        assert t.receiving >= 0
        # the server's clock starts once the request is in; the first frame comes after
        assert t.sending + t.waiting >= DELAY_NS
        assert t.duration < DELAY_NS + 2_000_000_000
        assert t.blocked == 0
        # the kernel's receive stamps split the time (Linux); never more than the whole
        if t.server_time is not None:
            assert DELAY_NS <= t.server_time <= t.duration
            assert t.generator_delay is not None
            assert 0 <= t.generator_delay < t.duration
    assert first.timings.connecting
    assert first.timings.tls_handshaking
    assert second.timings.connecting == 0
    assert second.timings.tls_handshaking == 0


async def test_head_returns_at_its_headers_even_if_the_stream_stays_open(
    h2_server: LatencyServer,
) -> None:
    h2_server.control("head_hold", seconds=5)
    fast = make_client("fast", verify=_ca(h2_server), timeout_ns=TIMEOUT_NS)
    try:
        started = time.monotonic()
        head = await fast.head(h2_server.url + "/nonce")
        waited = time.monotonic() - started
        after = await fast.get(h2_server.url + "/after")  # the connection is still good
    finally:
        await fast.aclose()
    assert (head.status_code, head.content, head.http_version) == (200, b"", "HTTP/2")
    assert head.headers["content-length"] == "3"
    assert waited < 2.5, f"HEAD waited {waited:.2f} s for a stream the server held open 5 s"
    assert after.status_code == 200
    assert after.timings.connecting == 0


async def test_rst_stream_is_a_clear_reset_and_the_connection_lives_on(
    h2_server: LatencyServer,
) -> None:
    fast = make_client("fast", verify=_ca(h2_server), timeout_ns=TIMEOUT_NS)
    try:
        await fast.get(h2_server.url + "/warm")
        h2_server.control("rst", code=2, ratio=1.0)
        with pytest.raises(TransportError) as info:
            await fast.get(h2_server.url + "/reset")
        h2_server.control("rst", code=2, ratio=0.0)
        after = await fast.get(h2_server.url + "/after")
    finally:
        await fast.aclose()
    assert info.value.kind == "reset"
    assert str(info.value).startswith(
        f"GET {h2_server.url}/reset: the server reset the stream (RST_STREAM INTERNAL_ERROR, "
        "HTTP/2 stream 3 on 127.0.0.1:"
    )
    assert after.status_code == 200
    assert after.timings.connecting == 0


async def test_goaway_fails_the_unprocessed_requests_at_once_and_the_next_ones_reconnect(
    h2_server: LatencyServer,
) -> None:
    """GOAWAY with an error code, naming none of the requests in flight as processed,
    then the server closes: each request fails at once with a message naming GOAWAY
    (not after the 20 s timeout, not as a bare closed connection); the next request
    opens a new connection."""
    h2_server.control("delay", ms=2000)
    fast = make_client("fast", verify=_ca(h2_server), timeout_ns=TIMEOUT_NS)
    errors: list[TransportError] = []

    async def one(i: int) -> None:
        try:
            await fast.get(f"{h2_server.url}/slow{i}")
        except TransportError as exc:
            errors.append(exc)

    started = time.monotonic()
    try:
        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(one, i)
            await _until(lambda: h2_server.stats()["in_flight"] == 5)
            await anyio.to_thread.run_sync(
                partial(h2_server.control, "goaway", code=11, processed="none")
            )
        elapsed = time.monotonic() - started
        h2_server.control("delay", ms=0)
        after = await fast.get(h2_server.url + "/after")
    finally:
        await fast.aclose()
    assert elapsed < 1.9, f"the requests took {elapsed:.2f} s to fail (the delay is 2 s)"
    assert len(errors) == 5
    assert {e.kind for e in errors} == {"reset"}
    assert all(
        "the server sent GOAWAY (ENHANCE_YOUR_CALM, last stream 0) and did not process "
        "this request" in str(e)
        for e in errors
    ), [str(e) for e in errors]
    assert after.status_code == 200
    assert after.timings.connecting
    assert h2_server.stats()["h2_accepted"] == 2


async def test_a_graceful_goaway_lets_requests_in_flight_finish_and_resends_unprocessed_ones(
    h2_server: LatencyServer,
) -> None:
    h2_server.control("delay", ms=300)
    fast = make_client("fast", verify=_ca(h2_server), timeout_ns=TIMEOUT_NS)
    try:
        await fast.get(h2_server.url + "/warm")
        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(fast.get, f"{h2_server.url}/in-flight{i}")
            await _until(lambda: h2_server.stats()["in_flight"] == 3)
            # NO_ERROR, all processed: the three complete on the old connection
            await anyio.to_thread.run_sync(
                partial(h2_server.control, "goaway", code=0, processed="all")
            )
        processed = h2_server.stats()
        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(fast.get, f"{h2_server.url}/again{i}")
            await _until(lambda: h2_server.stats()["in_flight"] == 3)
            # NO_ERROR, none processed: sent again once on a new connection (RFC 9113 §8.7)
            await anyio.to_thread.run_sync(
                partial(h2_server.control, "goaway", code=0, processed="none")
            )
    finally:
        await fast.aclose()
    final = h2_server.stats()
    assert processed["requests"] == 4
    assert final["requests"] == 7, final  # each resent request answered once
    assert final["failed"] == 0
    assert final["h2_accepted"] == 3


async def test_many_concurrent_streams_share_one_connection(h2_server: LatencyServer) -> None:
    """``vu.http.batch``: 50 requests of one VU at once are 50 concurrent streams on the
    VU's one connection (200 ms each: far from the 10 s they would take in turn)."""
    h2_server.control("delay", ms=200)
    url = h2_server.url
    durations: list[float] = []

    async def batch(vu: VU) -> None:
        if vu.iteration:
            await vu.sleep(60)
            return
        started = time.monotonic()
        responses = await vu.http.batch([("GET", f"{url}/{i}", {"name": "/i"}) for i in range(50)])
        durations.append(time.monotonic() - started)
        vu.check("all 200", all(r.status_code == 200 for r in responses))

    sc = Scenario("batch", batch, ConstantVUs(1, "1s"), graceful_stop="0s")
    options = RunOptions(http=HTTPOptions(verify=_ca(h2_server), timeout="20s"))
    result = await run([sc], options=options)
    stats = h2_server.stats()
    assert len(durations) == 1
    assert durations[0] < 5, durations
    assert stats["h2_accepted"] == 1, stats
    assert stats["max_streams_in_flight"] == 50, stats
    reqs = {
        dict(tags).get("proto"): sink.count
        for tags, sink in result.store.series("http_reqs").items()
    }
    assert reqs == {"HTTP/2.0": 50}


async def test_flow_control_moves_bodies_larger_than_every_window(
    h2_server: LatencyServer,
) -> None:
    """Four 5 MiB responses (each beyond the 1 MiB stream window, together beyond the
    16 MiB connection window) and a 300 kB request body (beyond the server's 64 KiB
    initial window): without WINDOW_UPDATE either way they would stall to the timeout."""
    h2_server.control("delay", ms=0)
    size = 5 * 1024 * 1024
    fast = make_client("fast", verify=_ca(h2_server), timeout_ns=TIMEOUT_NS)
    try:
        bodies = [await fast.get(f"{h2_server.url}/big?size={size}") for _ in range(4)]
        posted = await fast.post(h2_server.url + "/upload", content=b"u" * 300_000)
    finally:
        await fast.aclose()
    assert [len(b.content) for b in bodies] == [size] * 4
    assert {b.http_version for b in bodies} == {"HTTP/2"}
    assert posted.status_code == 200
    assert h2_server.stats()["h2_accepted"] == 1


async def test_cleartext_http2_with_prior_knowledge_only_when_asked(tls_files: TLSFiles) -> None:
    with latency_server(delay_ms=0, http2=True) as h2c, latency_server() as h1_only:
        two = make_client("fast", timeout_ns=TIMEOUT_NS, http_version="2")
        auto = make_client("fast", timeout_ns=TIMEOUT_NS)
        try:
            assert (await two.get(h2c.url + "/")).http_version == "HTTP/2"
            assert (await auto.get(h2c.url + "/")).http_version == "HTTP/1.1"
            with pytest.raises(TransportError) as info:
                await two.get(h1_only.url + "/")
        finally:
            await two.aclose()
            await auto.aclose()
    assert info.value.kind == "protocol"
    assert "answered HTTP/2 with prior knowledge (RFC 9113 §3.3) in HTTP/1.x" in str(info.value)


async def test_a_run_records_the_protocol_spoken_as_the_proto_tag(h2_server: LatencyServer) -> None:
    url = h2_server.url + "/"

    async def get(vu: VU) -> None:
        await vu.http.get(url)
        await vu.sleep(0.05)

    results = {}
    for version in ("auto", "1.1"):
        sc = Scenario("p", get, ConstantVUs(2, "300ms"), graceful_stop="1s")
        http = HTTPOptions(verify=_ca(h2_server), http_version=version)
        results[version] = await run([sc], options=RunOptions(http=http))
    for version, proto in (("auto", "HTTP/2.0"), ("1.1", "HTTP/1.1")):
        series = results[version].store.series("http_req_duration")
        assert {dict(tags).get("proto") for tags in series} == {proto}, version


def _ca(server: LatencyServer) -> str:
    assert server.tls is not None
    return server.tls.ca


async def _until(condition: object, timeout_s: float = 10.0) -> None:
    """Poll ``condition`` (a callable, run in a thread: it may block on the server)."""
    deadline = time.monotonic() + timeout_s
    while not await anyio.to_thread.run_sync(condition):  # type: ignore[arg-type]
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout_s} s: {condition}")
        await anyio.sleep(0.01)
