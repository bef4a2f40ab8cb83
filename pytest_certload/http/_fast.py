"""The "fast" backend: HTTP/1.1 (httptools) and HTTP/2 (h2) on non-blocking sockets the
client reads itself.

Transport (:mod:`._wire`): each connection registers its socket with the event loop
(``add_reader``) and reads it with ``recvmsg_into`` into a buffer it owns (no per-read
allocation); TLS runs over ``ssl.MemoryBIO`` (``SSLContext.wrap_bio``). Works on the stock
asyncio loop and on uvloop (any loop with ``add_reader``; under anyio, the asyncio
backend). Reading the socket ourselves, rather than through an asyncio transport, is what
lets the client see the kernel's receive timestamp of every read (``_rxtime``: Linux
``SO_TIMESTAMPNS``), and so split a response's time into the server's part and the
generator's own delay (:attr:`Timings.server_time`, :attr:`Timings.generator_delay`).

Protocol: ``http_version="auto"`` (the default) offers ``h2`` and ``http/1.1`` in TLS
ALPN and speaks what the server picks, as k6 and Go clients do; plain ``http://`` is
HTTP/1.1. ``"1.1"`` offers only ``http/1.1``; ``"2"`` offers only ``h2`` (a server that
does not pick it fails the request, ``kind="protocol"``) and speaks HTTP/2 with prior
knowledge on ``http://`` (RFC 9113 §3.3).

Connections: HTTP/1.1 keeps one keep-alive connection per client used by one task at a
time (concurrent use opens more); HTTP/2 keeps one connection per origin and client and
multiplexes every request of the client on it (:mod:`._h2`), so one virtual user has one
connection, as in k6. While a client's first connection to an origin that may speak
HTTP/2 is being opened, its other requests to that origin wait for it (their
``blocked`` time) instead of opening their own.
"""

from __future__ import annotations

import asyncio
import json as _json
import socket
import ssl
from collections.abc import Callable, Mapping
from time import monotonic, perf_counter_ns
from typing import Any, TypeVar

from httptools import HttpParserError, HttpResponseParser

from ..errors import ConfigError, TransportError
from . import _rxtime
from ._h2 import Http2Connection, Unprocessed
from ._models import (
    BaseClient,
    Headers,
    HeaderTypes,
    ParamTypes,
    Response,
    Target,
    Timings,
    add_params,
    join_url,
    parse_target,
)
from ._wire import SocketConnection, discard, handshake, open_socket, split_delay
from .tls import TLSVersionSpec, VerifyTypes, client_context

__all__ = ["ALPN", "HTTP_VERSIONS", "FastClient"]

_USER_AGENT = "pytest-certload"
#: loop timers fire up to this early (uvloop rounds to whole milliseconds)
_TIMER_RESOLUTION_S = 0.001
_CACHE_LIMIT = 512
_K = TypeVar("_K")
_V = TypeVar("_V")


def _cached(cache: dict[_K, _V], key: _K, build: Callable[[], _V]) -> _V:
    """``cache[key]``, built on a miss; the cache is emptied when it holds
    ``_CACHE_LIMIT`` entries (a scenario with endless distinct URLs stays bounded)."""
    value = cache.get(key)
    if value is None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        value = cache[key] = build()
    return value


_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})
_VERSION_NAMES = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}
#: what ``http_version`` may be: what ALPN negotiates, HTTP/1.1 only, HTTP/2 only
HTTP_VERSIONS: tuple[str, ...] = ("auto", "1.1", "2")
#: the ALPN protocols offered for each ``http_version`` (k6 and Go offer h2 first)
ALPN: dict[str, tuple[str, ...]] = {
    "auto": ("h2", "http/1.1"),
    "1.1": ("http/1.1",),
    "2": ("h2",),
}
#: request header fields HTTP/2 forbids (RFC 9113 §8.2.2): dropped from HTTP/2 requests
_CONNECTION_FIELDS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}
)

Origin = tuple[str, str, int]
#: a request without a body: method, URL as given, its extra header fields
_RequestKey = tuple[str, str, tuple[tuple[str, str], ...] | None]


class _Reset(Exception):
    """The connection ended before a complete response (internal)."""

    def __init__(self, detail: str, *, got_bytes: bool) -> None:
        super().__init__(detail)
        self.got_bytes = got_bytes


class _Connection(SocketConnection):
    """One HTTP/1.1 connection: sends a request, parses one response at a time.

    Per response it keeps, on the engine's clock (``perf_counter_ns``): ``t_write`` just
    before the request's first ``send``; ``t_first`` at the read that returned the first
    response bytes and ``stamp_first`` the kernel's receive stamp of that read;
    ``stamp_done`` the stamp of the read that completed the response; ``t_resume`` when
    the awaiting task resumed with it. A stamp is 0 when the kernel gave none.
    """

    __slots__ = (
        "body",
        "complete",
        "deadline",
        "head",
        "headers",
        "headers_done",
        "http_version",
        "keep_alive",
        "parser",
        "parser_dirty",
        "stamp_done",
        "stamp_first",
        "status",
        "t_done",
        "t_first",
        "t_resume",
        "t_sent",
        "t_write",
        "timer",
        "timer_at",
        "uses",
        "waiter",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        tls: tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO] | None,
    ) -> None:
        super().__init__(loop, sock, tls)
        self.parser = HttpResponseParser(self)
        self.parser_dirty = False
        self.uses = 0
        self.waiter: asyncio.Future[None] | None = None
        #: the current request's deadline (loop time) and the one timer that checks it
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self._reset_response(False)

    def _reset_response(self, head: bool) -> None:
        self.head = head
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.t_write = self.t_sent = self.t_first = self.t_done = self.t_resume = 0
        self.stamp_first = self.stamp_done = 0
        self.headers_done = False
        self.complete = False
        self.keep_alive = True
        self.http_version = "1.1"

    def _received(self, data: memoryview) -> None:
        """Response bytes (decrypted): ``t_read``/``stamp`` are their read's."""
        if not self.t_first:
            self.t_first = self.t_read
            self.stamp_first = self.stamp
        if self.waiter is None or self.complete:
            # bytes nobody asked for: the connection cannot be trusted any more
            self.close(abort=True)
            return
        try:
            self.parser.feed_data(data)
        except HttpParserError as exc:
            if not self.complete:
                self._fail(TransportError(f"invalid HTTP response: {exc}", kind="protocol"))
            self.close(abort=True)

    def _send(self, data: bytes) -> None:
        """Hand the request to the kernel now (``t_write`` just before); what it does
        not take goes when the socket is writable."""
        if self.sslobj is not None:
            assert self.outgoing is not None
            self.sslobj.write(data)
            data = self.outgoing.read()
        self.t_write = perf_counter_ns()
        self._write(data)

    def _lost(self, exc: Exception | None) -> None:
        """The connection ended (EOF, reset, TLS error): finish or fail the response."""
        self.close(abort=True)
        waiter = self.waiter
        if waiter is None or waiter.done() or self.complete:
            return
        if self.headers_done and self._delimited_by_close():
            self.keep_alive = False
            self._finish()
            return
        detail = f": {exc}" if exc else ""
        waiter.set_exception(
            _Reset(
                f"connection closed before a complete response{detail}",
                got_bytes=bool(self.t_first),
            )
        )

    def close(self, *, abort: bool = False) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        super().close(abort=abort)

    # -- httptools callbacks -----------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        self.status = status
        self.headers_done = True
        if self.head and status >= 200:
            # a HEAD response has no body whatever Content-Length says; the parser
            # cannot be told, so finish here and use a fresh parser next time. Its body
            # framing is irrelevant to keep-alive (Go omits Content-Length on HEAD, and
            # httptools would then call the connection close-delimited): only the
            # version and the Connection header decide.
            self.parser_dirty = True
            self.http_version = self.parser.get_http_version()
            self.keep_alive = self._persistent_by_headers()
            self._finish()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.complete:
            return
        if 100 <= self.status < 200 and self.status != 101:
            # interim response (100 Continue, 103 Early Hints): wait for the real one
            self.headers = []
            self.headers_done = False
            return
        self.keep_alive = self.parser.should_keep_alive()
        self.http_version = self.parser.get_http_version()
        self._finish()

    # -- helpers -----------------------------------------------------------------------
    def _persistent_by_headers(self) -> bool:
        tokens = b",".join(v.lower() for n, v in self.headers if n.lower() == b"connection")
        options = {t.strip() for t in tokens.split(b",")}
        if self.http_version == "1.0":
            return b"keep-alive" in options
        return b"close" not in options

    def _delimited_by_close(self) -> bool:
        for name, value in self.headers:
            lname = name.lower()
            if lname == b"content-length":
                return False
            if lname == b"transfer-encoding" and b"chunked" in value.lower():
                return False
        return True

    def _finish(self) -> None:
        self.t_done = perf_counter_ns()
        self.stamp_done = self.stamp
        self.complete = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _arm(self, timeout_s: float) -> None:
        """Give the request that starts now ``timeout_s``.

        One timer per connection, not one per request: creating and cancelling a loop
        timer costs more than the rest of a keep-alive round trip's bookkeeping. The
        timer stays armed at the earliest deadline it was set for; when it fires it
        fails the request in flight if that request's deadline has come (within the
        loop's millisecond timer resolution), and otherwise re-arms for it.
        """
        loop = self.loop
        deadline = loop.time() + timeout_s
        self.deadline = deadline
        timer = self.timer
        if timer is None or deadline < self.timer_at:
            if timer is not None:
                timer.cancel()
            self.timer_at = deadline
            self.timer = loop.call_at(deadline, self._on_deadline)

    def _on_deadline(self) -> None:
        self.timer = None
        waiter = self.waiter
        if waiter is None or waiter.done() or self.closed:
            return
        if self.loop.time() >= self.deadline - _TIMER_RESOLUTION_S:
            waiter.set_exception(TimeoutError())
        else:
            self.timer_at = self.deadline
            self.timer = self.loop.call_at(self.deadline, self._on_deadline)

    async def roundtrip(self, data: bytes, head: bool, timeout_s: float) -> int:
        """Send ``data`` and wait for the response; returns the ns the send took."""
        if self.parser_dirty:
            self.parser = HttpResponseParser(self)
            self.parser_dirty = False
        self._reset_response(head)
        self.uses += 1
        waiter = self.loop.create_future()
        self.waiter = waiter
        self._arm(timeout_s)
        try:
            t0 = perf_counter_ns()
            self._send(data)
            self.t_sent = t_sent = perf_counter_ns()
            await waiter
            self.t_resume = perf_counter_ns()
            return t_sent - t0
        finally:
            self.waiter = None

    def split(self) -> tuple[int | None, int | None, str]:
        """``(server_time, generator_delay, why_not)`` of the last response
        (:func:`._wire.split_delay`)."""
        return split_delay(
            self.no_stamps, self.t_write, self.stamp_first, self.stamp_done, self.t_resume
        )


class FastClient(BaseClient):
    """HTTP/1.1 and HTTP/2 client with exact per-phase timings; see the module docstring."""

    backend = "fast"

    def __init__(
        self,
        *,
        verify: VerifyTypes = True,
        fresh_connection: bool = False,
        timeout_ns: int = 60_000_000_000,
        min_tls_version: TLSVersionSpec | None = None,
        base_url: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        http_version: str = "auto",
    ) -> None:
        if http_version not in HTTP_VERSIONS:
            raise ConfigError(
                f"{http_version!r} is not a valid http_version; use one of "
                f"{', '.join(repr(v) for v in HTTP_VERSIONS)}."
            )
        self._verify = verify
        self._min_tls = min_tls_version
        self._ssl: ssl.SSLContext | None = ssl_context
        self.http_version = http_version
        self.fresh_connection = fresh_connection
        self.timeout_s = timeout_ns / 1e9
        self.base_url = base_url
        self._idle: dict[Origin, list[_Connection]] = {}
        self._h2: dict[Origin, Http2Connection] = {}
        #: origins whose first connection is being opened (others wait for it)
        self._dialing: dict[Origin, asyncio.Future[None]] = {}
        #: origins that answered in HTTP/1.1: concurrent requests open their own
        self._h1_origins: set[Origin] = set()
        self._targets: dict[str, Target] = {}
        self._requests: dict[_RequestKey, bytes] = {}
        self._h2_requests: dict[_RequestKey, list[tuple[bytes, bytes]]] = {}
        self._closed = False
        _rxtime.keep_stamping_on()  # once per process, before the first connection

    # -- request building ----------------------------------------------------------------
    def _target(self, url: str) -> Target:
        return _cached(self._targets, url, lambda: parse_target(join_url(self.base_url, url)))

    def _fields(
        self,
        method: str,
        target: Target,
        headers: HeaderTypes | None,
        body: bytes | None,
        content_type: str | None,
    ) -> dict[str, tuple[str, str]]:
        """The request's header fields: lower-case name -> (name as given, value)."""
        fields = {
            "host": ("Host", target.host_header),
            "user-agent": ("User-Agent", _USER_AGENT),
            "accept": ("Accept", "*/*"),
        }
        if self.fresh_connection:
            fields["connection"] = ("Connection", "close")
        if content_type is not None:
            fields["content-type"] = ("Content-Type", content_type)
        if body is not None or method not in _NO_BODY_METHODS:
            fields["content-length"] = ("Content-Length", str(len(body or b"")))
        if headers:
            items = headers.items() if hasattr(headers, "items") else headers
            for name, value in items:
                fields[name.lower()] = (name, value)
        return fields

    def _encode(
        self,
        method: str,
        target: Target,
        headers: HeaderTypes | None,
        body: bytes | None,
        content_type: str | None,
    ) -> bytes:
        """An HTTP/1.1 request."""
        fields = self._fields(method, target, headers, body, content_type)
        head = f"{method} {target.target} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in fields.values()
        )
        data = (head + "\r\n").encode("latin-1")
        return data + body if body else data

    def _h2_fields(
        self,
        method: str,
        target: Target,
        headers: HeaderTypes | None,
        body: bytes | None,
        content_type: str | None,
    ) -> list[tuple[bytes, bytes]]:
        """An HTTP/2 request's header list: pseudo-header fields first (``Host``
        becomes ``:authority``), lower-case names, no connection-specific fields."""
        fields = self._fields(method, target, headers, body, content_type)
        authority = fields.pop("host")[1]
        out = [
            (b":method", method.encode("latin-1")),
            (b":scheme", target.scheme.encode("latin-1")),
            (b":authority", authority.encode("latin-1")),
            (b":path", target.target.encode("latin-1")),
        ]
        for lname, (_, value) in fields.items():
            if lname in _CONNECTION_FIELDS or (lname == "te" and value.lower() != "trailers"):
                continue
            out.append((lname.encode("latin-1"), str(value).encode("latin-1")))
        return out

    # -- connections ---------------------------------------------------------------------
    def _context(self) -> ssl.SSLContext:
        ctx = self._ssl
        if ctx is None:
            ctx = client_context(
                self._verify,
                min_tls_version=self._min_tls,
                alpn=ALPN[self.http_version],
                shared=True,
            )
            self._ssl = ctx
        return ctx

    def _may_share(self, target: Target) -> bool:
        """Whether a new connection to ``target`` may turn out to be HTTP/2 (shared)."""
        if self.fresh_connection or target.origin in self._h1_origins:
            return False
        if target.scheme == "https":
            return self.http_version != "1.1"
        return self.http_version == "2"

    async def _connect(
        self, target: Target, timeout_s: float
    ) -> tuple[_Connection | Http2Connection, int, int]:
        """A new connection: HTTP/2 when ALPN picked ``h2`` (or with prior knowledge),
        else HTTP/1.1; and the ns its TCP connect and TLS handshake took."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise ConfigError(
                "the 'fast' HTTP backend runs on asyncio (or uvloop) only; run the engine "
                "with the anyio 'asyncio' backend or choose backend='httpx'."
            ) from None
        ctx = self._context() if target.scheme == "https" else None
        t0 = perf_counter_ns()
        connecting = tls = 0
        phase = "connect"
        sock: socket.socket | None = None
        tls_parts = None
        label = f"{target.host}:{target.port}"
        try:
            async with asyncio.timeout(timeout_s):
                sock = await open_socket(loop, target.host, target.port)
                t1 = perf_counter_ns()
                connecting = t1 - t0
                if ctx is not None:
                    phase = "tls"
                    tls_parts = await handshake(loop, sock, ctx, target.host)
                    tls = perf_counter_ns() - t1
            if tls_parts is not None:
                h2 = tls_parts[0].selected_alpn_protocol() == "h2"
                if not h2 and self.http_version == "2":
                    discard(sock)
                    chosen = tls_parts[0].selected_alpn_protocol()
                    raise TransportError(
                        f"the server at {label} did not agree to HTTP/2 in TLS ALPN (it "
                        f"chose {chosen or 'no protocol'}; h2 was the only one offered) and "
                        f"http_version '2' requires it; use 'auto' to speak what the server "
                        f"offers ({target.url})",
                        url=target.url,
                        kind="protocol",
                    )
            else:
                h2 = self.http_version == "2"
            conn: _Connection | Http2Connection
            conn = (
                Http2Connection(loop, sock, tls_parts, label)
                if h2
                else _Connection(loop, sock, tls_parts)
            )
            try:
                conn.start_reading()
            except NotImplementedError:
                raise ConfigError(
                    f"the 'fast' HTTP backend reads sockets with loop.add_reader, which "
                    f"{type(loop).__name__} does not provide; use the default selector "
                    "event loop or uvloop, or choose backend='httpx'."
                ) from None
        except TimeoutError:
            discard(sock)
            raise TransportError(
                f"{phase} to {label} timed out after {timeout_s:g}s ({target.url})",
                url=target.url,
                kind="timeout",
            ) from None
        except ssl.SSLError as exc:
            discard(sock)
            raise TransportError(
                f"TLS handshake with {label} failed: {exc} ({target.url})",
                url=target.url,
                kind="tls",
            ) from exc
        except OSError as exc:
            discard(sock)
            kind = "reset" if phase == "tls" else "connect"
            what = "TLS handshake with" if phase == "tls" else "cannot connect to"
            raise TransportError(
                f"{what} {label}: {exc.strerror or exc} ({target.url})",
                url=target.url,
                kind=kind,
            ) from exc
        except BaseException:
            discard(sock)
            raise
        return conn, connecting, tls

    async def _acquire(
        self, target: Target, deadline: float, timeout_s: float
    ) -> tuple[_Connection | Http2Connection, int, int, int]:
        """A connection for the next request to ``target``: the origin's HTTP/2
        connection, an idle HTTP/1.1 one, or a new one; with the ns spent waiting for
        another request's connection (blocked), connecting and in the TLS handshake."""
        origin = target.origin
        blocked = 0
        if not self.fresh_connection:
            while True:
                h2 = self._h2.get(origin)
                if h2 is not None:
                    if h2.usable:
                        return h2, blocked, 0, 0
                    del self._h2[origin]
                idle = self._idle.get(origin)
                while idle:
                    candidate = idle.pop()
                    if not candidate.closed:
                        return candidate, blocked, 0, 0
                dialing = self._dialing.get(origin)
                if dialing is None:
                    break
                t0 = perf_counter_ns()
                await asyncio.wait((dialing,), timeout=max(0.0, deadline - monotonic()))
                blocked += perf_counter_ns() - t0
                if not dialing.done():
                    raise TransportError(
                        f"no connection to {target.host}:{target.port} within {timeout_s:g}s "
                        f"(waited for this client's connection being opened) ({target.url})",
                        url=target.url,
                        kind="timeout",
                    )
        mine: asyncio.Future[None] | None = None
        if self._may_share(target):
            mine = asyncio.get_running_loop().create_future()
            self._dialing[origin] = mine
        try:
            conn, connecting, tls = await self._connect(target, deadline - monotonic())
        finally:
            if mine is not None:
                del self._dialing[origin]
                mine.set_result(None)
        if not self.fresh_connection:
            if isinstance(conn, Http2Connection):
                self._h2[origin] = conn
            else:
                self._h1_origins.add(origin)
        return conn, blocked, connecting, tls

    # -- public API ----------------------------------------------------------------------
    async def request(
        self,
        method: str,
        url: str,
        *,
        params: ParamTypes | None = None,
        headers: HeaderTypes | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        timeout: float | None = None,
    ) -> Response:
        if self._closed:
            raise RuntimeError("this HTTP client is closed; create a new one with make_client()")
        method = method.upper()
        if params:
            url = add_params(url, params)
        target = self._target(url)
        # a request without a body is built once per (method, URL, headers) and kept
        key: _RequestKey | None = None
        if json is None and content is None:
            if headers is None:
                key = (method, url, None)
            else:
                items = headers.items() if isinstance(headers, Mapping) else headers
                key = (method, url, tuple(items))
        content_type = None
        body: bytes | None = None
        if json is not None:
            body = _json.dumps(json, separators=(",", ":")).encode()
            content_type = "application/json"
        elif isinstance(content, str):
            body = content.encode()
        else:
            body = content
        timeout_s = self.timeout_s if timeout is None else timeout
        deadline = monotonic() + timeout_s
        head = method == "HEAD"
        for attempt in (0, 1):
            # a failure to connect names host, port and URL itself (as before HTTP/2)
            conn, blocked, connecting, tls = await self._acquire(target, deadline, timeout_s)
            if isinstance(conn, Http2Connection):
                try:
                    return await self._h2_exchange(
                        conn, method, target, headers, body, content_type, key, head,
                        deadline, timeout_s, blocked, connecting, tls,
                    )  # fmt: skip
                except Unprocessed as exc:
                    if attempt == 0:
                        continue  # the server did not process it: once more, anew
                    raise TransportError(
                        f"{method} {target.url}: not processed by the server, twice: {exc}",
                        url=target.url,
                        kind="reset",
                    ) from None
            if key is not None:
                data = _cached(
                    self._requests, key, lambda: self._encode(method, target, headers, None, None)
                )
            else:
                data = self._encode(method, target, headers, body, content_type)
            try:
                sending = await conn.roundtrip(data, head, deadline - monotonic())
            except _Reset as exc:
                self._retire(conn, abort=True)
                if attempt == 0 and conn.uses > 1 and not exc.got_bytes:
                    # the server closed an idle keep-alive connection as we reused it
                    continue
                raise TransportError(
                    f"{method} {target.url}: {exc}", url=target.url, kind="reset"
                ) from None
            except TimeoutError:
                self._retire(conn, abort=True)
                raise TransportError(
                    f"{method} {target.url}: no complete response within {timeout_s:g}s",
                    url=target.url,
                    kind="timeout",
                ) from None
            except TransportError as exc:
                self._retire(conn, abort=True)
                exc.url = target.url
                exc.args = (f"{method} {target.url}: {exc.args[0]}",)
                raise
            except BaseException:
                # cancelled mid-request: the connection's state is unknown
                self._retire(conn, abort=True)
                raise
            return self._h1_response(conn, method, target, blocked, sending, connecting, tls)
        raise AssertionError("unreachable")  # pragma: no cover

    def _h1_response(
        self,
        conn: _Connection,
        method: str,
        target: Target,
        blocked: int,
        sending: int,
        connecting: int,
        tls: int,
    ) -> Response:
        reusable = conn.keep_alive and not conn.closed and not conn.unsent
        if reusable and not self.fresh_connection and not self._closed:
            self._idle.setdefault(target.origin, []).append(conn)
        else:
            self._retire(conn)
        chunks = conn.body
        body_bytes = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        server, delay, unmeasured = conn.split()
        return Response(
            conn.status,
            Headers._from_raw(conn.headers),
            body_bytes,
            http_version=_VERSION_NAMES.get(conn.http_version, "HTTP/" + conn.http_version),
            url=target.url,
            method=method,
            timings=Timings(
                blocked=blocked,
                connecting=connecting,
                tls_handshaking=tls,
                sending=sending,
                waiting=conn.t_first - conn.t_sent,
                receiving=conn.t_done - conn.t_first,
                duration=conn.t_done - conn.t_sent + sending,
                server_time=server,
                generator_delay=delay,
                delay_unmeasured=unmeasured,
            ),
        )

    async def _h2_exchange(
        self,
        conn: Http2Connection,
        method: str,
        target: Target,
        headers: HeaderTypes | None,
        body: bytes | None,
        content_type: str | None,
        key: _RequestKey | None,
        head: bool,
        deadline: float,
        timeout_s: float,
        blocked: int,
        connecting: int,
        tls: int,
    ) -> Response:
        """One request as a stream of ``conn``. Raises :class:`Unprocessed` (to be sent
        again) or TransportError."""
        if key is not None:
            fields = _cached(
                self._h2_requests, key, lambda: self._h2_fields(method, target, headers, None, None)
            )
        else:
            fields = self._h2_fields(method, target, headers, body, content_type)
        try:
            st = await conn.roundtrip(fields, body, head, deadline - monotonic())
        except TimeoutError:
            raise TransportError(
                f"{method} {target.url}: no complete response within {timeout_s:g}s",
                url=target.url,
                kind="timeout",
            ) from None
        except TransportError as exc:
            exc.url = target.url
            exc.args = (f"{method} {target.url}: {exc.args[0]}",)
            raise
        finally:
            if self.fresh_connection or self._closed:
                conn.shutdown()
        chunks = st.body
        body_bytes = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        server, delay, unmeasured = split_delay(
            conn.no_stamps, st.t_write, st.stamp_first, st.stamp_done, st.t_resume
        )
        t_sent = min(st.t_sent or st.t_first, st.t_first)
        sending = t_sent - st.t_start
        return Response(
            st.status,
            Headers._from_raw(st.headers),
            body_bytes,
            http_version="HTTP/2",
            url=target.url,
            method=method,
            timings=Timings(
                blocked=blocked + st.blocked,
                connecting=connecting,
                tls_handshaking=tls,
                sending=sending,
                waiting=st.t_first - t_sent,
                receiving=st.t_done - st.t_first,
                duration=st.t_done - st.t_start,
                server_time=server,
                generator_delay=delay,
                delay_unmeasured=unmeasured,
            ),
        )

    def _retire(self, conn: _Connection, *, abort: bool = False) -> None:
        """Close ``conn`` (at once: the client owns its socket)."""
        conn.close(abort=abort)

    async def aclose(self) -> None:
        """Close every connection: HTTP/2 ones with GOAWAY, then (with TLS) close_notify;
        idle HTTP/1.1 ones with close_notify."""
        self._closed = True
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()
        h2, self._h2 = self._h2, {}
        for h2conn in h2.values():
            h2conn.shutdown()
