"""The fixtures of pytest-certload (registered by the plugin)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._session import LoadTest, SessionRecorder, settings_of

__all__ = ["certload", "certload_settings"]


@pytest.fixture(scope="session")
def certload_settings(pytestconfig: pytest.Config) -> object:
    """The resolved, frozen :class:`pytest_certload._settings.Settings`."""
    return settings_of(pytestconfig)


@pytest.fixture
def certload(request: pytest.FixtureRequest) -> Iterator[LoadTest]:
    """Runs scenarios inside a test and turns their verdict into the test's outcome.

    ``certload.run(*scenarios, thresholds=...)`` drives the engine; a threshold breach
    fails the test in its call phase; a run whose generator could not deliver the load,
    or whose target was unreachable, is reported as an error of this test.
    """
    recorder: SessionRecorder = request.config.stash[SessionRecorder.KEY]
    load = LoadTest(request.node, settings_of(request.config), recorder)
    yield load
    load.finish()
