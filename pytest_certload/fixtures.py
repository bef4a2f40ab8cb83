"""The fixtures of pytest-certload and the stash keys they share with the hooks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .errors import ConfigError
from .loadtest import LoadTest
from .record import SessionRecord
from .settings import Settings
from .stack import StackInfo
from .stack.session import open_stack

if TYPE_CHECKING:
    from .seed import SeedReport

__all__ = [
    "LOADTEST_KEY",
    "SESSION_KEY",
    "SETTINGS_KEY",
    "certload",
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
    stack. The report header names what was measured.
    """
    settings = pytestconfig.stash[SETTINGS_KEY]
    session = pytestconfig.stash[SESSION_KEY]
    with open_stack(settings.stack_request(), work_dir=tmp_path_factory.mktemp("stack")) as opened:
        session.target = opened.label
        session.target_details = opened.details
        yield opened.info


@pytest.fixture(scope="session")
def certload_seed(certload_stack: StackInfo, pytestconfig: pytest.Config) -> SeedReport:
    """Apply ``fixtures/sql/*.sql`` (lexical order, idempotent, ledgered) to the stack's DB.

    Returns the :class:`pytest_certload.seed.SeedReport` (rows inserted per file).
    """
    from .seed import apply_seed  # psycopg: imported only by sessions that seed

    if not certload_stack.dsn:
        raise ConfigError(
            "the scale tier seeds certctl's PostgreSQL, but no DSN is known for "
            f"{certload_stack.certctl_url}; give --certctl-dsn DSN (ini certload_certctl_dsn, "
            "env CERTLOAD_CERTCTL_DSN) or use the local provider."
        )
    directory = Path(pytestconfig.rootpath) / "fixtures" / "sql"
    return apply_seed(certload_stack.dsn, directory)


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
    load = LoadTest(
        request.node, config.stash[SETTINGS_KEY], config.stash[SESSION_KEY], stack=stack
    )
    request.node.stash[LOADTEST_KEY] = load
    yield load
    del request.node.stash[LOADTEST_KEY]
    load.finish()
