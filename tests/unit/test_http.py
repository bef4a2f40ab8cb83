"""Unit tests of pytest_certload.http against a scripted in-process TCP peer.

The peer answers each request with canned bytes, so framing (Content-Length,
chunked, HEAD, 204, close-delimited), connection reuse and failure kinds are
checked byte for byte; it can speak TLS (a throw-away CA made per module) where a
reconnect would cost a handshake. Accuracy under load is in tests/integration.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from types import EllipsisType

import anyio
import pytest

from pytest_certload.errors import ConfigError, TransportError
from pytest_certload.http import (
    BACKENDS,
    Client,
    Headers,
    HTTPStatusError,
    Response,
    Timings,
    _rxtime,
    client_context,
    make_client,
)
from tests.support.servers import TLSFiles, generate_tls

pytestmark = pytest.mark.anyio

# A reply is raw bytes, or a callable taking the raw request and returning bytes;
# None means "close the connection without answering", ... means "never answer".
Reply = bytes | Callable[[bytes], bytes] | None | EllipsisType


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    return request.param  # type: ignore[no-any-return]


@dataclass
class Peer:
    url: str
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0


def ok(body: bytes = b"ok\n", *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n" % len(body)
    return head + b"".join(h + b"\r\n" for h in extra) + b"\r\n" + body


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return generate_tls(tmp_path_factory.mktemp("tls"))


def server_context(tls: TLSFiles) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls.cert, tls.key)
    return ctx


@asynccontextmanager
async def scripted_peer(
    replies: list[Reply],
    *,
    close_after: set[int] | None = None,
    tls: ssl.SSLContext | None = None,
) -> AsyncIterator[Peer]:
    """Serve ``replies`` in order (one per request, across connections).

    ``close_after`` holds reply indexes after which the peer closes the connection;
    with ``tls`` (a server context) the peer speaks HTTPS and ``url`` says so.
    """
    peer = Peer(url="")
    queue = list(replies)
    close_after = close_after or set()
    served = 0
    hang = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        peer.connections += 1
        try:
            while queue:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                body = b""
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        body = await reader.readexactly(int(line.split(b":")[1]))
                raw = head + body
                peer.requests.append(raw)
                reply = queue.pop(0)
                index = served
                served += 1
                if reply is None:
                    return
                if reply is ...:
                    await hang.wait()
                    return
                writer.write(reply(raw) if callable(reply) else reply)
                await writer.drain()
                if index in close_after:
                    return
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    peer.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        yield peer
    finally:
        hang.set()
        server.close()
        await server.wait_closed()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- framing ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_content_length_body_and_response_fields(backend: str) -> None:
    reply = ok(b'{"a": [1, 2]}', b"Content-Type: application/json; charset=utf-8")
    async with scripted_peer([reply]) as peer:
        client = make_client(backend, timeout_ns=5_000_000_000)
        resp = await client.get(peer.url + "/x?y=1")
        await client.aclose()
    assert resp.status_code == 200
    assert resp.content == b'{"a": [1, 2]}'
    assert resp.json() == {"a": [1, 2]}
    assert resp.text == '{"a": [1, 2]}'
    assert resp.encoding == "utf-8"
    assert resp.http_version == "HTTP/1.1"
    assert resp.url == peer.url + "/x?y=1"
    assert resp.headers["content-type"] == "application/json; charset=utf-8"
    assert peer.requests[0].startswith(b"GET /x?y=1 HTTP/1.1\r\n")
    t = resp.timings
    assert t.waiting is not None
    assert t.waiting > 0
    assert t.duration is not None
    assert t.duration >= t.waiting


@pytest.mark.parametrize("backend", BACKENDS)
async def test_chunked_body_is_reassembled(backend: str) -> None:
    reply = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n"
    )
    async with scripted_peer([reply, ok(b"second")]) as peer:
        client = make_client(backend)
        first = await client.get(peer.url + "/")
        second = await client.get(peer.url + "/")
        await client.aclose()
    assert first.content == b"hello world!"
    assert second.content == b"second"
    assert peer.connections == 1


async def test_keep_alive_connection_is_reused_with_zero_connect_time() -> None:
    async with scripted_peer([ok(b"1"), ok(b"2"), ok(b"3")]) as peer:
        client = make_client("fast")
        responses = [await client.get(peer.url + "/") for _ in range(3)]
        await client.aclose()
    assert [r.content for r in responses] == [b"1", b"2", b"3"]
    assert peer.connections == 1
    assert responses[0].timings.connecting is not None
    assert responses[0].timings.connecting > 0
    assert [r.timings.connecting for r in responses[1:]] == [0, 0]
    assert all(r.timings.tls_handshaking == 0 for r in responses)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_connection_close_header_makes_the_next_request_reconnect(backend: str) -> None:
    replies: list[Reply] = [ok(b"1", b"Connection: close"), ok(b"2")]
    async with scripted_peer(replies, close_after={0}) as peer:
        client = make_client(backend)
        first = await client.get(peer.url + "/")
        second = await client.get(peer.url + "/")
        await client.aclose()
    assert (first.content, second.content) == (b"1", b"2")
    assert peer.connections == 2


async def test_server_closing_an_idle_keep_alive_connection_means_a_new_connection() -> None:
    # no Connection: close header: the client learns from the FIN alone
    async with scripted_peer([ok(b"1"), ok(b"2")], close_after={0}) as peer:
        client = make_client("fast")
        first = await client.get(peer.url + "/")
        second = await client.get(peer.url + "/")
        await client.aclose()
    assert (first.content, second.content) == (b"1", b"2")
    assert peer.connections == 2
    assert second.timings.connecting is not None
    assert second.timings.connecting > 0


async def test_reused_connection_closed_without_an_answer_is_retried_once() -> None:
    # the second request reaches the old connection, which closes without a byte
    async with scripted_peer([ok(b"1"), None, ok(b"2")]) as peer:
        client = make_client("fast")
        first = await client.get(peer.url + "/")
        second = await client.get(peer.url + "/")
        await client.aclose()
    assert (first.content, second.content) == (b"1", b"2")
    assert peer.connections == 2
    assert len(peer.requests) == 3


async def test_fresh_connection_closed_without_an_answer_is_kind_reset() -> None:
    async with scripted_peer([None]) as peer:
        client = make_client("fast")
        with pytest.raises(
            TransportError, match=r"connection closed before a complete response"
        ) as info:
            await client.get(peer.url + "/")
        await client.aclose()
    assert info.value.kind == "reset"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_head_response_has_no_body_and_connection_stays_usable(backend: str) -> None:
    head_reply = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nX-Kind: head\r\n\r\n"
    async with scripted_peer([head_reply, ok(b"after")]) as peer:
        client = make_client(backend)
        head = await client.head(peer.url + "/")
        after = await client.get(peer.url + "/")
        await client.aclose()
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["x-kind"] == "head"
    assert after.content == b"after"
    assert peer.connections == 1


async def test_head_without_content_length_keeps_the_connection() -> None:
    """Go (certctl) answers HEAD without Content-Length; that is no reason to reconnect."""
    nonce = b"HTTP/1.1 200 OK\r\nReplay-Nonce: abc\r\nCache-Control: no-store\r\n\r\n"
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
    async with scripted_peer([nonce, nonce, closing, ok(b"after")]) as peer:
        client = make_client("fast")
        heads = [await client.head(peer.url + "/new-nonce") for _ in range(3)]
        after = await client.get(peer.url + "/")
        await client.aclose()
    assert [h.headers["replay-nonce"] for h in heads[:2]] == ["abc", "abc"]
    assert after.content == b"after"
    assert peer.connections == 2  # the third HEAD said Connection: close


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_thousand_heads_over_tls_without_content_length_use_one_connection(
    backend: str, tls_files: TLSFiles
) -> None:
    """certctl's new-nonce as Go's net/http answers it: HEAD, 200, no Content-Length, no
    Connection header. A response to HEAD has no body whatever its headers say (RFC 9110
    section 9.3.2, RFC 9112 section 6.3), so the connection stays usable; a reconnect
    here would cost a TLS handshake per nonce."""
    count = 1000
    numbers = itertools.count()

    def nonce(request: bytes) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nReplay-Nonce: n%d\r\n"
            b"Date: Mon, 30 Nov 2026 15:00:00 GMT\r\n\r\n" % next(numbers)
        )

    replies: list[Reply] = [nonce] * count
    async with scripted_peer(replies, tls=server_context(tls_files)) as peer:
        client = make_client(backend, verify=tls_files.ca, timeout_ns=5_000_000_000)
        try:
            heads = [await client.head(peer.url + "/new-nonce") for _ in range(count)]
        finally:
            await client.aclose()
    assert peer.connections == 1
    assert len(peer.requests) == count
    assert all(r.startswith(b"HEAD /new-nonce HTTP/1.1\r\n") for r in peer.requests)
    assert [h.headers["replay-nonce"] for h in heads] == [f"n{i}" for i in range(count)]
    assert {(h.status_code, h.content) for h in heads} == {(200, b"")}
    first = heads[0].timings
    assert first.connecting is not None
    assert first.connecting > 0
    assert first.tls_handshaking is not None
    assert first.tls_handshaking > 0
    assert {(h.timings.connecting, h.timings.tls_handshaking) for h in heads[1:]} == {(0, 0)}


@pytest.mark.parametrize(
    ("head_reply", "connections"),
    [
        pytest.param(b"HTTP/1.1 200 OK\r\nReplay-Nonce: a\r\n\r\n", 1, id="no-framing"),
        pytest.param(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 1, id="chunked"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", 1, id="length"),
        pytest.param(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n", 1, id="keep-alive"),
        pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n", 1, id="204"),
        pytest.param(b"HTTP/1.1 304 Not Modified\r\n\r\n", 1, id="304"),
        pytest.param(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 1, id="interim-100"),
        pytest.param(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", 1, id="1.0-kept"),
        # the control: HTTP/1.0 without keep-alive closes after every response
        pytest.param(b"HTTP/1.0 200 OK\r\n\r\n", 4, id="1.0-closed"),
    ],
)
async def test_head_framing_decides_no_reconnect_over_tls(
    head_reply: bytes, connections: int, tls_files: TLSFiles
) -> None:
    """Only the version and the Connection header end a connection after a HEAD; its
    framing headers describe a body that is never sent."""
    replies: list[Reply] = [head_reply, head_reply, head_reply, ok(b"after")]
    async with scripted_peer(replies, tls=server_context(tls_files)) as peer:
        client = make_client("fast", verify=tls_files.ca, timeout_ns=5_000_000_000)
        try:
            heads = [await client.head(peer.url + "/") for _ in range(3)]
            after = await client.get(peer.url + "/")
        finally:
            await client.aclose()
    assert [h.content for h in heads] == [b"", b"", b""]
    assert after.content == b"after"
    assert peer.connections == connections


@pytest.mark.parametrize("status", [204, 304])
async def test_bodyless_statuses(status: int) -> None:
    reply = b"HTTP/1.1 %d X\r\n\r\n" % status
    async with scripted_peer([reply, ok(b"next")]) as peer:
        client = make_client("fast")
        first = await client.get(peer.url + "/")
        after = await client.get(peer.url + "/")
        await client.aclose()
    assert (first.status_code, first.content) == (status, b"")
    assert after.content == b"next"


async def test_interim_100_continue_is_skipped() -> None:
    reply = b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"final")
    async with scripted_peer([reply]) as peer:
        client = make_client("fast")
        resp = await client.post(peer.url + "/", content=b"x")
        await client.aclose()
    assert (resp.status_code, resp.content) == (200, b"final")


async def test_body_delimited_by_connection_close() -> None:
    reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"
    async with scripted_peer([reply, ok(b"again")], close_after={0}) as peer:
        client = make_client("fast")
        first = await client.get(peer.url + "/")
        again = await client.get(peer.url + "/")
        await client.aclose()
    assert first.content == b"until the end"
    assert again.content == b"again"


# -- request encoding ----------------------------------------------------------------


async def test_json_params_and_header_override_are_encoded() -> None:
    async with scripted_peer([ok(), ok()]) as peer:
        client = make_client("fast", base_url=peer.url + "/api")
        await client.post("/items", json={"n": 1}, params={"q": "a b", "k": [1, 2]})
        await client.put("items/2", content="text", headers={"user-agent": "me", "X-A": "1"})
        await client.aclose()
    post, put = peer.requests
    assert post.startswith(b"POST /api/items?q=a+b&k=1&k=2 HTTP/1.1\r\n")
    assert b"\r\nContent-Type: application/json\r\n" in post
    assert b"\r\nContent-Length: 7\r\n" in post
    assert post.endswith(b'\r\n\r\n{"n":1}')
    assert put.startswith(b"PUT /api/items/2 HTTP/1.1\r\n")
    assert b"\r\nuser-agent: me\r\n" in put
    assert b"pytest-certload" not in put
    assert b"\r\nX-A: 1\r\n" in put
    assert put.endswith(b"\r\n\r\ntext")


async def test_host_header_and_fresh_connection_sends_connection_close() -> None:
    async with scripted_peer([ok(), ok()], close_after={0, 1}) as peer:
        client = make_client("fast", fresh_connection=True)
        first = await client.get(peer.url + "/")
        second = await client.get(peer.url + "/")
        await client.aclose()
    port = peer.url.rsplit(":", 1)[1]
    assert f"\r\nHost: 127.0.0.1:{port}\r\n".encode() in peer.requests[0]
    assert b"\r\nConnection: close\r\n" in peer.requests[0]
    assert peer.connections == 2
    assert first.timings.connecting
    assert second.timings.connecting


async def test_relative_url_without_base_url_is_a_config_error() -> None:
    client = make_client("fast")
    with pytest.raises(
        ConfigError, match=r"'/x' is not an absolute URL and the client has no base_url"
    ):
        await client.get("/x")
    await client.aclose()


# -- failures --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_connection_refused_is_kind_connect_naming_the_url(backend: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/refused"
    client = make_client(backend, timeout_ns=5_000_000_000)
    with pytest.raises(TransportError) as info:
        await client.get(url)
    await client.aclose()
    assert info.value.kind == "connect"
    assert info.value.url == url
    assert url in str(info.value)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_no_answer_is_kind_timeout_within_the_timeout(backend: str) -> None:
    async with scripted_peer([...]) as peer:
        client = make_client(backend, timeout_ns=200_000_000)
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(TransportError) as info:
            await client.get(peer.url + "/slow")
        elapsed = loop.time() - start
        await client.aclose()
    assert info.value.kind == "timeout"
    assert info.value.url == peer.url + "/slow"
    assert 0.15 <= elapsed < 2.0


async def test_per_request_timeout_overrides_the_default() -> None:
    async with scripted_peer([...]) as peer:
        client = make_client("fast")  # default 60 s
        with pytest.raises(TransportError, match=r"no complete response within 0.1s"):
            await client.get(peer.url + "/", timeout=0.1)
        await client.aclose()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_truncated_response_is_kind_reset(backend: str) -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part"
    async with scripted_peer([reply], close_after={0}) as peer:
        client = make_client(backend)
        with pytest.raises(TransportError) as info:
            await client.get(peer.url + "/")
        await client.aclose()
    assert info.value.kind == "reset"


async def test_garbage_response_is_kind_protocol() -> None:
    async with scripted_peer([b"SSH-2.0-OpenSSH\r\n\r\n"]) as peer:
        client = make_client("fast")
        with pytest.raises(TransportError, match=r"invalid HTTP response") as info:
            await client.get(peer.url + "/")
        await client.aclose()
    assert info.value.kind == "protocol"


async def test_tls_to_a_plain_server_is_kind_tls() -> None:
    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # the ClientHello arrives; answer in plain HTTP
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(plain, "127.0.0.1", 0)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    client = make_client("fast", verify=False, timeout_ns=5_000_000_000)
    try:
        with pytest.raises(TransportError, match=r"TLS handshake with 127\.0\.0\.1") as info:
            await client.get(url)
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
    assert info.value.kind == "tls"
    assert info.value.url == url


async def test_cancelled_request_discards_its_connection() -> None:
    async with scripted_peer([..., ok(b"fresh")]) as peer:
        client = make_client("fast")
        with anyio.move_on_after(0.1) as scope:
            await client.get(peer.url + "/hangs")
        assert scope.cancelled_caught
        resp = await client.get(peer.url + "/")
        await client.aclose()
    assert resp.content == b"fresh"
    assert peer.connections == 2


async def test_closed_client_refuses_requests() -> None:
    client = make_client("fast")
    await client.aclose()
    with pytest.raises(RuntimeError, match="client is closed"):
        await client.get("http://127.0.0.1:1/")


# -- the server's time and the generator's delay (kernel receive timestamps) ------------


@dataclass
class ThreadedPeer:
    url: str
    received: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    answered: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))

    async def until_received(self) -> None:
        """Let the loop run until the peer has the next request."""
        with anyio.fail_after(5):
            while not self.received.acquire(blocking=False):
                await anyio.sleep(0.001)

    def block_until_answered(self) -> None:
        """Block the loop (the caller's thread) until the answer is on its way."""
        assert self.answered.acquire(timeout=5), "the peer did not answer"


@contextmanager
def threaded_peer(reply: bytes, *, answer_after_s: float = 0.02) -> Iterator[ThreadedPeer]:
    """A peer outside the event loop, on one connection: each request is answered
    ``answer_after_s`` after it arrived, whatever the loop under test is doing."""
    listener = socket.create_server(("127.0.0.1", 0))
    peer = ThreadedPeer(f"http://127.0.0.1:{listener.getsockname()[1]}/")

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                data = data.split(b"\r\n\r\n", 1)[1]
                peer.received.release()
                time.sleep(answer_after_s)
                conn.sendall(reply)
                peer.answered.release()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        listener.close()
        thread.join(5)


async def _warm(client: Client, peer: ThreadedPeer) -> None:
    """One request to connect: the next goes out on the kept-alive connection."""
    await client.get(peer.url)
    peer.received.acquire(timeout=5)
    peer.answered.acquire(timeout=5)


@pytest.mark.skipif(bool(_rxtime.unavailable_reason()), reason="needs Linux receive timestamps")
async def test_generator_delay_is_how_long_the_response_waited_for_the_loop() -> None:
    """The peer answers 20 ms after the request; the loop is blocked from before the answer
    until 80 ms after it. The response's time splits into the server's part (~20 ms) and
    ours (the 80 ms)."""
    with threaded_peer(ok(b"quick")) as peer:
        client = make_client("fast", timeout_ns=5_000_000_000)
        await _warm(client, peer)
        responses: list[Response] = []

        async def fetch() -> None:
            responses.append(await client.get(peer.url))

        async with anyio.create_task_group() as tg:
            tg.start_soon(fetch)
            await peer.until_received()
            peer.block_until_answered()
            time.sleep(0.08)
        await client.aclose()
    timings = responses[0].timings
    assert timings.delay_unmeasured == ""
    assert timings.server_time is not None
    assert timings.generator_delay is not None
    assert timings.generator_delay >= 70_000_000
    assert 20_000_000 <= timings.server_time < 70_000_000
    assert timings.server_time + timings.generator_delay <= (timings.duration or 0) + 1_000_000


@pytest.mark.skipif(bool(_rxtime.unavailable_reason()), reason="needs Linux receive timestamps")
async def test_generator_delay_includes_the_wait_in_the_loops_ready_queue() -> None:
    """Two responses are read in the same poll, as soon as the loop is free; the first VU
    to resume burns 80 ms of CPU before the second gets to run. The second's generator
    delay holds those 80 ms: the delay runs to the task's resumption, not to the read."""
    with threaded_peer(ok(b"a")) as peer_a, threaded_peer(ok(b"b")) as peer_b:
        clients = [make_client("fast", timeout_ns=5_000_000_000) for _ in range(2)]
        for client, peer in zip(clients, (peer_a, peer_b), strict=True):
            await _warm(client, peer)
        delays: list[int] = []

        async def fetch(client: Client, url: str) -> None:
            resp = await client.get(url)
            assert resp.timings.generator_delay is not None
            delays.append(resp.timings.generator_delay)
            if len(delays) == 1:
                time.sleep(0.08)  # the first to resume keeps the loop busy

        async with anyio.create_task_group() as tg:
            tg.start_soon(fetch, clients[0], peer_a.url)
            tg.start_soon(fetch, clients[1], peer_b.url)
            await peer_a.until_received()
            await peer_b.until_received()
            peer_a.block_until_answered()  # both answers reach the kernel while we block
            peer_b.block_until_answered()
        for client in clients:
            await client.aclose()
    first, second = delays
    assert first < 40_000_000
    assert second >= 70_000_000


async def test_httpx_says_why_it_cannot_measure_the_delay() -> None:
    async with scripted_peer([ok()]) as peer:
        client = make_client("httpx")
        try:
            resp = await client.get(peer.url + "/")
        finally:
            await client.aclose()
    assert (resp.timings.server_time, resp.timings.generator_delay) == (None, None)
    assert resp.timings.delay_unmeasured.startswith("the httpx backend reads its sockets")


# -- pure objects and configuration (no I/O) ------------------------------------------


def test_headers_are_case_insensitive_and_multi_valued() -> None:
    headers = Headers(
        [(b"Content-Type", b"text/plain"), (b"Set-Cookie", b"a=1"), ("set-cookie", "b=2")]
    )
    assert headers["content-type"] == "text/plain"
    assert headers["CONTENT-TYPE"] == "text/plain"
    assert headers.get("Content-type") == "text/plain"
    assert "SET-COOKIE" in headers
    assert "missing" not in headers
    assert headers.get("missing") is None
    assert headers["set-cookie"] == "a=1, b=2"
    assert headers.get_list("Set-Cookie") == ["a=1", "b=2"]
    assert sorted(headers) == ["content-type", "set-cookie"]
    assert len(headers) == 2
    assert headers.raw[0] == (b"Content-Type", b"text/plain")
    with pytest.raises(KeyError):
        headers["x"]


def test_response_text_json_and_raise_for_status() -> None:
    headers = Headers([(b"content-type", b"text/plain; charset=latin-1")])
    resp = Response(503, headers, b"caf\xe9", url="http://h/x", method="POST")
    assert resp.text == "café"
    with pytest.raises(HTTPStatusError, match=r"server error '503' for POST http://h/x") as info:
        resp.raise_for_status()
    assert info.value.response is resp
    good = Response(200, Headers(), b'[1, "a"]', timings=Timings(duration=5))
    assert good.raise_for_status() is good
    assert good.json() == [1, "a"]
    assert good.timings.duration == 5
    assert good.timings.connecting is None


def test_unknown_backend_lists_the_valid_names() -> None:
    with pytest.raises(
        ConfigError,
        match=(
            r"^'curl' is not a valid HTTP backend; "
            r"use one of 'fast', 'httpx' \(default 'fast'\)\.$"
        ),
    ):
        make_client("curl")


def test_http2_stays_on_the_fast_backend() -> None:
    assert make_client(http2=True).backend == "fast"
    assert make_client("fast", http2=True).backend == "fast"
    assert make_client().backend == "fast"


def test_bad_http_version_is_a_config_error_naming_the_value() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^'h3' is not a valid http_version \(make_client\); use 'auto' \(what TLS "
        r"ALPN negotiates: HTTP/2 when the server offers it, as k6\), '1.1' or '2'\.$",
    ):
        make_client("fast", http_version="h3")
    with pytest.raises(ConfigError, match=r"^make_client: http2=True asks for HTTP/2 but"):
        make_client("httpx", http2=True, http_version="1.1")


def test_bad_timeout_verify_and_tls_version_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"timeout_ns=0 is not valid"):
        make_client("fast", timeout_ns=0)
    with pytest.raises(ConfigError, match=r"verify='/nonexistent/ca.pem': no such CA file"):
        make_client("fast", verify="/nonexistent/ca.pem")
    with pytest.raises(
        ConfigError, match=r"'1.1' is not a valid min_tls_version; use '1.2' or '1.3'"
    ):
        make_client("httpx", min_tls_version="1.1")


def test_shared_contexts_are_one_per_key_and_fresh_ones_are_new() -> None:
    a = client_context(True, min_tls_version="1.3", alpn=("http/1.1",), shared=True)
    b = client_context(True, min_tls_version="TLSv1.3", alpn=("http/1.1",), shared=True)
    assert a is b
    assert a.minimum_version == ssl.TLSVersion.TLSv1_3
    assert client_context(True, alpn=("http/1.1", "h2"), shared=True) is not a
    assert client_context(True) is not client_context(True)
    pinned = client_context(True, min_tls_version="1.2", max_tls_version="1.2")
    assert pinned.maximum_version == ssl.TLSVersion.TLSv1_2
    insecure = client_context(False)
    assert insecure.verify_mode == ssl.CERT_NONE
    assert not insecure.check_hostname


def test_clients_satisfy_the_protocol() -> None:
    for backend in BACKENDS:
        client = make_client(backend)
        assert isinstance(client, Client)
        assert client.backend == backend
