"""The scale tier measures the same work every time it runs against one database.

One local stack (PostgreSQL and the certctl reference double) is booted for the module
and used as an external stack (``--certctl-url``, token and DSN through the
environment) by pytester subprocess sessions of ``tests/load``, as an operator runs the
tier again and again against one certctl. ``bulk_renewal`` and ``agent_storm`` consume
their seeded rows (a smoke ``bulk_renewal`` renews 6,250 of the 10,000 certificates);
before the seed was restored before each run, the second run renewed 3,750 and skipped
2,500 and the third failed, finding no renewable certificate. ``acme_burst`` touches no
seeded row and is left out (it would add 20 s a run and prove nothing here).

A session without a DSN stops before measuring, with an error naming ``--certctl-dsn``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from anyio.from_thread import start_blocking_portal

from pytest_certload.stack import StackInfo
from pytest_certload.stack.local import LocalStack

ROOT = Path(__file__).resolve().parents[2]
#: the runs below measure the seed's state, not the generator: tolerate a busy machine
HEALTH = "lag_p99=400ms,delay_p99=400ms"
BULK = "tests/load/test_scale.py::test_bulk_renewal"
AGENTS = "tests/load/test_scale.py::test_agent_storm"
#: after a run: the seeded certificates it left renewing, and their renewal jobs
STATE = """
SELECT count(*) FILTER (WHERE status = 'RenewalInProgress'),
       count(*) FILTER (WHERE status = 'Active'),
       (SELECT count(*) FROM jobs j JOIN managed_certificates c ON c.id = j.certificate_id
         WHERE c.name LIKE 'loadtest-bulk-%')
FROM managed_certificates WHERE name LIKE 'loadtest-bulk-%'
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    with start_blocking_portal(backend="asyncio") as portal:
        local = LocalStack(targets=(), base_dir=tmp_path_factory.mktemp("reruns"))
        try:
            yield portal.call(local.start)
        finally:
            portal.call(local.stop)


@pytest.fixture
def scale_suite(
    pytester: pytest.Pytester, stack: StackInfo, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """Run ``tests/load`` (copied) against the module's stack as an external one."""
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "__init__.py").write_text("")
    shutil.copytree(ROOT / "tests" / "load", pytester.path / "tests" / "load")
    shutil.copytree(ROOT / "fixtures" / "sql", pytester.path / "fixtures" / "sql")
    assert stack.ca is not None
    assert stack.dsn

    def run(*args: str, dsn: str | None = stack.dsn) -> pytest.RunResult:
        monkeypatch.setenv("CERTLOAD_CERTCTL_TOKEN", stack.token)
        if dsn:
            monkeypatch.setenv("CERTLOAD_CERTCTL_DSN", dsn)
        else:
            monkeypatch.delenv("CERTLOAD_CERTCTL_DSN", raising=False)
        return pytester.runpytest_subprocess(
            "tests/load",
            *args,
            f"--certload-health={HEALTH}",
            f"--certctl-url={stack.certctl_url}",
            f"--certload-ca={stack.ca}",
            "--certload-progress=off",
            "-p",
            "no:cacheprovider",
            timeout=180,
        )

    return run


def _counter(summary: dict[str, Any], name: str) -> int:
    entry = summary["metrics"][name]
    assert entry["type"] == "counter", entry
    return int(entry["values"]["count"])


def test_the_scale_tier_passes_three_times_in_a_row_measuring_the_same_work(
    scale_suite: Any, pytester: pytest.Pytester, stack: StackInfo
) -> None:
    assert stack.dsn
    work = []
    for n in (1, 2, 3):
        out = f"run{n}"
        result = scale_suite(
            "-m", "scale", "-k", "bulk_renewal or agent_storm", f"--certload-output-dir={out}"
        )
        result.assert_outcomes(passed=2)
        summary = json.loads((pytester.path / out / "summary.json").read_text())
        tests = {t["nodeid"]: t for t in summary["tests"]}
        enqueued = _counter(summary, "bulk_enqueued")
        with psycopg.connect(stack.dsn) as conn:
            row = conn.execute(STATE.encode()).fetchone()
        # what this run left behind, not what the runs left together: the seed was put
        # back before it measured
        assert row == (enqueued, 10_000 - enqueued, enqueued), (n, row)
        work.append(
            {
                "matched": _counter(summary, "bulk_matched"),
                "enqueued": enqueued,
                "skipped": _counter(summary, "bulk_skipped"),
                "failed": _counter(summary, "bulk_failed"),
                "calls": tests[BULK]["scenarios"]["bulk_renewal"]["requests"],
                "rows_bulk": tests[BULK]["database"]["rows"],
                "rows_agents": tests[AGENTS]["database"]["rows"],
                "heartbeats_failed": tests[AGENTS]["scenarios"]["agent_storm"]["error_rate"],
            }
        )
    first = work[0]
    # 5 calls/s for the smoke 25 s, 50 certificates a call, none renewed before
    assert first["calls"] >= 120, first
    assert first["enqueued"] == first["matched"] == 50 * first["calls"], first
    assert (first["skipped"], first["failed"], first["heartbeats_failed"]) == (0, 0, 0.0)
    assert first["rows_bulk"]["managed_certificates"] >= 10_000, first
    assert first["rows_agents"]["agents"] >= 5_000, first
    for later in work[1:]:
        # the same renewals queued, on a database of the same size
        assert later["enqueued"] == 50 * later["calls"], later
        assert (later["skipped"], later["failed"]) == (0, 0), later
        assert later["rows_bulk"] == first["rows_bulk"], (first, later)
        assert later["rows_agents"] == first["rows_agents"], (first, later)


def test_without_a_dsn_the_scale_tier_stops_before_measuring(
    scale_suite: Any, pytester: pytest.Pytester
) -> None:
    result = scale_suite("-k", "bulk_renewal", "--certload-output-dir=nodsn", dsn=None)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*the scale tier seeds certctl's PostgreSQL and puts the seeded rows back in "
            "their seeded state before each run*so that every run measures the same work; "
            "no DSN is known for https://127.0.0.1:*, so nothing was measured. Give "
            "--certctl-dsn DSN*"
        ]
    )
    assert not (pytester.path / "nodsn" / "summary.json").exists()
