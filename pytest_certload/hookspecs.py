"""The hooks pytest-certload calls, for conftest.py files and other plugins to implement."""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["pytest_certload_update_summary"]


@pytest.hookspec
def pytest_certload_update_summary(config: pytest.Config, summary: dict[str, Any]) -> None:
    """Change the JSON summary just before it is written to ``summary.json``.

    ``summary`` is the whole document (see ``docs/reports-and-baselines.md``); add keys
    of your own (a build number, a ticket, the deployment under test), preferably under
    one top-level key of your project's name. Every implementation is called, in pytest's
    usual order; what they change is written as it stands after the last one.
    """
