"""The bodies of certctl's REST calls: what the scenarios send and the bulk-renew answer.

The facts encoded here are certctl's, not the double's: a certificate ``name`` is
globally unique and a duplicate is a 500 (:class:`~.names.UniqueNames` makes them); an
omitted ``expires_at`` is stored as the zero time, which the renewal scan then flips to
Expired. Imports no pytest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .responses import json_object

__all__ = [
    "DEMO_FOREIGN_KEYS",
    "FAR_FUTURE_EXPIRY",
    "BulkRenewResult",
    "certificate_payload",
    "heartbeat_body",
    "parse_bulk_renew",
]

#: rows of certctl's demo seed (CERTCTL_DEMO_SEED=true) a certificate must point at
DEMO_FOREIGN_KEYS: Mapping[str, str] = {
    "issuer_id": "iss-local",
    "owner_id": "o-alice",
    "team_id": "t-platform",
    "renewal_policy_id": "rp-standard",
}

#: far outside every renewal window: certctl stores an omitted expires_at as
#: 0001-01-01, and its renewal scan (at boot, then hourly) would flip such rows to
#: Expired and queue jobs and alerts
FAR_FUTURE_EXPIRY = "2099-12-31T00:00:00Z"


def certificate_payload(
    name: str,
    *,
    domain: str = "example.test",
    environment: str = "production",
    expires_at: str = FAR_FUTURE_EXPIRY,
    foreign_keys: Mapping[str, str] = DEMO_FOREIGN_KEYS,
) -> dict[str, Any]:
    """The body of ``POST /api/v1/certificates``, as certctl's k6 script sends it, plus
    the two things that keep a load-test row inert: a unique name and a far-future
    ``expires_at``."""
    common_name = f"{name}.{domain}"
    return {
        "name": name,
        "common_name": common_name,
        **foreign_keys,
        "environment": environment,
        "sans": [common_name],
        "expires_at": expires_at,
    }


def heartbeat_body(agent: Mapping[str, Any]) -> bytes:
    """What certctl's agent sends with every heartbeat (its five metadata fields).

    Empty values leave the stored ones alone, so a row from the agent list can be
    echoed back unchanged.
    """
    fields = ("version", "hostname", "os", "architecture", "ip_address")
    return json.dumps({f: str(agent.get(f) or "") for f in fields}).encode()


@dataclass(frozen=True)
class BulkRenewResult:
    """The counters of a ``POST /api/v1/certificates/bulk-renew`` answer."""

    total_matched: int
    total_enqueued: int
    total_skipped: int
    total_failed: int
    enqueued_jobs: int = 0
    errors: tuple[str, ...] = ()

    @property
    def consistent(self) -> bool:
        """Every matched certificate was enqueued, skipped or failed, and one job was
        listed per enqueued certificate."""
        accounted = self.total_enqueued + self.total_skipped + self.total_failed
        return accounted == self.total_matched and self.enqueued_jobs == self.total_enqueued


def parse_bulk_renew(body: bytes | Mapping[str, Any]) -> BulkRenewResult:
    """Parse a bulk-renew answer; :class:`ValueError` names what is missing or wrong."""
    data = json_object(body) if isinstance(body, bytes) else dict(body)
    if data is None:
        raise ValueError(f"bulk-renew answer is not a JSON object: {body!r:.120}")
    totals: dict[str, int] = {}
    for key in ("total_matched", "total_enqueued", "total_skipped", "total_failed"):
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"bulk-renew answer has {key}={value!r}; expected a count")
        totals[key] = value
    jobs = data.get("enqueued_jobs") or []
    errors = data.get("errors") or []
    if not isinstance(jobs, list) or not isinstance(errors, list):
        raise ValueError("bulk-renew answer has enqueued_jobs or errors that are not lists")
    messages = tuple(
        f"{e.get('certificate_id', '?')}: {e.get('error', '?')}" if isinstance(e, dict) else str(e)
        for e in errors
    )
    return BulkRenewResult(**totals, enqueued_jobs=len(jobs), errors=messages)
