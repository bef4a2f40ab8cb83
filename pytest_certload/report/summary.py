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
``generator_hiccup`` (how late its event loop ran, against the health limit). A test whose
run went wrong has ``diagnoses`` (:mod:`.diagnoses`: the failed requests' per-status
breakdown and causes, certctl's API rate limiter's share, known certctl defects), and a
test reported xfail for a known defect has the outcome ``xfailed``.

Comparability: ``indicative`` (true for a smoke run, whose scenarios were shortened) and
``profile_text`` say how far the figures go; ``database`` holds PostgreSQL's settings
(``warning`` when commits did not wait for the disk: the local provider runs it with
``fsync`` off); ``target.version`` certctl's version and commit; each test's
``database`` the rows of the tables it declared, before its run.

Rates: a counter's ``rate`` (``http_reqs``, ``iterations``, custom counters) is its count
per second of **active time**: for a sub-metric of one scenario, that scenario's own
active time (:func:`.stats.active_span`: from its start, after its warm-up, to its end,
so a ``startTime`` stagger never counts); for a metric over several scenarios, per run
the union of the active spans of the scenarios that recorded it, summed over the runs.
Idle time between tests and before a staggered scenario starts is never in it.

Every metric entry has its declared ``type``: a metric declared but never recorded (a
counter that stayed at zero, a sub-metric no sample matched) is reported with zero
values of its type; a threshold on a metric no run declared is left out of ``metrics``
(its verdict is in ``tests[].thresholds``).

The document is described by ``summary.schema.json`` beside this module
(``schema_version`` 1; every field added since, ``errors`` and the ones above among
them, is optional and additive, so no version change).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..engine import RunResult
from ..metrics import (
    CounterSink,
    MetricStore,
    MetricType,
    RateSink,
    Sink,
    TrendSink,
    summary,
)
from ..record import SUMMARY_FILE, RunRecord, SessionRecord, now_iso
from ..stack import TARGET_TYPES
from ..thresholds import ThresholdResult, WindowResult, format_selector
from .diagnoses import diagnose
from .meta import contacted_certctl, indicative, measured_targets, own_target, profile_text
from .stats import active_span, hiccup_stats, scenario_stats, warmup_stats, window_origin_ns

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


def _metric_entry(
    store: MetricStore, name: str, sink: Sink | None, duration_ns: int
) -> dict[str, Any] | None:
    """k6's entry of one metric; ``sink`` None: declared but no sample matched, reported
    with zero values of its type. None for a metric the store never declared."""
    mtype = store.type_of(name)
    if mtype is None:
        return None
    if sink is None:
        values: dict[str, Any] = _empty_values(mtype, time=store.is_time(name))
    else:
        values = dict(summary(sink, duration_ns=duration_ns))
    if mtype is MetricType.COUNTER and not duration_ns:
        values["rate"] = 0.0 if not values.get("count") else None
    return {
        "type": mtype.value,
        "contains": "time" if store.is_time(name) else "default",
        "values": values,
    }


def _empty_values(mtype: MetricType, *, time: bool) -> dict[str, Any]:
    """The values of a metric of ``mtype`` that recorded nothing."""
    if mtype is MetricType.TREND:
        return dict(summary(TrendSink(time=time)))
    if mtype is MetricType.RATE:
        return dict(summary(RateSink()))
    if mtype is MetricType.COUNTER:
        return {"count": 0, "rate": 0.0}
    return {"value": None, "min": None, "max": None}


def _active_ns(session: SessionRecord, name: str, tags: dict[str, str]) -> int:
    """The active time a counter's rate divides by: per run, the union of the active
    spans of the scenarios whose series of ``name`` match ``tags``; summed over runs."""
    total = 0
    for record in session.records:
        result = record.result
        spans = sorted(
            active_span(result, scenario)
            for scenario in result.scenarios
            if tags.get("scenario", scenario) == scenario
            and _recorded(result.store, name, {**tags, "scenario": scenario})
        )
        end = 0
        for start, stop in spans:
            start = max(start, end)
            if stop > start:
                total += stop - start
                end = stop
    return total


def _recorded(store: MetricStore, name: str, tags: dict[str, str]) -> bool:
    sink = store.select(name, tags)
    return sink is not None and (not isinstance(sink, CounterSink) or sink.samples > 0)


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
    diagnoses = diagnose(result)
    if diagnoses:
        entry["diagnoses"] = [d.to_dict() for d in diagnoses]
    if record.capacity:
        entry["capacity"] = {found.scenario: found.to_dict() for found in record.capacity}
    entry["server"] = record.server.summary() if record.server is not None else None
    if own := own_target(session.target, record.target):
        entry["target"] = own
    entry["database"] = record.database.to_dict() if record.database is not None else None
    return entry


def build_summary(session: SessionRecord) -> dict[str, Any]:
    """The summary document of ``session`` (see the module docstring)."""
    merged = MetricStore()
    duration_ns = 0
    for record in session.records:
        merged.merge(record.result.store)
        duration_ns += record.result.duration_ns
    metrics: dict[str, dict[str, Any]] = {}

    def add(name: str, tags: dict[str, str], *, judged: bool = False) -> None:
        """The entry of ``name{tags}``; one that recorded nothing only when a threshold
        judged it (then with zero values of its type)."""
        key = format_selector(name, tags)
        sink = merged.select(name, tags)
        if key in metrics or (sink is None and not judged):
            return
        counter = merged.type_of(name) is MetricType.COUNTER
        active = _active_ns(session, name, tags) if counter else 0
        entry = _metric_entry(merged, name, sink, active)
        if entry is not None:
            metrics[key] = entry

    for name in merged.names():
        add(name, {})
    for record in session.records:
        for scenario in record.result.scenarios:
            for m in _PER_SCENARIO:
                add(m, {"scenario": scenario})
    for kind in connector_tier(merged):
        for m in _PER_SCENARIO:
            add(m, {"target_type": kind})
    protos = {dict(tags).get("proto") for tags in merged.series("http_reqs")} - {None}
    for proto in sorted(str(p) for p in protos):
        for m in ("http_reqs", "http_req_duration"):
            add(m, {"proto": proto})
    for record in session.records:
        for r in record.result.thresholds:
            add(r.threshold.metric, dict(r.threshold.tags), judged=True)
    for record in session.records:
        for r in record.result.thresholds:
            entry = metrics.get(r.threshold.selector)
            if entry is None:  # a metric no run declared: its verdict is in tests[]
                continue
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
        "indicative": indicative(session.profile),
        "profile_text": profile_text(session.profile),
        "http_backend": session.http_backend,
        "target": _target(session),
        "database": _database_entry(session),
        "state": {"testRunDurationMs": duration_ns / 1e6},
        "tests": [_test_entry(session, r) for r in session.records],
        "metrics": metrics,
    }
    tier = connector_tier(merged)
    if tier:
        doc["connector_tier"] = tier
    return doc


def _database_entry(session: SessionRecord) -> dict[str, Any] | None:
    """PostgreSQL's settings and, when commits did not wait for the disk, the warning."""
    if session.database is None:
        return None
    return {**session.database.to_dict(), "warning": session.database.warning()}


def _target(session: SessionRecord) -> dict[str, Any]:
    """The target record, with the connector targets the runs measured and whether any
    run contacted certctl (a connector-tier-only session does not)."""
    target = dict(session.target_record)
    results = [record.result for record in session.records]
    measured = measured_targets(results, target.get("targets") or {})
    if measured:
        target["connector_targets"] = measured
    if results:
        target["certctl_contacted"] = contacted_certctl(results)
    return target


def write_summary(doc: dict[str, Any], session: SessionRecord) -> Path:
    """Write ``doc`` as the session's ``summary.json`` (atomically, scrubbed)."""
    return session.write_output(SUMMARY_FILE, json.dumps(doc, indent=2, default=str))
