"""Small HTTP building blocks: request, response, router and rate limiter."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from ._config import ApiKey

if TYPE_CHECKING:
    from ._app import DoubleApp

__all__ = [
    "Handler",
    "HttpError",
    "Request",
    "Response",
    "Router",
    "TokenBuckets",
    "decode_json",
    "error_response",
    "go_atoi",
    "json_response",
    "plain_error",
]

JSON = b"application/json"
TEXT = b"text/plain; charset=utf-8"

_GO_INT = re.compile(r"[+-]?[0-9]+")
_INT64_MAX = 2**63 - 1


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python reads NaN and Infinity; Go does not


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def decode_json(body: bytes) -> Any:
    """The first JSON value of ``body``, as Go's ``json.Decoder.Decode`` reads it: bytes
    after that value are never looked at (``{"a":1} trailing`` decodes to ``{"a": 1}``).
    An empty body, a truncated value, ``NaN`` or bad UTF-8 raise ValueError."""
    text = body.decode("utf-8")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    value, _ = _DECODER.raw_decode(text, start)
    return value


def go_atoi(text: str) -> int | None:
    """Go's ``strconv.Atoi``: optional sign and ASCII digits only, within int64; anything
    else (``1_0``, `` 5``, ``5.0``, ``１``) is None, where Python's ``int()`` would accept
    some of them."""
    if not _GO_INT.fullmatch(text):
        return None
    value = int(text)
    return value if -_INT64_MAX - 1 <= value <= _INT64_MAX else None


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    too_large: bool
    client_ip: str
    request_id: str
    key: ApiKey | None = None
    params: dict[str, str] = field(default_factory=dict)

    def json_body(self) -> Any:
        """Decode the body like Go's json.Decoder: any failure is an HttpError 400."""
        if self.too_large:
            raise HttpError(400, "Invalid request body")
        try:
            return decode_json(self.body)
        except ValueError:  # UnicodeDecodeError and JSONDecodeError included
            raise HttpError(400, "Invalid request body") from None

    def json_object(self) -> dict[str, Any]:
        """The body decoded into a Go struct: an object, or ``null`` (a no-op in Go: every
        field keeps its zero value); anything else is 400."""
        value = self.json_body()
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise HttpError(400, "Invalid request body")
        return value


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: bytes | None = JSON
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class HttpError(Exception):
    """Raised by handlers; rendered as certctl's ``{"error","message","request_id"}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_response(
    status: int, value: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    body = json.dumps(value, separators=(",", ":")).encode()
    return Response(status, body, JSON, headers or [])


def raw_json(status: int, body: str | bytes) -> Response:
    return Response(status, body.encode() if isinstance(body, str) else body, JSON)


def error_response(status: int, message: str, request_id: str) -> Response:
    """certctl's handler error: status text, detail and the request id, as JSON."""
    return json_response(
        status,
        {"error": HTTPStatus(status).phrase, "message": message, "request_id": request_id},
    )


def plain_error(
    status: int, error: str, headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    """Go's ``http.Error`` with a JSON-looking body: text/plain and a trailing newline."""
    body = json.dumps({"error": error}, separators=(",", ":")).encode() + b"\n"
    return Response(status, body, TEXT, headers or [])


Handler = Callable[["DoubleApp", Request], Awaitable[Response]]


class Router:
    """Exact paths in a dict, parameterised paths as compiled patterns."""

    def __init__(self) -> None:
        self.exact: dict[str, dict[str, Handler]] = {}
        self.patterns: list[tuple[re.Pattern[str], dict[str, Handler]]] = []

    def add(self, method: str, path: str, handler: Handler, *, head: Handler | None = None) -> None:
        """Route ``method path`` to ``handler``. Go's mux sends HEAD to a GET route's
        handler: ``head`` is what that handler does with it; without one, an exact GET
        path answers HEAD with its GET handler (the body is dropped when sent)."""
        if head is not None:
            self.add("HEAD", path, head)
        if "{" not in path:
            self.exact.setdefault(path, {})[method] = handler
            if method == "GET":
                self.exact[path].setdefault("HEAD", handler)
            return
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$"
        for pattern, methods in self.patterns:
            if pattern.pattern == regex:
                methods[method] = handler
                return
        self.patterns.append((re.compile(regex), {method: handler}))

    def resolve(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], list[str]]:
        """Return (handler, params, allowed methods); handler None with methods -> 405."""
        methods = self.exact.get(path)
        params: dict[str, str] = {}
        if methods is None:
            for pattern, candidate in self.patterns:
                match = pattern.match(path)
                if match is not None:
                    methods, params = candidate, match.groupdict()
                    break
        if methods is None:
            return None, {}, []
        return methods.get(method), params, sorted(methods)


class TokenBuckets:
    """certctl's limiter: one token bucket per key, starting full, never evicted."""

    def __init__(self, rps: float, burst: int) -> None:
        self.rps = rps
        self.burst = float(burst)
        self.buckets: dict[str, list[float]] = {}

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        bucket = self.buckets.get(key)
        if bucket is None:
            self.buckets[key] = [self.burst - 1.0, now]
            return True
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rps)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return True
        bucket[0] = tokens
        return False
