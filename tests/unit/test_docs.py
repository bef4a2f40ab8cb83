"""Docs are part of the feature: every option is documented where users look."""

from __future__ import annotations

import ast
import re
import textwrap
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


# --- drift checks over README.md and docs/ ------------------------------------------------

#: every page these checks read: the README and each Markdown page under docs/
PAGES = sorted([ROOT / "README.md", ROOT / "bench" / "README.md", *(ROOT / "docs").rglob("*.md")])
_FENCE = re.compile(r"^([ \t]*)```python[ \t]*\n(.*?)^\1```", re.DOTALL | re.MULTILINE)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_OPTION = re.compile(r"--(?:certload|certctl)-[a-z0-9]+(?:-[a-z0-9]+)*")
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_TOP_LEVEL_AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
_CODE_FENCE = re.compile(r"^[ \t]*```.*?^[ \t]*```", re.DOTALL | re.MULTILINE)

#: Known drift in pages this change does not own, one entry per (page, finding), each
#: with the issue it shows. Fix the page, then delete its entry: a fixed entry fails the
#: test (so the list only shrinks), and any drift not listed here fails it too.
KNOWN_BROKEN_LINKS: dict[tuple[str, str], str] = {}
KNOWN_UNKNOWN_OPTIONS: dict[tuple[str, str], str] = {}
KNOWN_BAD_PYTHON: dict[tuple[str, str], str] = {}


def _rel(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but '-' and '_' dropped,
    spaces to hyphens (links and inline code reduced to their text)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = _CODE_FENCE.sub("", page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    anchors = set()
    for heading in _HEADING.findall(text):
        slug = _slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    anchors.update(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", text))
    return anchors


def _broken_links(page: Path) -> list[str]:
    text = _CODE_FENCE.sub("", page.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # a link inside inline code is not a link
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target} (no file {dest.relative_to(ROOT).as_posix()})")
        elif anchor and dest.is_file() and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no heading #{anchor})")
    return broken


def _findings_check(found: dict[tuple[str, str], str], known: dict[tuple[str, str], str]) -> None:
    new = {key: why for key, why in found.items() if key not in known}
    fixed = sorted(key for key in known if key not in found)
    assert not new, "docs drifted:\n" + "\n".join(f"  {p}: {why}" for (p, _), why in new.items())
    assert not fixed, f"fixed, so delete these allowlist entries: {fixed}"


def test_every_python_block_of_the_docs_compiles() -> None:
    found: dict[tuple[str, str], str] = {}
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 2
            code = textwrap.dedent(match.group(2))
            try:
                # a snippet may show `await` outside a function: a fragment of one
                compile(code, f"{_rel(page)}:{line}", "exec", flags=_TOP_LEVEL_AWAIT)
            except SyntaxError as exc:
                found[(_rel(page), f"line {line}")] = f"```python block at line {line}: {exc}"
    _findings_check(found, KNOWN_BAD_PYTHON)


def test_every_relative_link_of_the_docs_resolves() -> None:
    found = {
        (_rel(page), why.split(" ", 1)[0]): f"broken link {why}"
        for page in PAGES
        for why in _broken_links(page)
    }
    _findings_check(found, KNOWN_BROKEN_LINKS)


def test_every_option_the_docs_name_exists() -> None:
    known = {opt.cli for opt in OPTIONS}
    found = {
        (_rel(page), name): f"{name} is not an option of pytest_certload.settings.OPTIONS"
        for page in PAGES
        # link targets are left out: an anchor like #a-scenario---certload-tx-can-ship
        for name in sorted(set(_OPTION.findall(_LINK_TARGET.sub("]", page.read_text("utf-8")))))
        if name not in known
    }
    _findings_check(found, KNOWN_UNKNOWN_OPTIONS)
