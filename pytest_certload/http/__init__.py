"""HTTP clients for load generation: one client per virtual user, pluggable backends.

``make_client("fast")`` speaks HTTP/1.1 (httptools) and HTTP/2 (h2) on sockets it reads
itself (tens of thousands of HTTP/1.1 requests per second per core, exact per-phase
timings); ``make_client("httpx")`` is httpx. ``http_version`` is ``"auto"`` (what TLS
ALPN negotiates, as k6), ``"1.1"`` or ``"2"``. Both return ``Response`` objects with
``Timings`` in integer nanoseconds and raise ``pytest_certload.errors.TransportError``
(``kind`` = connect, tls, timeout, reset or protocol) for failures below HTTP. No pytest
imports.
"""

from __future__ import annotations

from ._factory import (
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_HTTP_VERSION,
    DEFAULT_TIMEOUT_NS,
    HTTP_VERSIONS,
    check_http_version,
    make_client,
    proto_tag,
    tls_probe,
)
from ._models import Client, Headers, HTTPStatusError, Response, Timings
from .tls import client_context

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DEFAULT_HTTP_VERSION",
    "DEFAULT_TIMEOUT_NS",
    "HTTP_VERSIONS",
    "Client",
    "HTTPStatusError",
    "Headers",
    "Response",
    "Timings",
    "check_http_version",
    "client_context",
    "make_client",
    "proto_tag",
    "tls_probe",
]
