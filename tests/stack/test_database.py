"""Reading certctl's database for comparability: row counts and PostgreSQL's settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest

from pytest_certload.stack.database import (
    NO_DSN,
    DatabaseSettings,
    RowCounts,
    count_rows,
    read_settings,
)
from pytest_certload.stack.helpers import free_port
from pytest_certload.stack.postgres import LocalPostgres


@pytest.fixture
async def dsn(pg: LocalPostgres) -> AsyncIterator[str]:
    dsn = await pg.create_database("comparability")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(b"CREATE TABLE jobs (id int); INSERT INTO jobs SELECT generate_series(1, 42)")
        conn.execute(b"CREATE SCHEMA s; CREATE TABLE s.agents (id int)")
    try:
        yield dsn
    finally:
        await pg.drop_database("comparability")


@pytest.mark.anyio
async def test_rows_are_counted_and_a_missing_table_is_named(dsn: str) -> None:
    counts = count_rows(dsn, ["jobs", "s.agents", "nope", "jobs"])
    assert counts == RowCounts(
        ("jobs", "s.agents", "nope"), {"jobs": 42, "s.agents": 0}, note="no such table: nope"
    )
    assert counts.text() == "jobs 42 rows, s.agents 0 rows, no such table: nope"
    assert RowCounts.from_dict(counts.to_dict()) == counts


@pytest.mark.anyio
async def test_the_local_providers_postgres_says_it_does_not_wait_for_the_disk(dsn: str) -> None:
    settings = read_settings(dsn)
    assert settings.settings == {
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "shared_buffers": settings.settings["shared_buffers"],
        "max_connections": "200",
    }
    assert settings.version.split()[0].split(".")[0].isdigit()
    assert settings.not_durable == ("fsync", "synchronous_commit", "full_page_writes")
    assert settings.warning().startswith("fsync, synchronous_commit and full_page_writes off: ")
    assert DatabaseSettings.from_dict(settings.to_dict()) == settings
    durable = DatabaseSettings({**settings.settings, "fsync": "on"})
    assert durable.warning().startswith("synchronous_commit and full_page_writes off")
    assert settings.differences(durable) == ["fsync off -> on"]


def test_without_a_dsn_or_a_database_the_figures_say_why_and_never_the_password() -> None:
    assert read_settings(None) == DatabaseSettings(note=NO_DSN)
    assert count_rows(None, ["jobs"]) == RowCounts(("jobs",), note=NO_DSN)
    assert count_rows(None, []) == RowCounts(())
    gone = f"postgresql://certctl:pw-secret-77@127.0.0.1:{free_port()}/certctl"
    settings, counts = read_settings(gone), count_rows(gone, ["jobs"])
    for note in (settings.note, counts.note):
        assert note.startswith("not read: ")
        assert "pw-secret-77" not in note
    assert settings.text() == settings.note
    assert counts.rows == {}
