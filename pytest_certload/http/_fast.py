"""The "fast" backend: HTTP/1.1 on asyncio protocols with the httptools parser.

One keep-alive connection per client (a client used by one task at a time
keeps exactly one; concurrent use opens more). Responses are read into a
buffer the connection owns (``asyncio.BufferedProtocol``), which avoids the
per-read 256 KiB allocation of stock asyncio sockets. Works on the stock
asyncio loop and on uvloop; under anyio it needs the asyncio backend.
"""

from __future__ import annotations

import asyncio
import json as _json
import ssl
from time import monotonic, perf_counter_ns
from typing import Any

import anyio
from httptools import HttpParserError, HttpResponseParser

from ..errors import ConfigError, TransportError
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
_CACHE_LIMIT = 512
_CLOSE_TIMEOUT_S = 2.0
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})
_HTTP_VERSIONS = {"1.1": "HTTP/1.1", "1.0": "HTTP/1.0"}


async def _settle() -> None:
    """Let the loop run an aborted transport's close callbacks (failure paths only)."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


class _Reset(Exception):
    """The connection ended before a complete response (internal)."""

    def __init__(self, detail: str, *, got_bytes: bool) -> None:
        super().__init__(detail)
        self.got_bytes = got_bytes


class _Connection(asyncio.BufferedProtocol):
    """One HTTP/1.1 connection: sends a request, parses one response at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray(_BUFFER_SIZE)
        self.view = memoryview(self.buf)
        self.parser = HttpResponseParser(self)
        self.parser_dirty = False
        self.closed = False
        #: resolved by connection_lost: closing a (TLS) transport takes loop iterations
        self.lost: asyncio.Future[None] = loop.create_future()
        self.uses = 0
        self.waiter: asyncio.Future[None] | None = None
        self._reset_response(False)

    def _reset_response(self, head: bool) -> None:
        self.head = head
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.t_first = 0
        self.t_sent = 0
        self.t_done = 0
        self.headers_done = False
        self.complete = False
        self.keep_alive = True
        self.http_version = "1.1"

    # -- asyncio protocol callbacks --------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        if not self.t_first:
            self.t_first = perf_counter_ns()
        if self.waiter is None or self.complete:
            # bytes nobody asked for: the connection cannot be trusted any more
            self._close(abort=True)
            return
        try:
            self.parser.feed_data(self.view[:nbytes])
        except HttpParserError as exc:
            if not self.complete:
                self._fail(TransportError(f"invalid HTTP response: {exc}", kind="protocol"))
            self._close(abort=True)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.lost.done():
            self.lost.set_result(None)
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
        self.complete = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _on_timeout(self) -> None:
        self._fail(TimeoutError())

    def _close(self, *, abort: bool = False) -> None:
        self.closed = True
        transport = self.transport
        if transport is not None:
            if abort:
                transport.abort()
            else:
                transport.close()

    async def roundtrip(self, data: bytes, head: bool, timeout_s: float) -> int:
        """Send ``data`` and wait for the response; returns the ns the write took."""
        if self.parser_dirty:
            self.parser = HttpResponseParser(self)
            self.parser_dirty = False
        self._reset_response(head)
        self.uses += 1
        waiter = self.loop.create_future()
        self.waiter = waiter
        transport = self.transport
        assert transport is not None  # set in connection_made
        handle = self.loop.call_later(timeout_s, self._on_timeout)
        try:
            t0 = perf_counter_ns()
            transport.write(data)
            self.t_sent = t_sent = perf_counter_ns()
            await waiter
            return t_sent - t0
        finally:
            handle.cancel()
            self.waiter = None


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
        self._closing: set[_Connection] = set()

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
        conn = _Connection(loop)
        ctx = self._context() if target.scheme == "https" else None
        t0 = perf_counter_ns()
        connecting = tls = 0
        phase = "connect"
        try:
            async with asyncio.timeout(timeout_s):
                await loop.create_connection(lambda: conn, target.host, target.port)
                t1 = perf_counter_ns()
                connecting = t1 - t0
                if ctx is not None:
                    phase = "tls"
                    plain = conn.transport
                    assert plain is not None
                    try:
                        tls_transport = await loop.start_tls(
                            plain, conn, ctx, server_hostname=target.host
                        )
                    except BaseException:
                        plain.abort()
                        raise
                    if tls_transport is None:  # pragma: no cover - only without ssl support
                        raise ssl.SSLError("start_tls returned no transport")
                    conn.transport = tls_transport
                    tls = perf_counter_ns() - t1
        except TimeoutError:
            conn._close(abort=True)
            await _settle()
            raise TransportError(
                f"{phase} to {target.host}:{target.port} timed out after {timeout_s:g}s "
                f"({target.url})",
                url=target.url,
                kind="timeout",
            ) from None
        except ssl.SSLError as exc:
            conn._close(abort=True)
            await _settle()
            raise TransportError(
                f"TLS handshake with {target.host}:{target.port} failed: {exc} ({target.url})",
                url=target.url,
                kind="tls",
            ) from exc
        except OSError as exc:
            conn._close(abort=True)
            await _settle()
            kind = "reset" if phase == "tls" else "connect"
            what = "TLS handshake with" if phase == "tls" else "cannot connect to"
            raise TransportError(
                f"{what} {target.host}:{target.port}: {exc.strerror or exc} ({target.url})",
                url=target.url,
                kind=kind,
            ) from exc
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
        if conn.keep_alive and not self.fresh_connection and not self._closed and not conn.closed:
            self._idle.setdefault(target.origin, []).append(conn)
        else:
            self._retire(conn)
        chunks = conn.body
        body_bytes = chunks[0] if len(chunks) == 1 else b"".join(chunks)
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
            ),
        )

    def _retire(self, conn: _Connection, *, abort: bool = False) -> None:
        """Close ``conn`` and remember it until its transport is really gone."""
        conn._close(abort=abort)
        closing = self._closing
        if len(closing) > 64:
            closing.difference_update([c for c in closing if c.lost.done()])
        if not conn.lost.done():
            closing.add(conn)

    async def aclose(self) -> None:
        """Close every connection and wait (at most 2 s, shielded) until they are gone.

        Closing a TLS connection exchanges close_notify, which needs the event
        loop; returning before it finishes would leak sockets when the loop ends.
        """
        self._closed = True
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                self._retire(conn)
        pending = [c for c in self._closing if not c.lost.done()]
        self._closing.clear()
        if not pending:
            return
        with anyio.move_on_after(_CLOSE_TIMEOUT_S, shield=True):
            await asyncio.wait([c.lost for c in pending])
        stragglers = [c for c in pending if not c.lost.done()]
        if stragglers:
            for conn in stragglers:
                conn._close(abort=True)
            with anyio.move_on_after(_CLOSE_TIMEOUT_S, shield=True):
                await asyncio.wait([c.lost for c in stragglers])
