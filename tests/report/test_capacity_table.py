"""The measured capacity table of docs/operator/scale.md, from a results directory."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_certload.engine import RunResult
from pytest_certload.engine.capacity import CapacityResult
from pytest_certload.errors import ConfigError
from pytest_certload.record import SessionRecord
from pytest_certload.report.capacity import END_MARKER, START_MARKER, render_table, replace_table
from pytest_certload.report.capacity_table import main
from tests.report.synth import knee_search, knee_step, recorder_with, with_capacity

ROOT = Path(__file__).resolve().parents[2]
STORM = "tests/load/test_scale.py::test_agent_storm"
BULK = "tests/load/test_scale.py::test_bulk_renewal"
CEILING = "tests/load/test_scale.py::test_wide"
DOC = f"""# Scale

Before.

{START_MARKER}
Not measured yet.
{END_MARKER}

After.
"""


@pytest.fixture(scope="module")
def results(run_a: RunResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session of three searches: the server's limit, the generator's, the ceiling."""
    out = tmp_path_factory.mktemp("results")
    with_capacity(
        out,
        [
            (STORM, run_a, [knee_search(1000, contract=167)]),
            (BULK, run_a, [knee_search(900, scenario="bulk_renewal", contract=5, generator=40)]),
            (CEILING, run_a, [knee_search(10_000, scenario="wide", contract=10, max_rate=50)]),
        ],
    )
    return out


def _rows(table: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in table.splitlines()
        if line.startswith("| ")
    ]


def test_the_table_has_one_row_per_search_and_a_caption(results: Path) -> None:
    table = render_table(SessionRecord.read(results))
    header, *rows = _rows(table)
    assert header == ["Scenario", "Contract rate", "Capacity", "First fail", "Why", "Steps"]
    storm, bulk, wide = rows
    assert storm[:4] == ["`agent_storm`", "167/s", "918/s", "1,002/s"]
    assert storm[4].startswith("http_req_duration{scenario:agent_storm} p(95)<40: observed ")
    assert storm[5] == "167/s ✓ 334/s ✓ 668/s ✓ 1,336/s ✗ 1,002/s ✗ 835/s ✓ 918/s ✓"
    assert bulk[:4] == ["`bulk_renewal`", "5/s", "40/s", "generator-bound at 80/s"]
    assert bulk[4] == (
        "schedule lag p99 80 ms (limit 50 ms); the server may hold more: add generator "
        "processes with --certload-tx"
    )
    assert wide[:5] == [
        "`wide`",
        "10/s",
        "50/s",
        "none up to 50/s",
        "the rate ceiling of 50/s was reached",
    ]
    caption = table.splitlines()[-1]
    assert caption == (
        "Measured on ci-1, 4 CPUs, Linux-6.8.0-x86_64, Python 3.11.9; "
        "2026-11-27T10:00:00+00:00 to 2026-11-27T10:12:30+00:00; target: certctl reference "
        "double 0.1.0 at https://127.0.0.1:8443 (local provider); profile smoke (indicative); "
        "pytest-certload 0.4.0. These are the certctl reference double's figures, not "
        "certctl's."
    )


def test_a_scenario_searched_by_two_tests_names_them_and_pipes_are_escaped(
    run_a: RunResult, tmp_path: Path
) -> None:
    steps = [knee_step(100, knee=150), replace(knee_step(200, knee=150), reason="a | b")]
    found = CapacityResult("agent_storm", 100, 0.1, 2000, steps)
    session = with_capacity(tmp_path, [(STORM, run_a, [found]), (BULK, run_a, [found])])
    table = render_table(session)
    assert f"| `agent_storm` ({STORM}) |" in table
    assert f"| `agent_storm` ({BULK}) |" in table
    assert "a \\| b" in table


def test_the_update_replaces_only_what_lies_between_the_markers(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = tmp_path / "scale.md"
    doc.write_text(DOC)
    assert main([str(results), "--update", str(doc)]) == 0
    assert capsys.readouterr().out == f"updated {doc}: 3 row(s) from {results}\n"
    text = doc.read_text()
    table = render_table(SessionRecord.read(results))
    assert text == DOC.replace("Not measured yet.", table)
    # again: the same file (the markers stay, nothing accumulates)
    assert main([str(results), "--update", str(doc)]) == 0
    assert doc.read_text() == text
    # and without --update it prints what it would write
    capsys.readouterr()
    assert main([str(results)]) == 0
    assert capsys.readouterr().out == table + "\n"


def test_the_operator_page_has_the_markers() -> None:
    page = (ROOT / "docs" / "operator" / "scale.md").read_text()
    replaced = replace_table(page, "TABLE", where="scale.md")
    assert f"{START_MARKER}\nTABLE\n{END_MARKER}" in replaced
    assert "python -m pytest_certload.report.capacity_table certload-results" in page


def test_markers_missing_or_out_of_order_are_refused() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^x\.md has 0 '<!-- capacity-table:start -->' and 1 "
        r"'<!-- capacity-table:end -->' marker\(s\); it needs exactly one of each",
    ):
        replace_table(f"a\n{END_MARKER}\n", "T", where="x.md")
    with pytest.raises(ConfigError, match=r"has '<!-- capacity-table:end -->' before"):
        replace_table(f"{END_MARKER}\n{START_MARKER}\n", "T", where="x.md")


def test_errors_exit_2_and_change_nothing(
    run_a: RunResult, results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain"
    recorder_with(plain, [(STORM, run_a)])
    doc = tmp_path / "scale.md"
    doc.write_text(DOC)
    assert main([str(plain), "--update", str(doc)]) == 2
    assert capsys.readouterr().err == (
        f"error: {plain} ran no capacity search; run the tier with --certload-capacity, e.g. "
        "'pytest tests/load -m scale --certload-capacity' (see docs/operator/scale.md).\n"
    )
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "no " in capsys.readouterr().err
    doc.write_text("no markers here\n")
    assert main([str(results), "--update", str(doc)]) == 2
    assert "has 0 '<!-- capacity-table:start -->'" in capsys.readouterr().err
    assert doc.read_text() == "no markers here\n"
    assert main([str(results), "--update", str(tmp_path / "missing.md")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_it_runs_as_a_module(results: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-W", "error", "-m", "pytest_certload.report.capacity_table", results],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("| Scenario | Contract rate | Capacity | First fail |")
