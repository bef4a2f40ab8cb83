"""LocalPostgres: boot, DSN, databases per module, teardown, missing binaries."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from pytest_certload.errors import ConfigError, ServiceError, ServiceTimeout
from pytest_certload.stack import postgres as pg_module
from pytest_certload.stack.postgres import LocalPostgres, find_postgres_bin_dir

from .conftest import TIMEOUT_NS, descendants

pytestmark = pytest.mark.anyio


async def test_dsn_logs_in_as_certctl_over_tcp(pg: LocalPostgres) -> None:
    assert pg.dsn() == f"postgresql://certctl:{pg.password}@127.0.0.1:{pg.port}/certctl"
    assert pg.url() == f"postgresql://certctl:***@127.0.0.1:{pg.port}/certctl"
    assert pg.password not in repr(pg)
    await pg.wait_ready(TIMEOUT_NS)
    async with await psycopg.AsyncConnection.connect(pg.dsn()) as conn:
        cur = await conn.execute(
            "SELECT current_user, current_database(), current_setting('fsync')"
        )
        assert await cur.fetchone() == ("certctl", "certctl", "off")


async def test_wrong_password_is_refused(pg: LocalPostgres) -> None:
    bad = pg.dsn().replace(f"certctl:{pg.password}@", "certctl:nope@")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        await psycopg.AsyncConnection.connect(bad)


def test_password_is_random_per_server_unless_given() -> None:
    first, second = LocalPostgres(), LocalPostgres()
    assert first.password != second.password
    assert len(first.password) >= 24
    assert "certctl" not in (first.password, second.password)
    assert LocalPostgres(password="chosen-one").password == "chosen-one"


async def test_create_and_drop_database(pg: LocalPostgres) -> None:
    dsn = await pg.create_database("module_one")
    assert dsn.endswith(f":{pg.port}/module_one")
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("CREATE TABLE t (x int)")  # the login role owns it
        cur = await conn.execute("SELECT current_database()")
        assert await cur.fetchone() == ("module_one",)
        # drop must succeed even with this session still open (WITH (FORCE))
        await pg.drop_database("module_one")
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        await psycopg.AsyncConnection.connect(dsn)
    await pg.drop_database("module_one")  # idempotent


async def test_database_names_are_validated(pg: LocalPostgres) -> None:
    with pytest.raises(ConfigError, match=r"'bad-name; drop' is not a valid database name"):
        await pg.create_database("bad-name; drop")


async def test_stop_removes_directory_and_children() -> None:
    server = LocalPostgres()
    await server.start()
    try:
        directory = server.directory
        assert directory is not None
        assert (directory / "data" / "PG_VERSION").exists()
        pid = server._proc.pid if server._proc else None
        assert pid in descendants()
    finally:
        await server.stop()
    assert not directory.exists()
    assert pid not in descendants()
    assert not descendants(pid)
    await server.stop()  # idempotent


def test_missing_binaries_in_bin_dir_list_every_fix(tmp_path: Path) -> None:
    with pytest.raises(ServiceError) as info:
        find_postgres_bin_dir(tmp_path)
    message = str(info.value)
    assert "PostgreSQL server binaries (initdb, postgres) not found in the bin_dir given" in message
    assert str(tmp_path) in message
    assert "apt-get install postgresql-15" in message
    assert "brew install postgresql@15" in message
    assert "dnf install postgresql-server" in message
    assert "LocalPostgres(bin_dir=...)" in message
    assert "containers provider" in message
    assert "external provider" in message


def test_missing_binaries_on_path_lists_places_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(pg_module, "_candidate_dirs", lambda: [tmp_path, Path("/nowhere/bin")])
    with pytest.raises(ServiceError, match="not found in PATH and the usual locations") as info:
        find_postgres_bin_dir()
    assert "  - /nowhere/bin" in str(info.value)


async def test_start_with_missing_binaries_leaves_nothing(tmp_path: Path) -> None:
    server = LocalPostgres(base_dir=tmp_path / "base", bin_dir=tmp_path / "empty")
    with pytest.raises(ServiceError, match="postgresql-15"):
        await server.start()
    assert not (tmp_path / "base").exists() or not any((tmp_path / "base").iterdir())


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the data directory over")
async def test_unreachable_base_dir_names_the_blocking_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    server = LocalPostgres(base_dir=locked / "pg")
    with pytest.raises(ServiceError) as info:
        await server.start()
    message = str(info.value)
    assert "the OS user 'postgres' that runs PostgreSQL cannot reach" in message
    assert "is not searchable by it" in message
    assert "chmod o+x" in message
    assert "leave base_dir unset" in message
    assert not any((locked / "pg").iterdir())


def test_dsn_before_start_is_a_clear_error() -> None:
    with pytest.raises(ServiceError, match=r"dsn\(\) needs a started server"):
        LocalPostgres().dsn()


async def test_wait_ready_timeout_names_place_and_hides_password(
    pg: LocalPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(conninfo: str) -> str:
        return "FATAL: the database system is starting up"

    monkeypatch.setattr(pg, "_try_connect", refuse)
    with pytest.raises(ServiceTimeout) as info:
        await pg.wait_ready(200_000_000)
    message = str(info.value)
    assert f"postgres: a login at 127.0.0.1:{pg.port} (as certctl, over TCP)" in message
    assert "within 0.2 s" in message
    assert "last: FATAL: the database system is starting up" in message
    assert ":certctl@" not in message
    assert any("last 40 log lines of postgres" in note for note in info.value.__notes__)


def test_every_service_satisfies_the_protocol(tmp_path: Path) -> None:
    from pytest_certload.stack.certctl import CertctlServer
    from pytest_certload.stack.f5 import F5Mock
    from pytest_certload.stack.protocols import Service
    from pytest_certload.stack.sidecars import ApacheSidecar, HAProxySidecar, NginxSidecar

    p = tmp_path / "x"
    services = [
        LocalPostgres(),
        CertctlServer(db_dsn="postgresql://h/db", cert=p, key=p, ca=p),
        NginxSidecar(p, p, ca=p),
        ApacheSidecar(p, p, ca=p),
        HAProxySidecar(p, p, ca=p),
        F5Mock(p, p, ca=p),
    ]
    for service in services:
        assert isinstance(service, Service), type(service).__name__
    assert [s.name for s in services] == ["postgres", "certctl", "nginx", "apache", "haproxy", "f5"]
