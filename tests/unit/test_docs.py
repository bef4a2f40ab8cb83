"""Docs are part of the feature: every option is documented where users look."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_certload.settings import OPTIONS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.cli)
def test_every_option_is_in_the_configuration_page(option: object) -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for spelling in (option.cli, option.dest, option.env):  # type: ignore[attr-defined]
        assert f"`{spelling}" in text, f"{spelling} is missing from docs/configuration.md"


def test_readme_starts_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```sh") + 1 : lines.index("```sh") + 3]
    assert block[0].startswith("bash scripts/setup.sh && .venv/bin/pytest tests/load")
    assert block[1].startswith("bash scripts/setup.sh && .venv/bin/pytest --ignore=tests/load")
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".venv/bin/pytest --ignore=tests/load" in ci
    assert ".venv/bin/pytest tests/load --certload-profile smoke" in ci
