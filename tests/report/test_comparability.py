"""What makes runs comparable reaches every output: the profile (smoke is indicative),
the database's settings (fsync off), the rows before each run, certctl's version; rates
over each scenario's own active time; iterations and requests labelled apart; no metric
of unknown type in summary.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest

from pytest_certload.engine import VU, ConstantArrivalRate, RunResult, Scenario, VirtualClock, run
from pytest_certload.errors import ConfigError
from pytest_certload.loadtest import validate_marker_kwargs
from pytest_certload.metrics import tagset
from pytest_certload.record import RunRecord, SessionRecord
from pytest_certload.report import html, terminal
from pytest_certload.report.capacity import caption
from pytest_certload.report.junit import context_properties
from pytest_certload.report.summary import SCHEMA_PATH, build_summary
from pytest_certload.stack.database import DatabaseSettings, RowCounts
from tests.report.synth import recorder_with

#: what the local provider's PostgreSQL reports (stack/postgres.py starts it so)
LOCAL_PG = DatabaseSettings(
    {
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "shared_buffers": "128MB",
        "max_connections": "200",
    },
    version="16.4",
)
ROWS = RowCounts(("managed_certificates", "jobs"), {"managed_certificates": 10_032, "jobs": 40})
CERTCTL = {
    "kind": "certctl",
    "url": "https://127.0.0.1:8443",
    "provider": "external",
    "version": {"version": "2.0.9", "commit": "1a2b3c4d5e6f7a8b9c0d", "modified": False},
}


def _session(tmp_path: Path, result: RunResult, *, profile: str = "smoke") -> SessionRecord:
    session = recorder_with(tmp_path, [])
    session.profile = profile
    session.target = "certctl 2.0.9 (commit 1a2b3c4d5e6f) at https://127.0.0.1:8443"
    session.target_details = dict(CERTCTL)
    session.database = LOCAL_PG
    session.add(RunRecord("t.py::test_renew", "", result, session.target, database=ROWS))
    session.outcomes["t.py::test_renew"] = "passed"
    return session


def test_every_output_says_smoke_is_indicative_fsync_is_off_and_the_rows_before(
    run_a: RunResult, tmp_path: Path
) -> None:
    session = _session(tmp_path, run_a)
    lines = terminal.render(session)
    assert lines[1].startswith("profile: smoke (indicative: every scenario shortened")
    assert lines[2] == (
        "database: PostgreSQL 16.4: fsync off, synchronous_commit off, full_page_writes off, "
        "shared_buffers 128MB, max_connections 200"
    )
    assert lines[3] == (
        "! fsync, synchronous_commit and full_page_writes off: PostgreSQL did not wait for "
        "the disk, so writes cost less than on a durable database; compare only with runs "
        "on the same settings"
    )
    assert "  rows before the run: managed_certificates 10,032 rows, jobs 40 rows" in lines

    props = dict(context_properties(session, session.records[0]))
    assert props["certload.profile"].startswith("smoke (indicative: ")
    assert props["certload.target"].startswith("certctl 2.0.9 (commit 1a2b3c4d5e6f)")
    assert props["certload.database"].startswith("PostgreSQL 16.4: fsync off")
    assert props["certload.database_warning"].startswith("fsync, synchronous_commit and")
    assert props["certload.rows_before"] == "managed_certificates 10,032 rows, jobs 40 rows"

    doc = build_summary(session)
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    assert doc["indicative"] is True
    assert doc["profile_text"] == props["certload.profile"]
    assert doc["database"]["settings"]["fsync"] == "off"
    assert doc["database"]["warning"] == props["certload.database_warning"]
    assert doc["target"]["version"]["commit"] == "1a2b3c4d5e6f7a8b9c0d"
    assert doc["tests"][0]["database"] == {
        "tables": ["managed_certificates", "jobs"],
        "rows": {"managed_certificates": 10_032, "jobs": 40},
        "note": "",
    }

    page = html.render(session)
    assert '<dd class="warn indicative">smoke (indicative: every scenario' in page
    assert '<p class="warn database">fsync, synchronous_commit and full_page_writes off' in page
    assert "<dt>database</dt><dd>PostgreSQL 16.4: fsync off" in page
    assert "rows before the run: managed_certificates 10,032 rows, jobs 40 rows" in page
    assert "<dt>target</dt><dd>certctl 2.0.9 (commit 1a2b3c4d5e6f)</dd>" in page

    assert (
        "; profile smoke (indicative); PostgreSQL with fsync, synchronous_commit, "
        "full_page_writes off; pytest-certload "
    ) in caption(session)


def test_a_canonical_run_on_a_durable_database_carries_no_warning(
    run_a: RunResult, tmp_path: Path
) -> None:
    session = _session(tmp_path, run_a, profile="canonical")
    session.database = DatabaseSettings(
        {**LOCAL_PG.settings, "fsync": "on", "full_page_writes": "on", "synchronous_commit": "on"}
    )
    lines = terminal.render(session)
    assert lines[1] == "profile: canonical"
    assert not [line for line in lines if line.startswith("! ")]
    doc = build_summary(session)
    assert (doc["indicative"], doc["database"]["warning"]) == (False, "")
    assert "indicative" not in html.render(session)
    props = dict(context_properties(session, session.records[0]))
    assert "certload.database_warning" not in props


def test_without_a_dsn_every_output_says_what_was_not_read(
    run_a: RunResult, tmp_path: Path
) -> None:
    session = _session(tmp_path, run_a)
    session.database = DatabaseSettings(note="not read: no DSN (give --certctl-dsn)")
    session.records[0].database = RowCounts(
        ROWS.tables, note="not read: no DSN (give --certctl-dsn)"
    )
    lines = terminal.render(session)
    assert "database: not read: no DSN (give --certctl-dsn)" in lines
    assert "  rows before the run: not read: no DSN (give --certctl-dsn)" in lines
    doc = build_summary(session)
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    assert doc["tests"][0]["database"]["rows"] == {}


def test_requests_and_iterations_are_labelled_apart(run_a: RunResult, tmp_path: Path) -> None:
    session = _session(tmp_path, run_a)
    header = next(line for line in terminal.render(session) if line.startswith("scenario "))
    assert header.split() == [
        "scenario", "requests", "req/s", "iter/s", "p50", "ms", "p90", "ms", "p95", "ms",
        "p99", "ms", "max", "ms", "errors", "lag", "p99",
    ]  # fmt: skip
    assert "rate/s" not in header
    page = html.render(session)
    assert (
        "<th>requests</th><th>req/s</th><th>iterations</th><th>iter/s</th>"
        '<th title="the arrival rate asked for (iterations/s)">target iter/s</th>'
    ) in page
    assert "<th>rate/s</th>" not in page
    assert "<th>target/s</th>" not in page


# -- rates over each scenario's own active time --------------------------------------------


async def _two_requests(vu: VU) -> None:
    """One iteration that makes two requests (as an ACME enrollment makes several)."""
    ctx = vu.context
    for _ in range(2):
        await vu.sleep(0.002)
        tags = tagset({**ctx.tags, "name": "/x", "method": "GET", "status": "200"})
        ctx.store.add_counter("http_reqs", 1, tags)


def _staggered_run() -> RunResult:
    """``early`` at 10 iterations/s for 4 s; ``late`` at 10/s for 2 s, from 6 s (a k6
    ``startTime`` stagger): 8 s of run, 6 s of it active."""
    scenarios = [
        Scenario("early", _two_requests, ConstantArrivalRate(10, "4s", pre_allocated_vus=5)),
        Scenario(
            "late",
            _two_requests,
            ConstantArrivalRate(10, "2s", pre_allocated_vus=5),
            start_time="6s",
            metrics={"never_counted": "counter"},
        ),
    ]
    thresholds = {"never_counted": ["count==0"], "http_reqs{scenario:late}": ["count>0"]}

    async def main() -> RunResult:
        clock = VirtualClock()
        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.run)
            try:
                return await run(scenarios, thresholds=thresholds, clock=clock)
            finally:
                clock.stop()

    return anyio.run(main)


@pytest.fixture(scope="module")
def staggered() -> RunResult:
    return _staggered_run()


def test_rates_divide_by_each_scenarios_own_active_time(
    staggered: RunResult, tmp_path: Path
) -> None:
    session = recorder_with(tmp_path, [("t.py::a", staggered), ("t.py::b", staggered)])
    doc = build_summary(session)
    metrics: dict[str, Any] = doc["metrics"]
    # each scenario's active time: from its start (after its stagger) to its end
    early_s, late_s = (staggered.scenarios[n].elapsed_ns / 1e9 for n in ("early", "late"))
    assert staggered.scenarios["late"].start_offset_ns == 6_000_000_000
    assert staggered.duration_ns / 1e9 > early_s + late_s + 1.5  # the idle stagger
    late = metrics["http_reqs{scenario:late}"]["values"]
    assert late["count"] == 2 * 20 * 2  # two runs of 20 iterations of two requests
    assert late["rate"] == pytest.approx(80 / (2 * late_s))
    early = metrics["http_reqs{scenario:early}"]["values"]
    assert early["rate"] == pytest.approx(160 / (2 * early_s))
    # over both scenarios: per run the union of their spans (the stagger, idle in both,
    # never counts), summed over the two runs
    active = 2 * (early_s + late_s)
    assert metrics["http_reqs"]["values"]["rate"] == pytest.approx(240 / active)
    assert metrics["iterations"]["values"]["rate"] == pytest.approx(120 / active)
    # the per-scenario figures agree: requests and iterations per active second
    figures = doc["tests"][0]["scenarios"]["late"]
    assert figures["rps"] == pytest.approx(40 / late_s)
    assert figures["iter_rate"] == pytest.approx(20 / late_s)


def test_no_metric_is_of_unknown_type_or_without_values(
    staggered: RunResult, tmp_path: Path
) -> None:
    session = recorder_with(tmp_path, [("t.py::a", staggered)])
    doc = build_summary(session)
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
    # declared, judged, never recorded: a counter at zero, its threshold's verdict beside
    assert doc["metrics"]["never_counted"] == {
        "type": "counter",
        "contains": "default",
        "values": {"count": 0, "rate": 0.0},
        "thresholds": {"count==0": {"ok": True}},
    }
    for key, entry in doc["metrics"].items():
        assert entry["type"] in ("trend", "rate", "counter", "gauge"), key
        assert entry["values"], key


@pytest.mark.parametrize("tables", ["jobs", ["jobs; DROP TABLE x"], [1], {"jobs": 1}])
def test_the_tables_a_test_declares_are_checked_at_collection(tables: object) -> None:
    with pytest.raises(ConfigError) as info:
        validate_marker_kwargs((), {"tables": tables}, "t.py::test_x")
    assert str(info.value) == (
        f"{tables!r} is not a valid tables of @pytest.mark.certload at t.py::test_x; give a "
        "list of the database tables the test's run touches, e.g. "
        "tables=['managed_certificates', 'jobs'] (their rows are counted before each run)."
    )
    validate_marker_kwargs((), {"tables": ["jobs", "public.agents"]}, "t.py::test_x")


def test_a_scenarios_own_counters_show_in_the_terminal_and_html(tmp_path: Path) -> None:
    """The scale tier's bulk_* counters (any scenario's own counters) are in every
    report, not only summary.json (a counter this scenario never added to is left out)."""
    from pytest_certload.report import html, terminal
    from tests.report.synth import recorder_with

    async def work(vu: VU) -> None:
        vu.counter("bulk_enqueued", 50)

    scenario = Scenario(
        "bulk",
        work,
        ConstantArrivalRate(10, "2s", pre_allocated_vus=2),
        metrics={"bulk_enqueued": "counter", "bulk_failed": "counter"},
    )

    async def main() -> RunResult:
        clock = VirtualClock()
        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.run)
            try:
                return await run([scenario], clock=clock)
            finally:
                tg.cancel_scope.cancel()

    result = anyio.run(main)
    session = recorder_with(tmp_path, [("t::bulk", result)])
    lines = terminal.render(session)
    assert "    counters: bulk_enqueued 1,000" in lines, lines
    text = html.render(session)
    assert "<code>bulk_enqueued</code> 1,000" in text
