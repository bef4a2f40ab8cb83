"""The fixtures of pytest-certload (registered by the plugin)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._session import LoadTest, SessionRecorder, settings_of
from ._settings import Settings
from .errors import ConfigError
from .stack.external import StackInfo

__all__ = ["certload", "certload_seed", "certload_settings", "certload_stack"]


@pytest.fixture(scope="session")
def certload_settings(pytestconfig: pytest.Config) -> Settings:
    """The resolved, frozen :class:`pytest_certload._settings.Settings`."""
    settings: Settings = settings_of(pytestconfig)
    return settings


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
    from ._stackglue import open_stack

    settings: Settings = settings_of(pytestconfig)
    recorder: SessionRecorder = pytestconfig.stash[SessionRecorder.KEY]
    with open_stack(settings, work_dir=tmp_path_factory.mktemp("stack")) as opened:
        recorder.target = opened.label
        recorder.target_details = opened.details
        yield opened.info


@pytest.fixture(scope="session")
def certload_seed(certload_stack: StackInfo, pytestconfig: pytest.Config) -> Any:
    """Apply ``fixtures/sql/*.sql`` (lexical order, idempotent, ledgered) to the stack's DB.

    Returns the :class:`pytest_certload.seed.SeedReport` (rows inserted per file).
    """
    from .seed import apply_seed

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
    recorder: SessionRecorder = request.config.stash[SessionRecorder.KEY]
    load = LoadTest(request.node, settings_of(request.config), recorder)
    if "certload_stack" in request.fixturenames:
        load.stack = request.getfixturevalue("certload_stack")
    yield load
    load.finish()
