"""The fast backend's HTTP/2 (RFC 9113): one connection that multiplexes a client's
requests.

Header compression is the ``hpack`` library's (RFC 7541, python-hyper's, the one the
``h2`` library uses): its encoder for our requests, its tables under the decoder of
:mod:`._hpack` for the responses. The framing, the client's stream states and flow
control are this module's, written for the one job of a load generator's client: send
requests, read whole responses. The ``h2`` library itself measured ~150 µs of CPU per
request on the reference machine against nginx (half of it in its frame and stream-state
objects), which would leave the fast backend's HTTP/2 at about 4x the httpx backend's;
the whole HTTP/2 request costs a third of that here (``bench/README.md``, ``ceiling.py --http2``).
``h2`` stays the reference it is tested against: the test server's HTTP/2 side is
``h2``'s (with nginx and granian).

The socket, TLS and kernel receive timestamps are :mod:`._wire`'s, as for HTTP/1.1. Each
request is a stream with its own marks on the engine's clock (when its bytes went to the
socket, the read that brought its first frame and the read that completed it, when its
task resumed), so it gets the same phase timings, server time and generator delay as an
HTTP/1.1 request.

* **Streams at once**: up to the server's ``SETTINGS_MAX_CONCURRENT_STREAMS`` (100 until
  its SETTINGS arrive); a request beyond waits for a stream to end, and the wait is its
  ``blocked`` time.
* **Flow control**: our windows are 1 MiB per stream and 16 MiB for the connection; every
  DATA frame's bytes count as consumed when read (the body goes to memory at once), and a
  WINDOW_UPDATE gives them back once half a window is consumed (stream and connection
  alike). Request bodies are sent as the server's windows allow (RFC 9113 §5.2, §6.9).
* **HEAD** ends at the response's HEADERS: a server that leaves the stream open after
  them gets RST_STREAM(CANCEL) instead of being waited for.
* **Errors**: RST_STREAM from the server fails its stream (``kind="reset"``, naming the
  error code); GOAWAY fails the streams the server says it did not process (or, for a
  graceful NO_ERROR GOAWAY, has them sent again once on a new connection, as RFC 9113
  §8.7 allows) and lets the others finish; a connection that closes fails every stream
  left on it; a protocol violation is answered with GOAWAY and fails every stream with
  ``kind="protocol"``. Nothing waits past the request's deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections import deque
from time import perf_counter_ns

from hpack import Encoder, HPACKError

from ..errors import TransportError
from ._hpack import HeaderDecoder
from ._wire import SocketConnection

__all__ = [
    "CONNECTION_WINDOW",
    "MAX_STREAMS_BEFORE_SETTINGS",
    "STREAM_WINDOW",
    "Http2Connection",
    "Stream",
    "Unprocessed",
]

#: the client connection preface (RFC 9113 §3.4)
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# frame types (RFC 9113 §6)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE = 0, 1, 2, 3, 4, 5
PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 6, 7, 8, 9
# flags
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20
# settings (RFC 9113 §6.5.2)
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS = 1, 2, 3
INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = 4, 5, 6
#: error codes (RFC 9113 §7), for messages
ERROR_CODES = (
    "NO_ERROR",
    "PROTOCOL_ERROR",
    "INTERNAL_ERROR",
    "FLOW_CONTROL_ERROR",
    "SETTINGS_TIMEOUT",
    "STREAM_CLOSED",
    "FRAME_SIZE_ERROR",
    "REFUSED_STREAM",
    "CANCEL",
    "COMPRESSION_ERROR",
    "CONNECT_ERROR",
    "ENHANCE_YOUR_CALM",
    "INADEQUATE_SECURITY",
    "HTTP_1_1_REQUIRED",
)
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x3
FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = 0x6, 0x7, 0x8, 0x9

#: our receive window per stream and for the connection
STREAM_WINDOW = 1 << 20
CONNECTION_WINDOW = 1 << 24
_DEFAULT_WINDOW = 65_535
_MAX_WINDOW = (1 << 31) - 1
_DEFAULT_FRAME_SIZE = 16_384
_MAX_HEADER_LIST = 65_536
_MAX_STREAM_ID = (1 << 31) - 1
#: streams at once until the server's SETTINGS say how many it allows (as Go's client)
MAX_STREAMS_BEFORE_SETTINGS = 100
_BLOCK_CACHE_LIMIT = 256
#: loop timers fire up to this early (uvloop rounds to whole milliseconds)
_TIMER_RESOLUTION_S = 0.001


def code_name(code: int) -> str:
    """The name of an HTTP/2 error code (RFC 9113 §7), or its number."""
    return ERROR_CODES[code] if 0 <= code < len(ERROR_CODES) else f"error code {code:#x}"


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One frame: 24-bit length, type, flags, 31-bit stream id, payload (RFC 9113 §4.1)."""
    return (
        len(payload).to_bytes(3, "big")
        + bytes((kind, flags))
        + stream_id.to_bytes(4, "big")
        + payload
    )


def _settings(values: dict[int, int]) -> bytes:
    return frame(
        SETTINGS,
        0,
        0,
        b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in values.items()),
    )


#: what every connection sends first: the preface, our SETTINGS, the connection window
_OPENING = (
    PREFACE
    + _settings(
        {
            ENABLE_PUSH: 0,
            INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            MAX_HEADER_LIST_SIZE: _MAX_HEADER_LIST,
        }
    )
    + frame(WINDOW_UPDATE, 0, 0, (CONNECTION_WINDOW - _DEFAULT_WINDOW).to_bytes(4, "big"))
)


class _ConnectionError(Exception):
    """The server broke the protocol: answer with GOAWAY(code) and close (internal)."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class Unprocessed(Exception):
    """The server did not process the request (a GOAWAY with NO_ERROR below its stream,
    RST_STREAM REFUSED_STREAM, or the connection went away before it was sent): it may
    be sent again on a new connection (internal)."""


class Stream:
    """One request's stream: its response as it arrives, its flow-control state, and
    its marks (engine clock; a stamp is 0 when the kernel gave none)."""

    __slots__ = (
        "blocked",
        "body",
        "deadline",
        "head",
        "headers",
        "id",
        "pending",
        "recv_unacked",
        "send_window",
        "stamp_done",
        "stamp_first",
        "status",
        "t_done",
        "t_first",
        "t_resume",
        "t_sent",
        "t_start",
        "t_write",
        "waiter",
    )

    def __init__(self, head: bool) -> None:
        self.head = head
        self.id = 0
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        #: request body bytes the server's flow-control windows held back
        self.pending = b""
        self.send_window = 0
        #: response bytes consumed since our last WINDOW_UPDATE for this stream
        self.recv_unacked = 0
        self.blocked = 0
        self.t_start = self.t_write = self.t_sent = self.t_first = 0
        self.t_done = self.t_resume = 0
        self.stamp_first = self.stamp_done = 0
        self.deadline = 0.0
        self.waiter: asyncio.Future[None] | None = None


class Http2Connection(SocketConnection):
    """One HTTP/2 connection (TLS with ALPN ``h2``, or cleartext with prior knowledge)."""

    __slots__ = (
        "blocks",
        "completed",
        "continuation",
        "decoder",
        "encoder",
        "exhausted",
        "goaway",
        "inbuf",
        "label",
        "max_frame_out",
        "max_streams",
        "next_id",
        "out",
        "peer_window",
        "prior_knowledge",
        "recv_unacked",
        "send_window",
        "slot_waiters",
        "streams",
        "table_gen",
        "timer",
        "timer_at",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        tls: tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO] | None,
        label: str,
    ) -> None:
        super().__init__(loop, sock, tls)
        #: ``host:port``, for messages
        self.label = label
        self.prior_knowledge = tls is None
        self.encoder = Encoder()
        self.decoder = HeaderDecoder(max_list=_MAX_HEADER_LIST)
        #: encoded header blocks that left the encoder's table as it was (see _encode)
        self.blocks: dict[tuple[tuple[bytes, bytes], ...], tuple[int, bytes]] = {}
        self.table_gen = 0
        #: bytes to send with the next write (the opening leaves with the first request)
        self.out = _OPENING
        self.inbuf = b""
        #: a header block awaiting its CONTINUATION frames: (stream id, flags, fragments)
        self.continuation: tuple[int, int, list[bytes]] | None = None
        self.next_id = 1
        self.streams: dict[int, Stream] = {}
        self.max_streams = MAX_STREAMS_BEFORE_SETTINGS
        self.max_frame_out = _DEFAULT_FRAME_SIZE
        #: the server's initial stream window, and what we may still send on the connection
        self.peer_window = _DEFAULT_WINDOW
        self.send_window = _DEFAULT_WINDOW
        #: response bytes consumed since our last connection-level WINDOW_UPDATE
        self.recv_unacked = 0
        self.slot_waiters: deque[asyncio.Future[None]] = deque()
        #: the server's GOAWAY: (error code, last stream it processed, debug data)
        self.goaway: tuple[int, int, bytes] | None = None
        self.exhausted = False
        #: streams that got their whole response
        self.completed = 0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0

    @property
    def usable(self) -> bool:
        """Whether a new request may open a stream here."""
        return not self.closed and self.goaway is None and not self.exhausted

    # -- a request -----------------------------------------------------------------------
    async def roundtrip(
        self, headers: list[tuple[bytes, bytes]], body: bytes | None, head: bool, timeout_s: float
    ) -> Stream:
        """Open a stream, send the request, wait for its response. Raises TimeoutError,
        :class:`Unprocessed`, or TransportError (without the method and URL)."""
        loop = self.loop
        st = Stream(head)
        st.deadline = deadline = loop.time() + timeout_s
        if len(self.streams) >= self.max_streams:
            await self._wait_for_slot(st, deadline)
        if not self.usable:
            raise Unprocessed("the connection went away before the request was sent")
        sid = self.next_id
        if sid > _MAX_STREAM_ID:
            self.exhausted = True
            self._maybe_close()
            raise Unprocessed("the connection used up its stream IDs")
        self.next_id = sid + 2
        t0 = perf_counter_ns()
        st.id = sid
        st.send_window = self.peer_window
        waiter = st.waiter = loop.create_future()
        self.streams[sid] = st
        self._arm(deadline)
        try:
            block = self._encode(headers)
            flags = END_HEADERS if body else END_HEADERS | END_STREAM
            if len(block) <= self.max_frame_out:
                data = frame(HEADERS, flags, sid, block)
            else:
                data = self._split_block(sid, flags, block)
            if self.out:
                data, self.out = self.out + data, b""
            if body:
                st.pending = body
                data += self._body_frames(st)
            st.t_write = perf_counter_ns()
            self._send(data)
            st.t_start = t0
            if not st.pending:
                st.t_sent = perf_counter_ns()
            await waiter
            st.t_resume = perf_counter_ns()
        except BaseException:
            self._abandon(st)
            raise
        return st

    def _encode(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        """``headers`` as an HPACK block. A block made only of one-byte indexed fields
        (every field already in the table) leaves the encoder's table as it was, so the
        same list encodes to the same bytes until the table changes (a block that adds
        to it, or the server's SETTINGS_HEADER_TABLE_SIZE): such blocks are kept."""
        key = tuple(headers)
        cached = self.blocks.get(key)
        if cached is not None and cached[0] == self.table_gen:
            return cached[1]
        block = self.encoder.encode(headers)
        if len(block) == len(headers) and min(block, default=0) >= 0x80:
            if len(self.blocks) >= _BLOCK_CACHE_LIMIT:
                self.blocks.clear()
            self.blocks[key] = (self.table_gen, block)
        else:
            self.table_gen += 1
        return block

    def _emit(self, data: bytes) -> None:
        """Send ``data`` behind the connection's opening if that has not left yet."""
        if self.out:
            data, self.out = self.out + data, b""
        self._send(data)

    def _split_block(self, sid: int, flags: int, block: bytes) -> bytes:
        """A header block larger than the server's frame size: HEADERS, then
        CONTINUATION frames, END_HEADERS on the last (RFC 9113 §6.10)."""
        size = self.max_frame_out
        parts = [block[i : i + size] for i in range(0, len(block), size)]
        out = [frame(HEADERS, flags & END_STREAM, sid, parts[0])]
        for i, part in enumerate(parts[1:], start=2):
            out.append(frame(CONTINUATION, END_HEADERS if i == len(parts) else 0, sid, part))
        return b"".join(out)

    async def _wait_for_slot(self, st: Stream, deadline: float) -> None:
        """Wait until fewer than ``max_streams`` streams are open (``st.blocked``)."""
        t0 = perf_counter_ns()
        try:
            async with asyncio.timeout_at(deadline):
                while self.usable and len(self.streams) >= self.max_streams:
                    slot = self.loop.create_future()
                    self.slot_waiters.append(slot)
                    try:
                        await slot
                    except BaseException:
                        if slot.done() and not slot.cancelled():
                            self._wake(1)  # hand the slot we were given on
                        raise
        finally:
            st.blocked += perf_counter_ns() - t0

    def _wake(self, count: int) -> None:
        """Let up to ``count`` requests waiting for a stream slot try again."""
        waiters = self.slot_waiters
        while count > 0 and waiters:
            slot = waiters.popleft()
            if not slot.done():
                slot.set_result(None)
                count -= 1

    def _wake_all(self) -> None:
        self._wake(len(self.slot_waiters))

    def _body_frames(self, st: Stream) -> bytes:
        """DATA frames for as much of ``st``'s pending body as the windows allow."""
        out = []
        while st.pending:
            size = min(st.send_window, self.send_window, self.max_frame_out, len(st.pending))
            if size <= 0:
                break
            chunk, st.pending = st.pending[:size], st.pending[size:]
            st.send_window -= size
            self.send_window -= size
            out.append(frame(DATA, 0 if st.pending else END_STREAM, st.id, chunk))
        if not st.pending and not st.t_sent and st.t_write:
            st.t_sent = perf_counter_ns()
        return b"".join(out)

    def _push_bodies(self) -> None:
        """Send what the windows now allow of every held-back request body."""
        data = b"".join(self._body_frames(st) for st in list(self.streams.values()) if st.pending)
        if data:
            self._emit(data)

    def _abandon(self, st: Stream) -> None:
        """The request's task gave up on ``st`` (timeout, cancellation, a failure):
        forget it and, if the server may still be sending on it, reset it."""
        known = self.streams.pop(st.id, None) is not None
        if known and not self.closed and st.id:
            # the server ended or reset it otherwise, and it would not be in streams
            self._emit(frame(RST_STREAM, 0, st.id, CANCEL.to_bytes(4, "big")))
        if known and self.slot_waiters:
            self._wake(1)
        self._maybe_close()

    # -- the connection's side -----------------------------------------------------------
    def _finish(self, st: Stream) -> None:
        st.t_done = perf_counter_ns()
        st.stamp_done = self.stamp
        self.completed += 1
        del self.streams[st.id]
        waiter = st.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.slot_waiters:
            self._wake(1)

    def _fail(self, st: Stream, exc: BaseException) -> None:
        self.streams.pop(st.id, None)
        waiter = st.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.slot_waiters:
            self._wake(1)

    def _maybe_close(self) -> None:
        """After the server's GOAWAY (or once its stream IDs are used up) the connection
        closes when its last stream ends."""
        if (self.goaway is not None or self.exhausted) and not self.streams and not self.closed:
            self.close()

    def _received(self, data: memoryview) -> None:
        buf = self.inbuf + data if self.inbuf else bytes(data)
        self.inbuf = b""
        pos, n = 0, len(buf)
        try:
            if self.prior_knowledge and not self.completed and buf[:5] == b"HTTP/":
                raise _ConnectionError(
                    PROTOCOL_ERROR,
                    f"the server at {self.label} answered HTTP/2 with prior knowledge "
                    "(RFC 9113 §3.3) in HTTP/1.x: it does not speak cleartext HTTP/2; use "
                    "http_version 'auto' or '1.1' for http:// URLs, or an https:// URL",
                )
            while pos + 9 <= n:
                length = int.from_bytes(buf[pos : pos + 3], "big")
                if length > _DEFAULT_FRAME_SIZE:
                    raise _ConnectionError(
                        FRAME_SIZE_ERROR,
                        f"a {length}-byte frame, above the {_DEFAULT_FRAME_SIZE} bytes we "
                        "allow (SETTINGS_MAX_FRAME_SIZE)",
                    )
                end = pos + 9 + length
                if end > n:
                    break
                kind = buf[pos + 3]
                flags = buf[pos + 4]
                sid = int.from_bytes(buf[pos + 5 : pos + 9], "big") & _MAX_STREAM_ID
                payload = buf[pos + 9 : end]
                pos = end
                if self.continuation is not None and kind != CONTINUATION:
                    raise _ConnectionError(
                        PROTOCOL_ERROR, "a frame inside a header block (CONTINUATION expected)"
                    )
                if kind == DATA:
                    self._on_data(sid, flags, payload)
                elif kind == HEADERS:
                    self._on_headers(sid, flags, payload)
                elif kind == SETTINGS:
                    self._on_settings(sid, flags, payload)
                elif kind == WINDOW_UPDATE:
                    self._on_window_update(sid, payload)
                elif kind == RST_STREAM:
                    self._on_rst_stream(sid, payload)
                elif kind == PING:
                    if len(payload) != 8 or sid:
                        raise _ConnectionError(FRAME_SIZE_ERROR, "a malformed PING")
                    if not flags & ACK:
                        self._emit(frame(PING, ACK, 0, payload))
                elif kind == GOAWAY:
                    if sid or len(payload) < 8:
                        raise _ConnectionError(PROTOCOL_ERROR, "a malformed GOAWAY")
                    self._on_goaway(payload)
                elif kind == CONTINUATION:
                    self._on_continuation(sid, flags, payload)
                elif kind == PUSH_PROMISE:
                    raise _ConnectionError(PROTOCOL_ERROR, "PUSH_PROMISE, which we disabled")
                # PRIORITY and unknown frame types are ignored (RFC 9113 §5.5, §6.3)
                if self.closed:
                    return
        except _ConnectionError as exc:
            self._connection_error(exc.code, str(exc))
            return
        if pos < n:
            self.inbuf = buf[pos:]
        if self.recv_unacked >= CONNECTION_WINDOW // 2:
            self._emit(frame(WINDOW_UPDATE, 0, 0, self.recv_unacked.to_bytes(4, "big")))
            self.recv_unacked = 0
        self._maybe_close()

    def _connection_error(self, code: int, detail: str) -> None:
        """The server broke the protocol: GOAWAY(code), close, fail every stream."""
        with contextlib.suppress(OSError):
            self._emit(frame(GOAWAY, 0, 0, (0).to_bytes(4, "big") + code.to_bytes(4, "big")))
        self.close()
        text = (
            detail
            if detail.startswith("the server at")
            else f"the server at {self.label} broke the HTTP/2 protocol ({detail}; we sent "
            f"GOAWAY {code_name(code)})"
        )
        for st in list(self.streams.values()):
            self._fail(st, TransportError(f"{text} (HTTP/2 stream {st.id})", kind="protocol"))
        self._wake_all()

    @staticmethod
    def _unpad(flags: int, payload: bytes) -> bytes:
        if not flags & PADDED:
            return payload
        if not payload or payload[0] >= len(payload):
            raise _ConnectionError(PROTOCOL_ERROR, "padding longer than its frame")
        return payload[1 : len(payload) - payload[0]]

    def _on_data(self, sid: int, flags: int, payload: bytes) -> None:
        if not sid:
            raise _ConnectionError(PROTOCOL_ERROR, "DATA on stream 0")
        size = len(payload)  # padding included: it is flow-controlled too
        self.recv_unacked += size
        data = self._unpad(flags, payload)
        st = self.streams.get(sid)
        if st is None:
            return  # a stream we reset or gave up on: only the connection's window counts
        if data:
            st.body.append(data)
        if flags & END_STREAM:
            self._finish(st)
        elif size:
            st.recv_unacked += size
            if st.recv_unacked >= STREAM_WINDOW // 2:
                self._emit(frame(WINDOW_UPDATE, 0, sid, st.recv_unacked.to_bytes(4, "big")))
                st.recv_unacked = 0

    def _on_headers(self, sid: int, flags: int, payload: bytes) -> None:
        if not sid:
            raise _ConnectionError(PROTOCOL_ERROR, "HEADERS on stream 0")
        block = self._unpad(flags, payload)
        if flags & PRIORITY_FLAG:
            block = block[5:]
        if flags & END_HEADERS:
            self._on_header_block(sid, flags, block)
        else:
            self.continuation = (sid, flags, [block])

    def _on_continuation(self, sid: int, flags: int, payload: bytes) -> None:
        pending = self.continuation
        if pending is None or pending[0] != sid:
            raise _ConnectionError(PROTOCOL_ERROR, "CONTINUATION without its HEADERS")
        pending[2].append(payload)
        if flags & END_HEADERS:
            self.continuation = None
            self._on_header_block(sid, pending[1], b"".join(pending[2]))

    def _on_header_block(self, sid: int, flags: int, block: bytes) -> None:
        try:
            # decoded whatever the stream: HPACK's table is the connection's
            fields = self.decoder.decode(block)
        except HPACKError as exc:
            raise _ConnectionError(
                COMPRESSION_ERROR, f"a header block HPACK cannot decode: {exc}"
            ) from None
        st = self.streams.get(sid)
        if st is None:
            return
        if not st.t_first:
            st.t_first = self.t_read
            st.stamp_first = self.stamp
        if st.status:  # trailers: nothing we keep, but they may end the stream
            if flags & END_STREAM:
                self._finish(st)
            return
        status = 0
        headers = st.headers
        for name, value in fields:
            if name[:1] == b":":
                if name == b":status":
                    status = int(value) if value.isdigit() else 0
            else:
                headers.append((name, value))
        if 100 <= status < 200:
            st.headers = []  # an interim response (100 Continue, 103 Early Hints)
            return
        if not status:
            self._fail(
                st,
                TransportError(
                    f"the server's response has no valid :status (HTTP/2 stream {sid} on "
                    f"{self.label})",
                    kind="protocol",
                ),
            )
            self._emit(frame(RST_STREAM, 0, sid, PROTOCOL_ERROR.to_bytes(4, "big")))
            return
        st.status = status
        if flags & END_STREAM:
            self._finish(st)
        elif st.head:
            # a HEAD response has no content (RFC 9110 §9.3.2): done at its headers
            self._finish(st)
            self._emit(frame(RST_STREAM, 0, sid, CANCEL.to_bytes(4, "big")))

    def _on_settings(self, sid: int, flags: int, payload: bytes) -> None:
        if sid:
            raise _ConnectionError(PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & ACK:
            if payload:
                raise _ConnectionError(FRAME_SIZE_ERROR, "a SETTINGS ACK with a payload")
            return
        if len(payload) % 6:
            raise _ConnectionError(FRAME_SIZE_ERROR, "a SETTINGS frame not made of 6-byte items")
        for i in range(0, len(payload), 6):
            key = int.from_bytes(payload[i : i + 2], "big")
            value = int.from_bytes(payload[i + 2 : i + 6], "big")
            if key == MAX_CONCURRENT_STREAMS:
                self.max_streams = max(1, value)
                self._wake_all()
            elif key == INITIAL_WINDOW_SIZE:
                if value > _MAX_WINDOW:
                    raise _ConnectionError(FLOW_CONTROL_ERROR, f"INITIAL_WINDOW_SIZE {value}")
                delta = value - self.peer_window
                self.peer_window = value
                for st in self.streams.values():
                    st.send_window += delta
            elif key == MAX_FRAME_SIZE:
                if not _DEFAULT_FRAME_SIZE <= value <= (1 << 24) - 1:
                    raise _ConnectionError(PROTOCOL_ERROR, f"MAX_FRAME_SIZE {value}")
                self.max_frame_out = value
            elif key == HEADER_TABLE_SIZE:
                self.encoder.header_table_size = value
                self.table_gen += 1
            elif key == ENABLE_PUSH and value > 1:
                raise _ConnectionError(PROTOCOL_ERROR, f"ENABLE_PUSH {value}")
        self._emit(frame(SETTINGS, ACK, 0))
        self._push_bodies()

    def _on_window_update(self, sid: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise _ConnectionError(FRAME_SIZE_ERROR, "a malformed WINDOW_UPDATE")
        increment = int.from_bytes(payload, "big") & _MAX_WINDOW
        if not sid:
            if not increment:
                raise _ConnectionError(PROTOCOL_ERROR, "a WINDOW_UPDATE of 0")
            self.send_window += increment
            if self.send_window > _MAX_WINDOW:
                raise _ConnectionError(FLOW_CONTROL_ERROR, "the connection window overflowed")
            self._push_bodies()
            return
        st = self.streams.get(sid)
        if st is not None:
            st.send_window += increment
            if st.pending:
                data = self._body_frames(st)
                if data:
                    self._emit(data)

    def _on_rst_stream(self, sid: int, payload: bytes) -> None:
        if not sid or len(payload) != 4:
            raise _ConnectionError(PROTOCOL_ERROR, "a malformed RST_STREAM")
        st = self.streams.get(sid)
        if st is None:
            return
        code = int.from_bytes(payload, "big")
        if code == REFUSED_STREAM:
            self._fail(st, Unprocessed("the server refused the stream"))
        else:
            self._fail(
                st,
                TransportError(
                    f"the server reset the stream (RST_STREAM {code_name(code)}, "
                    f"HTTP/2 stream {sid} on {self.label})",
                    kind="reset",
                ),
            )

    def _on_goaway(self, payload: bytes) -> None:
        """The server's GOAWAY (RFC 9113 §6.8): no new streams here; the streams above its
        last stream were not processed; the others may still complete."""
        last = int.from_bytes(payload[:4], "big") & _MAX_STREAM_ID
        code = int.from_bytes(payload[4:8], "big")
        debug = payload[8:]
        if self.goaway is not None:
            last = min(last, self.goaway[1])  # a later GOAWAY may only lower it
        self.goaway = (code, last, debug)
        detail = f"{code_name(code)}, last stream {last}" + (
            f", {debug[:200].decode('utf-8', 'replace')!r}" if debug else ""
        )
        for st in list(self.streams.values()):
            if st.id <= last:
                continue  # processed, or being processed: it may still complete
            if code == NO_ERROR:
                self._fail(st, Unprocessed(f"the server's GOAWAY ({detail})"))
            else:
                self._fail(
                    st,
                    TransportError(
                        f"the server sent GOAWAY ({detail}) and did not process this "
                        f"request (HTTP/2 stream {st.id} on {self.label})",
                        kind="reset",
                    ),
                )
        self._wake_all()

    def _lost(self, exc: Exception | None) -> None:
        self.close(abort=True)
        if not self.streams and not self.slot_waiters:
            return
        text = f"the connection to {self.label} closed before a complete response"
        if exc is not None:
            text += f": {exc}"
        if self.goaway is not None:
            code, last, _ = self.goaway
            text += f" (after the server's GOAWAY, {code_name(code)}, last stream {last})"
        for st in list(self.streams.values()):
            if self.goaway is None and self.completed and not st.t_first and exc is None:
                # the server closed an idle connection as we reused it
                self._fail(st, Unprocessed(text))
            else:
                self._fail(st, TransportError(f"{text} (HTTP/2 stream {st.id})", kind="reset"))
        self._wake_all()

    # -- deadlines -----------------------------------------------------------------------
    def _arm(self, deadline: float) -> None:
        """One timer per connection at the earliest deadline (see ``_on_deadline``)."""
        timer = self.timer
        if timer is None or deadline < self.timer_at:
            if timer is not None:
                timer.cancel()
            self.timer_at = deadline
            self.timer = self.loop.call_at(deadline, self._on_deadline)

    def _on_deadline(self) -> None:
        """Fail every stream whose deadline has come (within the loop's timer
        resolution); re-arm for the earliest one left."""
        self.timer = None
        if self.closed:
            return
        due = self.loop.time() + _TIMER_RESOLUTION_S
        nearest = 0.0
        for st in list(self.streams.values()):
            if st.deadline <= due:
                # the task resets the stream as it gives up (_abandon)
                waiter = st.waiter
                if waiter is not None and not waiter.done():
                    waiter.set_exception(TimeoutError())
            elif not nearest or st.deadline < nearest:
                nearest = st.deadline
        if nearest:
            self.timer_at = nearest
            self.timer = self.loop.call_at(nearest, self._on_deadline)

    # -- closing -------------------------------------------------------------------------
    def close(self, *, abort: bool = False) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        super().close(abort=abort)

    def shutdown(self) -> None:
        """Close as a client that is done: GOAWAY(NO_ERROR), then close_notify. Streams
        still open fail (``kind="reset"``)."""
        if self.closed:
            return
        for st in list(self.streams.values()):
            self._fail(
                st,
                TransportError(
                    f"the HTTP client was closed with the request in flight (HTTP/2 stream "
                    f"{st.id} on {self.label})",
                    kind="reset",
                ),
            )
        self._wake_all()
        if not self.out:  # a connection that never sent its preface just closes
            goaway = frame(GOAWAY, 0, 0, bytes(8))
            if self.sslobj is not None and not self.unsent:
                # encrypted now, sent with the close_notify in one write (close())
                with contextlib.suppress(ssl.SSLError):
                    self.sslobj.write(goaway)
            else:
                with contextlib.suppress(OSError):
                    self._send(goaway)
        self.close()
