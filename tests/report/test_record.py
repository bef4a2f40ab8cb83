"""The session record: run files and the session index, written at once and read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_certload.engine import RunResult
from pytest_certload.errors import RecordError
from pytest_certload.metrics import MetricStore, declare_builtins, tagset
from pytest_certload.record import (
    RUN_FORMAT,
    SESSION_FILE,
    SESSION_FORMAT,
    RunRecord,
    SessionRecord,
)
from pytest_certload.report.summary import build_summary
from pytest_certload.thresholds import evaluate, parse_thresholds
from tests.report.synth import SCENARIO_FILE, recorder_with


def test_a_session_reads_back_as_it_was_recorded(run_a: RunResult, tmp_path: Path) -> None:
    recorded = recorder_with(tmp_path, [("t.py::a", run_a), ("t.py::a", run_a), ("t.py::b", run_a)])
    assert [r.path.name for r in recorded.records if r.path] == [
        "t.py_a.1.json",
        "t.py_a.2.json",
        "t.py_b.1.json",
    ]
    (tmp_path / "runs" / "stale.0.json").write_text("{}")  # an earlier session's leftover
    again = SessionRecord.read(tmp_path)
    assert [r.nodeid for r in again.records] == ["t.py::a", "t.py::a", "t.py::b"]
    assert again.records[0].result.to_dict() == run_a.to_dict()
    assert again.outcomes == recorded.outcomes
    assert again.target_record == recorded.target_record
    assert (again.profile, again.http_backend) == ("smoke", "fast")
    assert again.machine == recorded.machine
    index = json.loads((tmp_path / SESSION_FILE).read_text())
    assert index["session_format"] == SESSION_FORMAT
    run = json.loads((tmp_path / "runs" / "t.py_b.1.json").read_text())
    assert run["run_format"] == RUN_FORMAT


def test_files_of_another_format_are_refused_with_the_way_out(
    run_a: RunResult, tmp_path: Path
) -> None:
    recorder_with(tmp_path, [("t.py::a", run_a)])
    path = tmp_path / "runs" / "t.py_a.1.json"
    data = json.loads(path.read_text())
    data["run_format"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match=r"has run_format 1; .* reads format 2: run the session"):
        SessionRecord.read(tmp_path)
    path.unlink()
    with pytest.raises(RecordError, match=r"the run file of 't.py::a' is missing: .*t.py_a.1.json"):
        SessionRecord.read(tmp_path)
    with pytest.raises(RecordError, match=r"no .*session.json: point at the --certload-output-dir"):
        SessionRecord.read(tmp_path / "elsewhere")


def test_a_run_file_that_cannot_be_written_is_named_and_the_run_kept(
    run_a: RunResult, tmp_path: Path
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the output directory should be")
    session = SessionRecord(output_dir=blocked)
    session.add(RunRecord("t.py::a", "", run_a, ""))
    assert session.records[0].path is None
    assert session.records[0].result is run_a
    assert any(e.startswith(f"run file {blocked}") for e in session.write_errors)


def test_one_sub_metric_has_one_key_in_the_summary(tmp_path: Path, run_a: RunResult) -> None:
    """A tag value with braces is spelled once: the threshold's selector is the key."""
    store = MetricStore()
    declare_builtins(store)
    tags = {"scenario": "storm", "name": "/api/v1/agents/{id}/heartbeat"}
    for _ in range(2):  # p(50) is judged from two samples on
        store.add_trend("http_req_duration", 5_000_000, tagset(tags))
    (threshold,) = parse_thresholds(
        {'http_req_duration{scenario:storm,name:"/api/v1/agents/{id}/heartbeat"}': ["p(50)<10"]},
        source="test",
    )
    result = RunResult(
        store=store,
        scenarios={},
        thresholds=evaluate([threshold], store),
        started_at=run_a.started_at,
        duration_ns=run_a.duration_ns,
        health_limits=run_a.health_limits,
    )
    doc = build_summary(recorder_with(tmp_path, [("t.py::storm", result)]))
    keys = [k for k in doc["metrics"] if k.startswith("http_req_duration{") and "heartbeat" in k]
    assert keys == [threshold.selector]
    assert doc["metrics"][threshold.selector]["thresholds"] == {"p(50)<10": {"ok": True}}


def test_a_conftest_adds_its_own_fields_to_the_summary(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        "def pytest_certload_update_summary(config, summary):\n"
        "    summary['acme_corp'] = {'build': 1234, 'tests': len(summary['tests'])}\n"
    )
    pytester.makepyfile(test_work=SCENARIO_FILE.format(delay=0.001))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--certload-progress=off")
    result.assert_outcomes(passed=1)
    doc = json.loads((pytester.path / "certload-results" / "summary.json").read_text())
    assert doc["acme_corp"] == {"build": 1234, "tests": 1}
    assert doc["schema_version"] == 1


def test_long_node_ids_never_share_a_run_file(run_a: RunResult, tmp_path: Path) -> None:
    base = "tests/load/test_scale.py::test_" + "x" * 200
    ids = [f"{base}[{i}]" for i in range(4)]
    session = recorder_with(tmp_path, [(nodeid, run_a) for nodeid in ids])
    names = [r.path.name for r in session.records if r.path is not None]
    assert len(set(names)) == 4
    assert all(len(name) <= 160 for name in names)
    assert [r.nodeid for r in SessionRecord.read(tmp_path).records] == ids


def test_damaged_files_are_named_not_tracebacks(run_a: RunResult, tmp_path: Path) -> None:
    recorder_with(tmp_path, [("t.py::a", run_a)])
    path = tmp_path / "runs" / "t.py_a.1.json"
    data = json.loads(path.read_text())
    series = data["result"]["metrics"]["metrics"]["http_req_duration"]["series"]
    trend = series[0]
    trend["hdr"] = trend["hdr"][:12] + "AAAA" + trend["hdr"][16:]
    path.write_text(json.dumps(data))
    with pytest.raises(RecordError, match=r"is not a valid run file .*damaged HDR histogram"):
        SessionRecord.read(tmp_path)
    (tmp_path / SESSION_FILE).write_text(json.dumps({"session_format": 1, "runs": "abc"}))
    with pytest.raises(RecordError, match=r"is not a valid session index"):
        SessionRecord.read(tmp_path)


def test_the_last_sessions_outputs_are_set_aside_whole(tmp_path: Path) -> None:
    from pytest_certload.record import set_aside_previous

    assert set_aside_previous(tmp_path) is None
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "old.1.json").write_text("{}")
    (tmp_path / "summary.json").write_text("{}")
    (tmp_path / "junit.xml").write_text("<x/>")  # not ours: stays
    previous = set_aside_previous(tmp_path)
    assert previous == tmp_path / "previous"
    assert sorted(p.name for p in previous.iterdir()) == ["runs", "summary.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml", "previous"]


def test_a_tests_own_target_is_shown_where_it_differs_from_the_sessions(
    run_a: RunResult, tmp_path: Path
) -> None:
    """``@pytest.mark.certload(target=...)`` reaches the terminal, the HTML report and
    summary.json beside its test; a test measuring the session's target adds nothing."""
    import jsonschema

    from pytest_certload.report import html, terminal
    from pytest_certload.report.summary import SCHEMA_PATH

    recorded = recorder_with(tmp_path, [("t.py::same", run_a)])
    recorded.add(RunRecord("t.py::staging", "", run_a, "staging certctl behind the LB"))
    lines = terminal.render(recorded)
    own = lines.index(next(line for line in lines if line.startswith("t.py::staging")))
    assert lines[own + 1] == "  target: staging certctl behind the LB"
    assert sum("target: staging" in line for line in lines) == 1  # not under t.py::same
    doc = build_summary(recorded)
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    assert [t.get("target") for t in doc["tests"]] == [None, "staging certctl behind the LB"]
    page = html.render(recorded)
    assert page.count('<p class="target">target: staging certctl behind the LB</p>') == 1
