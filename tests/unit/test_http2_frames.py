"""The fast backend's HTTP/2 framing against a scripted in-process peer.

The peer speaks cleartext HTTP/2 with prior knowledge (``http_version="2"``): it reads
the client's frames and answers each request with frames a test writes byte for byte
(with ``hpack`` for the header blocks), so the cases real servers rarely produce are
checked exactly: PING and SETTINGS acknowledged, padding, CONTINUATION, interim
responses and trailers, a stream limit of one, a timeout that resets only its stream,
HPACK blocks kept across requests, and protocol violations answered with GOAWAY.
``tests/integration/test_http2.py`` runs the same client against real servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import pytest
from hpack import Decoder, Encoder

from pytest_certload.errors import TransportError
from pytest_certload.http import make_client
from pytest_certload.http._h2 import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    PADDED,
    PING,
    PREFACE,
    RST_STREAM,
    SETTINGS,
    frame,
)

pytestmark = pytest.mark.anyio

TIMEOUT_NS = 5_000_000_000


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    return request.param  # type: ignore[no-any-return]


@dataclass
class H2Peer:
    url: str = ""
    #: every frame the client sent: (type, flags, stream id, payload)
    frames: list[tuple[int, int, int, bytes]] = field(default_factory=list)
    #: each request's decoded header fields, by stream id
    requests: dict[int, dict[bytes, bytes]] = field(default_factory=dict)
    encoder: Encoder = field(default_factory=Encoder)

    def block(self, *fields: tuple[bytes, bytes]) -> bytes:
        return self.encoder.encode(list(fields))

    def sent(self, kind: int) -> list[tuple[int, int, int, bytes]]:
        return [f for f in self.frames if f[0] == kind]


#: answers one request: (peer, stream id) -> the bytes to write (or None: no answer)
Script = Callable[[H2Peer, int], Awaitable[bytes | None]]


def settings(**values: int) -> bytes:
    ids = {"max_concurrent_streams": 3, "header_table_size": 1}
    return frame(
        SETTINGS,
        0,
        0,
        b"".join(ids[k].to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in values.items()),
    )


@asynccontextmanager
async def h2_peer(script: Script, opening: bytes = b"") -> AsyncIterator[H2Peer]:
    peer = H2Peer()
    decoder = Decoder()
    tasks: set[asyncio.Task[None]] = set()

    async def answer(writer: asyncio.StreamWriter, sid: int) -> None:
        data = await script(peer, sid)
        if data:
            writer.write(data)

    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        current = asyncio.current_task()
        assert current is not None
        handlers.add(current)
        try:
            assert await reader.readexactly(len(PREFACE)) == PREFACE
            writer.write(opening or frame(SETTINGS, 0, 0))
            while True:
                head = await reader.readexactly(9)
                length = int.from_bytes(head[:3], "big")
                kind, flags = head[3], head[4]
                sid = int.from_bytes(head[5:9], "big")
                payload = await reader.readexactly(length)
                peer.frames.append((kind, flags, sid, payload))
                if kind == HEADERS:
                    peer.requests[sid] = dict(decoder.decode(payload, raw=True))
                    task = asyncio.ensure_future(answer(writer, sid))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    peer.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield peer
    finally:
        for task in tasks:
            task.cancel()
        server.close()
        # each handler ends at the client's close (EOF); a cancelled one would be logged
        pending = {h for h in handlers if not h.done()}
        if pending:
            await asyncio.wait(pending, timeout=5)
        await server.wait_closed()


def ok(peer: H2Peer, sid: int, body: bytes = b"ok\n") -> bytes:
    return frame(HEADERS, END_HEADERS, sid, peer.block((b":status", b"200"))) + frame(
        DATA, END_STREAM, sid, body
    )


async def test_ping_and_settings_are_acknowledged() -> None:
    async def script(peer: H2Peer, sid: int) -> bytes:
        return frame(PING, 0, 0, b"12345678") + ok(peer, sid)

    async with h2_peer(script) as peer:
        client = make_client("fast", http_version="2", timeout_ns=TIMEOUT_NS)
        try:
            resp = await client.get(peer.url + "/")
            await client.get(peer.url + "/again")  # the ACKs were written before this
        finally:
            await client.aclose()
    assert (resp.status_code, resp.content, resp.http_version) == (200, b"ok\n", "HTTP/2")
    assert (PING, 0x1, 0, b"12345678") in peer.frames
    assert (SETTINGS, 0x1, 0, b"") in peer.frames
    # our own SETTINGS: push off, a 1 MiB stream window, a 64 KiB header list
    ours = next(f for f in peer.sent(SETTINGS) if not f[1])
    assert ours[3] == bytes.fromhex("0002 00000000 0004 00100000 0006 00010000".replace(" ", ""))


async def test_padding_continuation_interim_response_and_trailers() -> None:
    async def script(peer: H2Peer, sid: int) -> bytes:
        interim = frame(HEADERS, END_HEADERS, sid, peer.block((b":status", b"103")))
        block = peer.block(
            (b":status", b"201"), (b"content-type", b"text/plain"), (b"x-split", b"yes")
        )
        first, rest = block[:3], block[3:]
        pad = bytes([4])
        return (
            interim
            + frame(HEADERS, PADDED, sid, pad + first + b"\0" * 4)
            + frame(CONTINUATION, END_HEADERS, sid, rest)
            + frame(DATA, PADDED, sid, bytes([2]) + b"hel" + b"\0\0")
            + frame(DATA, 0, sid, b"lo")
            + frame(HEADERS, END_HEADERS | END_STREAM, sid, peer.block((b"x-trailer", b"t")))
        )

    async with h2_peer(script) as peer:
        client = make_client("fast", http_version="2", timeout_ns=TIMEOUT_NS)
        try:
            resp = await client.post(peer.url + "/p", json={"a": 1})
        finally:
            await client.aclose()
    assert resp.status_code == 201
    assert resp.content == b"hello"
    assert resp.headers["x-split"] == "yes"
    assert "x-trailer" not in resp.headers
    request = peer.requests[1]
    assert request[b":method"] == b"POST"
    assert request[b"content-type"] == b"application/json"
    assert [f[3] for f in peer.sent(DATA)] == [b'{"a":1}']


async def test_a_stream_limit_of_one_makes_the_second_request_wait_in_blocked() -> None:
    async def script(peer: H2Peer, sid: int) -> bytes:
        await asyncio.sleep(0.1)
        return ok(peer, sid)

    async with h2_peer(script, opening=settings(max_concurrent_streams=1)) as peer:
        client = make_client("fast", http_version="2", timeout_ns=TIMEOUT_NS)
        try:
            await client.get(peer.url + "/warm")  # the server's SETTINGS are in
            first, second = await asyncio.gather(
                client.get(peer.url + "/1"), client.get(peer.url + "/2")
            )
        finally:
            await client.aclose()
    assert {first.status_code, second.status_code} == {200}
    waited = max(first.timings.blocked or 0, second.timings.blocked or 0)
    assert waited >= 50_000_000, (first.timings, second.timings)
    assert min(first.timings.blocked or 0, second.timings.blocked or 0) == 0
    assert len(peer.sent(SETTINGS)) >= 1


async def test_a_timeout_resets_its_stream_and_keeps_the_connection() -> None:
    async def script(peer: H2Peer, sid: int) -> bytes | None:
        return None if peer.requests[sid][b":path"] == b"/never" else ok(peer, sid)

    async with h2_peer(script) as peer:
        client = make_client("fast", http_version="2", timeout_ns=TIMEOUT_NS)
        try:
            with pytest.raises(TransportError) as info:
                await client.get(peer.url + "/never", timeout=0.2)
            after = await client.get(peer.url + "/after")
        finally:
            await client.aclose()
    assert info.value.kind == "timeout"
    assert str(info.value) == f"GET {peer.url}/never: no complete response within 0.2s"
    assert (RST_STREAM, 0, 1, (0x8).to_bytes(4, "big")) in peer.frames  # CANCEL
    assert after.status_code == 200
    assert after.timings.connecting == 0


async def test_header_blocks_kept_for_repeated_requests_still_decode_right() -> None:
    """Blocks of fields already in the HPACK table are reused; a request with a new
    field changes the table, and later blocks must still decode to the right fields."""

    async def script(peer: H2Peer, sid: int) -> bytes:
        return ok(peer, sid)

    paths = ["/a", "/b", "/a", "/b", "/a", "/a"]
    async with h2_peer(script) as peer:
        client = make_client("fast", http_version="2", timeout_ns=TIMEOUT_NS)
        try:
            for i, path in enumerate(paths):
                extra = {"x-n": str(i)} if i == 2 else None
                await client.get(peer.url + path, headers=extra)
        finally:
            await client.aclose()
    decoded = [peer.requests[sid] for sid in sorted(peer.requests)]
    assert [r[b":path"].decode() for r in decoded] == paths
    assert [r.get(b"x-n") for r in decoded] == [None, None, b"2", None, None, None]
    assert {r[b"user-agent"] for r in decoded} == {b"pytest-certload"}
    assert all(b"connection" not in r and b"host" not in r for r in decoded)
    blocks = [f[3] for f in peer.sent(HEADERS)]
    assert blocks[5] == blocks[4]  # /a again, nothing new: the same indexed bytes
    assert len(blocks[5]) == len(decoded[5])  # one byte per field


@pytest.mark.parametrize(
    ("bad", "detail", "code"),
    [
        (frame(DATA, 0, 0, b"x"), "DATA on stream 0", 0x1),
        (frame(PING, 0, 0, b"short"), "a malformed PING", 0x6),
        (frame(CONTINUATION, END_HEADERS, 1, b""), "CONTINUATION without its HEADERS", 0x1),
        (frame(5, 0x4, 1, bytes(4)), "PUSH_PROMISE, which we disabled", 0x1),
    ],
    ids=["data-on-stream-0", "short-ping", "lone-continuation", "push-promise"],
)
async def test_a_protocol_violation_is_answered_with_goaway(
    bad: bytes, detail: str, code: int
) -> None:
    async def script(peer: H2Peer, sid: int) -> bytes:
        return bad

    async with h2_peer(script) as peer:
        client = make_client("fast", http_version="2", timeout_ns=TIMEOUT_NS)
        try:
            with pytest.raises(TransportError) as info:
                await client.get(peer.url + "/")
        finally:
            await client.aclose()
        with anyio.fail_after(5):
            while not peer.sent(GOAWAY):
                await anyio.sleep(0.01)
    assert info.value.kind == "protocol"
    name = {0x1: "PROTOCOL_ERROR", 0x6: "FRAME_SIZE_ERROR"}[code]
    assert f"broke the HTTP/2 protocol ({detail}; we sent GOAWAY {name})" in str(info.value)
    assert peer.sent(GOAWAY)[0][3] == bytes(4) + code.to_bytes(4, "big")


async def test_a_response_without_status_is_a_protocol_error() -> None:
    async def script(peer: H2Peer, sid: int) -> bytes:
        block = peer.block((b"content-type", b"text/plain"))
        return frame(HEADERS, END_HEADERS | END_STREAM, sid, block)

    async with h2_peer(script) as peer:
        client = make_client("fast", http_version="2", timeout_ns=TIMEOUT_NS)
        try:
            with pytest.raises(TransportError) as info:
                await client.get(peer.url + "/")
        finally:
            await client.aclose()
    assert info.value.kind == "protocol"
    assert "the server's response has no valid :status (HTTP/2 stream 1 on" in str(info.value)
