"""The real cause of failed requests in every report: JSON summary, terminal, HTML."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import jsonschema
import pytest

from pytest_certload.engine import RunResult
from pytest_certload.engine.causes import RequestErrors
from pytest_certload.report import html, terminal
from pytest_certload.report.summary import SCHEMA_PATH, SCHEMA_VERSION, build_summary
from tests.report.synth import recorder_with

NODEID = "tests/load/test_api.py::test_issuance_acceptance"
URL = "https://127.0.0.1:8443/api/v1/certificates"
TLS = "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"


@pytest.fixture
def failing(run_a: RunResult) -> RunResult:
    """``run_a`` whose first scenario got 401s and TLS failures (a copy: run_a is shared)."""
    result = RunResult.from_dict(run_a.to_dict())
    errors = RequestErrors()
    for _ in range(3):
        errors.add_status(401, b'{"error":"Invalid API key"}')
    for _ in range(2):
        errors.add_transport("tls", TLS, URL)
    result.scenarios["issuance_acceptance"].request_errors = errors
    return result


def _requests(result: RunResult) -> str:
    from pytest_certload.report.stats import scenario_stats

    return f"{scenario_stats(result, 'issuance_acceptance')['requests']:,}"


def test_the_summary_carries_the_errors_and_stays_schema_version_1(
    failing: RunResult, tmp_path: Path
) -> None:
    doc = build_summary(recorder_with(tmp_path, [(NODEID, failing)]))
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(doc, schema)
    assert doc["schema_version"] == SCHEMA_VERSION == 1
    assert "optional and additive" in schema["description"]
    (test,) = doc["tests"]
    errors = test["scenarios"]["issuance_acceptance"]["errors"]
    n = _requests(failing)
    assert errors == {
        "statuses": {"401": 3},
        "bodies": {"401": '{"error":"Invalid API key"}'},
        "transport": {"tls": 2},
        "samples": [{"kind": "tls", "text": TLS, "url": URL, "count": 2}],
        "throttled": {},
        "causes": [
            f"issuance_acceptance: 3 of {n} requests answered 401 "
            '(body: {"error":"Invalid API key"})',
            f"issuance_acceptance: 2 of {n} requests failed below HTTP: tls: {TLS} (to {URL})",
        ],
    }
    # a scenario whose requests all succeeded has no errors object
    assert "errors" not in test["scenarios"]["list_certificates"]
    # the same causes, with the per-status breakdown, in the test's diagnoses
    (diagnosis,) = test["diagnoses"]
    assert diagnosis["kind"] == diagnosis["id"] == "failed-requests"
    assert diagnosis["scenario"] == "issuance_acceptance"
    assert diagnosis["statuses"] == {"401": 3, "no answer (tls)": 2}
    assert diagnosis["summary"] == (
        f"issuance_acceptance: 5 of {n} requests failed: 401: 3 of {n}; no answer (tls): 2"
    )
    assert diagnosis["details"] == errors["causes"]


def test_a_summary_without_errors_still_validates(run_a: RunResult, tmp_path: Path) -> None:
    doc = build_summary(recorder_with(tmp_path, [(NODEID, run_a)]))
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    assert all("errors" not in sc for sc in doc["tests"][0]["scenarios"].values())


def test_the_terminal_names_each_cause_under_its_test(failing: RunResult, tmp_path: Path) -> None:
    lines = terminal.render(recorder_with(tmp_path, [(NODEID, failing)]))
    n = _requests(failing)
    summary = (
        f"    ! issuance_acceptance: 5 of {n} requests failed: 401: 3 of {n}; no answer (tls): 2"
    )
    causes = [line for line in lines if line.startswith("    !   ")]
    assert causes == [f"    !   {c}" for c in failing.causes()]
    assert len(causes) == 2
    assert lines.index(summary) + 1 == lines.index(causes[0])
    assert lines.index(summary) > next(i for i, x in enumerate(lines) if x.startswith(NODEID))


def test_the_html_report_lists_the_causes_with_the_problems(
    failing: RunResult, tmp_path: Path
) -> None:
    text = html.render(recorder_with(tmp_path, [(NODEID, failing)]))
    n = _requests(failing)
    assert f"by status: 401: 3 of {n}; no answer (tls): 2" in text
    for cause in failing.causes():
        assert f"<li>{escape(cause)}</li>" in text
