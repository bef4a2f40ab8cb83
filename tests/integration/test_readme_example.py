"""The README's "Writing a scenario" example runs as written and passes.

The code block after the ``<!-- readme-example -->`` marker in README.md is saved as a
test module of a fresh project (pytester) and run in a subprocess with no option: the
plugin boots the embedded stack (PostgreSQL, the reference double, the sidecars) and
the example must pass with the plugin's own fixtures only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- readme-example -->"
_BLOCK = re.compile(re.escape(MARKER) + r"\s*```python\n(.*?)```", re.DOTALL)


def readme_example() -> str:
    """The README's example code block (the first ```python block after the marker)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = _BLOCK.search(text)
    if found is None:
        raise AssertionError(
            f"README.md has no ```python block right after {MARKER!r}; the README's "
            "'Writing a scenario' example must keep the marker so this test can run it."
        )
    return found.group(1)


def test_readme_example_is_found() -> None:
    code = readme_example()
    assert "def test_" in code
    compile(code, "README.md example", "exec")


def test_readme_example_passes_against_the_embedded_stack(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_list=readme_example())
    result = pytester.runpytest_subprocess(
        "--strict-markers",
        "-W",
        "error",
        "--certload-progress=off",
        "-p",
        "no:cacheprovider",
        timeout=300,
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*list_certificates*"])
    out = pytester.path / "certload-results"
    for report in ("summary.json", "report.html"):
        assert (out / report).is_file()
    assert list((out / "runs").glob("*.json"))
    # telemetry, on by default: the embedded stack's processes, its database, the generator
    (entry,) = json.loads((out / "summary.json").read_text())["tests"]
    server = entry["server"]
    assert server["certctl"]["cpu_s"] > 0, server["notes"]
    assert server["certctl"]["rss_max_bytes"] > 0
    assert server["postgres"]["cpu_s"] > 0
    assert server["postgres"]["top_statements"], server["notes"]
    assert server["generator"]["cpu_s"] > 0
    assert 'class="chart server"' in (out / "report.html").read_text()
    result.stdout.fnmatch_lines(["*server: certctl * s CPU*"])
