"""Why requests failed: a bounded sample of unexpected HTTP statuses and transport errors.

A run's ``http_req_failed`` rate says *how many* requests failed; :class:`RequestErrors`
keeps *why*, per scenario, in bounded memory: every unexpected status with its count and
the start of the first body that came with it, every transport-error kind (``connect``,
``tls``, ``timeout``, ``reset``, ``protocol``) with its count, and the first few distinct
transport-error texts. Request headers are never kept. Workers' samples merge exactly
(counts add up; the first texts and bodies, in worker order, are kept).

Some of certctl's answers mislead by their status alone: it answers 500, not 404, for
ids it does not have. :data:`KNOWN_ANSWERS` recognises them by status and body, and
:meth:`RequestErrors.lines` says what they mean (certctl's file and function) and what
to check, under the line that counts them.

Every 429 is counted apart as well, expected or not and whatever the method, by the
shape of the answer (:func:`throttle_shape`: its media type and ``Retry-After``), so
that a rate limiter's answers to HEAD, which carry no body, are told apart too.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..redaction import redact_url

__all__ = [
    "KNOWN_ANSWERS",
    "MAX_BODY_BYTES",
    "MAX_TRANSPORT_SAMPLES",
    "KnownAnswer",
    "RequestErrors",
    "TransportSample",
    "body_sample",
    "breakdown_text",
    "error_text",
    "known_answer",
    "throttle_shape",
]

#: how much of the first body of each unexpected status is kept
MAX_BODY_BYTES = 200
#: how many distinct transport-error texts are kept per scenario
MAX_TRANSPORT_SAMPLES = 5
#: longest transport-error text kept (the rest is cut, with "...")
_MAX_TEXT = 300


@dataclass(frozen=True)
class KnownAnswer:
    """An answer of certctl's whose status alone misleads: recognised by its status and
    by fragments that must all appear in the kept body sample; ``meaning`` says what
    certctl means by it (its file and function) and what to check."""

    status: int
    fragments: tuple[str, ...]
    meaning: str

    def matches(self, status: int, body: str) -> bool:
        return status == self.status and all(f in body for f in self.fragments)


_UNKNOWN_AGENT = (
    "certctl answers a heartbeat for an agent id it does not have with this 500, not "
    "with 404 'Agent not found': internal/repository/postgres/agent.go::scanAgent wraps "
    "sql.ErrNoRows with %w and AgentRepository.Get compares the error with ==, so the "
    "not-found branch of internal/api/handler/agents.go::Heartbeat never runs. Check "
    "the agent ids the scenario sends: most likely they do not exist in this certctl; "
    "seed them (e.g. fixtures/sql/02_agent_fleet.sql) or check that --certctl-dsn names "
    "the database this certctl uses. If they do exist, certctl's log has the database "
    "error behind the same answer."
)
_UNKNOWN_ACME_ID = (
    "certctl answers serverInternal 'ACME server error' (500, not 404) for an ACME "
    "profile id it does not have: internal/repository/postgres/profile.go::scanProfile "
    "wraps sql.ErrNoRows with %w and ProfileRepository.Get compares the error with ==, "
    "so the not-found branch of internal/service/acme.go::resolveProfile never runs; "
    "a certificate id it does not have (POST cert/{id}) gets the same answer, and so "
    "does a failed issuance (internal/service/acme.go::FinalizeOrder). Check that the "
    "scenario's profile (the certload_acme_profile fixture, prof-standard-tls by "
    "default) is a row of this certctl's certificate_profiles table; if it is, certctl's "
    "log says what failed."
)

#: certctl's answers that :meth:`RequestErrors.lines` explains (the reference double
#: gives the same ones)
KNOWN_ANSWERS: tuple[KnownAnswer, ...] = (
    KnownAnswer(500, ("Failed to record heartbeat",), _UNKNOWN_AGENT),
    KnownAnswer(500, ("acme:error:serverInternal", "ACME server error"), _UNKNOWN_ACME_ID),
)


def known_answer(status: int, body: str) -> KnownAnswer | None:
    """The entry of :data:`KNOWN_ANSWERS` that ``status`` and the body sample match."""
    return next((k for k in KNOWN_ANSWERS if k.matches(status, body)), None)


def breakdown_text(by_status: Mapping[str, int], requests: int = 0) -> str:
    """``429: 915 of 2,000; 500: 12``: counts per status in one line, in the order given,
    the first out of ``requests`` (when known)."""
    of = f" of {requests:,}" if requests else ""
    return "; ".join(
        f"{what}: {n:,}{of if i == 0 else ''}" for i, (what, n) in enumerate(by_status.items())
    )


def throttle_shape(media_type: str, retry_after: str) -> str:
    """How a 429 answer looked, as one short key: ``text/plain, Retry-After: 1`` or
    ``application/problem+json, no Retry-After`` (the media type lowercase, without
    parameters; ``no content type`` when there was none)."""
    media = media_type.split(";", 1)[0].strip().lower() or "no content type"
    wait = retry_after.strip()
    return f"{media}, Retry-After: {wait}" if wait else f"{media}, no Retry-After"


def body_sample(content: bytes) -> str:
    """The start of a response body as one readable line (at most MAX_BODY_BYTES bytes)."""
    head = content[:MAX_BODY_BYTES]
    text = " ".join(head.decode("utf-8", errors="replace").split())
    return text + (" ..." if len(content) > MAX_BODY_BYTES else "")


def error_text(message: str, url: str, method: str, kind: str) -> str:
    """A transport error's message without the request's method and URL (kept apart), so
    that one cause seen on many URLs is one sample; never a password from the URL."""
    text = message
    if url:
        for prefix in (f"{method} {url}: ", f"{url}: "):
            if text.startswith(prefix):
                text = text[len(prefix) :]
        suffix = f" ({url})"
        if text.endswith(suffix):
            text = text[: -len(suffix)]
        text = text.replace(url, redact_url(url))
    for prefix in (f"{kind} error: ", f"{kind}: "):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    text = " ".join(text.split()) or "(no message)"
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 4] + " ..."


@dataclass
class TransportSample:
    """One distinct transport-error text: its kind, how often, and the first URL."""

    kind: str
    text: str
    url: str
    count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "url": self.url, "count": self.count}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TransportSample:
        return cls(
            kind=str(data["kind"]),
            text=str(data["text"]),
            url=str(data["url"]),
            count=int(data["count"]),
        )

    def describe(self) -> str:
        """``tls: [SSL: CERTIFICATE_VERIFY_FAILED] ... (to https://host:port/path)``."""
        hint = ""
        if self.kind in ("reset", "protocol") and self.url.startswith("http://"):
            hint = "; if that port serves TLS, the URL must start with https://"
        return f"{self.kind}: {self.text} (to {self.url}){hint}"


@dataclass
class RequestErrors:
    """Why one scenario's requests failed (every field JSON-safe once in :meth:`to_dict`).

    * ``statuses``: unexpected HTTP status -> how many responses had it (the responses
      counted in ``http_req_failed``);
    * ``bodies``: status -> the first such response's body, at most
      :data:`MAX_BODY_BYTES` bytes, whitespace folded;
    * ``transport``: kind -> how many requests failed below HTTP that way (all of them);
    * ``samples``: the first :data:`MAX_TRANSPORT_SAMPLES` distinct transport-error texts;
    * ``throttled``: every 429 answer, expected or not, by :func:`throttle_shape` (a HEAD
      answer has no body, but its headers say which limiter sent it).
    """

    statuses: dict[int, int] = field(default_factory=dict)
    bodies: dict[int, str] = field(default_factory=dict)
    transport: dict[str, int] = field(default_factory=dict)
    samples: list[TransportSample] = field(default_factory=list)
    throttled: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.statuses or self.transport)

    @property
    def transport_failures(self) -> int:
        """Requests that failed below HTTP, whatever the kind."""
        return sum(self.transport.values())

    @property
    def first_transport(self) -> TransportSample | None:
        return self.samples[0] if self.samples else None

    def add_status(self, status: int, content: bytes) -> None:
        """One response with an unexpected status (its body is read until one is not
        empty: an answer to HEAD has none)."""
        seen = self.statuses.get(status)
        if seen is None:
            self.bodies[status] = body_sample(content)
            seen = 0
        elif content and not self.bodies.get(status):
            self.bodies[status] = body_sample(content)
        self.statuses[status] = seen + 1

    def add_throttled(self, media_type: str, retry_after: str) -> None:
        """One 429 answer (expected or not), by its shape (:func:`throttle_shape`)."""
        shape = throttle_shape(media_type, retry_after)
        self.throttled[shape] = self.throttled.get(shape, 0) + 1

    def add_transport(self, kind: str, text: str, url: str) -> None:
        """One request that failed below HTTP; ``text`` is :func:`error_text`'s output
        (the first URL is kept without its ``user:password@``)."""
        self.transport[kind] = self.transport.get(kind, 0) + 1
        for sample in self.samples:
            if sample.kind == kind and sample.text == text:
                sample.count += 1
                return
        if len(self.samples) < MAX_TRANSPORT_SAMPLES:
            self.samples.append(TransportSample(kind, text, redact_url(url), 1))

    def merge(self, other: RequestErrors) -> None:
        """Add ``other``'s counts to these; first bodies and texts are kept in order."""
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
            # the first body that is not empty (an answer to HEAD has none)
            if not self.bodies.get(status) and status in other.bodies:
                self.bodies[status] = other.bodies[status]
        for shape, count in other.throttled.items():
            self.throttled[shape] = self.throttled.get(shape, 0) + count
        for kind, count in other.transport.items():
            self.transport[kind] = self.transport.get(kind, 0) + count
        for theirs in other.samples:
            mine = next(
                (s for s in self.samples if s.kind == theirs.kind and s.text == theirs.text),
                None,
            )
            if mine is not None:
                mine.count += theirs.count
            elif len(self.samples) < MAX_TRANSPORT_SAMPLES:
                self.samples.append(
                    TransportSample(theirs.kind, theirs.text, theirs.url, theirs.count)
                )

    @property
    def failed(self) -> int:
        """Requests that failed: unexpected statuses and failures below HTTP."""
        return sum(self.statuses.values()) + self.transport_failures

    def by_status(self) -> dict[str, int]:
        """Failed requests per status (``"429"``) and per transport-error kind
        (``"no answer (tls)"``), most frequent first."""
        parts = [(str(s), n) for s, n in self.statuses.items()]
        parts += [(f"no answer ({k})", n) for k, n in self.transport.items()]
        parts.sort(key=lambda p: (-p[1], p[0]))
        return dict(parts)

    def breakdown(self, requests: int = 0) -> str:
        """:meth:`by_status` in one line (:func:`breakdown_text`)."""
        return breakdown_text(self.by_status(), requests)

    def lines(self, scenario: str, requests: int, *, explained: Collection[int] = ()) -> list[str]:
        """One readable line per cause, most frequent first, each naming ``scenario``;
        a status in ``explained`` (another explanation covers every answer of it) gets
        no line on what it means."""
        out: list[str] = []
        of = f" of {requests:,}" if requests else ""
        for status, count in sorted(self.statuses.items(), key=lambda kv: (-kv[1], kv[0])):
            body = self.bodies.get(status, "")
            shown = f" (body: {body})" if body else " (empty body)"
            noun = "request" if count == 1 else "requests"
            out.append(f"{scenario}: {count:,}{of} {noun} answered {status}{shown}")
            known = known_answer(status, body) if status not in explained else None
            if known is not None:
                out.append(f"{scenario}: what that {status} means: {known.meaning}")
        for sample in sorted(self.samples, key=lambda s: -s.count):
            noun = "request" if sample.count == 1 else "requests"
            out.append(
                f"{scenario}: {sample.count:,}{of} {noun} failed below HTTP: {sample.describe()}"
            )
        rest = self.transport_failures - sum(s.count for s in self.samples)
        if rest > 0:
            noun = "request" if rest == 1 else "requests"
            kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(self.transport.items()))
            out.append(
                f"{scenario}: {rest:,} more {noun} failed below HTTP with other errors "
                f"(all below HTTP, by kind: {kinds})"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: statuses as string keys (``"401"``), as JSON objects need."""
        return {
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "bodies": {str(k): v for k, v in self.bodies.items()},
            "transport": dict(self.transport),
            "samples": [s.to_dict() for s in self.samples],
            "throttled": dict(self.throttled),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RequestErrors:
        return cls(
            statuses={int(k): int(v) for k, v in data["statuses"].items()},
            bodies={int(k): str(v) for k, v in data["bodies"].items()},
            transport={str(k): int(v) for k, v in data["transport"].items()},
            samples=[TransportSample.from_dict(s) for s in data["samples"]],
            # absent from run files written before every 429 was counted
            throttled={str(k): int(v) for k, v in data.get("throttled", {}).items()},
        )
