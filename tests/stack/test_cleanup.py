"""``python -m pytest_certload.cleanup`` against the embedded stack (PostgreSQL and the
certctl reference double, whose schema and append-only audit trigger follow certctl's).

Each test writes what a load run writes, through the same code the scenarios use: the
scale tier's seed, certificates created through the API, a bulk renewal (one job per
certificate), heartbeats, an ACME enrollment; beside it rows the harness did not write
(a certificate, an ACME account with an order of its own). The cleanup must leave no
harness row it can remove, keep the others, keep the audit rows (append-only) and say
so; a dry run must change nothing; a bad DSN must say what is wrong without its password.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import psycopg
import pytest
from anyio.from_thread import start_blocking_portal

from pytest_certload.certctl import (
    AGENT_HEARTBEAT,
    BULK_RENEW,
    CERTIFICATES,
    HARNESS_DOMAIN,
    HARNESS_NAME_PREFIX,
    CertctlSetup,
    UniqueNames,
    acme_directory_path,
    bearer,
    certificate_payload,
    expand,
)
from pytest_certload.certctl.acme import AccountPool, AcmeClient, AcmeProblem, PlainTransport
from pytest_certload.cleanup import STEPS, cleanup
from pytest_certload.cleanup.cli import render
from pytest_certload.errors import CleanupError
from pytest_certload.http import make_client
from pytest_certload.seed import LEDGER_TABLE, apply_seed
from pytest_certload.stack import StackInfo
from pytest_certload.stack.local import LocalStack

REPO = Path(__file__).resolve().parents[2]
PROFILE = "prof-standard-tls"
#: what must never be removed: the demo seed's rows and a client's own
BYSTANDER_CERT = "keep-me-not-a-load-test"
BYSTANDER_DOMAIN = "other.example.org"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    work = tmp_path_factory.mktemp("cleanup")
    with start_blocking_portal(backend="asyncio") as portal:
        local = LocalStack(targets=(), base_dir=work)
        try:
            yield portal.call(local.start)
        finally:
            portal.call(local.stop)


def _db(info: StackInfo) -> psycopg.Connection[tuple[Any, ...]]:
    assert info.dsn is not None
    return psycopg.connect(info.dsn, autocommit=True)


def _counts(info: StackInfo) -> dict[str, int]:
    """Rows of every table the cleanup touches or reports."""
    tables = {s.table for s in STEPS} | {"audit_events", "acme_nonces", "teams", "owners"}
    with _db(info) as conn:
        out = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # type: ignore[index]
        ledger = conn.execute("SELECT to_regclass(%s)", (LEDGER_TABLE,)).fetchone()
        out[LEDGER_TABLE] = (
            conn.execute(f"SELECT count(*) FROM {LEDGER_TABLE}").fetchone()[0]  # type: ignore[index]
            if ledger and ledger[0]
            else -1
        )
    return out


def _harness_rows(info: StackInfo) -> dict[str, int]:
    """Rows that are the harness's, found independently of the cleanup's plan."""
    like_name, like_domain = f"{HARNESS_NAME_PREFIX}%", f"%.{HARNESS_DOMAIN}"
    queries = {
        "managed_certificates": (
            "SELECT count(*) FROM managed_certificates WHERE name LIKE %s OR common_name LIKE %s",
            (like_name, like_domain),
        ),
        "agents": ("SELECT count(*) FROM agents WHERE name LIKE %s", (like_name,)),
        "jobs": (
            "SELECT count(*) FROM jobs j JOIN managed_certificates c ON c.id = j.certificate_id"
            " WHERE c.name LIKE %s",
            (like_name,),
        ),
        "acme_orders": (
            "SELECT count(*) FROM acme_orders o, jsonb_array_elements(o.identifiers) i"
            " WHERE i->>'value' LIKE %s",
            (like_domain,),
        ),
        "acme_authorizations": (
            "SELECT count(*) FROM acme_authorizations WHERE identifier_value LIKE %s",
            (like_domain,),
        ),
    }
    with _db(info) as conn:
        return {
            name: conn.execute(query, params).fetchone()[0]  # type: ignore[index]
            for name, (query, params) in queries.items()
        }


async def _acme(info: StackInfo) -> None:
    """One enrollment for a name under the harness's domain from a pool of two accounts
    (one never orders), and a client's own account ordering a name of its own."""
    url = info.certctl_url + acme_directory_path(PROFILE)
    headers = {"Authorization": f"Bearer {info.token}"}
    client = make_client("fast", verify=str(info.ca), timeout_ns=30_000_000_000)
    try:
        acme = await AcmeClient.open(PlainTransport(client), url, headers)
        pool = await AccountPool.create(acme, 2)
        names = UniqueNames("e", domain=f"acme.{HARNESS_DOMAIN}")
        enrollment = await acme.enroll(pool.accounts[0], [names.next()])
        assert enrollment.problem is None, enrollment.problem
        other = await AccountPool.create(acme, 1)
        order = await acme.new_order(other.accounts[0], [f"www.{BYSTANDER_DOMAIN}"])
        assert not isinstance(order, AcmeProblem), order
        # an account of the client's own that also ordered a harness name: it stays
        await acme.new_order(other.accounts[0], [f"mixed.{HARNESS_DOMAIN}"])
    finally:
        await client.aclose()


@pytest.fixture
def written(stack: StackInfo) -> StackInfo:
    """What a load run writes, and rows it does not own."""
    assert stack.dsn is not None
    apply_seed(stack.dsn, REPO / "fixtures" / "sql")
    with CertctlSetup(stack.certctl_url, stack.token, verify=stack.verify()) as setup:
        bulk = setup.certificate_ids(f"{HARNESS_NAME_PREFIX}bulk-", limit=50)
        agent = setup.agents(f"{HARNESS_NAME_PREFIX}agent-")[0]
    with httpx.Client(
        base_url=stack.certctl_url, verify=stack.verify(), headers=bearer(stack.token), timeout=30
    ) as client:
        names = UniqueNames.for_process(f"{HARNESS_NAME_PREFIX}issuance")
        for _ in range(3):
            response = client.post(CERTIFICATES, json=certificate_payload(names.next()))
            assert response.status_code == 201, response.text
        keep = certificate_payload(BYSTANDER_CERT, domain="example.org")
        response = client.post(CERTIFICATES, json=keep)
        assert response.status_code in (201, 500), response.text  # 500: kept from a test before
        response = client.post(BULK_RENEW, json={"certificate_ids": bulk})
        assert response.status_code == 200, response.text
        response = client.post(expand(AGENT_HEARTBEAT, id=agent["id"]), json={})
        assert response.status_code == 200, response.text
    anyio.run(_acme, stack)
    rows = _harness_rows(stack)
    assert all(rows.values()), rows
    return stack


def _cli(info: StackInfo, *args: str, dsn: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "CERTLOAD_CERTCTL_DSN": dsn if dsn is not None else info.dsn or "",
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest_certload.cleanup", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_a_dry_run_counts_everything_and_changes_nothing(written: StackInfo) -> None:
    before = _counts(written)
    result = _cli(written, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert _counts(written) == before
    out = result.stdout
    assert "(dry run: nothing is changed)" in out.splitlines()[0]
    assert "***@" in out.splitlines()[0]  # the password is never printed
    for table in ("managed_certificates", "agents", "jobs", "acme_orders", "acme_accounts"):
        assert f"  {table}" in out
    assert "     5,000  agents" in out
    assert "cannot remove:" in out
    assert "audit_events" in out
    assert "append-only" in out
    assert "Nothing was changed. Run again with --yes to remove these rows." in out


def test_cleanup_leaves_no_harness_row_and_keeps_the_rest(written: StackInfo) -> None:
    assert written.dsn is not None
    before = _counts(written)
    report = cleanup(written.dsn, dry_run=False)
    after = _counts(written)
    assert _harness_rows(written) == dict.fromkeys(_harness_rows(written), 0)
    removed = {r.table: r.rows for r in report.removed}
    assert removed["agents"] == 5000
    assert removed["managed_certificates"] >= 10_000 + 3 + 1  # bulk, API, ACME
    assert removed["jobs"] >= 50
    assert removed[LEDGER_TABLE] == 2
    assert after[LEDGER_TABLE] == -1  # dropped
    assert removed["acme_accounts"] >= 1  # the pools' accounts that enrolled
    for table, rows in removed.items():
        if table != LEDGER_TABLE:
            assert before[table] - after[table] == rows, table
    # what is not the harness's stays: the demo seed, a client's certificate and account
    with _db(written) as conn:
        kept = conn.execute(
            "SELECT count(*) FROM managed_certificates WHERE name = %s", (BYSTANDER_CERT,)
        ).fetchone()
        assert kept == (1,)
        assert (
            conn.execute(
                "SELECT count(*) FROM managed_certificates WHERE id LIKE 'mc-%%'"
                " AND source <> 'ACME'"
            ).fetchone()[0]
            >= 32
        )  # type: ignore[index]
        orders = conn.execute(
            "SELECT o.identifiers::text FROM acme_orders o"
            " JOIN acme_accounts a ON a.account_id = o.account_id"
        ).fetchall()
        # the client's account and order stay, though it also ordered a harness name
        assert any(BYSTANDER_DOMAIN in o[0] for o in orders)
        assert not any(HARNESS_DOMAIN in o[0] for o in orders)
    assert after["audit_events"] >= before["audit_events"]  # append-only: never removed
    left = {x.table: x for x in report.left}
    assert "append-only" in left["audit_events"].why
    assert left["acme_accounts"].rows >= 1  # the pool's unused account, and said why
    text = "\n".join(render(report))
    assert f"Removed {report.rows:,} rows." in text
    # nothing left to remove; a second run says so
    again = cleanup(written.dsn, dry_run=True)
    assert again.rows == 0
    # and the next session seeds afresh
    seeded = apply_seed(written.dsn, REPO / "fixtures" / "sql")
    assert seeded.rows == 15_000


def test_a_row_still_referenced_stops_it_before_anything_is_removed(written: StackInfo) -> None:
    assert written.dsn is not None
    with _db(written) as conn:
        conn.execute(
            "CREATE TABLE operator_notes (agent_id TEXT NOT NULL"
            " CONSTRAINT operator_notes_agent_fk REFERENCES agents (id))"
        )
        conn.execute("INSERT INTO operator_notes VALUES ('loadtest-agent-0001')")
    try:
        before = _counts(written)
        result = _cli(written, "--yes")
        assert result.returncode == 1
        assert _counts(written) == before
        assert result.stderr.startswith(
            "error: the cleanup removed nothing from postgresql://certctl:***@127.0.0.1:"
        )
        assert (
            "the agents rows it removes (agents named loadtest-*) are still referenced: 1 row(s) "
            "of operator_notes point at them through operator_notes.agent_id (constraint "
            "operator_notes_agent_fk, which refuses it (ON DELETE NO ACTION))"
        ) in result.stderr
        with pytest.raises(CleanupError, match="a cleanup would remove nothing from"):
            cleanup(written.dsn, dry_run=True)
    finally:
        with _db(written) as conn:
            conn.execute("DROP TABLE operator_notes")


def test_bad_dsns_say_what_is_wrong_without_the_password(stack: StackInfo) -> None:
    assert stack.dsn is not None
    secret = "Wr0ng-pass-never-shown"
    user_host = stack.dsn.split("@", 1)[1]
    wrong = f"postgresql://certctl:{secret}@{user_host}"
    result = _cli(stack, "--dry-run", dsn=wrong)
    assert result.returncode == 1
    assert secret not in result.stdout + result.stderr
    assert "cannot connect to the database of DSN 'postgresql://certctl:***@" in result.stderr
    assert "password authentication failed" in result.stderr
    malformed = _cli(stack, "--yes", dsn=f"host=127.0.0.1 port=x password={secret}")
    assert malformed.returncode == 1
    assert secret not in malformed.stdout + malformed.stderr
    other_db = stack.dsn.rsplit("/", 1)[0] + "/postgres"
    with pytest.raises(CleanupError, match="it is not certctl's database; nothing was removed"):
        cleanup(other_db, dry_run=True)
    missing = subprocess.run(
        [sys.executable, "-m", "pytest_certload.cleanup", "--yes"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert missing.returncode == 2
    assert "no database given: set the environment variable CERTLOAD_CERTCTL_DSN" in missing.stderr
    neither = _cli(stack)
    assert neither.returncode == 2
    assert "give --dry-run to see what would be removed" in neither.stderr


def test_every_name_the_shipped_scenarios_write_is_one_cleanup_finds() -> None:
    from tests.load import conftest, k6, test_acme_enroll

    assert conftest.BULK_PREFIX.startswith(HARNESS_NAME_PREFIX)
    assert conftest.AGENT_PREFIX.startswith(HARNESS_NAME_PREFIX)
    issuance = {f.name: f.default for f in dataclasses.fields(k6.Issuance)}
    assert str(issuance["prefix"]).startswith(HARNESS_NAME_PREFIX)
    assert UniqueNames().prefix.startswith(HARNESS_NAME_PREFIX)
    for inputs in (test_acme_enroll.Enrollments, test_acme_enroll.OrderLimit):
        domain = {f.name: f.default for f in dataclasses.fields(inputs)}["domain"]
        assert str(domain).endswith(f".{HARNESS_DOMAIN}"), inputs
    for sql_file in (REPO / "fixtures" / "sql").glob("*.sql"):
        assert f"'{HARNESS_NAME_PREFIX}" in sql_file.read_text(), sql_file
