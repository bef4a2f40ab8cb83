"""certctl's two kinds of 429, told apart, and the verdict on a run its API limiter ate.

certctl's API limiter answers with Go's ``http.Error`` (text/plain, a JSON-looking
body, ``Retry-After: 1``; to HEAD, the same headers and no body); its ACME limiter with
an RFC 7807 problem document and no ``Retry-After``. Both checks are pure and cost one
integer comparison for any status but 429.

The engine counts every 429 a run got, expected or not and whatever the method, by the
shape of the answer (``RequestErrors.throttled``); :func:`limiter_tally` reads those
counts, so a scenario needs to call nothing for its 429s to be counted, and
:func:`rate_limit_storm` judges a run on them. Imports no pytest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..engine.causes import throttle_shape
from ..metrics import CounterSink
from .acme.problems import PROBLEM_JSON, RATE_LIMITED
from .responses import ResponseLike, header, json_object, media_type

if TYPE_CHECKING:
    from ..engine import VU, RunResult

__all__ = [
    "ACME_RATE_LIMITED",
    "API_LIMITER_SHAPE",
    "API_RATE_LIMITED",
    "LIMITER_SETTINGS",
    "RATE_LIMITED_COUNTER",
    "LimiterTally",
    "acme_rate_limit_shape_ok",
    "classify_429",
    "count_rate_limit",
    "is_api_rate_limit",
    "limiter_tally",
    "rate_limit_storm",
]

#: what :func:`classify_429` returns
API_RATE_LIMITED = "certctl-api"
ACME_RATE_LIMITED = "acme"
_OTHER_429 = "other"
#: Counter of certctl API-limiter 429s (see :func:`count_rate_limit`)
RATE_LIMITED_COUNTER = "certctl_rate_limited"
#: how certctl's API limiter's 429 looks to the engine's count of every 429
API_LIMITER_SHAPE = throttle_shape("text/plain", "1")
#: what to change when certctl's API limiter answers a load run
LIMITER_SETTINGS = (
    "Start certctl with CERTCTL_RATE_LIMIT_ENABLED=false, or raise "
    "CERTCTL_RATE_LIMIT_RPS and CERTCTL_RATE_LIMIT_BURST above the scenario's rate "
    "(the bucket is per client IP, so every scenario of this host shares it)."
)


def is_api_rate_limit(response: ResponseLike) -> bool:
    """True for certctl's API limiter answer: 429, ``Retry-After: 1``, text/plain
    (``http.Error`` overrides the JSON content type) and ``{"error": ...}`` as text, or
    no body at all (an answer to HEAD: the same headers, the body left out)."""
    if response.status_code != 429 or media_type(response) != "text/plain":
        return False
    if header(response, "retry-after").strip() != "1":
        return False
    if not response.content:
        return True
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


@dataclass(frozen=True)
class LimiterTally:
    """certctl's API-limiter 429s in one scenario of a run (every one the engine counted,
    expected or not): how many, of how many responses, by method."""

    scenario: str
    limited: int
    responses: int
    methods: Mapping[str, int] = field(default_factory=dict)

    @property
    def share(self) -> float:
        return self.limited / self.responses if self.responses else 0.0

    def text(self) -> str:
        """``915 of 2,000 responses (45.8%; GET 721, HEAD 194)``."""
        methods = ", ".join(f"{m} {n:,}" for m, n in sorted(self.methods.items()))
        return f"{self.limited:,} of {self.responses:,} responses ({self.share:.1%}" + (
            f"; {methods})" if methods else ")"
        )


def limiter_tally(result: RunResult) -> list[LimiterTally]:
    """Per scenario that got any, certctl's API-limiter 429s (from the engine's count of
    every 429 by shape), with the methods they answered (from ``http_reqs``)."""
    out = []
    for name, sc in result.scenarios.items():
        limited = sc.request_errors.throttled.get(API_LIMITER_SHAPE, 0)
        if not limited:
            continue
        methods: dict[str, int] = {}
        responses = 0
        for tags, sink in result.store.series("http_reqs").items():
            t = dict(tags)
            if t.get("scenario") != name or not isinstance(sink, CounterSink):
                continue
            if t.get("status", "0") != "0":
                responses += int(sink.count)
            if t.get("status") == "429":
                method = t.get("method", "?")
                methods[method] = methods.get(method, 0) + int(sink.count)
        out.append(LimiterTally(name, limited, max(responses, limited), methods))
    return out


def rate_limit_storm(result: RunResult, *, max_share: float = 0.05) -> str | None:
    """A message when more than ``max_share`` of the run's responses were certctl's API
    429, else None. Every such 429 counts, whatever the method (HEAD included) and
    whatever the scenario (none has to count them itself).

    certctl's API limiter is on by default (50 rps, burst 100) and keyed by client IP,
    so one load generator shares a single bucket: a latency verdict on such a run would
    measure the limiter, not certctl.
    """
    tallies = limiter_tally(result)
    limited = sum(t.limited for t in tallies)
    requests = result.store.select("http_reqs", {})
    if not limited or not isinstance(requests, CounterSink) or not requests.count:
        return None
    total = int(requests.count)
    if limited <= max_share * total:
        return None
    methods: dict[str, int] = {}
    for t in tallies:
        for method, n in t.methods.items():
            methods[method] = methods.get(method, 0) + n
    by_method = ", ".join(f"{m} {n:,}" for m, n in sorted(methods.items()))
    return (
        f"{limited:,} of {total:,} responses "
        f"({limited / total:.1%}, limit {max_share:.0%}"
        + (f"; {by_method}" if by_method else "")
        + ") were certctl's API rate limiter (429, Retry-After: 1): the run measured the "
        f"limiter, not certctl. {LIMITER_SETTINGS}"
    )
