"""What the harness writes into certctl's database, and the order it is removed in.

The rows are found by their names, never by time or by who wrote them:

* certificates named ``loadtest-*`` (the scale tier's 10,000 ``loadtest-bulk-*``, the API
  tier's ``loadtest-issuance-*``) or issued for a name under ``certload.example.com``
  (the ACME enrollments), with their jobs (bulk renewal queues one per certificate),
  versions, revocations and target mappings;
* agents named ``loadtest-*`` (the scale tier's 5,000 ``loadtest-agent-*``);
* ACME orders for names under ``certload.example.com``, their authorizations and
  challenges, and the accounts that placed only such orders;
* the seed ledger table ``certload_seed_ledger`` (dropped: the next seed starts over).

Children come before their parents, so every step is safe under ``ON DELETE RESTRICT``.
What cannot be removed is counted and said (:data:`LEFTOVERS`): certctl's audit table is
append-only, ACME nonces name no client, an account that never ordered names nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..certctl.names import HARNESS_DOMAIN, HARNESS_NAME_PREFIX
from ..seed import LEDGER_TABLE

__all__ = ["ACCOUNTS", "FIRSTS", "LEDGER", "LEFTOVERS", "PARAMS", "STEPS", "Leftover", "Step"]

#: the query parameters every predicate below uses (LIKE patterns; no '_' in them)
PARAMS: dict[str, str] = {
    "name": f"{HARNESS_NAME_PREFIX}%",
    "domain": f"%.{HARNESS_DOMAIN}",
    # an identifier's value inside the order's JSON: ...certload.example.com"
    "domain_json": f'%.{HARNESS_DOMAIN}"%',
}

_CERTS = (
    "SELECT id FROM managed_certificates WHERE name LIKE %(name)s OR common_name LIKE %(domain)s"
)
_ORDERS = "SELECT order_id FROM acme_orders WHERE identifiers::text LIKE %(domain_json)s"

#: the accounts whose every order the harness placed (found before any step runs)
ACCOUNTS = (
    "SELECT a.account_id FROM acme_accounts a"
    " WHERE EXISTS (SELECT 1 FROM acme_orders o WHERE o.account_id = a.account_id"
    " AND o.identifiers::text LIKE %(domain_json)s)"
    " AND NOT EXISTS (SELECT 1 FROM acme_orders o WHERE o.account_id = a.account_id"
    " AND o.identifiers::text NOT LIKE %(domain_json)s)"
)


@dataclass(frozen=True)
class Step:
    """Delete the rows of ``table`` that ``where`` selects (SQL over PARAMS and
    ``%(accounts)s``); ``what`` says which rows, in words."""

    table: str
    where: str
    what: str


STEPS: tuple[Step, ...] = (
    Step(
        "acme_challenges",
        f"authz_id IN (SELECT authz_id FROM acme_authorizations WHERE order_id IN ({_ORDERS}))",
        f"challenges of the harness's ACME orders (names under {HARNESS_DOMAIN})",
    ),
    Step(
        "acme_authorizations",
        f"order_id IN ({_ORDERS})",
        f"authorizations of the harness's ACME orders (names under {HARNESS_DOMAIN})",
    ),
    Step(
        "acme_orders",
        "identifiers::text LIKE %(domain_json)s",
        f"ACME orders for names under {HARNESS_DOMAIN}",
    ),
    Step(
        "acme_accounts",
        "account_id = ANY(%(accounts)s)",
        f"ACME accounts that ordered only names under {HARNESS_DOMAIN}",
    ),
    Step(
        "certificate_target_mappings",
        f"certificate_id IN ({_CERTS})",
        "target mappings of the harness's certificates",
    ),
    Step(
        "certificate_revocations",
        f"certificate_id IN ({_CERTS})",
        "revocations of the harness's certificates",
    ),
    Step(
        "certificate_versions",
        f"certificate_id IN ({_CERTS})",
        "versions (issued certificates) of the harness's certificates",
    ),
    Step(
        "jobs",
        f"certificate_id IN ({_CERTS})",
        "jobs of the harness's certificates (bulk renewal queues one per certificate)",
    ),
    Step(
        "managed_certificates",
        "name LIKE %(name)s OR common_name LIKE %(domain)s",
        f"certificates named {HARNESS_NAME_PREFIX}* or issued for a name under {HARNESS_DOMAIN}",
    ),
    Step(
        "agents",
        "name LIKE %(name)s OR id LIKE %(name)s",
        f"agents named {HARNESS_NAME_PREFIX}*",
    ),
)

#: the seed's ledger: dropped after the steps (rows counted first)
LEDGER = LEDGER_TABLE


@dataclass(frozen=True)
class Leftover:
    """Rows of ``table`` the cleanup leaves, counted by ``count`` (SQL over PARAMS and
    ``%(since)s``: when the first row the harness wrote was written, or -infinity when
    none is left to tell), and ``why``."""

    table: str
    count: str
    why: str


#: when the first row the harness wrote was written: the earliest of these (each over
#: its table, read before any step runs)
FIRSTS: tuple[tuple[str, str], ...] = (
    (
        "managed_certificates",
        "SELECT min(created_at) FROM managed_certificates"
        " WHERE name LIKE %(name)s OR common_name LIKE %(domain)s",
    ),
    ("agents", "SELECT min(registered_at) FROM agents WHERE name LIKE %(name)s"),
    (
        "acme_orders",
        "SELECT min(created_at) FROM acme_orders WHERE identifiers::text LIKE %(domain_json)s",
    ),
    (LEDGER_TABLE, f"SELECT min(applied_at) FROM {LEDGER_TABLE}"),
)

LEFTOVERS: tuple[Leftover, ...] = (
    Leftover(
        "audit_events",
        'SELECT count(*) FROM audit_events WHERE "timestamp" >= %(since)s',
        "certctl's audit table is append-only (a trigger refuses UPDATE and DELETE), so "
        "they stay; drop and recreate the database to be rid of them",
    ),
    Leftover(
        "acme_nonces",
        "SELECT count(*) FROM acme_nonces",
        "a nonce names no client, so the harness's cannot be told apart; certctl's ACME "
        "garbage collector deletes expired ones (CERTCTL_ACME_SERVER_ENABLED=true)",
    ),
    Leftover(
        "acme_accounts",
        "SELECT count(*) FROM acme_accounts a"
        " WHERE NOT EXISTS (SELECT 1 FROM acme_orders o WHERE o.account_id = a.account_id)",
        "accounts that never placed an order: an account the harness created but did not "
        "use looks like this, and so does any other client's, so they stay",
    ),
)
