"""A controlled-latency HTTP/1.1 server, run as its own process.

    python tests/support/latency_server.py --port 0 [--delay-ms 20] [--workers N] \
        [--tls-cert C --tls-key K]

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
* ``GET  /_control/stats``                 JSON: requests served, in flight, settings

Prints ``LISTENING <port>`` on stdout once bound. Standard library plus
httptools; uvloop when installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import ssl
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httptools

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

    def reset(self) -> None:
        self.delay_s = self.initial_delay_s
        self.workers = self.initial_workers
        self.stall_until = 0.0
        self.fail_code = 0
        self.fail_ratio = 0.0
        self.fail_acc = 0.0
        self.served = 0
        self.failed = 0

    def pick_status(self) -> int:
        if self.fail_code and self.fail_ratio > 0:
            self.fail_acc += self.fail_ratio
            if self.fail_acc >= 1.0 - 1e-9:
                self.fail_acc -= 1.0
                return self.fail_code
        return 200


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


class HttpServerProtocol(asyncio.Protocol):
    def __init__(self, state: State, loop: asyncio.AbstractEventLoop) -> None:
        self.state = state
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.queue: deque[_Pending] = deque()
        self.closing = False

    # asyncio
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.state.connections += 1

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(_response(400, b"bad request\n", close=True))
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.state.connections -= 1
        self.closing = True
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
        parts = urlsplit(path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        action = parts.path[len("/_control/") :]
        state = self.state
        try:
            if action == "stats" and method == "GET":
                pass
            elif action == "delay" and method == "POST":
                state.delay_s = float(query["ms"]) / 1000.0
            elif action == "stall" and method == "POST":
                state.stall_until = self.loop.time() + float(query["seconds"])
            elif action == "status" and method == "POST":
                state.fail_code = int(query.get("code", "503"))
                state.fail_ratio = float(query.get("ratio", "1.0"))
                state.fail_acc = 0.0
            elif action == "workers" and method == "POST":
                state.workers = int(query["n"])
            elif action == "reset" and method == "POST":
                state.reset()
            else:
                return _response(404, f"unknown control {method} {action}\n".encode(), close=close)
        except (KeyError, ValueError) as exc:
            return _response(400, f"bad control request: {exc!r}\n".encode(), close=close)
        stats = {
            "requests": state.served,
            "failed": state.failed,
            "in_flight": state.in_flight,
            "connections": state.connections,
            "delay_ms": state.delay_s * 1000.0,
            "stalled_for_s": max(0.0, state.stall_until - self.loop.time()),
            "fail_code": state.fail_code,
            "fail_ratio": state.fail_ratio,
        }
        return _response(200, json.dumps(stats).encode(), close=close, ctype=b"application/json")


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
        ssl_ctx.set_alpn_protocols(["http/1.1"])
    server = await loop.create_server(
        lambda: HttpServerProtocol(state, loop),
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
