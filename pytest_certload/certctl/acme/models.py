"""What an ACME session knows: orders, renewal windows, accounts and enrollments.

Plain data, parsed from certctl's answers (a parser returns ``None`` for an answer it
cannot use; the client turns that into an :class:`~.problems.AcmeProblem`). Imports no
pytest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from .csr import pem_certificates
from .jose import AccountKey
from .problems import AcmeProblem

__all__ = ["ENROLL_STEPS", "AcmeAccount", "AcmeOrder", "Enrollment", "RenewalWindow"]

#: the timed steps of one enrollment, in order
ENROLL_STEPS = ("new_order", "authz", "csr", "finalize", "certificate", "ari")


@dataclass(frozen=True)
class AcmeOrder:
    url: str
    status: str
    finalize: str
    authorizations: tuple[str, ...] = ()
    certificate: str | None = None
    error: Any = None

    @classmethod
    def parse(cls, url: str, body: Any) -> AcmeOrder | None:
        if not isinstance(body, dict):
            return None
        finalize, status = body.get("finalize"), body.get("status")
        if not isinstance(finalize, str) or not isinstance(status, str):
            return None
        authz = body.get("authorizations")
        cert = body.get("certificate")
        return cls(
            url,
            status,
            finalize,
            tuple(a for a in authz if isinstance(a, str)) if isinstance(authz, list) else (),
            cert if isinstance(cert, str) and cert else None,
            body.get("error"),
        )


def _rfc3339(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


@dataclass(frozen=True)
class RenewalWindow:
    """An ARI ``suggestedWindow`` (RFC 9773 §4.2) and the answer's ``Retry-After``."""

    start: dt.datetime
    end: dt.datetime
    retry_after: str = ""

    @classmethod
    def parse(cls, body: Any, retry_after: str = "") -> RenewalWindow | None:
        """The window of a renewal-info answer; ``None`` unless it has a ``start`` before
        its ``end``, both RFC 3339 with a time zone."""
        window = body.get("suggestedWindow") if isinstance(body, dict) else None
        start = _rfc3339(window.get("start")) if isinstance(window, dict) else None
        end = _rfc3339(window.get("end")) if isinstance(window, dict) else None
        if start is None or end is None or end <= start:
            return None
        return cls(start, end, retry_after)


@dataclass(eq=False)
class AcmeAccount:
    """An account (its key and ``kid``) and what the client knows of its limits."""

    key: AccountKey
    kid: str
    #: enrollments using the account right now (each holds one order at most)
    in_flight: int = 0
    #: orders left pending/ready/processing by failed enrollments: they count toward
    #: certctl's concurrent-order cap until the order TTL (24 h) expires them
    stuck: int = 0
    tokens: float = 0.0
    refilled_at: float = 0.0


@dataclass
class Enrollment:
    """What one enrollment did: per-step times (ns), the certificate, or the problem."""

    names: tuple[str, ...]
    timings: dict[str, int] = field(default_factory=dict)
    problem: AcmeProblem | None = None
    order: AcmeOrder | None = None
    csr_der: bytes = b""
    chain_pem: bytes = b""
    cert_id: str = ""
    window: RenewalWindow | None = None
    #: the order may still count toward the concurrent-order cap (created, not settled)
    order_outstanding: bool = False

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def total_ns(self) -> int:
        return sum(self.timings.values())

    def certificates(self) -> list[x509.Certificate]:
        """The downloaded chain, leaf first."""
        return pem_certificates(self.chain_pem)
