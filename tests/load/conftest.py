"""Fixtures of the load scenarios: the certload stack seen through certctl's client.

Override ``certload_acme_profile`` in a conftest.py closer to your tests to load another
ACME profile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from cryptography import x509

from pytest_certload import LoadTest
from pytest_certload.certctl import (
    AcmeDirectory,
    CertctlSetup,
    bearer,
    heartbeat_body,
    rate_limit_storm,
)
from pytest_certload.engine import RunResult, Scenario
from pytest_certload.loadtest import marker_kwargs, shared_members
from pytest_certload.seed import SeedReport
from pytest_certload.stack import StackInfo

from . import k6

#: name prefixes of the rows fixtures/sql seeds for the scale tier, and their seed files
BULK_PREFIX = "loadtest-bulk-"
AGENT_PREFIX = "loadtest-agent-"
BULK_SEED = "01_bulk_renewal_certs.sql"
AGENT_SEED = "02_agent_fleet.sql"


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist registers it too, when installed; without it --strict-markers needs this
    config.addinivalue_line(
        "markers",
        "xdist_group(name): with pytest-xdist's --dist loadgroup, run these tests on one "
        "worker (the members of a shared run)",
    )


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


@pytest.fixture
def acme_issuing_ca() -> x509.Certificate | None:
    """The CA every certificate of ``acme_enroll`` must chain to; ``None`` (default): the
    root the server sends in the chain (the double's CA is ephemeral), the same for every
    sample. Override in a conftest.py closer to your tests (or in a test module) to pin
    a known CA."""
    return None


@pytest.fixture(scope="session")
def acme_directory(certctl_setup: CertctlSetup, certload_acme_profile: str) -> AcmeDirectory:
    """The profile's directory, read once: proves the profile exists and serves JSON."""
    return certctl_setup.acme_directory(certload_acme_profile)


@pytest.fixture
def bulk_renewal_ids(
    certload_reseed: Callable[..., SeedReport], certctl_setup: CertctlSetup
) -> list[str]:
    """Ids of the seeded ``loadtest-bulk-*`` certificates, every one ``Active`` again.

    The seed file is applied again first (one transaction): the certificates an earlier
    run renewed are back to ``Active`` and their renewal jobs are gone, so every run
    renews the same certificates."""
    restored = certload_reseed(BULK_SEED)
    ids = certctl_setup.certificate_ids(BULK_PREFIX, status="Active")
    if len(ids) != restored.rows:
        pytest.fail(
            f"{BULK_SEED} restored {restored.rows:,} {BULK_PREFIX}* certificates to 'Active' "
            f"but certctl lists {len(ids):,} of them as Active; something changed them in "
            "between (certctl's renewal scheduler?), so this run would not measure the same "
            "work as the last one. Run it again.",
            pytrace=False,
        )
    return ids


@pytest.fixture
def agent_fleet(
    certload_reseed: Callable[..., SeedReport], certctl_setup: CertctlSetup
) -> list[tuple[str, bytes]]:
    """(id, heartbeat body) of every seeded ``loadtest-agent-*`` agent, each ``Online``
    with a fresh heartbeat again (the seed file is applied again first)."""
    restored = certload_reseed(AGENT_SEED)
    agents = certctl_setup.agents(AGENT_PREFIX)
    if len(agents) != restored.rows:
        pytest.fail(
            f"{AGENT_SEED} restored {restored.rows:,} {AGENT_PREFIX}* agents but certctl lists "
            f"{len(agents):,}: {restored.summary()}",
            pytrace=False,
        )
    return [(str(a["id"]), heartbeat_body(a)) for a in agents]


@pytest.fixture
def k6_scenarios(
    request: pytest.FixtureRequest,
    certload: LoadTest,
    certload_stack: StackInfo,
    certctl_headers: dict[str, str],
) -> dict[str, Scenario]:
    """The six scenarios of certctl's k6.js, by name (see ``k6.py``): what every member
    test of the shared run ``k6`` passes to ``certload.run_shared``."""
    scenarios = k6.k6_scenarios(
        certload_stack.certctl_url,
        certctl_headers,
        certload_stack.targets,
        # the handshake is the load: a new HTTP/1.1 connection per iteration, as k6.js
        certload.http_options(fresh_connection=True, http_version="1.1"),
    )
    own = str(marker_kwargs(request.node).get("scenario", ""))
    needed = {own}
    if not certload.settings.isolate:
        needed |= set(shared_members(request.session.items, k6.GROUP))
    lacking = sorted(name for name in needed if name not in scenarios)
    if lacking:
        types = ", ".join(name.removesuffix("_handshake") for name in lacking)
        pytest.fail(
            f"the shared run {k6.GROUP!r} runs the selected scenario(s) {', '.join(lacking)}, "
            f"but the {certload_stack.provider} stack has no {types} target (it has: "
            f"{', '.join(certload_stack.targets) or 'none'}); give each URL with "
            "--certload-targets TYPE=https://..., deselect them (-m 'not connector'), or "
            "run each scenario alone with --certload-isolate.",
            pytrace=False,
        )
    return scenarios


def _storm_checked(certload: LoadTest, run: Callable[[], RunResult]) -> RunResult:
    """``run()``, failing a run dominated by certctl's API rate limiter with a message
    naming the CERTCTL_RATE_LIMIT_* settings (added to a breach the 429s caused)."""
    try:
        result = run()
    except AssertionError as breach:
        storm = rate_limit_storm(certload.results[-1]) if certload.results else None
        if storm:
            raise AssertionError(f"{storm}\n{breach}") from None
        raise
    storm = rate_limit_storm(result)
    if storm:
        pytest.fail(storm, pytrace=False)
    return result


@pytest.fixture
def certload_run(certload: LoadTest) -> Callable[..., RunResult]:
    """``certload.run`` that also fails a run dominated by certctl's API rate limiter,
    with a message naming the CERTCTL_RATE_LIMIT_* settings to change."""

    def run(*scenarios: Scenario, **kwargs: Any) -> RunResult:
        return _storm_checked(certload, lambda: certload.run(*scenarios, **kwargs))

    return run


@pytest.fixture
def certload_run_shared(certload: LoadTest) -> Callable[..., RunResult]:
    """``certload.run_shared`` with the same rate-limiter check, on this test's own
    scenario's share of the shared run."""

    def run(scenarios: Mapping[str, Scenario], **kwargs: Any) -> RunResult:
        return _storm_checked(certload, lambda: certload.run_shared(scenarios, **kwargs))

    return run
