"""What the ACME client sends through: a VU's recording client, or :class:`PlainTransport`.

Imports no pytest.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...errors import TransportError
from ..responses import ResponseLike

__all__ = ["AcmeTransport", "PlainTransport"]


class AcmeTransport(Protocol):
    """What the client sends through: ``vu.http`` or :class:`PlainTransport`.

    Called with ``headers=``, ``name=`` (a URL template), ``expected=`` (the statuses
    that are not failures) and, for POSTs, ``content=``. Must not raise on transport
    errors: answer status 0 instead, as ``vu.http`` does.
    """

    def get(self, url: str, **kwargs: Any) -> Awaitable[ResponseLike]: ...

    def head(self, url: str, **kwargs: Any) -> Awaitable[ResponseLike]: ...

    def post(self, url: str, **kwargs: Any) -> Awaitable[ResponseLike]: ...


@dataclass(frozen=True)
class _NoAnswer:
    """The status-0 answer of a request that got no HTTP answer; ``error`` says why."""

    url: str
    error: str
    status_code: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""


class PlainTransport:
    """Adapts an engine HTTP client (``pytest_certload.http.make_client``) to
    :class:`AcmeTransport` for setup code outside a VU: drops ``name``/``tags``/
    ``expected`` and turns :class:`~pytest_certload.errors.TransportError` into status 0.
    """

    _DROP = ("name", "tags", "expected")

    def __init__(self, client: Any) -> None:
        self.client = client

    async def _send(self, method: str, url: str, kwargs: dict[str, Any]) -> ResponseLike:
        for key in self._DROP:
            kwargs.pop(key, None)
        try:
            response: ResponseLike = await self.client.request(method, url, **kwargs)
        except TransportError as exc:
            return _NoAnswer(url, str(exc))
        return response

    async def get(self, url: str, **kwargs: Any) -> ResponseLike:
        return await self._send("GET", url, kwargs)

    async def head(self, url: str, **kwargs: Any) -> ResponseLike:
        return await self._send("HEAD", url, kwargs)

    async def post(self, url: str, **kwargs: Any) -> ResponseLike:
        return await self._send("POST", url, kwargs)
