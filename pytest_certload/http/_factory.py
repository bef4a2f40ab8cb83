"""``make_client``: backend selection, validation and the TLS handshake probe."""

from __future__ import annotations

from ..errors import ConfigError
from ._fast import FastClient
from ._models import Client, Response, join_url
from .tls import TLSVersionSpec, VerifyTypes, client_context

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "DEFAULT_TIMEOUT_NS", "make_client", "tls_probe"]

#: the backends ``make_client`` accepts; the first is the default
BACKENDS: tuple[str, ...] = ("fast", "httpx")
DEFAULT_BACKEND = "fast"
#: 60 s, as k6
DEFAULT_TIMEOUT_NS = 60_000_000_000


def make_client(
    backend: str | None = None,
    *,
    verify: VerifyTypes = True,
    http2: bool = False,
    fresh_connection: bool = False,
    timeout_ns: int = DEFAULT_TIMEOUT_NS,
    min_tls_version: TLSVersionSpec | None = None,
    base_url: str | None = None,
) -> Client:
    """A new client for one virtual user.

    ``backend``: ``"fast"`` (HTTP/1.1, asyncio/uvloop, exact timings) or ``"httpx"``
    (HTTP/1.1 or HTTP/2); unset, ``"fast"``, or ``"httpx"`` when ``http2=True``.
    ``verify``: True (system trust store), False, a CA bundle path, or an
    ``ssl.SSLContext`` (used as is; httpx modifies it, so never share one between
    clients). ``fresh_connection``: a new TCP (+TLS) connection per
    request, closed afterwards. ``timeout_ns`` bounds each whole request, in integer
    nanoseconds (a request's own ``timeout=`` argument is in seconds, as in httpx).
    """
    if backend is None:
        backend = "httpx" if http2 else DEFAULT_BACKEND
    if not isinstance(timeout_ns, int) or isinstance(timeout_ns, bool) or timeout_ns <= 0:
        raise ConfigError(
            f"timeout_ns={timeout_ns!r} is not valid; use a positive integer number of "
            f"nanoseconds, e.g. parse_duration_ns('30s')."
        )
    if backend == "fast":
        if http2:
            raise ConfigError(
                "make_client(backend='fast', http2=True): the 'fast' backend speaks HTTP/1.1 "
                "only; leave backend unset (http2=True then selects 'httpx') or give "
                "backend='httpx'."
            )
        # validate verify/min_tls now rather than on the first request
        ssl_ctx = None
        if verify is not False or min_tls_version is not None:
            ssl_ctx = client_context(
                verify, min_tls_version=min_tls_version, alpn=("http/1.1",), shared=True
            )
        return FastClient(
            verify=verify,
            fresh_connection=fresh_connection,
            timeout_ns=timeout_ns,
            min_tls_version=min_tls_version,
            base_url=base_url,
            ssl_context=ssl_ctx,
        )
    if backend == "httpx":
        from ._httpx import HttpxClient

        return HttpxClient(
            verify=verify,
            http2=http2,
            fresh_connection=fresh_connection,
            timeout_ns=timeout_ns,
            min_tls_version=min_tls_version,
            base_url=base_url,
        )
    raise ConfigError(
        f"{backend!r} is not a valid HTTP backend; use one of "
        f"{', '.join(repr(b) for b in BACKENDS)} (default {DEFAULT_BACKEND!r})."
    )


async def tls_probe(
    url: str,
    *,
    verify: VerifyTypes = True,
    timeout_ns: int = DEFAULT_TIMEOUT_NS,
    path: str = "/",
    min_tls_version: TLSVersionSpec | None = None,
) -> Response:
    """One new TCP connection, TLS handshake and small GET of ``path`` on ``url``'s origin.

    The response's timings carry ``connecting`` and ``tls_handshaking``. Raises
    ``TransportError`` like any request.
    """
    client = make_client(
        "fast",
        verify=verify,
        fresh_connection=True,
        timeout_ns=timeout_ns,
        min_tls_version=min_tls_version,
    )
    scheme, sep, rest = url.partition("://")
    origin = f"{scheme}{sep}{rest.split('/', 1)[0]}" if sep else url
    try:
        return await client.get(join_url(origin, path))
    finally:
        await client.aclose()
