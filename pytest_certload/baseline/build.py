"""Building a baseline: from a session in memory, a results directory, or runs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..engine import RunResult
from ..engine.capacity import CapacityResult
from ..errors import BaselineError, RecordError
from ..metrics import CounterSink, MetricStore, RateSink, TrendSink
from ..record import SessionRecord, generator_version, machine, now_iso
from ..stack.database import DatabaseSettings, RowCounts
from .model import Baseline, CapacityBaseline, ScenarioBaseline

__all__ = [
    "baseline_from_results",
    "baseline_from_runs",
    "baseline_from_session",
    "git_commit",
    "runner_name",
]


def _scenario_baseline(
    store: MetricStore, name: str, tests: list[str], rows: RowCounts | None
) -> ScenarioBaseline:
    where = {"scenario": name}
    trends: dict[str, TrendSink] = {}
    for metric in store.names():
        if not store.is_time(metric):
            continue
        sink = store.select(metric, where)
        if isinstance(sink, TrendSink) and sink.count:
            trends[metric] = sink
    latency = "http_req_duration" if "http_req_duration" in trends else "iteration_duration"
    reqs = store.select("http_reqs", where)
    failed = store.select("http_req_failed", where)
    iterations = store.select("iterations", where)
    return ScenarioBaseline(
        name=name,
        latency_metric=latency,
        trends=trends,
        requests=int(reqs.count) if isinstance(reqs, CounterSink) else 0,
        failed=failed.trues if isinstance(failed, RateSink) else 0,
        iterations=int(iterations.count) if isinstance(iterations, CounterSink) else 0,
        tests=tests,
        rows=rows,
    )


def baseline_from_runs(
    runs: Sequence[tuple[str, RunResult]],
    *,
    name: str,
    metadata: Mapping[str, Any],
    capacity: Sequence[tuple[str, CapacityResult]] = (),
    rows: Mapping[str, RowCounts] | None = None,
) -> Baseline:
    """A baseline from ``(nodeid, result)`` pairs; runs of one scenario name are merged.

    ``metadata`` may give ``captured_at``, ``commit``, ``machine``, ``target``, ``profile``,
    ``http_backend``, ``generator_version`` and ``database`` (a :class:`DatabaseSettings`);
    missing ones are filled from here. ``capacity`` holds ``(nodeid, search)`` pairs: one
    answer is kept per test and scenario, the last recorded. ``rows``: each scenario's
    row counts before its first run.
    """
    if not runs:
        raise BaselineError(
            f"baseline {name!r} would be empty: no load test recorded a run. Run the load "
            "tests first (e.g. pytest tests/load --certload-profile smoke)."
        )
    store = MetricStore()
    tests: dict[str, list[str]] = {}
    for nodeid, result in runs:
        store.merge(result.store)
        for scenario in result.scenarios:
            tests.setdefault(scenario, [])
            if nodeid not in tests[scenario]:
                tests[scenario].append(nodeid)
    return Baseline(
        name=name,
        captured_at=str(metadata.get("captured_at") or now_iso()),
        commit=str(metadata.get("commit") or git_commit()),
        machine=_with_runner(dict(metadata.get("machine") or machine())),
        target=dict(metadata.get("target") or {}),
        profile=metadata.get("profile"),
        http_backend=metadata.get("http_backend"),
        generator_version=str(metadata.get("generator_version") or generator_version()),
        scenarios={
            sc: _scenario_baseline(store, sc, ids, (rows or {}).get(sc))
            for sc, ids in tests.items()
        },
        capacity=_capacity(capacity),
        database=_database(metadata.get("database")),
    )


def _database(value: object) -> DatabaseSettings | None:
    return value if isinstance(value, DatabaseSettings) else None


def _capacity(found: Sequence[tuple[str, CapacityResult]]) -> list[CapacityBaseline]:
    """One answer per test and scenario (the last recorded), in the order first seen."""
    kept: dict[tuple[str, str], CapacityBaseline] = {}
    for nodeid, result in found:
        if result.steps:
            kept[nodeid, result.scenario] = CapacityBaseline.from_result(nodeid, result)
    return list(kept.values())


def baseline_from_session(session: SessionRecord, *, name: str = "current") -> Baseline:
    """A baseline of ``session``: every run it recorded, and where and what it measured."""
    rows: dict[str, RowCounts] = {}
    for record in session.records:
        if record.database is not None:
            for scenario in record.result.scenarios:
                rows.setdefault(scenario, record.database)
    return baseline_from_runs(
        [(r.nodeid, r.result) for r in session.records],
        name=name,
        metadata={
            "captured_at": session.finished_at,
            "machine": session.machine,
            "target": session.target_record,
            "profile": session.profile,
            "http_backend": session.http_backend,
            "generator_version": session.generator_version,
            "database": session.database,
        },
        capacity=[(r.nodeid, found) for r in session.records for found in r.capacity],
        rows=rows,
    )


def baseline_from_results(results_dir: Path, *, name: str = "current") -> Baseline:
    """A baseline of the finished session recorded in ``results_dir`` (its
    ``session.json`` and the run files it lists; stale run files are ignored)."""
    try:
        session = SessionRecord.read(results_dir)
    except RecordError as exc:
        raise BaselineError(str(exc)) from None
    return baseline_from_session(session, name=name)


def _with_runner(machine: dict[str, Any]) -> dict[str, Any]:
    runner = runner_name()
    if runner and not machine.get("runner"):
        machine["runner"] = runner
    return machine


def runner_name() -> str:
    """``github hosted ubuntu24`` inside GitHub Actions, else ``""``."""
    if os.environ.get("GITHUB_ACTIONS") != "true":
        return ""
    image = os.environ.get("ImageOS", "")  # noqa: SIM112 - GitHub spells it so
    kind = os.environ.get("RUNNER_ENVIRONMENT", "github-hosted").replace("-", " ")
    return f"{kind} {image}".strip()


def git_commit(cwd: Path | None = None) -> str:
    """The checked-out commit (``GITHUB_SHA`` in GitHub Actions); ``""`` when unknown."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        out = None
    if out is not None and out.returncode == 0 and out.stdout.strip():
        return out.stdout.strip()
    return os.environ.get("GITHUB_SHA", "")
