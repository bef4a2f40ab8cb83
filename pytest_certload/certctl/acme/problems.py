"""Why an ACME step failed: :class:`AcmeProblem` and the problem types it names.

An RFC 7807 problem document becomes an :class:`AcmeProblem`; so does an answer that
is none (``certload:notProblemDocument``), no answer at all (``certload:transport``)
and an answer the client cannot use (``certload:unexpectedResponse``). Imports no
pytest.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..responses import ResponseLike, header, json_value, media_type

__all__ = [
    "ACME_ERROR",
    "BAD_NONCE",
    "NOT_A_PROBLEM",
    "POOL_EXHAUSTED",
    "PROBLEM_JSON",
    "RATE_LIMITED",
    "TRANSPORT",
    "UNEXPECTED",
    "AcmeProblem",
]

ACME_ERROR = "urn:ietf:params:acme:error:"
BAD_NONCE = ACME_ERROR + "badNonce"
RATE_LIMITED = ACME_ERROR + "rateLimited"
#: pseudo problem types for failures that are not an ACME problem document
TRANSPORT = "certload:transport"
NOT_A_PROBLEM = "certload:notProblemDocument"
UNEXPECTED = "certload:unexpectedResponse"
POOL_EXHAUSTED = "certload:accountPoolExhausted"
PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class AcmeProblem:
    """Why a step failed: the step, the HTTP status (0: no HTTP answer), the problem
    type (an ACME URN, or ``certload:...`` when the answer was no problem document)
    and its detail; plus what a shape check needs: the response's media type, its
    ``Retry-After`` header and the document's own ``status`` member."""

    step: str
    status: int
    type: str
    detail: str
    url: str = ""
    media_type: str = ""
    retry_after: str = ""
    document_status: int | None = None

    @property
    def short_type(self) -> str:
        """The type without its namespace: ``rateLimited``, ``transport``..."""
        return self.type.rsplit(":", 1)[-1]

    @property
    def is_rate_limit_document(self) -> bool:
        """certctl's ACME 429 exactly: 429, ``application/problem+json``, type
        ``urn:ietf:params:acme:error:rateLimited``, ``status`` 429 in the document and a
        detail (RFC 7807); certctl sends no ``Retry-After`` (not required here)."""
        return (
            self.status == 429
            and self.media_type == PROBLEM_JSON
            and self.type == RATE_LIMITED
            and self.document_status == 429
            and bool(self.detail)
        )

    def __str__(self) -> str:
        where = f" ({self.url})" if self.url else ""
        return f"{self.step}: {self.status} {self.type}: {self.detail}{where}"

    @classmethod
    def from_response(cls, step: str, response: ResponseLike, url: str = "") -> AcmeProblem:
        status = response.status_code
        if status == 0:
            error = getattr(response, "error", "") or "no HTTP answer"
            return cls(step, 0, TRANSPORT, str(error), url)
        media = media_type(response)
        retry_after = header(response, "retry-after")
        body = json_value(response.content) if response.content else None
        if isinstance(body, dict) and isinstance(body.get("type"), str):
            detail = body.get("detail")
            member = body.get("status")
            return cls(
                step,
                status,
                body["type"],
                str(detail) if detail is not None else "",
                url,
                media,
                retry_after,
                member if isinstance(member, int) and not isinstance(member, bool) else None,
            )
        shown = response.content[:160].decode("utf-8", "replace").strip() or "(empty body)"
        return cls(
            step,
            status,
            NOT_A_PROBLEM,
            f"{media or 'no content type'}: {shown}",
            url,
            media,
            retry_after,
        )
