"""The HTTP version each request was answered in (k6's ``proto`` tag) in every report:
per scenario in summary.json (``protocols``) and as ``http_reqs{proto:...}`` metrics, one
line in the terminal summary and the HTML report."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from pytest_certload.engine import RunResult
from pytest_certload.report import html, terminal
from pytest_certload.report.stats import protocols_text, scenario_stats
from pytest_certload.report.summary import SCHEMA_PATH, build_summary
from tests.report.synth import recorder_with, synthetic_run


@pytest.fixture(scope="module")
def mixed() -> RunResult:
    """The API pair over HTTP/2, a handshake scenario over HTTP/1.1 (as the shared k6 run
    has them)."""
    return synthetic_run(
        seed=5,
        scenarios=("issuance_acceptance", "nginx_handshake"),
        rate=20,
        duration="2s",
        protos={"issuance_acceptance": "HTTP/2.0", "nginx_handshake": "HTTP/1.1"},
    )


def test_each_scenario_counts_its_requests_by_protocol(mixed: RunResult) -> None:
    api = scenario_stats(mixed, "issuance_acceptance")
    handshake = scenario_stats(mixed, "nginx_handshake")
    assert api["protocols"] == {"HTTP/2.0": api["requests"]}
    assert handshake["protocols"] == {"HTTP/1.1": handshake["requests"]}
    assert protocols_text(mixed) == (
        f"HTTP/2.0: {api['requests']:,} requests (issuance_acceptance); "
        f"HTTP/1.1: {handshake['requests']:,} requests (nginx_handshake)"
    )


def test_untagged_requests_list_no_protocol(run_a: RunResult) -> None:
    assert scenario_stats(run_a, "issuance_acceptance")["protocols"] == {}
    assert protocols_text(run_a) == ""


def test_summary_terminal_and_html_show_the_protocols(mixed: RunResult, tmp_path: Path) -> None:
    session = recorder_with(tmp_path, [("t.py::mixed", mixed)])
    doc = build_summary(session)
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    scenarios = doc["tests"][0]["scenarios"]
    assert set(scenarios["issuance_acceptance"]["protocols"]) == {"HTTP/2.0"}
    total = sum(sum(s["protocols"].values()) for s in scenarios.values())
    h2 = doc["metrics"]["http_reqs{proto:HTTP/2.0}"]["values"]["count"]
    h1 = doc["metrics"]["http_reqs{proto:HTTP/1.1}"]["values"]["count"]
    assert h2 + h1 == total
    assert "http_req_duration{proto:HTTP/2.0}" in doc["metrics"]
    line = f"    HTTP versions: {protocols_text(mixed)}"
    assert line in terminal.render(session)
    assert f"<p>HTTP versions: {protocols_text(mixed)}</p>" in html.render(session)
