"""Fixtures of the load scenarios: the certload stack seen through certctl's client.

Override ``certload_acme_profile`` in a conftest.py closer to your tests to load another
ACME profile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_certload import LoadTest
from pytest_certload.certctl import (
    AcmeDirectory,
    CertctlSetup,
    bearer,
    heartbeat_body,
    rate_limit_storm,
)
from pytest_certload.engine import RunResult, Scenario
from pytest_certload.seed import SeedReport
from pytest_certload.stack import StackInfo

#: name prefixes of the rows fixtures/sql seeds for the scale tier
BULK_PREFIX = "loadtest-bulk-"
AGENT_PREFIX = "loadtest-agent-"


@pytest.fixture(scope="session")
def certctl_url(certload_stack: StackInfo) -> str:
    return certload_stack.certctl_url


@pytest.fixture(scope="session")
def certctl_headers(certload_stack: StackInfo) -> dict[str, str]:
    """The Bearer header every certctl request carries (ACME too: without a dashboard,
    certctl routes /acme/* through its authenticated chain)."""
    return bearer(certload_stack.token)


@pytest.fixture(scope="session")
def certctl_setup(certload_stack: StackInfo) -> Iterator[CertctlSetup]:
    """A synchronous client for the one-off calls made before a load starts."""
    with CertctlSetup(
        certload_stack.certctl_url, certload_stack.token, verify=certload_stack.verify()
    ) as setup:
        yield setup


@pytest.fixture(scope="session")
def certload_acme_profile() -> str:
    """The certificate profile whose ACME surface the acme scenarios load (demo seed)."""
    return "prof-standard-tls"


@pytest.fixture(scope="session")
def acme_directory(certctl_setup: CertctlSetup, certload_acme_profile: str) -> AcmeDirectory:
    """The profile's directory, read once: proves the profile exists and serves JSON."""
    return certctl_setup.acme_directory(certload_acme_profile)


@pytest.fixture(scope="session")
def bulk_renewal_ids(certload_seed: SeedReport, certctl_setup: CertctlSetup) -> list[str]:
    """Ids of the seeded ``loadtest-bulk-*`` certificates still ``Active`` (renewable)."""
    ids = certctl_setup.certificate_ids(BULK_PREFIX, status="Active")
    if not ids:
        pytest.fail(
            f"no Active {BULK_PREFIX}* certificate is left to renew ({certload_seed.summary()});"
            " earlier runs against this database renewed them all: recreate the database "
            "(certctl's audit table is append-only) or reset their status to 'Active'."
        )
    return ids


@pytest.fixture(scope="session")
def agent_fleet(certload_seed: SeedReport, certctl_setup: CertctlSetup) -> list[tuple[str, bytes]]:
    """(id, heartbeat body) of every seeded ``loadtest-agent-*`` agent."""
    agents = certctl_setup.agents(AGENT_PREFIX)
    if not agents:
        pytest.fail(
            f"certctl lists no {AGENT_PREFIX}* agent after seeding: {certload_seed.summary()}"
        )
    return [(str(a["id"]), heartbeat_body(a)) for a in agents]


@pytest.fixture
def certload_run(certload: LoadTest) -> Callable[..., RunResult]:
    """``certload.run`` that also fails a run dominated by certctl's API rate limiter,
    with a message naming the CERTCTL_RATE_LIMIT_* settings to change."""

    def run(*scenarios: Scenario, **kwargs: Any) -> RunResult:
        try:
            result: RunResult = certload.run(*scenarios, **kwargs)
        except AssertionError as breach:
            storm = rate_limit_storm(certload.results[-1])
            if storm:
                raise AssertionError(f"{storm}\n{breach}") from None
            raise
        storm = rate_limit_storm(result)
        if storm:
            pytest.fail(storm, pytrace=False)
        return result

    return run
