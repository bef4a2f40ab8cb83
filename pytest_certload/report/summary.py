"""The JSON summary of a pytest session, shaped so k6 users recognise it.

``metrics`` follows k6's ``handleSummary`` data: one entry per metric and per sub-metric
(``http_req_duration{scenario:list_certificates}``) with ``type``, ``contains`` and
``values`` (``avg min med max p(90) p(95) p(99)`` in ms for time trends), and
``thresholds`` mapping each expression to ``{"ok": bool}``. ``connector_tier`` carries
certctl's per-target-type object with every field filled. ``tests`` lists each test with
its verdict and per-scenario figures; a scenario whose requests failed has an ``errors``
object saying why (unexpected statuses with a body sample, transport errors by kind with
their first texts, and the readable ``causes`` lines), and ``protocols``, its requests by
the HTTP version spoken (k6's ``proto`` tag: ``HTTP/1.1``, ``HTTP/2.0``), which
``metrics`` also splits as ``http_reqs{proto:HTTP/2.0}`` and
``http_req_duration{proto:HTTP/2.0}``.

Over time: a threshold has ``window_ns`` (0: judged over the whole run); a windowed one
also ``window_origin_ns`` (where its window 0 starts, from the run start) and ``windows``,
its verdict in each window; ``stalled`` says when its breach fell only where the
generator stalled. A scenario whose warm-up was left out of the verdict has ``warmup``
(how long, and what it measured); a test whose generator ran the hiccup meter has
``generator_hiccup`` (how late its event loop ran, against the health limit).

The document is described by ``summary.schema.json`` beside this module
(``schema_version`` 1; every field added since, ``errors`` and the ones above among
them, is optional and additive, so no version change).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..engine import RunResult
from ..metrics import CounterSink, MetricStore, RateSink, Sink, TrendSink, summary
from ..record import SUMMARY_FILE, RunRecord, SessionRecord, now_iso
from ..stack import TARGET_TYPES
from ..thresholds import ThresholdResult, WindowResult, format_selector
from .meta import own_target
from .stats import hiccup_stats, scenario_stats, warmup_stats, window_origin_ns

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


def _window_entry(w: WindowResult) -> dict[str, Any]:
    """One window of a windowed threshold: offsets in ns from the window origin."""
    return {
        "start_ns": w.start_ns,
        "end_ns": w.end_ns,
        "ok": w.ok,
        "observed": w.observed,
        "count": w.count,
        "reason": w.reason,
        "partial": w.partial,
        "stalled": w.stalled,
        "hiccup_ns": w.hiccup_ns,
    }


def _threshold_entry(result: RunResult, r: ThresholdResult) -> dict[str, Any]:
    """A threshold's verdict as the summary schema names its fields."""
    entry: dict[str, Any] = {
        "metric": r.threshold.selector,
        "threshold": r.threshold.expression,
        "ok": r.ok,
        "observed": r.observed,
        "samples": r.count,
        "reason": r.reason,
        "source": r.threshold.source,
        "message": r.message(),
        "window_ns": r.threshold.window_ns,
    }
    if r.threshold.windowed:
        origin = window_origin_ns(result, r.threshold)
        if origin is not None:
            entry["window_origin_ns"] = origin
        entry["windows"] = [_window_entry(w) for w in r.windows]
    if r.stalled:
        entry["stalled"] = r.stalled
    return entry


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
    warmup = warmup_stats(result, name)
    if warmup is not None:
        entry["warmup"] = warmup
    return entry


def _hiccup_entry(result: RunResult) -> dict[str, Any] | None:
    figures = hiccup_stats(result)
    if figures is None:
        return None
    return {
        "max_ms": figures["max_ns"] / 1e6,
        "p99_ms": figures["p99_ns"] / 1e6,
        "samples": figures["samples"],
        "limit_ms": figures["limit_ns"] / 1e6,
        "stalled": figures["stalled"],
        "stalled_intervals": figures["stalled_intervals"],
        "intervals": figures["intervals"],
    }


def _test_entry(session: SessionRecord, record: RunRecord) -> dict[str, Any]:
    outcome = session.outcome(record.nodeid)
    result = record.result
    entry: dict[str, Any] = {
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
        "thresholds": [_threshold_entry(result, r) for r in result.thresholds],
    }
    hiccups = _hiccup_entry(result)
    if hiccups is not None:
        entry["generator_hiccup"] = hiccups
    if record.capacity:
        entry["capacity"] = {found.scenario: found.to_dict() for found in record.capacity}
    entry["server"] = record.server.summary() if record.server is not None else None
    if own := own_target(session.target, record.target):
        entry["target"] = own
    return entry


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
    protos = {dict(tags).get("proto") for tags in merged.series("http_reqs")} - {None}
    for proto in sorted(str(p) for p in protos):
        wanted += [(m, {"proto": proto}) for m in ("http_reqs", "http_req_duration")]
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
            # k6's key is the expression; a windowed one names its window too
            # (``p(95)<500 per 10s window``), or it would merge with ``p(95)<500``
            name = r.threshold.describe()
            previous = thresholds.get(name, {"ok": True})
            thresholds[name] = {"ok": previous["ok"] and r.ok}
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
