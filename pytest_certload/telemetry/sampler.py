"""The telemetry sampler: a thread beside a run that reads the stack's processes, its
database and certctl's metrics every interval (1 s by default).

Usage::

    sampler = Sampler(sources, interval_ns=NS_PER_S)
    sampler.start()                 # opens the database connection, first sample
    result = run_sync(...)          # the run, in this thread
    telemetry = sampler.stop(t0_ns=result.t0_ns, generator_cpu_ns=...)

Nothing here raises because something could not be read: each missing figure becomes a
note of the :class:`~.model.ServerTelemetry`. The thread does blocking reads (``/proc``,
one database round trip or three) and holds the GIL only for their Python work, a few
hundred microseconds per sample (``bench/telemetry_overhead.py`` measures it).
"""

from __future__ import annotations

import os
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import psutil

from ..units import NS_PER_S
from .model import GENERATOR, TOP_PER_RUN, TOP_PER_TICK, ServerTelemetry, Tick
from .postgres import PgStats, StatementSample
from .processes import ProcessSample, ProcessTree, children_map, trees
from .prometheus import MetricsRead, metric_changes, read_metrics

__all__ = ["Sampler", "TelemetrySources"]

#: walk the process table every this many samples (and at the first and the last): a
#: process that appears in between (a --certload-tx worker, a new backend) is counted
#: from then on, with all the CPU it used before, so nothing is lost, only placed late
_REFRESH_EVERY = 5


@dataclass(frozen=True)
class TelemetrySources:
    """Where the sampler looks. Its repr holds no DSN and no token."""

    #: service name -> pid of its root process (empty for a stack that is not ours)
    processes: Mapping[str, int] = field(default_factory=dict)
    dsn: str | None = field(default=None, repr=False)
    certctl_url: str = ""
    token: str = field(default="", repr=False)
    verify: ssl.SSLContext | bool = field(default=True, repr=False)
    #: what the provider says it cannot offer (e.g. "no process figures for an external
    #: stack")
    notes: tuple[str, ...] = ()


@dataclass
class _Reading:
    at_ns: int
    processes: dict[str, ProcessSample]
    db: dict[str, int] | None
    statements: StatementSample | None


class Sampler:
    """Samples ``sources`` every ``interval_ns`` from :meth:`start` to :meth:`stop`."""

    def __init__(self, sources: TelemetrySources, *, interval_ns: int = NS_PER_S) -> None:
        self.sources = sources
        self.interval_ns = interval_ns
        self._trees: dict[str, ProcessTree] = {}
        self._generator: ProcessTree | None = None
        self._pg = PgStats(sources.dsn) if sources.dsn else None
        self._notes: list[str] = list(sources.notes)
        self._ticks: list[Tick] = []
        self._last: _Reading | None = None
        self._first_statements: StatementSample | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._metrics_start = MetricsRead()
        self._thread_cpu_ns = 0
        self._lock = threading.Lock()
        #: the process table as last walked (walking it is most of a sample's cost)
        self._children: dict[int, list[psutil.Process]] | None = None
        self._reads = 0

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        """Open what is read every interval, take the first sample, start the thread."""
        spent = time.thread_time_ns()
        self._trees, notes = trees(self.sources.processes)
        self._notes += notes
        try:
            self._generator = ProcessTree(GENERATOR, os.getpid())
        except psutil.Error as exc:  # pragma: no cover - our own process is always there
            self._notes.append(f"generator not sampled: {exc}")
        if self._pg is None:
            self._notes.append("database statistics not read: the stack gave no database DSN")
        elif self._pg.open() and self._pg.statements_note:
            self._notes.append(self._pg.statements_note)
        elif self._pg.note:
            self._notes.append(self._pg.note)
        if self.sources.certctl_url:
            self._metrics_start = read_metrics(
                self.sources.certctl_url, self.sources.token, self.sources.verify
            )
        self._last = self._read()
        self._first_statements = self._last.statements
        self._thread_cpu_ns += time.thread_time_ns() - spent
        self._thread = threading.Thread(target=self._loop, name="certload-telemetry", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        spent = time.thread_time_ns()
        next_at = time.perf_counter_ns() + self.interval_ns
        while not self._stop.wait(max(0, next_at - time.perf_counter_ns()) / NS_PER_S):
            self._sample()
            now = time.perf_counter_ns()
            next_at += self.interval_ns
            if next_at <= now:  # a late sample: keep the cadence, skip what was missed
                next_at = now + self.interval_ns
        with self._lock:
            self._thread_cpu_ns += time.thread_time_ns() - spent

    def stop(
        self, *, t0_ns: int | None = None, generator_cpu_ns: Mapping[str, int] | None = None
    ) -> ServerTelemetry:
        """Take the last sample, stop the thread, and return the run's telemetry with
        times from ``t0_ns`` (``perf_counter_ns`` of the run's start; the first sample's
        time when unknown). ``generator_cpu_ns``: the generator's CPU per process as the
        processes measured it (the engine's figure)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        spent = time.thread_time_ns()
        self._sample()
        end_metrics = (
            read_metrics(self.sources.certctl_url, self.sources.token, self.sources.verify)
            if self.sources.certctl_url
            else MetricsRead()
        )
        first = self._ticks[0].start_ns if self._ticks else time.perf_counter_ns()
        origin = t0_ns if t0_ns else first
        for tick in self._ticks:
            tick.start_ns -= origin
            tick.end_ns -= origin
        out = ServerTelemetry(interval_ns=self.interval_ns, ticks=self._ticks)
        leading = [n for n in ("certctl", "postgres") if n in self._trees]
        out.services = [*leading, *(n for n in self._trees if n not in leading)]
        out.services += [GENERATOR] if self._generator else []
        if self._pg is not None:
            self._top(out)
            if self._pg.note and self._pg.note not in self._notes:
                self._notes.append(self._pg.note)
            self._pg.close()
        if self._metrics_start.note or end_metrics.note:
            self._notes.append(self._metrics_start.note or end_metrics.note)
        else:
            out.metrics = metric_changes(self._metrics_start, end_metrics)
        self._thread_cpu_ns += time.thread_time_ns() - spent
        out.sampler_cpu_ns = self._thread_cpu_ns
        gen = dict(generator_cpu_ns or {})
        if "local" in gen:  # the sampler ran in that process: its cost is not the load's
            gen["local"] = max(0, gen["local"] - self._thread_cpu_ns)
        out.generator_cpu_ns = gen
        out.notes = list(dict.fromkeys(self._notes))
        return out

    # -- sampling ---------------------------------------------------------------------
    def _read(self) -> _Reading:
        at = time.perf_counter_ns()
        samples: dict[str, ProcessSample] = {}
        service_pids: set[int] = set()
        if self._children is None or self._reads % _REFRESH_EVERY == 0 or self._stop.is_set():
            self._children = children_map(tree.pid for tree in self._trees.values())
        self._reads += 1
        children = self._children
        for name, tree in self._trees.items():
            members = tree.members(children)
            service_pids.update(p.pid for p in members)
            sample = tree.sample(members)
            if sample is not None:
                samples[name] = sample
        if self._generator is not None:
            gen = self._generator.sample(self._generator.members(children), exclude=service_pids)
            if gen is not None:
                samples[GENERATOR] = gen
        db = statements = None
        if self._pg is not None:
            found = self._pg.database()
            db = found.counters if found is not None else None
            statements = self._pg.statements()
        return _Reading(at, samples, db, statements)

    def _sample(self) -> None:
        before = time.thread_time_ns()
        reading = self._read()
        activity = self._pg.activity() if self._pg is not None else None
        last = self._last
        assert last is not None
        tick = Tick(last.at_ns, reading.at_ns)
        for name, now in reading.processes.items():
            prev = last.processes.get(name)
            if prev is not None:
                tick.cpu_ns[name] = max(0, now.cpu_ns - prev.cpu_ns)
            tick.rss_bytes[name] = now.rss_bytes
            tick.threads[name] = now.threads
            tick.fds[name] = now.fds
        if reading.db is not None and last.db is not None:
            tick.db = {k: v - last.db.get(k, 0) for k, v in reading.db.items()}
        if activity is not None:
            tick.sessions = {
                "active": activity.active,
                "idle_in_transaction": activity.idle_in_transaction,
                "waiting": activity.waiting,
            }
            tick.wait_events = dict(activity.wait_events)
        if reading.statements is not None and last.statements is not None:
            rows = _changes(last.statements, reading.statements)
            tick.db_time_ms = sum(ms for _, _, ms in rows)
            tick.statements = rows[:TOP_PER_TICK]
        own = time.thread_time_ns() - before
        if GENERATOR in tick.cpu_ns:  # this sample's own cost is not the generator's load
            tick.cpu_ns[GENERATOR] = max(0, tick.cpu_ns[GENERATOR] - own)
        self._ticks.append(tick)
        self._last = reading

    def _top(self, out: ServerTelemetry) -> None:
        assert self._pg is not None
        last = self._last.statements if self._last is not None else None
        if last is not None and self._first_statements is not None:
            out.top = _changes(self._first_statements, last)[:TOP_PER_RUN]
        named = {q for q, _, _ in out.top} | {q for t in out.ticks for q, _, _ in t.statements}
        out.texts = {q: t for q in named if (t := self._pg.texts.get(q)) is not None}


def _changes(before: StatementSample, after: StatementSample) -> list[tuple[int, int, float]]:
    """Each statement's calls and time between two reads, most time first (statements
    with no call left out)."""
    rows = []
    for qid, (calls, ms) in after.stats.items():
        c0, ms0 = before.stats.get(qid, (0, 0.0))
        if calls > c0:
            rows.append((qid, calls - c0, max(0.0, ms - ms0)))
    rows.sort(key=lambda r: r[2], reverse=True)
    return rows
