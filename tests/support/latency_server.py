"""A controlled-latency HTTP/1.1 (and, with --http2, HTTP/2) server, run as its own process.

    python tests/support/latency_server.py --port 0 [--delay-ms 20] [--workers N] \
        [--tls-cert C --tls-key K] [--http2]

Every path answers ``200 ok\\n`` after the configured delay (timers, not
threads: one process holds thousands of delayed requests). Control endpoints
answer at once:

* ``POST /_control/delay?ms=N``            per-request delay from now on
* ``POST /_control/stall?seconds=S``       every response, in flight or new, waits until
                                           S seconds from now
* ``POST /_control/status?code=503&ratio=1.0``  answer a fraction with ``code``
                                           (deterministic: every 1/ratio-th request)
* ``POST /_control/workers?n=N``          serve at most N requests at once (0: no limit);
                                           the rest queue: capacity is N / delay
* ``POST /_control/reset``                 back to the start-up settings, counters zeroed
* ``GET  /_control/stats``                 JSON: requests served, in flight, settings,
                                           connections open and accepted (HTTP/2 ones
                                           apart), the most HTTP/2 streams in flight on
                                           one connection

With ``--http2`` the server also speaks HTTP/2 (the h2 library): over TLS when ALPN picks
``h2`` (it offers ``h2`` and ``http/1.1``), in cleartext to a client that starts with the
HTTP/2 preface (prior knowledge). The delay, stall, status and reset controls apply to
both protocols (``workers`` to HTTP/1.1 only); these are HTTP/2's own:

* ``GET /any?size=N``                      a body of N bytes (sent as the client's
                                           flow-control windows allow)
* ``POST /_control/rst?code=2&ratio=1.0``  reset a fraction of the streams (RST_STREAM
                                           with ``code``) instead of answering them
* ``POST /_control/head_hold?seconds=S``   a HEAD response's stream ends S seconds after
                                           its HEADERS (the client need not wait)
* ``POST /_control/goaway?code=0&processed=all``  send GOAWAY on every HTTP/2
                                           connection: ``processed=all`` names the newest
                                           stream as processed, answers the streams in
                                           flight, then closes; ``processed=none`` names
                                           none of those in flight (they are never
                                           answered) and closes at once

Prints ``LISTENING <port>`` on stdout once bound. Standard library plus
httptools and h2; uvloop when installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import ssl
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import httptools
import hyperframe.frame

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class State:
    initial_delay_s: float
    delay_s: float
    stall_until: float = 0.0  # loop time
    fail_code: int = 0
    fail_ratio: float = 0.0
    fail_acc: float = 0.0
    served: int = 0
    failed: int = 0
    in_flight: int = 0
    connections: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    #: at most this many requests in service at once (0: unlimited); the rest queue, so
    #: the server's capacity is workers / delay requests per second
    workers: int = 0
    initial_workers: int = 0
    busy: int = 0
    waiting: deque[tuple[Any, Any, bool]] = field(default_factory=deque)
    accepted: int = 0
    h2_accepted: int = 0
    #: HTTP/2: reset a fraction of the streams with this code; hold HEAD streams open
    rst_code: int = 0
    rst_ratio: float = 0.0
    rst_acc: float = 0.0
    head_hold_s: float = 0.0
    h2_connections: set[Any] = field(default_factory=set)
    max_streams_in_flight: int = 0

    def reset(self) -> None:
        self.delay_s = self.initial_delay_s
        self.workers = self.initial_workers
        self.stall_until = 0.0
        self.fail_code = 0
        self.fail_ratio = 0.0
        self.fail_acc = 0.0
        self.served = 0
        self.failed = 0
        self.accepted = 0
        self.h2_accepted = 0
        self.rst_code = 0
        self.rst_ratio = 0.0
        self.rst_acc = 0.0
        self.head_hold_s = 0.0
        self.max_streams_in_flight = 0

    def pick_status(self) -> int:
        if self.fail_code and self.fail_ratio > 0:
            self.fail_acc += self.fail_ratio
            if self.fail_acc >= 1.0 - 1e-9:
                self.fail_acc -= 1.0
                return self.fail_code
        return 200

    def pick_reset(self) -> int:
        """The RST_STREAM code to answer this HTTP/2 request with, or -1 to answer it."""
        if self.rst_ratio > 0:
            self.rst_acc += self.rst_ratio
            if self.rst_acc >= 1.0 - 1e-9:
                self.rst_acc -= 1.0
                return self.rst_code
        return -1


def _response(status: int, body: bytes, *, close: bool, ctype: bytes = b"text/plain") -> bytes:
    reason = _REASONS.get(status, "Status").encode()
    head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n" % (
        status,
        reason,
        ctype,
        len(body),
        b"Connection: close\r\n" if close else b"",
    )
    return head + body


class _Pending:
    __slots__ = ("close", "data", "due", "ready", "worker")

    def __init__(self) -> None:
        self.data = b""
        self.ready = False
        self.close = False
        self.worker = False  # holds one of the server's workers until answered
        self.due = 0.0  # perf_counter() before which the answer must not leave


_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class HttpServerProtocol(asyncio.Protocol):
    def __init__(self, state: State, loop: asyncio.AbstractEventLoop, http2: bool) -> None:
        self.state = state
        self.loop = loop
        self.http2 = http2
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.queue: deque[_Pending] = deque()
        self.closing = False
        self.h2: H2Handler | None = None
        self.sniff = b""  # the first bytes of a cleartext connection (an h2 preface?)

    # asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.state.connections += 1
        self.state.accepted += 1
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
            self.h2 = H2Handler(self.state, self.loop, self.transport)

    def data_received(self, data: bytes) -> None:
        if self.h2 is not None:
            self.h2.data_received(data)
            return
        if self.http2 and self.sniff is not None and self.transport is not None:
            self.sniff += data
            if _PREFACE.startswith(self.sniff[: len(_PREFACE)]):
                if len(self.sniff) < len(_PREFACE):
                    return  # wait for the rest of the preface
                self.h2 = H2Handler(self.state, self.loop, self.transport)
                data, self.sniff = self.sniff, b""
                self.h2.data_received(data)
                return
            data, self.sniff = self.sniff, None  # type: ignore[assignment]
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(_response(400, b"bad request\n", close=True))
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections -= 1
        self.closing = True
        if self.h2 is not None:
            self.h2.lost()
        for item in self.queue:
            if not item.ready:
                self.state.in_flight -= 1
        self.queue.clear()

    # httptools
    def on_message_begin(self) -> None:
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        keep_alive = self.parser.should_keep_alive()
        method = self.parser.get_method()
        item = _Pending()
        item.close = not keep_alive
        self.queue.append(item)
        path = self.url.decode("latin-1")
        if path.startswith("/_control/"):
            item.data = self.control(method.decode(), path, close=item.close)
            item.ready = True
            self.flush()
            return
        self.state.in_flight += 1
        state = self.state
        if state.workers and state.busy >= state.workers:
            state.waiting.append((self, item, method == b"HEAD"))
            return
        self.serve(item, method == b"HEAD")

    def serve(self, item: _Pending, head: bool) -> None:
        """Start serving ``item``: it is answered ``delay`` from now."""
        if self.state.workers:
            self.state.busy += 1
            item.worker = True
        item.due = time.perf_counter() + self.state.delay_s
        if self.state.delay_s > 0 or self.state.stall_until > self.loop.time():
            self.loop.call_later(self.state.delay_s, self.respond, item, head)
        else:
            self.respond(item, head)

    def release(self, item: _Pending) -> None:
        """``item``'s worker is free: the next waiting request, if any, takes it."""
        state = self.state
        if not item.worker:
            return
        state.busy -= 1
        while state.waiting and state.busy < max(state.workers, 1):
            proto, waiting_item, head = state.waiting.popleft()
            if proto.closing:
                state.in_flight -= 1
                continue
            proto.serve(waiting_item, head)

    def respond(self, item: _Pending, head: bool) -> None:
        if self.closing:
            return
        now = self.loop.time()
        if self.state.stall_until > now:
            self.loop.call_at(self.state.stall_until, self.respond, item, head)
            return
        early = item.due - time.perf_counter()
        if early > 0:
            # event-loop timers have millisecond granularity (uvloop) and may fire a
            # little early; the delay is a promise, so never answer before it is due
            self.loop.call_later(early + 0.0002, self.respond, item, head)
            return
        status = self.state.pick_status()
        body = b"ok\n" if status == 200 else b"injected failure\n"
        data = _response(status, body, close=item.close)
        if head:
            data = data[: len(data) - len(body)]
        item.data = data
        item.ready = True
        self.state.in_flight -= 1
        self.state.served += 1
        if status != 200:
            self.state.failed += 1
        self.flush()
        self.release(item)

    def flush(self) -> None:
        transport = self.transport
        while self.queue and self.queue[0].ready:
            item = self.queue.popleft()
            if transport is not None and not self.closing:
                transport.write(item.data)
                if item.close:
                    self.closing = True
                    transport.close()

    def control(self, method: str, path: str, *, close: bool) -> bytes:
        status, body, ctype = control(self.state, self.loop, method, path)
        return _response(status, body, close=close, ctype=ctype)


def control(
    state: State, loop: asyncio.AbstractEventLoop, method: str, path: str
) -> tuple[int, bytes, bytes]:
    """Apply one ``/_control/...`` request; ``(status, body, content type)``."""
    parts = urlsplit(path)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    action = parts.path[len("/_control/") :]
    try:
        if action == "stats" and method == "GET":
            pass
        elif action == "delay" and method == "POST":
            state.delay_s = float(query["ms"]) / 1000.0
        elif action == "stall" and method == "POST":
            state.stall_until = loop.time() + float(query["seconds"])
        elif action == "status" and method == "POST":
            state.fail_code = int(query.get("code", "503"))
            state.fail_ratio = float(query.get("ratio", "1.0"))
            state.fail_acc = 0.0
        elif action == "workers" and method == "POST":
            state.workers = int(query["n"])
        elif action == "reset" and method == "POST":
            state.reset()
        elif action == "rst" and method == "POST":
            state.rst_code = int(query.get("code", "2"))
            state.rst_ratio = float(query.get("ratio", "1.0"))
            state.rst_acc = 0.0
        elif action == "head_hold" and method == "POST":
            state.head_hold_s = float(query["seconds"])
        elif action == "goaway" and method == "POST":
            processed = query.get("processed", "all")
            if processed not in ("all", "none"):
                raise ValueError(f"processed={processed!r}: use 'all' or 'none'")
            code = int(query.get("code", "0"))
            for handler in list(state.h2_connections):
                handler.goaway(code, processed == "all")
        else:
            return 404, f"unknown control {method} {action}\n".encode(), b"text/plain"
    except (KeyError, ValueError) as exc:
        return 400, f"bad control request: {exc!r}\n".encode(), b"text/plain"
    stats = {
        "requests": state.served,
        "failed": state.failed,
        "in_flight": state.in_flight,
        "connections": state.connections,
        "accepted": state.accepted,
        "h2_connections": len(state.h2_connections),
        "h2_accepted": state.h2_accepted,
        "max_streams_in_flight": state.max_streams_in_flight,
        "delay_ms": state.delay_s * 1000.0,
        "stalled_for_s": max(0.0, state.stall_until - loop.time()),
        "fail_code": state.fail_code,
        "fail_ratio": state.fail_ratio,
    }
    return 200, json.dumps(stats).encode(), b"application/json"


class H2Handler:
    """One HTTP/2 connection: each request stream is answered after the delay (or reset,
    or held), its body sent as the client's flow-control windows allow."""

    def __init__(
        self, state: State, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport
    ) -> None:
        self.state = state
        self.loop = loop
        self.transport = transport
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.closed = False
        #: streams being served: id -> (method, path), until answered
        self.requests: dict[int, tuple[bytes, bytes]] = {}
        #: response bodies the client's windows held back: id -> bytes left
        self.pending: dict[int, bytes] = {}
        self.highest = 0
        #: GOAWAY sent: (last stream processed); then no new stream is served
        self.last: int | None = None
        state.h2_connections.add(self)
        state.h2_accepted += 1
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.closed:
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush()
            self.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                sid = event.stream_id
                self.highest = max(self.highest, sid)
                fields = dict(event.headers)
                # answered at its StreamEnded event (h2 sends one for a request without body)
                self.requests[sid] = (fields.get(b":method", b"GET"), fields.get(b":path", b"/"))
            elif isinstance(event, h2.events.DataReceived):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                if event.stream_id in self.requests:
                    self.start(event.stream_id)
            elif isinstance(event, h2.events.WindowUpdated):
                for sid in list(self.pending):
                    self.push(sid)
            elif isinstance(event, h2.events.StreamReset):
                self.pending.pop(event.stream_id, None)
                self.requests.pop(event.stream_id, None)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.flush()
                self.close()
                return
        self.flush()

    def start(self, sid: int) -> None:
        """The request on ``sid`` is complete: answer it (control at once)."""
        if self.last is not None:
            return  # after our GOAWAY: not processed
        method, path = self.requests[sid]
        in_flight = sum(1 for s in self.requests if s not in self.pending)
        self.state.max_streams_in_flight = max(self.state.max_streams_in_flight, in_flight)
        text = path.decode("latin-1")
        if text.startswith("/_control/"):
            status, body, ctype = control(self.state, self.loop, method.decode(), text)
            self.answer(sid, status, body, ctype, method == b"HEAD")
            return
        self.state.in_flight += 1
        due = time.perf_counter() + self.state.delay_s
        self.loop.call_later(self.state.delay_s, self.respond, sid, text, method, due)

    def respond(self, sid: int, path: str, method: bytes, due: float) -> None:
        if self.closed or sid not in self.requests or (self.last is not None and sid > self.last):
            return
        now = self.loop.time()
        if self.state.stall_until > now:
            self.loop.call_at(self.state.stall_until, self.respond, sid, path, method, due)
            return
        early = due - time.perf_counter()
        if early > 0:  # timers may fire a little early; never answer before it is due
            self.loop.call_later(early + 0.0002, self.respond, sid, path, method, due)
            return
        self.state.in_flight -= 1
        code = self.state.pick_reset()
        if code >= 0:
            self.requests.pop(sid, None)
            self.conn.reset_stream(sid, code)
            self.flush()
            self.maybe_close()
            return
        status = self.state.pick_status()
        size = parse_qs(urlsplit(path).query).get("size")
        if status != 200:
            body = b"injected failure\n"
        elif size:
            body = b"x" * int(size[-1])
        else:
            body = b"ok\n"
        self.state.served += 1
        if status != 200:
            self.state.failed += 1
        self.answer(sid, status, body, b"text/plain", method == b"HEAD")

    def answer(self, sid: int, status: int, body: bytes, ctype: bytes, head: bool) -> None:
        headers = [
            (b":status", str(status).encode()),
            (b"content-type", ctype),
            (b"content-length", str(len(body)).encode()),
        ]
        if head:
            hold = self.state.head_hold_s
            self.conn.send_headers(sid, headers, end_stream=hold <= 0)
            if hold > 0:
                self.loop.call_later(hold, self.end_held, sid)
            else:
                self.requests.pop(sid, None)
        else:
            self.conn.send_headers(sid, headers)
            self.pending[sid] = body
            self.push(sid)
        self.flush()
        self.maybe_close()

    def end_held(self, sid: int) -> None:
        if self.closed or sid not in self.requests:
            return
        self.requests.pop(sid, None)
        with contextlib.suppress(h2.exceptions.ProtocolError, h2.exceptions.StreamClosedError):
            self.conn.end_stream(sid)
        self.flush()
        self.maybe_close()

    def push(self, sid: int) -> None:
        """Send what the flow-control windows allow of ``sid``'s body."""
        body = self.pending.get(sid)
        if body is None:
            return
        while True:
            try:
                window = self.conn.local_flow_control_window(sid)
            except h2.exceptions.StreamClosedError:
                self.pending.pop(sid, None)
                self.requests.pop(sid, None)
                return
            size = min(window, self.conn.max_outbound_frame_size, len(body))
            if size <= 0 and body:
                self.pending[sid] = body
                return
            chunk, body = body[:size], body[size:]
            self.conn.send_data(sid, chunk, end_stream=not body)
            if not body:
                self.pending.pop(sid, None)
                self.requests.pop(sid, None)
                return

    def goaway(self, code: int, processed_all: bool) -> None:
        """Send GOAWAY (written by hand: h2 would refuse to send anything after it)."""
        if self.closed:
            return
        waiting = [sid for sid in self.requests if sid not in self.pending]
        # processed=none: name the stream before the oldest one in flight as the last
        last = self.highest if processed_all or not waiting else max(0, min(waiting) - 2)
        self.last = last
        frame = hyperframe.frame.GoAwayFrame(0)
        frame.last_stream_id = last
        frame.error_code = code
        self.flush()
        self.transport.write(frame.serialize())
        if not processed_all:
            self.close()
        else:
            self.maybe_close()

    def maybe_close(self) -> None:
        """After our GOAWAY the connection closes once its last stream is answered."""
        if self.last is not None and not self.requests and not self.pending:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.state.h2_connections.discard(self)
            self.transport.close()

    def lost(self) -> None:
        self.closed = True
        self.state.h2_connections.discard(self)
        for sid in self.requests:
            if sid not in self.pending:
                self.state.in_flight -= 1
        self.requests.clear()


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    state = State(
        initial_delay_s=args.delay_ms / 1000.0,
        delay_s=args.delay_ms / 1000.0,
        workers=args.workers,
        initial_workers=args.workers,
    )
    ssl_ctx = None
    if args.tls_cert:
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(args.tls_cert, args.tls_key)
        ssl_ctx.set_alpn_protocols(["h2", "http/1.1"] if args.http2 else ["http/1.1"])
    server = await loop.create_server(
        lambda: HttpServerProtocol(state, loop, args.http2),
        args.host,
        args.port,
        ssl=ssl_ctx,
        backlog=4096,
        reuse_address=True,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"LISTENING {port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--http2", action="store_true", help="speak HTTP/2 too (h2)")
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args))
    else:
        uvloop.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
