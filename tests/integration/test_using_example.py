"""docs/using-in-your-project.md's minimal project runs as written and passes.

Each code block after a ``<!-- using-example: PATH -->`` marker is written to PATH in a
fresh project (pytester) and the suite is run in a subprocess with no option: the
plugin boots the embedded stack and the example must pass with the plugin's own
fixtures and the page's conftest.py only.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "using-in-your-project.md"
_BLOCK = re.compile(r"<!-- using-example: (\S+) -->\s*```\w*\n(.*?)```", re.DOTALL)


def using_example() -> dict[str, str]:
    """The page's example files: path -> content."""
    files = dict(_BLOCK.findall(PAGE.read_text(encoding="utf-8")))
    if not {"pytest.ini", "conftest.py"} <= set(files) or len(files) < 3:
        raise AssertionError(
            f"{PAGE.relative_to(ROOT)} must keep its '<!-- using-example: PATH -->' markers "
            f"before pytest.ini, conftest.py and a test module; found {sorted(files)}"
        )
    return files


def test_the_example_files_are_found_and_compile() -> None:
    files = using_example()
    for path, text in files.items():
        if path.endswith(".py"):
            compile(text, path, "exec")
    assert any("def test_" in text for text in files.values())


def test_the_example_project_passes_against_the_embedded_stack(pytester: pytest.Pytester) -> None:
    for path, text in using_example().items():
        target = pytester.path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    result = pytester.runpytest_subprocess(
        "-W", "error", "--certload-progress=off", "-p", "no:cacheprovider", timeout=300
    )
    result.assert_outcomes(passed=1)
    assert (pytester.path / "certload-results" / "summary.json").is_file()
