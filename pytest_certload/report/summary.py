"""The JSON summary of a pytest session, shaped so k6 users recognise it.

``metrics`` follows k6's ``handleSummary`` data: one entry per metric and per sub-metric
(``http_req_duration{scenario:list_certificates}``) with ``type``, ``contains`` and
``values`` (``avg min med max p(90) p(95) p(99)`` in ms for time trends), and
``thresholds`` mapping each expression to ``{"ok": bool}``. ``connector_tier`` carries
certctl's per-target-type object with every field filled. ``tests`` lists each test with
its verdict and per-scenario figures; a scenario whose requests failed has an ``errors``
object saying why (unexpected statuses with a body sample, transport errors by kind with
their first texts, and the readable ``causes`` lines). The document is described by
``summary.schema.json`` beside this module (``schema_version`` 1; ``errors`` was added
without a version change, as an optional field).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..engine import RunResult
from ..metrics import CounterSink, MetricStore, RateSink, Sink, TrendSink, summary
from ..record import SUMMARY_FILE, RunRecord, SessionRecord, now_iso
from ..stack import TARGET_TYPES
from ..thresholds import ThresholdResult, format_selector
from .stats import scenario_stats

__all__ = [
    "SCHEMA_PATH",
    "SCHEMA_VERSION",
    "build_summary",
    "connector_tier",
    "write_summary",
]

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("summary.schema.json")
_PER_SCENARIO = (
    "http_req_duration",
    "http_req_server_time",
    "http_req_generator_delay",
    "http_req_failed",
    "http_reqs",
    "iterations",
    "iteration_duration",
    "schedule_lag",
    "dropped_iterations",
)


def _metric_entry(store: MetricStore, name: str, sink: Sink, duration_ns: int) -> dict[str, Any]:
    mtype = store.type_of(name)
    return {
        "type": mtype.value if mtype is not None else "unknown",
        "contains": "time" if store.is_time(name) else "default",
        "values": summary(sink, duration_ns=duration_ns),
    }


def connector_tier(store: MetricStore) -> dict[str, dict[str, Any]]:
    """certctl's ``connector_tier`` object for every target type that was measured."""
    out: dict[str, dict[str, Any]] = {}
    for kind in TARGET_TYPES:
        where = {"target_type": kind}
        latency = store.select("http_req_duration", where)
        if not isinstance(latency, TrendSink) or not latency.count:
            continue
        failed = store.select("http_req_failed", where)
        iterations = store.select("iterations", where)
        q = latency.quantiles((50, 95, 99))
        out[kind] = {
            "p50": q[50] / 1e6,
            "p95": q[95] / 1e6,
            "p99": q[99] / 1e6,
            "max": latency.max() / 1e6,
            "avg": latency.mean() / 1e6,
            "error_rate": failed.rate() if isinstance(failed, RateSink) else 0.0,
            "iterations": int(iterations.count) if isinstance(iterations, CounterSink) else 0,
        }
    return out


def _threshold_entry(r: ThresholdResult) -> dict[str, Any]:
    """A threshold's verdict as the summary schema names its fields."""
    return {
        "metric": r.threshold.selector,
        "threshold": r.threshold.expression,
        "ok": r.ok,
        "observed": r.observed,
        "samples": r.count,
        "reason": r.reason,
        "source": r.threshold.source,
        "message": r.message(),
    }


def _scenario_entry(result: RunResult, name: str) -> dict[str, Any]:
    sc = result.scenarios[name]
    stats = scenario_stats(result, name)
    entry: dict[str, Any] = {
        **stats,
        "health": sc.health.to_dict(),
        "executor": sc.executor,
        "tags": sc.tags,
    }
    if sc.shares:
        entry["workers"] = dict(sc.shares)
    if sc.request_errors:
        entry["errors"] = {
            **sc.request_errors.to_dict(),
            "causes": sc.request_errors.lines(name, stats["requests"]),
        }
    return entry


def _test_entry(session: SessionRecord, record: RunRecord) -> dict[str, Any]:
    outcome = session.outcome(record.nodeid)
    result = record.result
    return {
        "nodeid": record.nodeid,
        "label": record.label,
        "outcome": outcome or "unknown",
        "verdict": result.verdict,
        "started_at": result.started_at,
        "duration_ms": result.duration_ns / 1e6,
        "aborted": result.aborted,
        "untrustworthy": result.untrustworthy,
        "unreachable": result.unreachable,
        "run_file": session.run_file(record),
        "group": record.group,
        "ran_with": list(record.ran_with),
        "scenarios": {name: _scenario_entry(result, name) for name in result.scenarios},
        "thresholds": [_threshold_entry(r) for r in result.thresholds],
    }


def build_summary(session: SessionRecord) -> dict[str, Any]:
    """The summary document of ``session`` (see the module docstring)."""
    merged = MetricStore()
    duration_ns = 0
    for record in session.records:
        merged.merge(record.result.store)
        duration_ns += record.result.duration_ns
    metrics: dict[str, dict[str, Any]] = {}
    for name in merged.names():
        sink = merged.select(name)
        if sink is not None:
            metrics[name] = _metric_entry(merged, name, sink, duration_ns)
    wanted: list[tuple[str, dict[str, str]]] = []
    for record in session.records:
        for scenario in record.result.scenarios:
            wanted += [(m, {"scenario": scenario}) for m in _PER_SCENARIO]
        for r in record.result.thresholds:
            wanted.append((r.threshold.metric, dict(r.threshold.tags)))
    for kind in connector_tier(merged):
        wanted += [(m, {"target_type": kind}) for m in _PER_SCENARIO]
    for name, tags in wanted:
        key = format_selector(name, tags)
        if key in metrics or name not in merged.names():
            continue
        sink = merged.select(name, tags)
        if sink is not None:
            metrics[key] = _metric_entry(merged, name, sink, duration_ns)
    for record in session.records:
        for r in record.result.thresholds:
            key = r.threshold.selector
            entry = metrics.setdefault(
                key, {"type": "unknown", "contains": "default", "values": {}}
            )
            thresholds = entry.setdefault("thresholds", {})
            previous = thresholds.get(r.threshold.expression, {"ok": True})
            thresholds[r.threshold.expression] = {"ok": previous["ok"] and r.ok}
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "generator": {"name": "pytest-certload", "version": session.generator_version},
        "machine": session.machine,
        "finished_at": now_iso(),
        "profile": session.profile,
        "http_backend": session.http_backend,
        "target": session.target_record,
        "state": {"testRunDurationMs": duration_ns / 1e6},
        "tests": [_test_entry(session, r) for r in session.records],
        "metrics": metrics,
    }
    tier = connector_tier(merged)
    if tier:
        doc["connector_tier"] = tier
    return doc


def write_summary(doc: dict[str, Any], session: SessionRecord) -> Path:
    """Write ``doc`` as the session's ``summary.json`` (atomically, scrubbed)."""
    return session.write_output(SUMMARY_FILE, json.dumps(doc, indent=2, default=str))
