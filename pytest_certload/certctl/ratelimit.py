"""certctl's two kinds of 429, told apart, and the verdict on a run its API limiter ate.

certctl's API limiter answers with Go's ``http.Error`` (text/plain, a JSON-looking
body, ``Retry-After: 1``); its ACME limiter with an RFC 7807 problem document and no
``Retry-After``. Both checks are pure and cost one integer comparison for any status
but 429. Imports no pytest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..metrics import CounterSink
from .acme.problems import PROBLEM_JSON, RATE_LIMITED
from .responses import ResponseLike, header, json_object, media_type

if TYPE_CHECKING:
    from ..engine import VU, RunResult

__all__ = [
    "ACME_RATE_LIMITED",
    "API_RATE_LIMITED",
    "RATE_LIMITED_COUNTER",
    "acme_rate_limit_shape_ok",
    "classify_429",
    "count_rate_limit",
    "is_api_rate_limit",
    "rate_limit_storm",
]

#: what :func:`classify_429` returns
API_RATE_LIMITED = "certctl-api"
ACME_RATE_LIMITED = "acme"
_OTHER_429 = "other"
#: Counter of certctl API-limiter 429s (see :func:`count_rate_limit`)
RATE_LIMITED_COUNTER = "certctl_rate_limited"


def is_api_rate_limit(response: ResponseLike) -> bool:
    """True for certctl's API limiter answer: 429, ``Retry-After: 1``, text/plain
    (``http.Error`` overrides the JSON content type) and ``{"error": ...}`` as text."""
    if response.status_code != 429 or media_type(response) != "text/plain":
        return False
    if header(response, "retry-after").strip() != "1":
        return False
    body = json_object(response.content)
    return body is not None and "error" in body


def acme_rate_limit_shape_ok(response: ResponseLike) -> bool:
    """True for certctl's ACME 429 exactly: ``application/problem+json`` whose body has
    ``type`` ``urn:ietf:params:acme:error:rateLimited`` and ``status`` 429."""
    if response.status_code != 429 or media_type(response) != PROBLEM_JSON:
        return False
    body = json_object(response.content)
    return (
        body is not None
        and body.get("type") == RATE_LIMITED
        and body.get("status") == 429
        and isinstance(body.get("detail"), str)
    )


def classify_429(response: ResponseLike) -> str | None:
    """``None`` unless the status is 429; else :data:`API_RATE_LIMITED` (certctl's API
    limiter), :data:`ACME_RATE_LIMITED` (the RFC 7807 ACME answer) or ``"other"``."""
    if response.status_code != 429:
        return None
    if is_api_rate_limit(response):
        return API_RATE_LIMITED
    if acme_rate_limit_shape_ok(response):
        return ACME_RATE_LIMITED
    return _OTHER_429


def count_rate_limit(vu: VU, response: ResponseLike) -> str | None:
    """Classify a 429 (see :func:`classify_429`) and add certctl's API-limiter ones to the
    :data:`RATE_LIMITED_COUNTER` Counter that :func:`rate_limit_storm` reads. Costs one
    integer comparison for any other status."""
    if response.status_code != 429:
        return None
    kind = classify_429(response)
    if kind == API_RATE_LIMITED:
        vu.counter(RATE_LIMITED_COUNTER)
    return kind


def rate_limit_storm(
    result: RunResult, *, counter: str = RATE_LIMITED_COUNTER, max_share: float = 0.05
) -> str | None:
    """A message when more than ``max_share`` of the run's responses were certctl's API
    429 (counted by the scenarios in ``counter``), else None.

    certctl's API limiter is on by default (50 rps, burst 100) and keyed by client IP,
    so one load generator shares a single bucket: a latency verdict on such a run would
    measure the limiter, not certctl.
    """
    limited = result.store.select(counter, {})
    requests = result.store.select("http_reqs", {})
    if not isinstance(limited, CounterSink) or not isinstance(requests, CounterSink):
        return None
    if not requests.count or limited.count <= max_share * requests.count:
        return None
    return (
        f"{int(limited.count):,} of {int(requests.count):,} responses "
        f"({limited.count / requests.count:.1%}, limit {max_share:.0%}) were certctl's API "
        "rate limiter (429, Retry-After: 1): the run measured the limiter, not certctl. "
        "Start certctl with CERTCTL_RATE_LIMIT_ENABLED=false, or raise "
        "CERTCTL_RATE_LIMIT_RPS and CERTCTL_RATE_LIMIT_BURST above the scenario's rate "
        "(the bucket is per client IP, so every scenario of this host shares it)."
    )
