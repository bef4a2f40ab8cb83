"""HTTP clients for load generation: one client per virtual user, pluggable backends.

``make_client("fast")`` is an HTTP/1.1 client on asyncio protocols and httptools
(tens of thousands of requests per second per core, exact per-phase timings);
``make_client("httpx", http2=True)`` covers HTTP/2. Both return ``Response``
objects with ``Timings`` in integer nanoseconds and raise
``pytest_certload.errors.TransportError`` (``kind`` = connect, tls, timeout,
reset or protocol) for failures below HTTP. No pytest imports.
"""

from __future__ import annotations

from ._factory import BACKENDS, DEFAULT_BACKEND, DEFAULT_TIMEOUT_NS, make_client, tls_probe
from ._models import Client, Headers, HTTPStatusError, Response, Timings
from .tls import client_context

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "DEFAULT_TIMEOUT_NS",
    "Client",
    "HTTPStatusError",
    "Headers",
    "Response",
    "Timings",
    "client_context",
    "make_client",
    "tls_probe",
]
