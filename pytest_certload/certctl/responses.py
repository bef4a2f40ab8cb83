"""What certctl's helpers read from an HTTP answer, whoever sent the request.

:class:`ResponseLike` is the one response protocol of ``pytest_certload.certctl``: the
engine's :class:`~pytest_certload.http.Response`, httpx's response, a transport's
"no answer" (status 0) and a test's stub all fit. The helpers below are the only place
certctl code reads a header, a media type or a JSON body. Imports no pytest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["ResponseLike", "header", "json_object", "json_value", "media_type"]


class ResponseLike(Protocol):
    """What the checks read: the engine's responses and httpx's both fit."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> bytes: ...


def header(response: ResponseLike, name: str) -> str:
    """The value of header ``name`` (any case), or ``""`` when the response has none."""
    value = response.headers.get(name)
    if value is None:  # a plain dict (a failed request, a stub) is case-sensitive
        lowered = name.lower()
        value = next((v for k, v in response.headers.items() if k.lower() == lowered), "")
    return value


def media_type(response: ResponseLike) -> str:
    """The Content-Type without parameters, lowercase (``""`` when there is none)."""
    return header(response, "content-type").split(";", 1)[0].strip().lower()


def json_value(content: bytes) -> Any:
    """``content`` parsed as JSON, or ``None`` when it is not JSON."""
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


def json_object(content: bytes) -> dict[str, Any] | None:
    """``content`` parsed as a JSON object, or ``None`` when it is anything else."""
    value = json_value(content)
    return value if isinstance(value, dict) else None
