"""The fixtures of pytest-certload and the stash keys they share with the hooks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .errors import ConfigError, PreflightError
from .interrupts import Interrupts
from .loadtest import LoadTest, SharedRuns, shared_members
from .record import SERVICE_LOGS_DIR, SessionRecord
from .redaction import Redactor, redact_url
from .settings import Settings
from .stack import StackInfo
from .stack.database import read_settings
from .stack.session import OpenStack, open_stack

if TYPE_CHECKING:
    from .seed import SeedReport

__all__ = [
    "INTERRUPTS_KEY",
    "LOADTEST_KEY",
    "OPEN_STACK_KEY",
    "REDACTOR_KEY",
    "SESSION_KEY",
    "SETTINGS_KEY",
    "SHARED_KEY",
    "certload",
    "certload_reseed",
    "certload_seed",
    "certload_settings",
    "certload_stack",
]

#: the resolved settings, on ``config.stash``
SETTINGS_KEY = pytest.StashKey[Settings]()
#: the session's record (what every run measured), on ``config.stash``
SESSION_KEY = pytest.StashKey[SessionRecord]()
#: a test's ``certload`` object, on its item's ``stash`` while the test runs
LOADTEST_KEY = pytest.StashKey[LoadTest]()
#: the session's secrets, scrubbed from every report (``config.stash``)
REDACTOR_KEY = pytest.StashKey[Redactor]()
#: the session's SIGTERM policy (``config.stash``)
INTERRUPTS_KEY = pytest.StashKey[Interrupts]()
#: the session's open stack while ``certload_stack`` is set up (``config.stash``)
OPEN_STACK_KEY = pytest.StashKey[OpenStack]()
#: the session's shared runs, by group (``config.stash``)
SHARED_KEY = pytest.StashKey[SharedRuns]()


@pytest.fixture(scope="session")
def certload_settings(pytestconfig: pytest.Config) -> Settings:
    """The resolved, frozen :class:`pytest_certload.Settings`."""
    return pytestconfig.stash[SETTINGS_KEY]


@pytest.fixture(scope="session")
def certload_stack(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackInfo]:
    """The system under test for the whole session, torn down at its end.

    ``--certload-provider local`` (default) boots PostgreSQL, the certctl reference double
    (or ``--certctl-bin``), nginx, apache2, haproxy and the f5 mock as child processes;
    ``containers`` uses testcontainers; ``external`` (``--certctl-url``) uses a running
    stack. The report header names what was measured, certctl's version and commit, and
    the database's settings (read with the DSN, when there is one).
    """
    settings = pytestconfig.stash[SETTINGS_KEY]
    session = pytestconfig.stash[SESSION_KEY]
    redactor = pytestconfig.stash[REDACTOR_KEY]
    with open_stack(
        settings.stack_request(),
        work_dir=tmp_path_factory.mktemp("stack"),
        logs_dir=session.output_dir / SERVICE_LOGS_DIR,
    ) as opened:
        info = opened.info
        for secret in (info.token, info.admin_token):
            redactor.add(secret)
        redactor.add_dsn(info.dsn)
        redactor.add_url(info.certctl_url)
        session.target = redactor.scrub(opened.label)
        session.target_details = {**opened.details, "url": redact_url(info.certctl_url)}
        if not info.verify_tls:
            session.target_details["tls_verify"] = False
        session.database = read_settings(info.dsn)
        try:
            opened.preflight()
        except PreflightError as exc:
            # every test of the stack errors with the causes, not a traceback
            pytest.fail(redactor.scrub(str(exc)), pytrace=False)
        pytestconfig.stash[OPEN_STACK_KEY] = opened
        try:
            yield info
        finally:
            del pytestconfig.stash[OPEN_STACK_KEY]


#: where the seed files are, under the rootdir
_SEED_DIR = Path("fixtures") / "sql"


def _seed_dsn(stack: StackInfo) -> str:
    """The DSN the seed needs; a ConfigError saying why the scale tier cannot run without
    one (raised in a fixture: the test errors before anything is measured)."""
    if not stack.dsn:
        raise ConfigError(
            "the scale tier seeds certctl's PostgreSQL and puts the seeded rows back in their "
            "seeded state before each run (a run consumes them: bulk renewal leaves the "
            "certificates it renews 'RenewalInProgress'), so that every run measures the same "
            f"work; no DSN is known for {redact_url(stack.certctl_url)}, so nothing was "
            "measured. Give --certctl-dsn DSN (better the environment variable "
            "CERTLOAD_CERTCTL_DSN; ini certload_certctl_dsn) or use the local provider."
        )
    return stack.dsn


@pytest.fixture(scope="session")
def certload_seed(certload_stack: StackInfo, pytestconfig: pytest.Config) -> SeedReport:
    """Apply ``fixtures/sql/*.sql`` (lexical order, idempotent, ledgered) to the stack's DB.

    Returns the :class:`pytest_certload.seed.SeedReport` (rows written per file).
    """
    from .seed import apply_seed  # psycopg: imported only by sessions that seed

    return apply_seed(_seed_dsn(certload_stack), Path(pytestconfig.rootpath) / _SEED_DIR)


@pytest.fixture
def certload_reseed(
    certload_seed: SeedReport, certload_stack: StackInfo, pytestconfig: pytest.Config
) -> Callable[..., SeedReport]:
    """``certload_reseed("01_bulk_renewal_certs.sql", ...)`` applies those seed files
    again, in one transaction, putting the rows they seed back in their seeded state
    (:func:`pytest_certload.seed.restore_seed`). A test that consumes seeded rows calls it
    before it measures, so every run measures the same work."""
    from .seed import restore_seed

    dsn = _seed_dsn(certload_stack)
    directory = Path(pytestconfig.rootpath) / _SEED_DIR

    def reseed(*files: str) -> SeedReport:
        return restore_seed(dsn, directory, files)

    return reseed


@pytest.fixture
def certload(request: pytest.FixtureRequest) -> Iterator[LoadTest]:
    """Runs scenarios inside a test and turns their verdict into the test's outcome.

    ``certload.run(*scenarios, thresholds=...)`` drives the engine; a threshold breach
    fails the test in its call phase; a run whose generator could not deliver the load,
    or whose target was unreachable, is reported as an error of this test.
    """
    stack: StackInfo | None = None
    if "certload_stack" in request.fixturenames:
        stack = request.getfixturevalue("certload_stack")
    config = request.config
    session = request.session
    shared = config.stash.setdefault(
        SHARED_KEY, SharedRuns(lambda group: shared_members(session.items, group))
    )
    load = LoadTest(
        request.node,
        config.stash[SETTINGS_KEY],
        config.stash[SESSION_KEY],
        stack=stack,
        interrupts=config.stash[INTERRUPTS_KEY],
        watch=config.stash.get(OPEN_STACK_KEY, None),
        shared=shared,
    )
    request.node.stash[LOADTEST_KEY] = load
    yield load
    del request.node.stash[LOADTEST_KEY]
    load.finish()
