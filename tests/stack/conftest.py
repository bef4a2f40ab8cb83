"""Fixtures for the stack tests: one PostgreSQL server per session, TLS material, helpers."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from pytest_certload.stack.postgres import LocalPostgres
from pytest_certload.stack.tls import TLSMaterial, make_tls_material

REPO = Path(__file__).resolve().parents[2]
FAKE_CERTCTL = Path(__file__).with_name("fake_certctl.py")
TIMEOUT_NS = 20_000_000_000

# TEST FIXTURE, not certctl's schema: the handful of certctl tables (its migrations/) the seed
# files touch, with the same columns, NOT NULLs, defaults, uniques and foreign keys, plus
# the demo-seed rows the bulk certificates point at. The real schema comes from certctl's
# migrations (or the double) at boot.
MINIMAL_CERTCTL_SCHEMA = """
CREATE TABLE teams (
    id TEXT PRIMARY KEY, name VARCHAR(255) NOT NULL UNIQUE, description TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE owners (
    id TEXT PRIMARY KEY, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL,
    team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE issuers (
    id TEXT PRIMARY KEY, name VARCHAR(255) NOT NULL UNIQUE, type VARCHAR(255) NOT NULL,
    config JSONB, enabled BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    source TEXT NOT NULL DEFAULT 'database');
CREATE TABLE renewal_policies (
    id TEXT PRIMARY KEY, name VARCHAR(255) NOT NULL UNIQUE, renewal_window_days INT NOT NULL,
    auto_renew BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE managed_certificates (
    id TEXT PRIMARY KEY,
    name VARCHAR(255) NOT NULL UNIQUE,
    common_name VARCHAR(255) NOT NULL,
    sans TEXT[] DEFAULT '{}',
    environment VARCHAR(50),
    owner_id TEXT NOT NULL REFERENCES owners(id) ON DELETE RESTRICT,
    team_id TEXT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    issuer_id TEXT NOT NULL REFERENCES issuers(id) ON DELETE RESTRICT,
    renewal_policy_id TEXT NOT NULL REFERENCES renewal_policies(id) ON DELETE RESTRICT,
    status VARCHAR(50) NOT NULL DEFAULT 'pending',
    expires_at TIMESTAMPTZ,
    tags JSONB NOT NULL DEFAULT '{}',
    last_renewal_at TIMESTAMPTZ, last_deployment_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    certificate_profile_id TEXT, revoked_at TIMESTAMPTZ, revocation_reason VARCHAR(50),
    source TEXT NOT NULL DEFAULT '');
CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    name VARCHAR(255) NOT NULL UNIQUE,
    hostname VARCHAR(255) NOT NULL,
    status VARCHAR(50) NOT NULL DEFAULT 'offline',
    last_heartbeat_at TIMESTAMPTZ,
    registered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    api_key_hash VARCHAR(255) NOT NULL,
    os VARCHAR(100) DEFAULT '', architecture VARCHAR(100) DEFAULT '',
    ip_address VARCHAR(45) DEFAULT '', version VARCHAR(50) DEFAULT '',
    retired_at TIMESTAMPTZ, retired_reason TEXT);
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, type VARCHAR(255) NOT NULL,
    certificate_id TEXT REFERENCES managed_certificates(id) ON DELETE CASCADE,
    status VARCHAR(50) NOT NULL DEFAULT 'pending', attempts INT NOT NULL DEFAULT 0,
    max_attempts INT NOT NULL DEFAULT 3, scheduled_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now());
INSERT INTO teams (id, name) VALUES ('t-platform', 'platform');
INSERT INTO owners (id, name, email, team_id)
    VALUES ('o-alice', 'Alice', 'alice@example.test', 't-platform');
INSERT INTO issuers (id, name, type) VALUES ('iss-local', 'Local CA', 'GenericCA');
INSERT INTO renewal_policies (id, name, renewal_window_days) VALUES ('rp-standard', 'standard', 30);
"""


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pg() -> Iterator[LocalPostgres]:
    # sync on purpose: a session-scoped *async* fixture keeps anyio's pytest runner (and
    # its event loop) alive for the whole session, and every later anyio.run() in the
    # same thread (the engine's run_sync, for one) then fails with "Already running
    # asyncio in this thread". LocalPostgres owns plain subprocesses, not loop objects.
    server = LocalPostgres()
    anyio.run(server.start)
    try:
        yield server
    finally:
        anyio.run(server.stop)


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSMaterial:
    return make_tls_material(
        tmp_path_factory.mktemp("tls"),
        server_names={
            "nginx": ["nginx-target"],
            "apache": ["apache-target"],
            "haproxy": ["haproxy-target"],
            "f5": ["f5-mock-icontrol"],
            "certctl": ["certctl-server"],
        },
    )


def descendants(pid: int | None = None) -> set[int]:
    """Pids of every live (non-zombie) descendant of ``pid`` (default: this process), read
    from /proc."""
    root = os.getpid() if pid is None else pid
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        # the command name is in parentheses and may contain spaces
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if state == "Z":
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


PYTHON = sys.executable
