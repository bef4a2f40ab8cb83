"""What the telemetry sampler kept of one run: a tick per sampling interval, the run's
totals, and the readings made from them (the ``server`` object of summary.json, the one
line of context a breach message ends with).

Times are integer nanoseconds from the run's start (the engine's ``t0``), like the
run's intervals and windows, so a tick lines up with a threshold's window. A tick holds
what changed between two samples: CPU time per service (``generator`` is the load
generator's own processes), database counters and statement time, and what was seen at
its end: RSS, threads, file descriptors, sessions active or waiting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..units import NS_PER_S, format_offset

__all__ = ["GENERATOR", "ServerTelemetry", "Tick"]

#: the name the load generator's own processes are kept under
GENERATOR = "generator"
#: statements kept per tick (the top by execution time in it)
TOP_PER_TICK = 5
#: statements kept for the whole run
TOP_PER_RUN = 10


def _ints(data: Mapping[str, Any]) -> dict[str, int]:
    return {str(k): int(v) for k, v in data.items()}


@dataclass
class Tick:
    """What happened between two samples, ``[start_ns, end_ns)`` from the run start."""

    start_ns: int
    end_ns: int
    cpu_ns: dict[str, int] = field(default_factory=dict)
    rss_bytes: dict[str, int] = field(default_factory=dict)
    threads: dict[str, int] = field(default_factory=dict)
    fds: dict[str, int] = field(default_factory=dict)
    #: pg_stat_database counters' change (xact_commit, blks_hit, ...)
    db: dict[str, int] = field(default_factory=dict)
    #: sessions at the tick's end: active, idle_in_transaction, waiting
    sessions: dict[str, int] = field(default_factory=dict)
    #: waiting sessions at the tick's end by ``type:event``
    wait_events: dict[str, int] = field(default_factory=dict)
    #: execution time of every statement in the tick (ms)
    db_time_ms: float = 0.0
    #: the top statements of the tick: (statement id, calls, ms)
    statements: list[tuple[int, int, float]] = field(default_factory=list)

    def overlap(self, start_ns: int, end_ns: int) -> float:
        """The share of this tick inside ``[start_ns, end_ns)`` (0..1)."""
        span = self.end_ns - self.start_ns
        if span <= 0:
            return 0.0
        inside = min(self.end_ns, end_ns) - max(self.start_ns, start_ns)
        return max(0.0, min(1.0, inside / span))

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "cpu_ns": self.cpu_ns,
            "rss_bytes": self.rss_bytes,
            "threads": self.threads,
            "fds": self.fds,
            "db": self.db,
            "sessions": self.sessions,
            "wait_events": self.wait_events,
            "db_time_ms": round(self.db_time_ms, 3),
            "statements": [[q, c, round(ms, 3)] for q, c, ms in self.statements],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tick:
        return cls(
            start_ns=int(data["start_ns"]),
            end_ns=int(data["end_ns"]),
            cpu_ns=_ints(data.get("cpu_ns", {})),
            rss_bytes=_ints(data.get("rss_bytes", {})),
            threads=_ints(data.get("threads", {})),
            fds=_ints(data.get("fds", {})),
            db=_ints(data.get("db", {})),
            sessions=_ints(data.get("sessions", {})),
            wait_events=_ints(data.get("wait_events", {})),
            db_time_ms=float(data.get("db_time_ms", 0.0)),
            statements=[(int(q), int(c), float(ms)) for q, c, ms in data.get("statements", ())],
        )


@dataclass
class ServerTelemetry:
    """One run's telemetry: ticks, totals and notes on what could not be read."""

    interval_ns: int
    ticks: list[Tick] = field(default_factory=list)
    #: every service sampled, in the stack's order (``generator`` last)
    services: list[str] = field(default_factory=list)
    #: statement id -> normalised text (only statements some tick or the top list names)
    texts: dict[int, str] = field(default_factory=dict)
    #: the run's top statements by execution time: (statement id, calls, ms)
    top: list[tuple[int, int, float]] = field(default_factory=list)
    #: certctl's metrics: {"counters": {key: change}, "gauges": {key: value at the end}}
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    #: the generator's CPU per process, as each process measured it itself (the engine's
    #: figure, exact also for workers that exited with the run)
    generator_cpu_ns: dict[str, int] = field(default_factory=dict)
    #: what could not be measured, one line each (never an error)
    notes: list[str] = field(default_factory=list)
    #: the sampler's own CPU time (what telemetry cost the generator's process)
    sampler_cpu_ns: int = 0

    # -- readings ---------------------------------------------------------------------
    def _within(self, start_ns: int, end_ns: int) -> list[tuple[Tick, float]]:
        return [(t, w) for t in self.ticks if (w := t.overlap(start_ns, end_ns)) > 0]

    def cpu_ns(self, service: str, start_ns: int | None = None, end_ns: int | None = None) -> int:
        """CPU time of ``service`` in ``[start_ns, end_ns)`` (the whole run by default)."""
        if start_ns is None or end_ns is None:
            return sum(t.cpu_ns.get(service, 0) for t in self.ticks)
        return int(sum(t.cpu_ns.get(service, 0) * w for t, w in self._within(start_ns, end_ns)))

    def peak(self, what: str, service: str) -> int:
        """The largest ``rss_bytes``/``threads``/``fds`` of ``service`` at any tick."""
        return max((getattr(t, what).get(service, 0) for t in self.ticks), default=0)

    def statement_rows(self, rows: Iterable[tuple[int, int, float]]) -> list[dict[str, Any]]:
        out = []
        for qid, calls, ms in rows:
            text = self.texts.get(qid)
            if text is None:
                continue
            out.append(
                {
                    "query": text,
                    "calls": calls,
                    "total_ms": round(ms, 3),
                    "mean_ms": round(ms / calls, 3) if calls else None,
                }
            )
        return out

    def summary(self) -> dict[str, Any]:
        """The ``server`` object of summary.json: per service its CPU seconds and peaks;
        postgres' database counters, peak sessions and top statements; certctl's metric
        changes; the generator's CPU per process; notes."""
        out: dict[str, Any] = {"interval_s": self.interval_ns / NS_PER_S}
        for name in self.services:
            if name == GENERATOR:
                continue
            out[name] = {
                "cpu_s": round(self.cpu_ns(name) / NS_PER_S, 3),
                "rss_max_bytes": self.peak("rss_bytes", name),
                "threads_max": self.peak("threads", name),
                "fds_max": self.peak("fds", name),
            }
        for name in ("certctl", "postgres"):  # always there; null when not sampled
            out.setdefault(
                name, {"cpu_s": None, "rss_max_bytes": None, "threads_max": None, "fds_max": None}
            )
        pg: dict[str, Any] = out["postgres"]
        db: dict[str, int] = {}
        for t in self.ticks:
            for k, v in t.db.items():
                db[k] = db.get(k, 0) + v
        if db:
            pg["database"] = db
        if any(t.sessions for t in self.ticks):
            pg["waiting_max"] = max(t.sessions.get("waiting", 0) for t in self.ticks)
            pg["active_max"] = max(t.sessions.get("active", 0) for t in self.ticks)
            events: dict[str, int] = {}
            for t in self.ticks:
                for k, v in t.wait_events.items():
                    events[k] = max(events.get(k, 0), v)
            pg["wait_events_max"] = events
        pg["top_statements"] = self.statement_rows(self.top)
        certctl: dict[str, Any] = out["certctl"]
        if self.metrics:
            certctl["metrics"] = self.metrics
        gen_ns = sum(self.generator_cpu_ns.values()) or self.cpu_ns(GENERATOR)
        out[GENERATOR] = {
            "cpu_s": round(gen_ns / NS_PER_S, 3),
            "processes": {k: round(v / NS_PER_S, 3) for k, v in self.generator_cpu_ns.items()},
            "telemetry_cpu_s": round(self.sampler_cpu_ns / NS_PER_S, 3),
        }
        out["notes"] = list(self.notes)
        return out

    def context(self, start_ns: int, end_ns: int) -> str:
        """One line on what the server did in ``[start_ns, end_ns)``::

            during 10 s–20 s: certctl 190 % CPU, postgres 45 % CPU, generator 80 % CPU;
            postgres 4 sessions waiting (Lock:transactionid); top statement 61 % of DB
            time: INSERT INTO audit_events ...

        Empty when no tick falls in the span.
        """
        within = self._within(start_ns, end_ns)
        if not within:
            return ""
        span_ns = sum((t.end_ns - t.start_ns) * w for t, w in within)
        parts = []
        for name in self.services:
            cpu = sum(t.cpu_ns.get(name, 0) * w for t, w in within)
            if span_ns > 0 and (cpu or name in ("certctl", "postgres")):
                parts.append(f"{name} {100 * cpu / span_ns:.0f} % CPU")
        line = f"during {format_offset(max(start_ns, 0))}–{format_offset(end_ns)}: " + ", ".join(
            parts
        )
        waiting = max((t.sessions.get("waiting", 0) for t, _ in within), default=0)
        if any(t.sessions for t, _ in within):
            if waiting:
                events: dict[str, int] = {}
                for t, _ in within:
                    for k, v in t.wait_events.items():
                        events[k] = max(events.get(k, 0), v)
                worst = max(events.items(), key=lambda kv: kv[1])[0] if events else "?"
                line += f"; postgres {waiting} session(s) waiting (most on {worst})"
            else:
                line += "; no postgres session waiting"
        db_ms = sum(t.db_time_ms * w for t, w in within)
        by_statement: dict[int, float] = {}
        for t, w in within:
            for qid, _calls, ms in t.statements:
                by_statement[qid] = by_statement.get(qid, 0.0) + ms * w
        if db_ms > 0 and by_statement:
            qid, ms = max(by_statement.items(), key=lambda kv: kv[1])
            text = self.texts.get(qid, "?")
            short = text if len(text) <= 80 else text[:79] + "…"
            line += f"; top statement {100 * ms / db_ms:.0f} % of DB time: {short}"
        return line

    # -- serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "interval_ns": self.interval_ns,
            "services": self.services,
            "ticks": [t.to_dict() for t in self.ticks],
            "texts": {str(k): v for k, v in self.texts.items()},
            "top": [[q, c, round(ms, 3)] for q, c, ms in self.top],
            "metrics": self.metrics,
            "generator_cpu_ns": self.generator_cpu_ns,
            "notes": self.notes,
            "sampler_cpu_ns": self.sampler_cpu_ns,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerTelemetry:
        return cls(
            interval_ns=int(data["interval_ns"]),
            services=[str(s) for s in data.get("services", ())],
            ticks=[Tick.from_dict(t) for t in data.get("ticks", ())],
            texts={int(k): str(v) for k, v in data.get("texts", {}).items()},
            top=[(int(q), int(c), float(ms)) for q, c, ms in data.get("top", ())],
            metrics={
                str(kind): {str(k): float(v) for k, v in values.items()}
                for kind, values in data.get("metrics", {}).items()
            },
            generator_cpu_ns=_ints(data.get("generator_cpu_ns", {})),
            notes=[str(n) for n in data.get("notes", ())],
            sampler_cpu_ns=int(data.get("sampler_cpu_ns", 0)),
        )
