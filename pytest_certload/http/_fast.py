"""The "fast" backend: HTTP/1.1 on non-blocking sockets the client reads itself, with
the httptools parser.

One keep-alive connection per client (a client used by one task at a time keeps
exactly one; concurrent use opens more). Each connection registers its socket with the
event loop (``add_reader``) and reads it with ``recvmsg_into`` into a buffer it owns (no
per-read allocation); TLS runs over ``ssl.MemoryBIO`` (``SSLContext.wrap_bio``). Works on
the stock asyncio loop and on uvloop (any loop with ``add_reader``; under anyio, the
asyncio backend).

Reading the socket ourselves, rather than through an asyncio transport, is what lets the
client see the kernel's receive timestamp of every read (``_rxtime``: Linux
``SO_TIMESTAMPNS``), and so split a response's time into the server's part and the
generator's own delay (:attr:`Timings.server_time`, :attr:`Timings.generator_delay`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json as _json
import socket
import ssl
from time import monotonic, perf_counter_ns
from typing import Any, cast

from httptools import HttpParserError, HttpResponseParser

from ..errors import ConfigError, TransportError
from . import _rxtime
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
from .tls import TLSVersionSpec, VerifyTypes, client_context

__all__ = ["FastClient"]

_USER_AGENT = "pytest-certload"
_BUFFER_SIZE = 32 * 1024  # per connection; larger bodies are parsed in slices
_HANDSHAKE_READ = 64 * 1024
#: loop timers fire up to this early (uvloop rounds to whole milliseconds)
_TIMER_RESOLUTION_S = 0.001
_CACHE_LIMIT = 512
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})
_HTTP_VERSIONS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}
_NO_STAMP = "the kernel returned no receive timestamp with the response's bytes"
_CLOCK_STEPPED = "the wall clock was stepped while the response was in flight"


class _Reset(Exception):
    """The connection ended before a complete response (internal)."""

    def __init__(self, detail: str, *, got_bytes: bool) -> None:
        super().__init__(detail)
        self.got_bytes = got_bytes


class _Connection:
    """One HTTP/1.1 connection: sends a request, parses one response at a time.

    The socket stays registered for reading while the connection is open, idle or not,
    so a server that closes an idle keep-alive connection is noticed before reuse.
    Per response it keeps, on the engine's clock (``perf_counter_ns``): ``t_write`` just
    before the request's first ``send``; ``t_first`` at the read that returned the first
    response bytes and ``stamp_first`` the kernel's receive stamp of that read;
    ``stamp_done`` the stamp of the read that completed the response; ``t_resume`` when
    the awaiting task resumed with it. A stamp is 0 when the kernel gave none.
    """

    __slots__ = (
        "_bufs",
        "body",
        "buf",
        "closed",
        "complete",
        "deadline",
        "fd",
        "head",
        "headers",
        "headers_done",
        "http_version",
        "incoming",
        "keep_alive",
        "loop",
        "no_stamps",
        "outgoing",
        "parser",
        "parser_dirty",
        "sock",
        "sslobj",
        "stamp",
        "stamp_done",
        "stamp_first",
        "status",
        "t_done",
        "t_first",
        "t_read",
        "t_resume",
        "t_sent",
        "t_write",
        "timer",
        "timer_at",
        "unsent",
        "uses",
        "view",
        "waiter",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        tls: tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO] | None,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self.sslobj: ssl.SSLObject | None = None
        self.incoming: ssl.MemoryBIO | None = None
        self.outgoing: ssl.MemoryBIO | None = None
        if tls is not None:
            self.sslobj, self.incoming, self.outgoing = tls
        #: why this connection's reads carry no kernel timestamp ("" if they do)
        self.no_stamps = _rxtime.enable(sock)
        self.buf = bytearray(_BUFFER_SIZE)
        self.view = memoryview(self.buf)
        self._bufs = [self.view]
        self.parser = HttpResponseParser(self)
        self.parser_dirty = False
        self.closed = False
        self.uses = 0
        self.waiter: asyncio.Future[None] | None = None
        #: request bytes the socket did not take yet (a partial send)
        self.unsent = b""
        #: the last read: when it returned, and the kernel's stamp of its bytes (or 0)
        self.t_read = 0
        self.stamp = 0
        #: the current request's deadline (loop time) and the one timer that checks it
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self._reset_response(False)
        loop.add_reader(self.fd, self._on_readable)

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

    # -- the socket ----------------------------------------------------------------------
    def _on_readable(self) -> None:
        try:
            if self.no_stamps:
                nbytes = self.sock.recv_into(self.view)
                self.t_read = perf_counter_ns()
                self.stamp = 0
            else:
                nbytes, ancdata, _, _ = self.sock.recvmsg_into(self._bufs, _rxtime.ANCBUF_SIZE)
                self.t_read, self.stamp = _rxtime.stamp_now(ancdata)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not nbytes:
            self._lost(None)
        elif self.sslobj is None:
            self._received(self.view[:nbytes])
        else:
            self._decrypt(nbytes)

    def _decrypt(self, nbytes: int) -> None:
        sslobj, incoming = self.sslobj, self.incoming
        assert sslobj is not None
        assert incoming is not None
        incoming.write(self.view[:nbytes])
        while not self.closed:
            try:
                # with a buffer, read() returns a count (typeshed says bytes)
                n = cast(int, sslobj.read(_BUFFER_SIZE, self.buf))
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # the server's close_notify
                self._lost(None)
                return
            except ssl.SSLError as exc:
                self._lost(exc)
                return
            if not n:
                self._lost(None)
                return
            self._received(self.view[:n])
            if not incoming.pending and not sslobj.pending():
                break  # all read: spare the exception another read() would raise
        if not self.closed:
            self._flush_tls()

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
        """Hand ``data`` to the kernel now; what it does not take goes when writable."""
        if self.sslobj is not None:
            assert self.outgoing is not None
            self.sslobj.write(data)
            data = self.outgoing.read()
        self.t_write = perf_counter_ns()
        self._write(data)

    def _write(self, data: bytes) -> None:
        """Send raw bytes in order: behind anything still unsent, else at once, queuing
        what the kernel does not take until the socket is writable."""
        if self.unsent:
            self.unsent += data
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._lost(exc)
            return
        if sent < len(data):
            self.unsent = data[sent:]
            self.loop.add_writer(self.fd, self._on_writable)

    def _on_writable(self) -> None:
        try:
            sent = self.sock.send(self.unsent)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        self.unsent = self.unsent[sent:]
        if not self.unsent:
            self.loop.remove_writer(self.fd)

    def _flush_tls(self) -> None:
        """Send what the TLS layer wrote on its own (alerts, key-update answers)."""
        assert self.outgoing is not None
        if self.outgoing.pending:
            self._write(self.outgoing.read())

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
        """Stop reading and close the socket (a TLS connection sends close_notify
        first unless ``abort``)."""
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.fd)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.unsent:
            self.loop.remove_writer(self.fd)
            self.unsent = b""
        if not abort and self.sslobj is not None and self.outgoing is not None:
            # unwrap() writes our close_notify, then wants theirs (SSLWantReadError):
            # an HTTP client need not wait for it
            with contextlib.suppress(ssl.SSLError, ValueError):
                self.sslobj.unwrap()
            with contextlib.suppress(OSError):
                self.sock.send(self.outgoing.read())
        self.sock.close()

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
        """``(server_time, generator_delay, why_not)`` of the last response.

        ``server_time``: from just before the request's first ``send`` to the kernel's
        receive stamp of the read that brought the first response bytes. That read may
        have taken several segments and the kernel reports the newest, so for a response
        split over segments this is an upper bound of the server's time to first byte;
        it never contains a wait of ours.

        ``generator_delay``: from the kernel's receive stamp of the read that completed
        the response to the moment the awaiting task resumed with it. We stop the clock
        at the task's resumption, not at the ``recvmsg``, because both waits are ours
        and both are in ``http_req_duration``: bytes wait in the kernel until the loop
        polls, then the finished response waits in the loop's ready queue until every
        callback and task step ahead of it has run. When many VUs' responses arrive
        together, one poll reads them all within microseconds and the ready queue holds
        most of the delay: a measurement at the read would miss it (100 VUs each burning
        3 ms of CPU after their request, 20 ms server: p50 221 ms to the resumption, 57 ms
        to the read, against ``http_req_duration`` p50 246 ms and a server time of 22 ms;
        ``tests/unit/test_http.py`` has the two-response case). The stamp being the newest
        segment's makes this a lower bound.
        """
        if self.no_stamps:
            return None, None, self.no_stamps
        if not self.stamp_first or not self.stamp_done:
            return None, None, _NO_STAMP
        server = _rxtime.span_ns(self.t_write, self.stamp_first)
        delay = _rxtime.span_ns(self.stamp_done, self.t_resume)
        if server is None or delay is None:
            return None, None, _CLOCK_STEPPED
        return server, delay, ""


async def _resolve(loop: asyncio.AbstractEventLoop, host: str, port: int) -> list[tuple[Any, ...]]:
    """Addresses for ``host``: a numeric one at once, a name through the loop's resolver."""
    kwargs: dict[str, Any] = {"type": socket.SOCK_STREAM, "proto": socket.IPPROTO_TCP}
    try:
        return socket.getaddrinfo(host, port, flags=socket.AI_NUMERICHOST, **kwargs)
    except socket.gaierror:
        return list(await loop.getaddrinfo(host, port, **kwargs))


async def _open_socket(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    """A connected non-blocking TCP socket (each address in turn; the first error)."""
    first: OSError | None = None
    for family, kind, proto, _, address in await _resolve(loop, host, port):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            first = first or exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise first or OSError(f"no address found for {host}")


async def _handshake(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, ctx: ssl.SSLContext, host: str
) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
    """The client side of a TLS handshake over ``sock`` through memory BIOs."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    sslobj = ctx.wrap_bio(incoming, outgoing, server_side=False, server_hostname=host)
    while True:
        try:
            sslobj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError:
            with contextlib.suppress(OSError):  # the alert OpenSSL wrote, best effort
                sock.send(outgoing.read())
            raise
        if outgoing.pending:
            await loop.sock_sendall(sock, outgoing.read())
        data = await loop.sock_recv(sock, _HANDSHAKE_READ)
        if not data:
            raise ConnectionResetError("the server closed the connection during the handshake")
        incoming.write(data)
    if outgoing.pending:
        await loop.sock_sendall(sock, outgoing.read())
    return sslobj, incoming, outgoing


class FastClient(BaseClient):
    """HTTP/1.1 client with exact per-phase timings; see the module docstring."""

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
    ) -> None:
        self._verify = verify
        self._min_tls = min_tls_version
        self._ssl: ssl.SSLContext | None = ssl_context
        self.fresh_connection = fresh_connection
        self.timeout_s = timeout_ns / 1e9
        self.base_url = base_url
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._targets: dict[str, Target] = {}
        self._requests: dict[tuple[str, str], bytes] = {}
        self._closed = False
        _rxtime.keep_stamping_on()  # once per process, before the first connection

    # -- request building ----------------------------------------------------------------
    def _target(self, url: str) -> Target:
        target = self._targets.get(url)
        if target is None:
            if len(self._targets) >= _CACHE_LIMIT:
                self._targets.clear()
            target = parse_target(join_url(self.base_url, url))
            self._targets[url] = target
        return target

    def _encode(
        self,
        method: str,
        target: Target,
        headers: HeaderTypes | None,
        body: bytes | None,
        content_type: str | None,
    ) -> bytes:
        lines = {
            "host": ("Host", target.host_header),
            "user-agent": ("User-Agent", _USER_AGENT),
            "accept": ("Accept", "*/*"),
        }
        if self.fresh_connection:
            lines["connection"] = ("Connection", "close")
        if content_type is not None:
            lines["content-type"] = ("Content-Type", content_type)
        if body is not None or method not in _NO_BODY_METHODS:
            lines["content-length"] = ("Content-Length", str(len(body or b"")))
        if headers:
            items = headers.items() if hasattr(headers, "items") else headers
            for name, value in items:
                lines[name.lower()] = (name, value)
        head = f"{method} {target.target} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in lines.values()
        )
        data = (head + "\r\n").encode("latin-1")
        return data + body if body else data

    # -- connections ---------------------------------------------------------------------
    def _context(self) -> ssl.SSLContext:
        ctx = self._ssl
        if ctx is None:
            ctx = client_context(
                self._verify, min_tls_version=self._min_tls, alpn=("http/1.1",), shared=True
            )
            self._ssl = ctx
        return ctx

    async def _connect(self, target: Target, timeout_s: float) -> tuple[_Connection, int, int]:
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
        try:
            async with asyncio.timeout(timeout_s):
                sock = await _open_socket(loop, target.host, target.port)
                t1 = perf_counter_ns()
                connecting = t1 - t0
                if ctx is not None:
                    phase = "tls"
                    tls_parts = await _handshake(loop, sock, ctx, target.host)
                    tls = perf_counter_ns() - t1
            try:
                conn = _Connection(loop, sock, tls_parts)
            except NotImplementedError:
                raise ConfigError(
                    f"the 'fast' HTTP backend reads sockets with loop.add_reader, which "
                    f"{type(loop).__name__} does not provide; use the default selector "
                    "event loop or uvloop, or choose backend='httpx'."
                ) from None
        except TimeoutError:
            _discard(sock)
            raise TransportError(
                f"{phase} to {target.host}:{target.port} timed out after {timeout_s:g}s "
                f"({target.url})",
                url=target.url,
                kind="timeout",
            ) from None
        except ssl.SSLError as exc:
            _discard(sock)
            raise TransportError(
                f"TLS handshake with {target.host}:{target.port} failed: {exc} ({target.url})",
                url=target.url,
                kind="tls",
            ) from exc
        except OSError as exc:
            _discard(sock)
            kind = "reset" if phase == "tls" else "connect"
            what = "TLS handshake with" if phase == "tls" else "cannot connect to"
            raise TransportError(
                f"{what} {target.host}:{target.port}: {exc.strerror or exc} ({target.url})",
                url=target.url,
                kind=kind,
            ) from exc
        except BaseException:
            _discard(sock)
            raise
        return conn, connecting, tls

    async def _exchange(
        self, method: str, target: Target, data: bytes, timeout_s: float
    ) -> tuple[_Connection, int, int, int]:
        """Send one request (retrying once on a stale keep-alive connection)."""
        head = method == "HEAD"
        deadline = monotonic() + timeout_s
        for attempt in (0, 1):
            idle = None if self.fresh_connection else self._idle.get(target.origin)
            conn = None
            while idle:
                candidate = idle.pop()
                if not candidate.closed:
                    conn = candidate
                    break
            if conn is None:
                conn, connecting, tls = await self._connect(target, deadline - monotonic())
            else:
                connecting = tls = 0
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
            return conn, sending, connecting, tls
        raise AssertionError("unreachable")  # pragma: no cover

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
        if headers is None and json is None and content is None:
            key = (method, url)
            data = self._requests.get(key)
            if data is None:
                if len(self._requests) >= _CACHE_LIMIT:
                    self._requests.clear()
                data = self._encode(method, target, None, None, None)
                self._requests[key] = data
        else:
            content_type = None
            body: bytes | None
            if json is not None:
                body = _json.dumps(json, separators=(",", ":")).encode()
                content_type = "application/json"
            elif isinstance(content, str):
                body = content.encode()
            else:
                body = content
            data = self._encode(method, target, headers, body, content_type)
        timeout_s = self.timeout_s if timeout is None else timeout

        conn, sending, connecting, tls = await self._exchange(method, target, data, timeout_s)
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
            http_version=_HTTP_VERSIONS.get(conn.http_version, "HTTP/" + conn.http_version),
            url=target.url,
            method=method,
            timings=Timings(
                blocked=0,
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

    def _retire(self, conn: _Connection, *, abort: bool = False) -> None:
        """Close ``conn`` (at once: the client owns its socket)."""
        conn.close(abort=abort)

    async def aclose(self) -> None:
        """Close every idle connection (a TLS one sends close_notify first)."""
        self._closed = True
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


def _discard(sock: socket.socket | None) -> None:
    if sock is not None:
        sock.close()
