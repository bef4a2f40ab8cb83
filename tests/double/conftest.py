"""Session fixtures for tests/double: a private PostgreSQL and the double as subprocesses."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from double_support import ADMIN_KEY, USER_KEY, AcmeKey, AcmeTestClient, Double, Stack

from pytest_certload.stack.postgres import LocalPostgres
from pytest_certload.stack.tls import make_tls_material


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    workdir = Path(tempfile.mkdtemp(prefix="certload-double-tests-"))
    postgres = LocalPostgres()
    try:
        anyio.run(postgres.start)
        anyio.run(postgres.wait_ready, 30_000_000_000)
        tls = make_tls_material(
            workdir / "tls", server_names={"certctl": ["localhost", "127.0.0.1"]}
        )
        yield Stack(workdir, postgres, tls)
    finally:
        anyio.run(postgres.stop)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def double(stack: Stack) -> Iterator[Double]:
    """The shared double: demo seed, rate limiting off, admin and non-admin keys."""
    running = stack.start_double()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def admin(double: Double) -> Iterator[httpx.Client]:
    with double.client(ADMIN_KEY) as client:
        yield client


@pytest.fixture
def viewer(double: Double) -> Iterator[httpx.Client]:
    with double.client(USER_KEY) as client:
        yield client


@pytest.fixture
def acme_factory(admin: httpx.Client, double: Double) -> Any:
    def make(profile: str = "prof-standard-tls", key: AcmeKey | None = None) -> AcmeTestClient:
        return AcmeTestClient(admin, f"{double.base_url}/acme/profile/{profile}/directory", key)

    return make
