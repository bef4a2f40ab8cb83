"""apply_seed: ledger, idempotence, re-application, errors naming file/line/statement."""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from pytest_certload.errors import SeedError
from pytest_certload.seed import LEDGER_TABLE, apply_seed, restore_seed, split_statements
from pytest_certload.stack.postgres import LocalPostgres

from .conftest import MINIMAL_CERTCTL_SCHEMA, REPO

SEED_DIR = REPO / "fixtures" / "sql"


@pytest.fixture
async def schema_dsn(pg: LocalPostgres, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    name = "seed_" + request.node.name.replace("[", "_").replace("]", "").lower()[:50]
    dsn = await pg.create_database(name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(MINIMAL_CERTCTL_SCHEMA.encode())
    try:
        yield dsn
    finally:
        await pg.drop_database(name)


def scalar(dsn: str, query: str) -> object:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(query.encode()).fetchone()
    assert row is not None
    return row[0]


@pytest.mark.anyio
async def test_scale_seed_applies_once_then_skips(schema_dsn: str) -> None:
    first = apply_seed(schema_dsn, SEED_DIR)
    assert [(f.filename, f.status, f.rows) for f in first.files] == [
        ("01_bulk_renewal_certs.sql", "applied", 10_000),
        ("02_agent_fleet.sql", "applied", 5_000),
    ]
    assert first.rows == 15_000

    started = time.perf_counter()
    second = apply_seed(schema_dsn, SEED_DIR)
    elapsed = time.perf_counter() - started
    assert second.skipped == ("01_bulk_renewal_certs.sql", "02_agent_fleet.sql")
    assert second.rows == 0
    assert elapsed < 1.0, f"a no-op seed pass took {elapsed:.2f} s"
    assert "01_bulk_renewal_certs.sql: skipped, 0 rows" in second.summary()
    ledger = scalar(schema_dsn, f"SELECT count(*) FROM {LEDGER_TABLE}")
    assert ledger == 2


@pytest.mark.anyio
async def test_scale_seed_rows_follow_the_contract(schema_dsn: str) -> None:
    apply_seed(schema_dsn, SEED_DIR)
    certs = """
        SELECT count(*), count(DISTINCT name), min(name), max(name),
               bool_and(status = 'Active'), bool_and(environment IS NOT NULL),
               bool_and(expires_at > now() AND expires_at <= now() + interval '30 days'),
               bool_and(owner_id = 'o-alice' AND team_id = 't-platform'
                        AND issuer_id = 'iss-local' AND renewal_policy_id = 'rp-standard'),
               count(DISTINCT date_trunc('day', expires_at))
        FROM managed_certificates WHERE name LIKE 'loadtest-bulk-%'"""
    with psycopg.connect(schema_dsn) as conn:
        row = conn.execute(certs.encode()).fetchone()
        assert row == (
            10_000,
            10_000,
            "loadtest-bulk-00001",
            "loadtest-bulk-10000",
            True,
            True,
            True,
            True,
            row[-1] if row else None,
        )
        assert row is not None
        assert row[-1] >= 30
        agents = conn.execute(
            b"""SELECT count(*), bool_and(status = 'Online'),
                   bool_and(last_heartbeat_at BETWEEN now() - interval '61 seconds' AND now()),
                   bool_and(hostname <> '' AND architecture <> '' AND ip_address <> ''
                            AND version <> '' AND api_key_hash <> ''),
                   count(*) FILTER (WHERE os = 'linux'),
                   count(*) FILTER (WHERE os = 'windows'),
                   count(*) FILTER (WHERE os = 'darwin'),
                   count(DISTINCT ip_address), min(id), max(id)
                FROM agents WHERE name LIKE 'loadtest-agent-%'"""
        ).fetchone()
    assert agents == (
        5_000,
        True,
        True,
        True,
        4_000,
        500,
        500,
        5_000,
        "loadtest-agent-0001",
        "loadtest-agent-5000",
    )


@pytest.mark.anyio
async def test_changed_file_is_reapplied(schema_dsn: str, tmp_path: Path) -> None:
    seed = tmp_path / "sql"
    seed.mkdir()
    shutil.copy(SEED_DIR / "02_agent_fleet.sql", seed)
    assert apply_seed(schema_dsn, seed).rows == 5_000
    text = (seed / "02_agent_fleet.sql").read_text()
    (seed / "02_agent_fleet.sql").write_text(
        text.replace("generate_series(1, 5000)", "generate_series(1, 5100)")
    )
    again = apply_seed(schema_dsn, seed)
    # an upsert counts the rows it wrote: 100 new ones and the 5,000 it restored
    assert [(f.status, f.rows) for f in again.files] == [("reapplied", 5_100)]
    assert scalar(schema_dsn, "SELECT count(*) FROM agents") == 5_100
    assert apply_seed(schema_dsn, seed).skipped == ("02_agent_fleet.sql",)


#: what a bulk renewal and a heartbeat storm leave of the seeded rows (and of others)
_CONSUMED = """
UPDATE managed_certificates SET status = 'RenewalInProgress', last_renewal_at = now(),
    expires_at = now() + interval '90 days'
  WHERE name <= 'loadtest-bulk-06250';
INSERT INTO jobs (id, type, certificate_id, status)
  SELECT 'job-' || id, 'Renewal', id, 'Pending' FROM managed_certificates
  WHERE status = 'RenewalInProgress';
INSERT INTO managed_certificates (id, name, common_name, environment, owner_id, team_id,
    issuer_id, renewal_policy_id, status, expires_at)
  VALUES ('mc-other', 'other', 'other.example.test', 'production', 'o-alice', 't-platform',
    'iss-local', 'rp-standard', 'RenewalInProgress', now());
INSERT INTO jobs (id, type, certificate_id, status) VALUES ('job-other', 'Renewal', 'mc-other',
    'Pending');
UPDATE agents SET status = 'Offline', last_heartbeat_at = now() - interval '1 hour',
    version = '9.9.9', retired_at = now() WHERE id <= 'loadtest-agent-2500';
"""
_STATE = """
SELECT (SELECT count(*) FROM managed_certificates
         WHERE name LIKE 'loadtest-bulk-%' AND status = 'Active' AND last_renewal_at IS NULL
           AND expires_at > now() AND expires_at <= now() + interval '30 days'),
       (SELECT count(*) FROM jobs),
       (SELECT status FROM managed_certificates WHERE id = 'mc-other'),
       (SELECT count(*) FROM agents
         WHERE status = 'Online' AND version = '2.0.9' AND retired_at IS NULL
           AND last_heartbeat_at BETWEEN now() - interval '61 seconds' AND now())
"""


@pytest.mark.anyio
async def test_restoring_puts_the_seeded_rows_back_and_leaves_others(schema_dsn: str) -> None:
    apply_seed(schema_dsn, SEED_DIR)
    with psycopg.connect(schema_dsn) as conn:
        conn.execute(_CONSUMED.encode())
    assert scalar(schema_dsn, "SELECT count(*) FROM jobs") == 6_251
    for _ in range(2):  # idempotent: a second restore finds nothing more to do
        report = restore_seed(
            schema_dsn, SEED_DIR, ["01_bulk_renewal_certs.sql", "02_agent_fleet.sql"]
        )
        assert [(f.filename, f.status, f.rows) for f in report.files] == [
            ("01_bulk_renewal_certs.sql", "restored", 10_000),
            ("02_agent_fleet.sql", "restored", 5_000),
        ]
        with psycopg.connect(schema_dsn) as conn:
            row = conn.execute(_STATE.encode()).fetchone()
        # the seeded certificates Active again and their jobs gone; the other row and
        # its job untouched; the agents Online with fresh heartbeats again
        assert row == (10_000, 1, "RenewalInProgress", 5_000)
    assert apply_seed(schema_dsn, SEED_DIR).skipped == (
        "01_bulk_renewal_certs.sql",
        "02_agent_fleet.sql",
    )


@pytest.mark.anyio
async def test_restoring_is_one_transaction(schema_dsn: str, tmp_path: Path) -> None:
    seed = tmp_path / "sql"
    seed.mkdir()
    shutil.copy(SEED_DIR / "01_bulk_renewal_certs.sql", seed)
    apply_seed(schema_dsn, seed)
    with psycopg.connect(schema_dsn) as conn:
        conn.execute(_CONSUMED.split("INSERT INTO managed_certificates")[0].encode())
    (seed / "02_broken.sql").write_text("UPDATE agents SET nme = 'x';\n")
    with pytest.raises(SeedError, match=r"seed file 02_broken\.sql failed at line 1") as info:
        restore_seed(schema_dsn, seed, ["01_bulk_renewal_certs.sql", "02_broken.sql"])
    assert any("nothing was restored" in note for note in info.value.__notes__)
    # the first file's restore was rolled back with the second
    assert scalar(schema_dsn, "SELECT count(*) FROM jobs") == 6_250
    with pytest.raises(SeedError, match=r"cannot restore '03_nope.sql': not a seed file of "):
        restore_seed(schema_dsn, seed, ["03_nope.sql"])


@pytest.mark.anyio
async def test_broken_file_names_file_line_statement_and_rolls_back(
    schema_dsn: str, tmp_path: Path
) -> None:
    seed = tmp_path / "sql"
    seed.mkdir()
    (seed / "01_ok.sql").write_text("INSERT INTO teams (id, name) VALUES ('t-ok', 'ok');\n")
    (seed / "02_broken.sql").write_text(
        "-- first a statement that works\n"
        "INSERT INTO teams (id, name) VALUES ('t-kept-only-if-file-ok', 'x');\n"
        "\n"
        "INSERT INTO teams (id, name)\n"
        "SELECT 't-' || n,\n"
        "       nme\n"
        "FROM generate_series(1, 3) AS n;\n"
        "INSERT INTO teams (id, name) VALUES ('t-never', 'never');\n"
    )
    with pytest.raises(SeedError) as info:
        apply_seed(schema_dsn, seed)
    message = str(info.value)
    assert "seed file 02_broken.sql failed at line 6" in message
    assert 'column "nme" does not exist' in message
    assert "rolled back" in message
    assert "statement (from line 4):\nINSERT INTO teams (id, name)\nSELECT 't-' || n," in message
    assert any(str(seed / "02_broken.sql") in note for note in info.value.__notes__)
    # the first file stays applied, nothing of the broken one is kept
    assert scalar(schema_dsn, "SELECT count(*) FROM teams WHERE id = 't-ok'") == 1
    assert scalar(schema_dsn, "SELECT count(*) FROM teams WHERE id LIKE 't-kept%'") == 0
    assert scalar(schema_dsn, f"SELECT count(*) FROM {LEDGER_TABLE}") == 1


@pytest.mark.anyio
async def test_constraint_error_without_position_names_statement_line(
    schema_dsn: str, tmp_path: Path
) -> None:
    (tmp_path / "01.sql").write_text(
        "SELECT 1;\n\n"
        "INSERT INTO managed_certificates (id, name, common_name, owner_id, team_id, issuer_id,\n"
        "    renewal_policy_id) VALUES ('c', 'c', 'c', 'o-nobody', 't-platform', 'iss-local',\n"
        "    'rp-standard');\n"
    )
    with pytest.raises(SeedError, match=r"01\.sql failed at line 3: insert or update") as info:
        apply_seed(schema_dsn, tmp_path)
    assert any("Key (owner_id)=(o-nobody)" in note for note in info.value.__notes__)


def test_transaction_control_is_refused(tmp_path: Path) -> None:
    (tmp_path / "01.sql").write_text("BEGIN;\nSELECT 1;\nCOMMIT;\n")
    with pytest.raises(
        SeedError, match=r"01\.sql, line 1: remove the transaction control statement 'BEGIN'"
    ):
        apply_seed("postgresql://127.0.0.1:1/x", tmp_path)  # refused before connecting


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SeedError, match=r"seed directory .*nope does not exist"):
        apply_seed("postgresql://127.0.0.1:1/x", tmp_path / "nope")


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://certctl:hunter2-secret@127.0.0.1:notaport/certctl",
        "postgresql://certctl:hunter2-secret@127.0.0.1:5432/certctl?bogus=1",
        "host=127.0.0.1 password=hunter2 secret-part user=certctl",
    ],
    ids=["bad-port", "bad-parameter", "keyword-form"],
)
def test_malformed_dsn_names_the_option_and_never_the_password(tmp_path: Path, dsn: str) -> None:
    (tmp_path / "01.sql").write_text("SELECT 1;\n")
    with pytest.raises(SeedError) as info:
        apply_seed(dsn, tmp_path)
    message = str(info.value)
    assert "is not a valid PostgreSQL connection string" in message
    assert "--certctl-dsn" in message
    assert "CERTLOAD_CERTCTL_DSN" in message
    assert "the seed from" in message
    assert "***" in message
    assert "hunter2" not in message
    assert "secret-part" not in message
    # psycopg's own exception, whose text may quote the DSN, is not chained for display
    assert info.value.__suppress_context__
    assert info.value.__cause__ is None


def test_unreachable_database_names_the_option_and_never_the_password(tmp_path: Path) -> None:
    from pytest_certload.stack.helpers import free_port

    (tmp_path / "01.sql").write_text("SELECT 1;\n")
    port = free_port()
    dsn = f"postgresql://certctl:hunter2-secret@127.0.0.1:{port}/certctl"
    with pytest.raises(SeedError) as info:
        apply_seed(dsn, tmp_path)
    message = str(info.value)
    assert f"cannot connect to the database of DSN 'postgresql://certctl:***@127.0.0.1:{port}" in (
        message
    )
    assert "Connection refused" in message
    assert "--certctl-dsn" in message
    assert "hunter2" not in message


def test_connecting_gives_up_after_the_connect_timeout(tmp_path: Path) -> None:
    """A server that accepts TCP and never speaks (a firewall, a wrong port): without a
    connect timeout libpq would wait for ever."""
    import socket
    import threading

    (tmp_path / "01.sql").write_text("SELECT 1;\n")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        outcome: list[BaseException | None] = []

        def seed() -> None:
            try:
                apply_seed(
                    f"postgresql://u:pw12345@127.0.0.1:{port}/db", tmp_path, connect_timeout_s=1
                )
            except BaseException as exc:
                outcome.append(exc)
            else:
                outcome.append(None)

        worker = threading.Thread(target=seed, daemon=True)
        worker.start()
        worker.join(timeout=120)  # generous: the point is that it ends at all
    assert outcome, "apply_seed was still connecting after 120 s: no connect timeout"
    error = outcome[0]
    assert isinstance(error, SeedError)
    assert "connect timeout 1 s" in str(error)
    assert "pw12345" not in str(error)


def test_split_statements_respects_quotes_comments_and_dollar_quoting() -> None:
    text = (
        "-- header; with a semicolon\n"
        "SELECT 'a;b', \"we;ird\", E'it\\'s;';\n"
        "/* block ; /* nested ; */ still comment */\n"
        "DO $body$ BEGIN PERFORM 1; END $body$;\n"
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n"
        "SELECT 'it''s';;\n"
        "-- trailing comment only\n"
    )
    statements = split_statements(text)
    assert [s.line for s in statements] == [2, 4, 5, 6]
    assert statements[0].text.startswith("-- header; with a semicolon\nSELECT 'a;b'")
    assert statements[0].text.endswith("E'it\\'s;'")
    assert statements[1].text.startswith("/* block ; /* nested ; */ still comment */\nDO $body$")
    assert statements[2].text.endswith("$$ SELECT 1; $$ LANGUAGE sql")
    assert statements[3].text == "SELECT 'it''s'"
