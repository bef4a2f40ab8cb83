"""Readiness probes: wait until a port, a TLS handshake or an HTTP GET succeeds.

* :func:`wait_for_port`, :func:`wait_for_tls`, :func:`wait_for_http` poll with a
  monotonic deadline and backoff (50 ms doubling to 250 ms). On timeout they raise
  :class:`~pytest_certload.errors.ServiceTimeout` saying what was awaited, where, for how
  long, how many attempts were made and the last failure, with the target's log tail
  attached as a note; when the target's process exits they stop at once with a
  :class:`~pytest_certload.errors.ServiceError`.
* :func:`wait_until` is the loop under them, for a service with a readiness check of
  its own (a PostgreSQL login).
* :func:`probe_tls` and :func:`probe_http` are one attempt each; :func:`fetch` is one
  request that hands back the whole response (the pre-flight check reads its body).

They are written against :class:`~pytest_certload.stack.protocols.Readiness`. HTTP goes
through the project's own client (``make_client("fast", fresh_connection=True)``, so a
probe never reuses a pooled connection and needs the asyncio backend); the TLS handshake
probe, which reports the negotiated protocol version, is an anyio TLS stream. Every SSL
context comes from :func:`pytest_certload.http.tls.client_context`: ``verify`` is True
(the system trust store), False (no verification), a CA bundle path or an
``ssl.SSLContext``; ``tls_version`` pins the protocol (minimum = maximum).

Nothing here imports pytest.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Mapping, Sequence
from typing import Protocol
from urllib.parse import urlsplit

import anyio
from anyio.streams.tls import TLSAttribute

from ..errors import ServiceError, ServiceTimeout, TransportError
from ..http import Response, make_client
from ..http.tls import TLSVersionSpec, VerifyTypes, client_context
from ..units import NS_PER_MS, NS_PER_S
from .protocols import Readiness

__all__ = [
    "PROBE_TIMEOUT_NS",
    "Attempt",
    "fetch",
    "probe_http",
    "probe_tls",
    "wait_for_http",
    "wait_for_port",
    "wait_for_tls",
    "wait_until",
]

#: how long one probe request may take (a wait's own deadline cuts it shorter)
PROBE_TIMEOUT_NS = 5 * NS_PER_S
_POLL_NS = 50 * NS_PER_MS  # first retry after 50 ms, backing off to 250 ms
_MAX_POLL_NS = 250 * NS_PER_MS
_HTTP_ALPN = ("http/1.1",)  # what the "fast" client speaks


# --------------------------------------------------------------------------- polling


class Attempt(Protocol):
    """One readiness attempt: None when ready, else a short reason (the last one is
    reported on timeout)."""

    async def __call__(self) -> str | None: ...


def _with_log_note(exc: BaseException, target: Readiness | None, lines: int = 40) -> None:
    if target is None:
        return
    tail = target.log_tail(lines)
    exc.add_note(
        f"last {lines} log lines of {target.name}:\n{tail}"
        if tail
        else f"{target.name} has written no log output"
    )


def _describe(exc: BaseException) -> str:
    """``Type: message`` of the innermost cause (clients wrap refused connects)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[-1])
    return f"{type(exc).__name__}: {exc}"


def _format_seconds(ns: int) -> str:
    return f"{ns / NS_PER_S:.1f} s"


async def wait_until(
    attempt: Attempt,
    *,
    what: str,
    where: str,
    timeout_ns: int,
    target: Readiness | None = None,
) -> None:
    """Call ``attempt`` until it returns None (ready) or ``timeout_ns`` passes.

    Each attempt is cut short at the deadline. Raises ServiceTimeout (``"<target>: <what>
    at <where> did not succeed within ..."``), or ServiceError as soon as ``target``
    reports an exit status; both carry the target's log tail as a note.
    """
    started = time.monotonic_ns()
    deadline = started + timeout_ns
    delay = _POLL_NS
    last_reason = "no attempt finished"
    attempts = 0
    while True:
        if target is not None:
            status = target.exit_status()
            if status is not None:
                exc: ServiceError = ServiceError(
                    f"{target.name} exited with status {status} while waiting for {what} "
                    f"at {where}; see its log below."
                )
                _with_log_note(exc, target)
                raise exc
        remaining = deadline - time.monotonic_ns()
        attempts += 1
        with anyio.move_on_after(max(remaining, 1) / NS_PER_S):
            reason = await attempt()
            if reason is None:
                return
            last_reason = reason
        now = time.monotonic_ns()
        if now >= deadline:
            name = target.name if target is not None else "service"
            exc = ServiceTimeout(
                f"{name}: {what} at {where} did not succeed within "
                f"{_format_seconds(timeout_ns)} ({attempts} attempts; last: {last_reason})."
            )
            _with_log_note(exc, target)
            raise exc
        await anyio.sleep(min(delay, max(deadline - now, 0)) / NS_PER_S)
        delay = min(delay * 2, _MAX_POLL_NS)


# --------------------------------------------------------------------------- TCP


async def wait_for_port(
    host: str,
    port: int,
    *,
    timeout_ns: int,
    target: Readiness | None = None,
) -> None:
    """Wait until a TCP connection to ``host:port`` succeeds."""

    async def attempt() -> str | None:
        try:
            stream = await anyio.connect_tcp(host, port)
        except OSError as exc:
            return _describe(exc)
        await stream.aclose()
        return None

    await wait_until(
        attempt,
        what="a TCP connection",
        where=f"{host}:{port}",
        timeout_ns=timeout_ns,
        target=target,
    )


# --------------------------------------------------------------------------- TLS


def _context(
    verify: VerifyTypes, tls_version: TLSVersionSpec | None, alpn: tuple[str, ...] = ()
) -> ssl.SSLContext:
    return client_context(
        verify, min_tls_version=tls_version, max_tls_version=tls_version, alpn=alpn
    )


def _trust(verify: VerifyTypes) -> str:
    """How ``verify`` verifies, for a wait's description."""
    if verify is False:
        return " (unverified)"
    if verify is True:
        return " verified by the system trust store"
    if isinstance(verify, ssl.SSLContext):
        return " verified by the given SSL context"
    return f" verified by {os.fspath(verify)}"


async def _handshake(
    host: str, port: int, context: ssl.SSLContext, server_hostname: str | None
) -> str:
    stream = await anyio.connect_tcp(
        host,
        port,
        ssl_context=context,
        tls_hostname=server_hostname or host,
        tls_standard_compatible=False,
    )
    try:
        version: str = stream.extra(TLSAttribute.tls_version)
    finally:
        await stream.aclose()
    return version


async def probe_tls(
    host: str,
    port: int,
    *,
    verify: VerifyTypes,
    server_hostname: str | None = None,
    tls_version: TLSVersionSpec | None = None,
) -> str:
    """One TLS handshake; returns the negotiated protocol (e.g. 'TLSv1.3').

    Raises OSError / ssl.SSLError on failure.
    """
    return await _handshake(host, port, _context(verify, tls_version), server_hostname)


async def wait_for_tls(
    host: str,
    port: int,
    *,
    verify: VerifyTypes,
    timeout_ns: int,
    server_hostname: str | None = None,
    tls_version: TLSVersionSpec | None = None,
    target: Readiness | None = None,
) -> None:
    """Wait until a TLS handshake with ``host:port``, verified as ``verify`` says, succeeds."""
    context = _context(verify, tls_version)

    async def attempt() -> str | None:
        try:
            await _handshake(host, port, context, server_hostname)
        except (OSError, ssl.SSLError) as exc:
            return _describe(exc)
        return None

    await wait_until(
        attempt,
        what="a TLS handshake" + _trust(verify),
        where=f"{host}:{port}",
        timeout_ns=timeout_ns,
        target=target,
    )


# --------------------------------------------------------------------------- HTTP


async def _request(
    url: str,
    context: ssl.SSLContext | None,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    timeout_ns: int = PROBE_TIMEOUT_NS,
) -> Response:
    """One request on a fresh connection, closed afterwards. Raises TransportError."""
    client = make_client(
        "fast",
        verify=context if context is not None else False,
        fresh_connection=True,
        timeout_ns=timeout_ns,
    )
    try:
        return await client.request(method, url, headers=headers)
    finally:
        await client.aclose()


def _http_context(
    url: str, verify: VerifyTypes, tls_version: TLSVersionSpec | None
) -> ssl.SSLContext | None:
    if urlsplit(url).scheme.lower() != "https":
        return None
    return _context(verify, tls_version, _HTTP_ALPN)


async def fetch(
    url: str,
    *,
    verify: VerifyTypes = False,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    timeout_ns: int = PROBE_TIMEOUT_NS,
) -> Response:
    """One request on a fresh connection, closed afterwards, TLS verified as ``verify``
    says. Raises :class:`~pytest_certload.errors.TransportError` (its ``kind`` and
    ``__cause__`` say what failed below HTTP)."""
    context = _http_context(url, verify, None)
    return await _request(url, context, method=method, headers=headers, timeout_ns=timeout_ns)


async def probe_http(
    url: str,
    *,
    verify: VerifyTypes = False,
    tls_version: TLSVersionSpec | None = None,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    timeout_ns: int = PROBE_TIMEOUT_NS,
) -> tuple[int, bytes, str]:
    """One request on a fresh connection: ``(status, body, tls_version or '')``.

    The HTTP client does not report the TLS version, so for an https URL it is what a
    handshake with the same SSL context negotiates right after the request (with
    ``tls_version`` pinned, the request itself could use no other). Raises
    :class:`~pytest_certload.errors.TransportError` when the request fails, OSError /
    ssl.SSLError when the version handshake does.
    """
    context = _http_context(url, verify, tls_version)
    response = await _request(url, context, method=method, headers=headers, timeout_ns=timeout_ns)
    version = ""
    if context is not None:
        parts = urlsplit(url)  # the request above checked it is an https URL with a host
        with anyio.fail_after(timeout_ns / NS_PER_S):
            version = await _handshake(parts.hostname or "", parts.port or 443, context, None)
    return response.status_code, response.content, version


async def wait_for_http(
    url: str,
    *,
    expect_status: int | Sequence[int] = 200,
    verify: VerifyTypes = False,
    timeout_ns: int,
    target: Readiness | None = None,
) -> None:
    """Wait until ``GET url`` answers with ``expect_status`` (TLS verified as ``verify``
    says)."""
    wanted = (expect_status,) if isinstance(expect_status, int) else tuple(expect_status)
    context = _http_context(url, verify, None)

    async def attempt() -> str | None:
        try:
            response = await _request(url, context)
        except TransportError as exc:
            return _describe(exc)
        if response.status_code in wanted:
            return None
        return f"status {response.status_code}: {response.content[:120]!r}"

    await wait_until(
        attempt,
        what=f"GET answering {' or '.join(map(str, wanted))}",
        where=url,
        timeout_ns=timeout_ns,
        target=target,
    )
