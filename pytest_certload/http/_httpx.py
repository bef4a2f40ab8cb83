"""The "httpx" backend: one ``httpx.AsyncClient`` per client object (HTTP/1.1 or HTTP/2).

``http_version``: ``"auto"`` offers HTTP/2 over TLS (httpx's ``http2=True``), ``"1.1"``
speaks HTTP/1.1 only, ``"2"`` HTTP/2 only (``http1=False``: prior knowledge on
``http://``).

Requests never queue inside the httpx pool (the pool is unbounded; the caller
bounds work in flight), which side-steps httpcore's O(N²) request assignment.
Timings come from httpcore's ``trace`` request extension.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from time import perf_counter_ns
from typing import Any, cast

import anyio
import httpx

from ..errors import TransportError
from ._models import BaseClient, Headers, HeaderTypes, ParamTypes, Response, Timings, join_url
from .tls import TLSVersionSpec, VerifyTypes, client_context

__all__ = ["HttpxClient"]

_CLOSE_TIMEOUT_S = 5.0
_NO_STAMPS = (
    "the httpx backend reads its sockets through httpcore, which keeps the kernel's "
    "receive timestamps from us; the fast backend measures it"
)


class _Trace:
    """Collects httpcore trace events as ``perf_counter_ns`` stamps."""

    __slots__ = ("marks",)

    def __init__(self) -> None:
        self.marks: dict[str, int] = {}

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        # "connection.connect_tcp.started", "http11.send_request_headers.complete", ...
        self.marks.setdefault(name.split(".", 1)[1], perf_counter_ns())

    def timings(self, t0: int, t_end: int) -> Timings:
        m = self.marks

        def span(start: str, end: str) -> int | None:
            a, b = m.get(start), m.get(end)
            return None if a is None or b is None else b - a

        connecting = span("connect_tcp.started", "connect_tcp.complete")
        tls = span("start_tls.started", "start_tls.complete")
        first = m.get("connect_tcp.started", m.get("send_request_headers.started"))
        sent = m.get("send_request_body.complete")
        headers_in = m.get("receive_response_headers.complete")
        sending = span("send_request_headers.started", "send_request_body.complete")
        waiting = None if sent is None or headers_in is None else headers_in - sent
        receiving = None if headers_in is None else t_end - headers_in
        duration = None
        if sending is not None and waiting is not None and receiving is not None:
            duration = sending + waiting + receiving
        return Timings(
            blocked=None if first is None else first - t0,
            connecting=0 if connecting is None and first is not None else connecting,
            tls_handshaking=0 if tls is None and first is not None else tls,
            sending=sending,
            waiting=waiting,
            receiving=receiving,
            duration=duration,
            delay_unmeasured=_NO_STAMPS,
        )


def _transport_error(exc: httpx.TransportError, method: str, url: str) -> TransportError:
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, httpx.TimeoutException):
        kind = "timeout"
    elif isinstance(exc, httpx.ConnectError):
        is_tls = isinstance(cause, ssl.SSLError) or "SSL" in text or "CERTIFICATE" in text
        kind = "tls" if is_tls else "connect"
    elif isinstance(exc, httpx.RemoteProtocolError):
        lowered = text.lower()
        closed = "disconnected" in lowered or "peer closed" in lowered
        kind = "reset" if closed else "protocol"
    elif isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.CloseError):
        kind = "reset"
    elif isinstance(exc, httpx.ProtocolError | httpx.UnsupportedProtocol):
        kind = "protocol"
    else:
        kind = "error"
    return TransportError(f"{method} {url}: {kind} error: {text}", url=url, kind=kind)


class HttpxClient(BaseClient):
    """``httpx.AsyncClient`` behind the common client interface."""

    backend = "httpx"

    def __init__(
        self,
        *,
        verify: VerifyTypes = True,
        http_version: str = "auto",
        fresh_connection: bool = False,
        timeout_ns: int = 60_000_000_000,
        min_tls_version: TLSVersionSpec | None = None,
        base_url: str | None = None,
    ) -> None:
        http2 = http_version != "1.1"
        # httpcore sets its ALPN list on the context at every connection: a context shared
        # by clients that all set the same list is never changed by them (see .tls)
        ctx = client_context(
            verify,
            min_tls_version=min_tls_version,
            alpn=("http/1.1", "h2") if http2 else ("http/1.1",),
            shared=True,
        )
        limits = httpx.Limits(
            max_connections=None,
            max_keepalive_connections=0 if fresh_connection else 64,
        )
        self.timeout_s = timeout_ns / 1e9
        self.base_url = base_url
        self.http2 = http2
        self._client = httpx.AsyncClient(
            verify=ctx,
            http1=http_version != "2",
            http2=http2,
            limits=limits,
            timeout=self.timeout_s,
            trust_env=False,
            follow_redirects=False,
            headers={"User-Agent": "pytest-certload"},
        )
        self._fresh = fresh_connection

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
        full_url = join_url(self.base_url, url)
        method = method.upper()
        trace = _Trace()
        if self._fresh:
            pairs = list(headers.items() if isinstance(headers, Mapping) else headers or ())
            headers = [*pairs, ("Connection", "close")]
        t0 = perf_counter_ns()
        try:
            resp = await self._client.request(
                method,
                full_url,
                params=cast(Any, params),
                headers=headers,
                json=json,
                content=content,
                timeout=self.timeout_s if timeout is None else timeout,
                extensions={"trace": trace},
            )
        except httpx.TransportError as exc:
            raise _transport_error(exc, method, full_url) from exc
        t_end = perf_counter_ns()
        return Response(
            resp.status_code,
            Headers._from_raw(list(resp.headers.raw)),
            resp.content,
            http_version=resp.http_version,
            url=str(resp.url),
            method=method,
            timings=trace.timings(t0, t_end),
        )

    async def aclose(self) -> None:
        with anyio.move_on_after(_CLOSE_TIMEOUT_S, shield=True):
            await self._client.aclose()
