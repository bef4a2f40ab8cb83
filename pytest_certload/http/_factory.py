"""``make_client``: backend selection, validation and the TLS handshake probe."""

from __future__ import annotations

from ..errors import ConfigError
from ._fast import ALPN, HTTP_VERSIONS, FastClient
from ._models import Client, Response, join_url
from .tls import TLSVersionSpec, VerifyTypes, client_context

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DEFAULT_HTTP_VERSION",
    "DEFAULT_TIMEOUT_NS",
    "HTTP_VERSIONS",
    "check_http_version",
    "make_client",
    "proto_tag",
    "tls_probe",
]

#: the backends ``make_client`` accepts; the first is the default
BACKENDS: tuple[str, ...] = ("fast", "httpx")
DEFAULT_BACKEND = "fast"
#: 60 s, as k6
DEFAULT_TIMEOUT_NS = 60_000_000_000
#: what TLS ALPN negotiates (h2 when the server offers it), as k6
DEFAULT_HTTP_VERSION = "auto"
#: ``Response.http_version`` -> k6's ``proto`` tag value
_PROTO_TAGS = {"HTTP/2": "HTTP/2.0", "HTTP/2.0": "HTTP/2.0", "HTTP/1.1": "HTTP/1.1"}


def proto_tag(http_version: str) -> str:
    """k6's ``proto`` tag for a response's ``http_version``: ``HTTP/1.1``, ``HTTP/2.0``
    (httpx and our ``Response`` say ``HTTP/2``), ``HTTP/1.0``."""
    return _PROTO_TAGS.get(http_version, http_version)


def check_http_version(http_version: str, http2: bool, where: str) -> str:
    """``http_version`` validated; ``http2=True`` (the older spelling of "offer HTTP/2")
    cannot go with ``"1.1"``. ``where`` names the caller in the message."""
    if http_version not in HTTP_VERSIONS:
        raise ConfigError(
            f"{http_version!r} is not a valid http_version ({where}); use 'auto' (what TLS "
            "ALPN negotiates: HTTP/2 when the server offers it, as k6), '1.1' or '2'."
        )
    if http2 and http_version == "1.1":
        raise ConfigError(
            f"{where}: http2=True asks for HTTP/2 but http_version='1.1' allows only "
            "HTTP/1.1; drop http2=True (http_version alone decides), or use "
            "http_version='auto' or '2'."
        )
    return http_version


def make_client(
    backend: str | None = None,
    *,
    verify: VerifyTypes = True,
    http2: bool = False,
    fresh_connection: bool = False,
    timeout_ns: int = DEFAULT_TIMEOUT_NS,
    min_tls_version: TLSVersionSpec | None = None,
    base_url: str | None = None,
    http_version: str = DEFAULT_HTTP_VERSION,
) -> Client:
    """A new client for one virtual user.

    ``backend``: ``"fast"`` (the default: HTTP/1.1 and HTTP/2, asyncio/uvloop, exact
    timings) or ``"httpx"``. ``http_version``: ``"auto"`` (the default: TLS ALPN offers
    ``h2`` and ``http/1.1`` and the server picks, as k6; plain ``http://`` is HTTP/1.1),
    ``"1.1"`` (HTTP/1.1 only) or ``"2"`` (HTTP/2 only: over TLS the server must pick
    ``h2``; on ``http://`` it is spoken with prior knowledge, RFC 9113 §3.3).
    ``http2=True`` is the older way to ask for HTTP/2 and changes nothing beside
    ``"auto"`` or ``"2"``. ``verify``: True (system trust store), False, a CA bundle
    path, or an ``ssl.SSLContext`` (used as is, its ALPN list included; httpx modifies
    it, so never share one between clients). ``fresh_connection``: a new TCP (+TLS)
    connection per request, closed afterwards. ``timeout_ns`` bounds each whole
    request, in integer nanoseconds (a request's own ``timeout=`` argument is in
    seconds, as in httpx).
    """
    if backend is None:
        backend = DEFAULT_BACKEND
    check_http_version(http_version, http2, "make_client")
    if not isinstance(timeout_ns, int) or isinstance(timeout_ns, bool) or timeout_ns <= 0:
        raise ConfigError(
            f"timeout_ns={timeout_ns!r} is not valid; use a positive integer number of "
            f"nanoseconds, e.g. parse_duration_ns('30s')."
        )
    if backend == "fast":
        # validate verify/min_tls now rather than on the first request
        ssl_ctx = None
        if verify is not False or min_tls_version is not None:
            ssl_ctx = client_context(
                verify, min_tls_version=min_tls_version, alpn=ALPN[http_version], shared=True
            )
        return FastClient(
            verify=verify,
            fresh_connection=fresh_connection,
            timeout_ns=timeout_ns,
            min_tls_version=min_tls_version,
            base_url=base_url,
            ssl_context=ssl_ctx,
            http_version=http_version,
        )
    if backend == "httpx":
        from ._httpx import HttpxClient

        return HttpxClient(
            verify=verify,
            http_version=http_version,
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
