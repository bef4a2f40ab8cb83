"""Docs are part of the feature: every option is documented where users look, and the
docs cannot drift from the code.

The drift checks read every Markdown page users see (README.md, CHANGELOG.md,
bench/README.md, docs/): Python blocks compile, relative links and anchors resolve,
every ``--certload-*``/``--certctl-*`` named is a real option, every fixture a test or
fixture in a Python block takes exists, the fixture tables list exactly the plugin's
fixtures (and this repository's), every ``pytest_certload`` import and dotted name
resolves, and docs/api.md documents exactly ``pytest_certload.__all__``. Each checker
is a function of the text, and is shown to fail on a bad sample (the ``*_catches_*``
tests), so a check that silently stopped checking would be noticed.
"""

from __future__ import annotations

import ast
import importlib
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

import pytest_certload
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

#: every page these checks read: the README, the changelog, the benchmarks' page and each
#: Markdown page under docs/
PAGES = sorted(
    [
        ROOT / "README.md",
        ROOT / "CHANGELOG.md",
        ROOT / "bench" / "README.md",
        *(ROOT / "docs").rglob("*.md"),
    ]
)
_FENCE = re.compile(r"^([ \t]*)```python[ \t]*\n(.*?)^\1```", re.DOTALL | re.MULTILINE)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_OPTION = re.compile(r"--(?:certload|certctl)-[a-z0-9]+(?:-[a-z0-9]+)*")
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_TOP_LEVEL_AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
_CODE_FENCE = re.compile(r"^[ \t]*```.*?^[ \t]*```", re.DOTALL | re.MULTILINE)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
#: an inline code span that is a dotted name in the package, maybe called:
#: ``pytest_certload.x.y(...)``
_DOTTED = re.compile(r"^(pytest_certload(?:\.[A-Za-z_]\w*)+)(?:\(.*\))?$")

#: Known drift in pages this change does not own, one entry per (page, finding), each
#: with the issue it shows. Fix the page, then delete its entry: a fixed entry fails the
#: test (so the list only shrinks), and any drift not listed here fails it too.
KNOWN_BROKEN_LINKS: dict[tuple[str, str], str] = {}
KNOWN_UNKNOWN_OPTIONS: dict[tuple[str, str], str] = {}
KNOWN_BAD_PYTHON: dict[tuple[str, str], str] = {}
KNOWN_BAD_IMPORTS: dict[tuple[str, str], str] = {}
KNOWN_UNKNOWN_FIXTURES: dict[tuple[str, str], str] = {}


def _rel(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but '-' and '_' dropped,
    spaces to hyphens (links and inline code reduced to their text)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(text: str) -> set[str]:
    text = _CODE_FENCE.sub("", text)
    seen: dict[str, int] = {}
    anchors = set()
    for heading in _HEADING.findall(text):
        slug = _slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    anchors.update(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", text))
    return anchors


def _broken_links(text: str, directory: Path) -> list[str]:
    """Every relative link of ``text`` (a page in ``directory``) whose file or heading is
    missing; a link to ``#anchor`` alone is checked against ``text`` itself."""
    prose = _CODE_FENCE.sub("", text)
    prose = re.sub(r"`[^`\n]*`", "", prose)  # a link inside inline code is not a link
    broken = []
    for target in _LINK.findall(prose):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        dest = (directory / path).resolve() if path else None
        if dest is not None and not dest.exists():
            broken.append(f"{target} (no file {path})")
            continue
        if not anchor or (dest is not None and (not dest.is_file() or dest.suffix != ".md")):
            continue
        own = text if dest is None else dest.read_text(encoding="utf-8")
        if anchor not in _anchors(own):
            broken.append(f"{target} (no heading #{anchor})")
    return broken


def _python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line, code)`` of every ```python block of ``text``."""
    return [
        (text.count("\n", 0, m.start()) + 2, textwrap.dedent(m.group(2)))
        for m in _FENCE.finditer(text)
    ]


def _bad_python(text: str, name: str = "<page>") -> list[str]:
    bad = []
    for line, code in _python_blocks(text):
        try:
            # a snippet may show `await` outside a function: a fragment of one
            compile(code, f"{name}:{line}", "exec", flags=_TOP_LEVEL_AWAIT)
        except SyntaxError as exc:
            bad.append(f"```python block at line {line}: {exc}")
    return bad


def _unknown_options(text: str) -> list[str]:
    known = {opt.cli for opt in OPTIONS}
    # link targets are left out: an anchor like #a-scenario---certload-tx-can-ship
    names = set(_OPTION.findall(_LINK_TARGET.sub("]", text)))
    return sorted(name for name in names if name not in known)


def _trees(text: str) -> list[tuple[int, ast.Module]]:
    """The parsed Python blocks of ``text`` (a block that does not compile is the
    compile check's finding, not this one's)."""
    trees = []
    for line, code in _python_blocks(text):
        try:
            trees.append((line, ast.parse(code)))
        except SyntaxError:
            continue
    return trees


def _resolves(dotted: str) -> bool:
    """Whether ``pytest_certload.a.b.c`` names a module or an attribute of one."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def _bad_imports(text: str) -> list[str]:
    """Every ``pytest_certload`` import of a Python block, and every inline code span that
    is an import or a dotted name in the package, that does not resolve."""
    bad: list[str] = []
    statements: list[tuple[str, ast.AST]] = [
        (f"line {line}", node)
        for line, tree in _trees(text)
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
    ]
    prose = _CODE_FENCE.sub("", text)
    for span in _INLINE_CODE.findall(prose):
        if span.startswith(("from pytest_certload", "import pytest_certload")):
            try:
                statements += [(f"`{span}`", n) for n in ast.parse(span).body]
            except SyntaxError:
                bad.append(f"`{span}` is not a valid import")
        elif (dotted := _DOTTED.match(span)) and not _resolves(dotted.group(1)):
            bad.append(f"`{span}`: {dotted.group(1)} does not exist")
    for where, node in statements:
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == (
            "pytest_certload"
        ):
            for alias in node.names:
                if alias.name != "*" and not _resolves(f"{node.module}.{alias.name}"):
                    bad.append(f"{where}: from {node.module} import {alias.name} fails")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "pytest_certload" and not _resolves(alias.name):
                    bad.append(f"{where}: import {alias.name} fails")
    return bad


def _fixture_functions(path: Path) -> set[str]:
    """Names of the functions decorated with ``pytest.fixture`` in a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if _is_fixture(node)}


def _is_fixture(node: ast.AST) -> bool:
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    for deco in node.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        if isinstance(target, ast.Attribute) and target.attr == "fixture":
            return True
        if isinstance(target, ast.Name) and target.id == "fixture":
            return True
    return False


#: the plugin's fixtures, as pytest_certload/fixtures.py defines them
PLUGIN_FIXTURES = _fixture_functions(ROOT / "pytest_certload" / "fixtures.py")
#: the fixtures only this repository's load tests have
REPO_FIXTURES = _fixture_functions(ROOT / "tests" / "load" / "conftest.py")
#: pytest's own fixtures a documented test may take
PYTEST_FIXTURES = frozenset(
    {
        "request",
        "pytestconfig",
        "tmp_path",
        "tmp_path_factory",
        "monkeypatch",
        "capsys",
        "capfd",
        "caplog",
        "recwarn",
        "record_property",
        "record_testsuite_property",
        "pytester",
        "cache",
        "doctest_namespace",
        "anyio_backend",
    }
)


def _unknown_fixtures(text: str) -> list[str]:
    """Every argument of a test or fixture function in the Python blocks of ``text`` that
    is no fixture of the plugin, of pytest, of this repository's tests/load/conftest.py,
    or of the page itself."""
    trees = _trees(text)
    own = {n.name for _, tree in trees for n in ast.walk(tree) if _is_fixture(n)}
    known = PLUGIN_FIXTURES | REPO_FIXTURES | PYTEST_FIXTURES | own
    unknown = []
    for line, tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if not (node.name.startswith("test") or _is_fixture(node)):
                continue
            for arg in node.args.args:
                if arg.arg not in known and arg.arg != "self":
                    unknown.append(
                        f"block at line {line}: {node.name}() takes {arg.arg!r}, which is no "
                        "fixture of the plugin, of pytest or of the page"
                    )
    return unknown


def _table_names(text: str, heading: str) -> set[str]:
    """The backticked names in the first column of the table under ``heading`` (a
    heading line's text, e.g. ``"### Fixtures the plugin provides"``)."""
    lines = text.splitlines()
    start = lines.index(heading)
    names: set[str] = set()
    in_table = False
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            in_table = True
            first = line.split("|")[1].strip()
            if first.startswith("`"):
                names.add(first.strip("`"))
        elif in_table or line.startswith("#"):
            break
    return names


def _api_drift(text: str, exported: set[str]) -> list[str]:
    """docs/api.md's ``### `Name``` headings against ``__all__``, both ways."""
    documented = set(re.findall(r"^### `([A-Za-z_]\w*)`$", text, re.MULTILINE))
    problems = [
        f"{n} is in pytest_certload.__all__ but not in docs/api.md"
        for n in sorted(exported - documented)
    ]
    problems += [
        f"docs/api.md documents {n}, which pytest_certload does not export"
        for n in sorted(documented - exported)
    ]
    return problems


def _findings_check(found: dict[tuple[str, str], str], known: dict[tuple[str, str], str]) -> None:
    new = {key: why for key, why in found.items() if key not in known}
    fixed = sorted(key for key in known if key not in found)
    assert not new, "docs drifted:\n" + "\n".join(f"  {p}: {why}" for (p, _), why in new.items())
    assert not fixed, f"fixed, so delete these allowlist entries: {fixed}"


def _over_pages(check: Any) -> dict[tuple[str, str], str]:
    return {
        (_rel(page), finding): finding
        for page in PAGES
        for finding in check(page.read_text(encoding="utf-8"), page)
    }


def test_every_python_block_of_the_docs_compiles() -> None:
    found = _over_pages(lambda text, page: _bad_python(text, _rel(page)))
    _findings_check(found, KNOWN_BAD_PYTHON)


def test_every_relative_link_of_the_docs_resolves() -> None:
    found = _over_pages(lambda text, page: _broken_links(text, page.parent))
    _findings_check(found, KNOWN_BROKEN_LINKS)


def test_every_option_the_docs_name_exists() -> None:
    found = _over_pages(lambda text, page: _unknown_options(text))
    _findings_check(found, KNOWN_UNKNOWN_OPTIONS)


def test_every_pytest_certload_import_and_name_in_the_docs_resolves() -> None:
    found = _over_pages(lambda text, page: _bad_imports(text))
    _findings_check(found, KNOWN_BAD_IMPORTS)


def test_every_fixture_a_documented_test_takes_exists() -> None:
    found = _over_pages(lambda text, page: _unknown_fixtures(text))
    _findings_check(found, KNOWN_UNKNOWN_FIXTURES)


def test_the_fixture_tables_list_exactly_the_fixtures_there_are() -> None:
    # the plugin's five; a new one must reach both tables below
    assert sorted(PLUGIN_FIXTURES) == [
        "certload",
        "certload_reseed",
        "certload_seed",
        "certload_settings",
        "certload_stack",
    ]
    using = (ROOT / "docs" / "using-in-your-project.md").read_text(encoding="utf-8")
    assert _table_names(using, "### Fixtures the plugin provides") == PLUGIN_FIXTURES
    assert _table_names(using, "### Fixtures only in this repository") == REPO_FIXTURES
    configuration = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert _table_names(configuration, "## Fixtures") == PLUGIN_FIXTURES


def test_the_api_page_documents_exactly_what_the_package_exports() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert _api_drift(text, set(pytest_certload.__all__)) == []


# --- each checker fails on a bad sample --------------------------------------------------------

BAD_PAGE = """# A page

See [the missing page](nowhere.md), [a missing heading](#no-such-heading) and
[a real one](#a-page). Run `pytest --certload-profile smoke --certload-nope 1`.
`from pytest_certload import NoSuchThing`, `pytest_certload.engine.no_such_name`,
`pytest_certload.engine.run` (real).

```python
from pytest_certload import Scenario, NotExported
import pytest_certload.nosuchmodule


@pytest.fixture
def own():
    return 1


def test_x(certload, certload_stak, own, tmp_path):
    pass


def broken(:
    pass
```
"""


def test_the_link_check_catches_a_missing_file_and_heading(tmp_path: Path) -> None:
    assert _broken_links(BAD_PAGE, tmp_path) == [
        "nowhere.md (no file nowhere.md)",
        "#no-such-heading (no heading #no-such-heading)",
    ]


def test_the_python_check_catches_a_block_that_does_not_compile() -> None:
    (finding,) = _bad_python(BAD_PAGE)
    assert finding.startswith("```python block at line 9: ")


def test_the_option_check_catches_an_option_that_does_not_exist() -> None:
    assert _unknown_options(BAD_PAGE) == ["--certload-nope"]


def test_the_import_check_catches_names_that_do_not_resolve() -> None:
    assert _bad_imports("```python\nfrom pytest_certload import Scenario, run\n```\n") == []
    # the bad block does not compile: its imports are checked once it does
    page = BAD_PAGE.replace("def broken(:", "def broken():")
    assert sorted(_bad_imports(page)) == sorted(
        [
            "`pytest_certload.engine.no_such_name`: pytest_certload.engine.no_such_name "
            "does not exist",
            "`from pytest_certload import NoSuchThing`: from pytest_certload import "
            "NoSuchThing fails",
            "line 9: from pytest_certload import NotExported fails",
            "line 9: import pytest_certload.nosuchmodule fails",
        ]
    )


def test_the_fixture_check_catches_a_fixture_that_does_not_exist() -> None:
    page = BAD_PAGE.replace("def broken(:", "def broken():")
    assert _unknown_fixtures(page) == [
        "block at line 9: test_x() takes 'certload_stak', which is no fixture of the "
        "plugin, of pytest or of the page"
    ]


def test_the_table_check_reads_the_first_column_under_its_heading() -> None:
    text = (
        "## Fixtures\n\n| fixture | what |\n|---|---|\n| `certload` | x |\n| `gone` | y |\n"
        "\nprose\n\n| `other` | table |\n"
    )
    assert _table_names(text, "## Fixtures") == {"certload", "gone"}


def test_the_api_check_catches_a_name_missing_either_way() -> None:
    text = "## Group\n\n### `Scenario`\n\ntext\n\n### `Removed`\n"
    assert _api_drift(text, {"Scenario", "run"}) == [
        "run is in pytest_certload.__all__ but not in docs/api.md",
        "docs/api.md documents Removed, which pytest_certload does not export",
    ]
