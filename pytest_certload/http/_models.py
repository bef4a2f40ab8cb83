"""Backend-independent pieces: headers, timings, responses, the client protocol, URLs."""

from __future__ import annotations

import json as _json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self, TypeAlias, runtime_checkable
from urllib.parse import urlencode, urlsplit

from ..errors import ConfigError, HTTPStatusError

__all__ = [
    "Client",
    "HTTPStatusError",
    "HeaderTypes",
    "Headers",
    "ParamTypes",
    "Response",
    "Timings",
]

HeaderTypes: TypeAlias = Mapping[str, str] | Sequence[tuple[str, str]]
ParamTypes: TypeAlias = (
    Mapping[str, str | int | float | Sequence[str | int | float]]
    | Sequence[tuple[str, str | int | float]]
    | str
)

_RawHeaders: TypeAlias = list[tuple[bytes, bytes]]


class Headers(Mapping[str, str]):
    """Case-insensitive, multi-valued response headers (httpx-like).

    ``headers["set-cookie"]`` joins repeated values with ``", "``; ``get_list``
    returns them one by one. The index is built lazily: a load test rarely reads
    headers, so the hot path only stores the raw ``(name, value)`` byte pairs.
    """

    __slots__ = ("_index", "_raw")

    def __init__(self, raw: Iterable[tuple[bytes | str, bytes | str]] | None = None) -> None:
        pairs: _RawHeaders = []
        for name, value in raw or ():
            pairs.append(
                (
                    name if isinstance(name, bytes) else name.encode("latin-1"),
                    value if isinstance(value, bytes) else value.encode("latin-1"),
                )
            )
        self._raw = pairs
        self._index: dict[str, list[str]] | None = None

    @classmethod
    def _from_raw(cls, raw: _RawHeaders) -> Headers:
        """Adopt a list of byte pairs without copying (backends' hot path)."""
        self = cls.__new__(cls)
        self._raw = raw
        self._index = None
        return self

    def _idx(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = {}
            for name, value in self._raw:
                index.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
            self._index = index
        return index

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """The headers as received: ``(name, value)`` byte pairs in order."""
        return list(self._raw)

    def multi_items(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` pair, lower-case names, repeated names kept."""
        return [(n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in self._raw]

    def get_list(self, key: str) -> list[str]:
        """All values of ``key`` (case-insensitive), ``[]`` when absent."""
        return list(self._idx().get(key.lower(), ()))

    def __getitem__(self, key: str) -> str:
        values = self._idx().get(key.lower())
        if not values:
            raise KeyError(key)
        return values[0] if len(values) == 1 else ", ".join(values)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._idx()

    def __iter__(self) -> Iterator[str]:
        return iter(self._idx())

    def __len__(self) -> int:
        return len(self._idx())

    def __repr__(self) -> str:
        return f"Headers({self.multi_items()!r})"


@dataclass(slots=True)
class Timings:
    """Per-phase request timings in integer nanoseconds; ``None`` where unknown.

    The phases follow k6: ``blocked`` (waiting for a connection slot),
    ``connecting`` (TCP, 0 on a reused connection), ``tls_handshaking`` (0 on
    a reused or plain connection), ``sending``, ``waiting`` (time to first
    byte), ``receiving``; ``duration = sending + waiting + receiving``.

    Two more split the response's time between the server and this process, from the
    kernel's receive timestamp of the response's bytes (the fast backend on Linux):
    ``server_time``, from just before the request's first byte went to the socket to the
    kernel's receipt of the first response bytes (the server's part, as seen at this
    host); ``generator_delay``, from the kernel's receipt of the bytes that completed
    the response to when the requesting task resumed with it (how long our own event
    loop kept the response waiting). Both are ``None`` when unmeasured, and
    ``delay_unmeasured`` then says why (never an estimate in their place).
    """

    blocked: int | None = None
    connecting: int | None = None
    tls_handshaking: int | None = None
    sending: int | None = None
    waiting: int | None = None
    receiving: int | None = None
    duration: int | None = None
    server_time: int | None = None
    generator_delay: int | None = None
    delay_unmeasured: str = ""


class Response:
    """An HTTP response with its body read and its timings measured."""

    __slots__ = (
        "_text",
        "content",
        "error",
        "headers",
        "http_version",
        "method",
        "status_code",
        "timings",
        "url",
    )

    def __init__(
        self,
        status_code: int,
        headers: Headers,
        content: bytes,
        *,
        http_version: str = "HTTP/1.1",
        url: str = "",
        method: str = "GET",
        timings: Timings | None = None,
        error: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.http_version = http_version
        self.url = url
        self.method = method
        self.timings = timings if timings is not None else Timings()
        #: set (with ``status_code == 0``) by callers that record failures as responses
        self.error = error
        self._text: str | None = None

    @property
    def encoding(self) -> str:
        """The charset named by Content-Type, else ``utf-8``."""
        ctype = self.headers.get("content-type", "")
        for part in ctype.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                return value.strip("\"' ")
        return "utf-8"

    @property
    def text(self) -> str:
        """The body decoded with :attr:`encoding` (undecodable bytes replaced)."""
        if self._text is None:
            try:
                self._text = self.content.decode(self.encoding, errors="replace")
            except LookupError:
                self._text = self.content.decode("utf-8", errors="replace")
        return self._text

    def json(self) -> Any:
        """The body parsed as JSON (``json.JSONDecodeError`` if it is not JSON)."""
        return _json.loads(self.content)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def raise_for_status(self) -> Self:
        """Raise :class:`HTTPStatusError` for 4xx/5xx (or a failed request); return self."""
        if self.status_code >= 400 or self.status_code == 0:
            kind = (
                "client error"
                if 400 <= self.status_code < 500
                else ("server error" if self.status_code >= 500 else "failed request")
            )
            detail = f" ({self.error})" if self.error else ""
            raise HTTPStatusError(
                f"{kind} '{self.status_code}' for {self.method} {self.url}{detail}",
                response=self,
            )
        return self

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}] {self.http_version} {self.url}>"


@runtime_checkable
class Client(Protocol):
    """What every backend provides; one client per virtual user.

    ``timeout`` is in seconds (as in httpx) and bounds the whole request,
    connection set-up included; ``None`` uses the client's default.
    Failures below HTTP raise :class:`pytest_certload.errors.TransportError`.
    """

    backend: str

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
    ) -> Response: ...

    async def get(self, url: str, **kwargs: Any) -> Response: ...
    async def post(self, url: str, **kwargs: Any) -> Response: ...
    async def put(self, url: str, **kwargs: Any) -> Response: ...
    async def patch(self, url: str, **kwargs: Any) -> Response: ...
    async def delete(self, url: str, **kwargs: Any) -> Response: ...
    async def head(self, url: str, **kwargs: Any) -> Response: ...
    async def aclose(self) -> None: ...


class BaseClient:
    """Verb helpers and ``async with`` support on top of ``request``."""

    backend: str = ""

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
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def get(self, url: str, **kwargs: Any) -> Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> Response:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> Response:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> Response:
        return await self.request("DELETE", url, **kwargs)

    async def head(self, url: str, **kwargs: Any) -> Response:
        return await self.request("HEAD", url, **kwargs)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def join_url(base_url: str | None, url: str) -> str:
    """``url`` if absolute, else appended to ``base_url``'s path (as httpx merges)."""
    if "://" in url:
        return url
    if not base_url:
        raise ConfigError(
            f"{url!r} is not an absolute URL and the client has no base_url; "
            f"pass a URL such as 'https://127.0.0.1:8443{url if url.startswith('/') else '/'}' "
            f"or create the client with base_url=..."
        )
    return base_url.rstrip("/") + "/" + url.lstrip("/")


def add_params(url: str, params: ParamTypes | None) -> str:
    """Append query parameters to ``url``."""
    if not params:
        return url
    query = params if isinstance(params, str) else urlencode(params, doseq=True)
    if not query:
        return url
    base, _, fragment = url.partition("#")
    sep = "&" if "?" in base else "?"
    return base + sep + query + ("#" + fragment if fragment else "")


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed request URL: where to connect and what to put on the request line."""

    scheme: str
    host: str
    port: int
    target: str  # path and query for the request line
    host_header: str
    url: str

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


def parse_target(url: str) -> Target:
    """Split an absolute http(s) URL; ConfigError naming the URL when it is not one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{url!r} is not a valid URL: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{url!r} is not an http:// or https:// URL with a host; "
            f"use e.g. 'https://127.0.0.1:8443/'."
        )
    default_port = 443 if scheme == "https" else 80
    host = parts.hostname
    if port is None:
        port = default_port
    netloc_host = f"[{host}]" if ":" in host else host
    host_header = netloc_host if port == default_port else f"{netloc_host}:{port}"
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Target(scheme, host, port, target, host_header, url)
