"""The ASGI application: certctl's middleware chains around a small router."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, NoReturn
from urllib.parse import parse_qsl

from psycopg_pool import AsyncConnectionPool

from ..units import NS_PER_MS
from ._acme import AcmeProblem, gc_loop
from ._ca import LocalCA
from ._config import ApiKey, DoubleConfig
from ._db import AuditWriter, make_pool
from ._faults import FaultRule, FaultState
from ._http import (
    TEXT,
    HttpError,
    Request,
    Response,
    Router,
    TokenBuckets,
    error_response,
    plain_error,
)
from ._routes import FAULTS_PATH, PUBLIC_PATHS, build_router

__all__ = ["DoubleApp", "DroppedByFault"]

log = logging.getLogger("certctl_double")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ANONYMOUS = ApiKey("anonymous", "", False)

_SECURITY_HEADERS = [
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'self'"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
]


def _first_values(raw_query: bytes) -> dict[str, str]:
    """The query string as certctl's handlers read it: ``url.Values.Get`` returns the
    first value of a repeated name."""
    query: dict[str, str] = {}
    if raw_query:
        for name, value in parse_qsl(raw_query.decode("latin-1")):
            query.setdefault(name, value)
    return query


def _injected_error(rule: FaultRule, request_id: str) -> Response:
    """The error a fault rule injects: certctl's handler error, or its ACME problem
    document (``serverInternal`` 'ACME server error' for a 5xx, as FinalizeOrder's)."""
    if rule.error_shape == "acme":
        kind = "serverInternal" if rule.error_status >= 500 else "malformed"
        detail = rule.error_detail or "ACME server error"
        return AcmeProblem(rule.error_status, kind, detail).response()
    return error_response(rule.error_status, rule.error_detail or "injected fault", request_id)


class DroppedByFault(Exception):
    """Raised after a partial response to make the server abort the connection/stream."""


class DoubleApp:
    """certctl's request handling, backed by PostgreSQL and a local CA."""

    def __init__(self, config: DoubleConfig, ca: LocalCA) -> None:
        self.config = config
        self.ca = ca
        self.pool: AsyncConnectionPool = make_pool(config)
        self.audit = AuditWriter(self.pool)
        self.faults = FaultState()
        if config.faults:
            self.faults.apply(config.faults)
        self.public_limiter = TokenBuckets(config.rate_limit_rps, config.rate_limit_burst)
        self.api_limiter = TokenBuckets(config.rate_limit_rps, config.rate_limit_burst)
        self.router: Router = build_router()
        self.key_digests = [(hashlib.sha256(k.key.encode()).digest(), k) for k in config.api_keys]
        self.counter = itertools.count(1)
        self.acme_order_buckets: dict[str, list[float]] = {}
        self.acme_placeholders_ready = False
        self.background: list[asyncio.Task[None]] = []
        self.log_requests = config.log_level in ("debug", "info")

    def next_id(self, prefix: str) -> str:
        """certctl-style ids: ``<prefix>-<unix nanos>-<counter>``."""
        return f"{prefix}-{time.time_ns()}-{next(self.counter)}"

    # -- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        await self.pool.open(wait=False)
        self.audit.start()
        if self.config.acme_enabled and self.config.acme_gc_interval_ns > 0:
            self.background.append(asyncio.get_running_loop().create_task(gc_loop(self)))

    async def shutdown(self) -> None:
        for task in self.background:
            task.cancel()
        await self.audit.stop()
        await self.pool.close(timeout=2.0)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter_ns()
        method: str = scope["method"]
        path: str = scope["path"]
        request_id = str(uuid.uuid4())
        faults = self.faults
        controlled = path != FAULTS_PATH
        rule = faults.match(method, path) if controlled and faults.rules else None
        response: Response | None = None
        if rule is not None:
            if rule.latency is not None:
                await asyncio.sleep(rule.latency.sample_s(faults.rng))
            if rule.drop_rate and faults.rng.random() < rule.drop_rate:
                await self._drop(send)
            if rule.error_rate and faults.rng.random() < rule.error_rate:
                response = _injected_error(rule, request_id)
        if response is None:
            response = await self._dispatch(scope, receive, method, path, request_id)
        if controlled:
            while faults.stall_until and (remaining := faults.stall_remaining_s()) > 0:
                await asyncio.sleep(remaining)
        headers = [(b"x-request-id", request_id.encode())]
        if response.content_type is not None:
            headers.append((b"content-type", response.content_type))
        headers.extend(response.headers)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        # a HEAD answer has headers only, whatever its handler wrote (as in Go's server)
        body = b"" if method == "HEAD" else response.body
        await send({"type": "http.response.body", "body": body})
        if self.log_requests:
            log.info(
                "request method=%s path=%s status=%d duration_ms=%.3f request_id=%s",
                method,
                path,
                response.status,
                (time.perf_counter_ns() - started) / NS_PER_MS,
                request_id,
            )

    async def _drop(self, send: Send) -> NoReturn:
        # ASGI cannot close a socket. Promise a body that never comes, then fail:
        # granian aborts the HTTP/1.1 connection or resets the HTTP/2 stream.
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [(b"content-length", b"64")],
            }
        )
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        raise DroppedByFault("connection dropped by fault injection")

    async def _read_body(self, receive: Receive) -> tuple[bytes, bool]:
        limit = self.config.max_body_size
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return b"", True
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks), False

    async def _dispatch(
        self, scope: Scope, receive: Receive, method: str, path: str, request_id: str
    ) -> Response:
        public = path in PUBLIC_PATHS
        response = await self._chain(scope, receive, method, path, request_id, public)
        # certctl's no-auth chain always sets security headers; on the authenticated
        # chain the rate limiter takes the place of that middleware when it is on.
        if public or not self.config.rate_limit_enabled:
            response.headers = [*response.headers, *_SECURITY_HEADERS]
        return response

    async def _chain(
        self,
        scope: Scope,
        receive: Receive,
        method: str,
        path: str,
        request_id: str,
        public: bool,
    ) -> Response:
        client = scope.get("client")
        client_ip = client[0] if client else ""
        if self.config.rate_limit_enabled and path != FAULTS_PATH:
            limiter = self.public_limiter if public else self.api_limiter
            if not limiter.allow(client_ip):
                return plain_error(429, "Rate limit exceeded", [(b"retry-after", b"1")])
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key: ApiKey | None = None
        if not public:
            auth = self._authenticate(headers)
            if isinstance(auth, Response):
                return auth
            key = auth
        body, too_large = await self._read_body(receive)
        raw_query: bytes = scope.get("query_string", b"")
        query = _first_values(raw_query)
        handler, params, allowed = self.router.resolve(method, path)
        request = Request(method, path, query, headers, body, too_large, client_ip, request_id)
        request.key = key
        request.params = params
        if handler is None:
            if not allowed:
                response = Response(404, b"404 page not found\n", TEXT)
            else:
                allow = ", ".join(allowed).encode()
                response = Response(405, b"Method Not Allowed\n", TEXT, [(b"allow", allow)])
        else:
            try:
                response = await handler(self, request)
            except HttpError as exc:
                response = error_response(exc.status, exc.message, request_id)
            except Exception:
                log.exception("handler %s %s failed (request_id=%s)", method, path, request_id)
                response = plain_error(500, "Internal Server Error")
        if key is not None and path != FAULTS_PATH:
            await self.audit.put(
                AuditWriter.row(
                    key.name,
                    "User",
                    f"api_{method.lower()}",
                    "api",
                    path,
                    {
                        "method": method,
                        "path": path,
                        "status": response.status,
                        "body_sha256": hashlib.sha256(body).hexdigest() if body else "",
                    },
                )
            )
        return response

    def _authenticate(self, headers: dict[str, str]) -> ApiKey | Response:
        if not self.config.auth_required:
            return ANONYMOUS
        value = headers.get("authorization")
        if not value:
            return plain_error(
                401,
                "Authorization header required",
                [(b"www-authenticate", b'Bearer realm="certctl"')],
            )
        scheme, _, token = value.partition(" ")
        if scheme != "Bearer" or not token:
            return plain_error(401, "Invalid Authorization header format, expected: Bearer <token>")
        digest = hashlib.sha256(token.encode()).digest()
        found: ApiKey | None = None
        for candidate, key in self.key_digests:
            if hmac.compare_digest(candidate, digest):
                found = key
        if found is None:
            return plain_error(401, "Invalid API key")
        return found
