"""What a run measured and concluded, and its one serialised form.

Every type here has symmetric ``to_dict``/``from_dict``: JSON-safe, durations in integer
nanoseconds, ``from_dict(to_dict(x)) == x`` (the metric store round-trips exactly, HDR
histograms included). ``record.py`` writes these dicts into run files, and the
distributed controller receives them from its workers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..intervals import Interval
from ..metrics import CounterSink, MetricStore
from ..thresholds import ThresholdResult
from .causes import RequestErrors
from .health import HealthLimits, ScenarioHealth
from .timeline import TimelineRow

__all__ = ["Progress", "RunResult", "ScenarioResult"]


@dataclass(frozen=True)
class Progress:
    """A snapshot handed to the progress callback once per ``progress_every``."""

    elapsed_ns: int
    total_ns: int
    iterations: int
    rate_per_s: float
    requests: int
    failed: int
    dropped: int
    vus: int


@dataclass
class ScenarioResult:
    """One scenario of a run: executor, timing, generator health, timeline, errors.

    ``error_samples`` counts the exceptions its iteration function raised (message ->
    count, bounded); ``request_errors`` says why its failed requests failed (unexpected
    statuses with a body sample, transport errors by kind with their first texts);
    ``shares`` is, in a run merged from ``--certload-tx`` workers, each worker's number
    of requests (empty in a run of one process); ``warmup_ns`` the warm-up asked for (its
    samples are in ``RunResult.warmup_store``, not judged).
    """

    name: str
    executor: dict[str, Any]
    tags: dict[str, str]
    start_offset_ns: int
    elapsed_ns: int
    health: ScenarioHealth
    timeline: list[TimelineRow]
    error_samples: dict[str, int]
    folded_names: int = 0
    request_errors: RequestErrors = field(default_factory=RequestErrors)
    shares: dict[str, int] = field(default_factory=dict)
    warmup_ns: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "warmup_ns": self.warmup_ns,
            "executor": self.executor,
            "tags": self.tags,
            "start_offset_ns": self.start_offset_ns,
            "elapsed_ns": self.elapsed_ns,
            "health": self.health.to_dict(),
            "timeline": [r.to_dict() for r in self.timeline],
            "error_samples": self.error_samples,
            "folded_names": self.folded_names,
            "request_errors": self.request_errors.to_dict(),
            "shares": self.shares,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScenarioResult:
        return cls(
            name=str(data["name"]),
            executor=dict(data["executor"]),
            tags=dict(data["tags"]),
            start_offset_ns=int(data["start_offset_ns"]),
            elapsed_ns=int(data["elapsed_ns"]),
            health=ScenarioHealth.from_dict(data["health"]),
            timeline=[TimelineRow.from_dict(r) for r in data["timeline"]],
            error_samples=dict(data["error_samples"]),
            folded_names=int(data["folded_names"]),
            # absent from run files written before it was recorded: nothing is known
            request_errors=(
                RequestErrors.from_dict(data["request_errors"])
                if "request_errors" in data
                else RequestErrors()
            ),
            shares={str(k): int(v) for k, v in data.get("shares", {}).items()},
            warmup_ns=int(data.get("warmup_ns", 0)),
        )


@dataclass
class RunResult:
    """What a run measured and what its thresholds and health checks concluded.

    ``store`` holds the samples the thresholds judge (a scenario's warm-up left out; those
    are in ``warmup_store``); ``intervals`` every sample again, interval by interval
    (``interval_ns`` long, from the run start), for windowed thresholds and the HDR
    interval log. ``scope`` is the tag filter of a :meth:`view` (empty for a whole run).
    """

    store: MetricStore
    scenarios: dict[str, ScenarioResult]
    thresholds: list[ThresholdResult]
    started_at: str
    duration_ns: int
    health_limits: HealthLimits
    aborted: str = ""
    intervals: list[Interval] = field(default_factory=list)
    interval_ns: int = 1_000_000_000
    warmup_store: MetricStore | None = None
    scope: dict[str, str] = field(default_factory=dict)
    #: ``perf_counter_ns`` of the run's start in the process that ran it (0: unknown),
    #: what server telemetry sampled beside the run is aligned on
    t0_ns: int = 0
    #: CPU time each generator process spent from the run's start to its end (``local``
    #: for a run in this process; a worker name each in a ``--certload-tx`` merge)
    cpu_ns: dict[str, int] = field(default_factory=dict)

    @property
    def breaches(self) -> list[ThresholdResult]:
        return [r for r in self.thresholds if not r.ok]

    @property
    def unreachable(self) -> list[str]:
        return [s.health.unreachable for s in self.scenarios.values() if s.health.unreachable]

    @property
    def untrustworthy(self) -> list[str]:
        """One line per generator-health problem, prefixed by the scenario name."""
        return [
            f"{s.name}: {problem}" for s in self.scenarios.values() for problem in s.health.problems
        ] + [
            f"{r.threshold.selector} {r.threshold.describe()}: {r.stalled}"
            for r in self.thresholds
            if r.stalled
        ]

    @property
    def notes(self) -> list[str]:
        """What the run could not measure but that does not make it untrustworthy, one
        line per scenario: ``main: generator delay not measured: <why>``."""
        return [
            f"{s.name}: {s.health.delay_note}"
            for s in self.scenarios.values()
            if s.health.delay_note
        ]

    def warmup_excluded_ns(self, scenario: str) -> int:
        """How much of ``scenario``'s start was left out as warm-up: its warm-up rounded
        up to whole intervals (0 without one)."""
        sc = self.scenarios[scenario]
        if not sc.warmup_ns:
            return 0
        first = round(sc.start_offset_ns / self.interval_ns)
        end = math.ceil((first * self.interval_ns + sc.warmup_ns) / self.interval_ns)
        return (end - first) * self.interval_ns

    def judged_duration_ns(self) -> int:
        """The run's duration less the warm-up every scenario had (what a counter's rate
        over the judged samples divides by)."""
        excluded = [self.warmup_excluded_ns(name) for name in self.scenarios]
        return max(self.duration_ns - min(excluded, default=0), 1)

    def causes(self) -> list[str]:
        """Why requests failed, one readable line per cause, scenario by scenario::

            issuance: 1,204 of 1,204 requests answered 401 (body: {"error":"Invalid API key"})
            health: 57 of 57 requests failed below HTTP: tls: [SSL: CERTIFICATE_VERIFY_FAILED]
            certificate verify failed: ... (to https://127.0.0.1:8443/health)

        Empty when every request got an expected answer.
        """
        lines: list[str] = []
        for name, sc in self.scenarios.items():
            if sc.request_errors:
                sink = self.store.select("http_reqs", {"scenario": name})
                requests = int(sink.count) if isinstance(sink, CounterSink) else 0
                lines += sc.request_errors.lines(name, requests)
        return lines

    @property
    def trustworthy(self) -> bool:
        return not self.untrustworthy and not self.unreachable

    @property
    def ok(self) -> bool:
        return self.trustworthy and not self.breaches and not self.aborted

    @property
    def verdict(self) -> str:
        """``unreachable``, ``untrustworthy``, ``breached`` or ``passed``, in that order."""
        if self.unreachable:
            return "unreachable"
        if not self.trustworthy:
            return "untrustworthy"
        if self.breaches or self.aborted:
            return "breached"
        return "passed"

    def view(self, scenario: str) -> RunResult:
        """This run as one of its scenarios saw it: that scenario's series and health, the
        run's timing and abort, no thresholds (judge the scenario's own on it)."""
        own = self.scenarios[scenario]
        scope = {"scenario": scenario}
        return RunResult(
            store=self.store.subset(scope),
            # a copy: judging the view must not change the shared run
            scenarios={scenario: ScenarioResult.from_dict(own.to_dict())},
            thresholds=[],
            started_at=self.started_at,
            duration_ns=self.duration_ns,
            health_limits=self.health_limits,
            aborted=self.aborted,
            intervals=[iv.subset(scope) for iv in self.intervals],
            interval_ns=self.interval_ns,
            warmup_store=None if self.warmup_store is None else self.warmup_store.subset(scope),
            scope=scope,
            t0_ns=self.t0_ns,
            cpu_ns=dict(self.cpu_ns),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "duration_ns": self.duration_ns,
            "aborted": self.aborted,
            "health_limits": self.health_limits.to_dict(),
            "scenarios": {k: v.to_dict() for k, v in self.scenarios.items()},
            "thresholds": [r.to_dict() for r in self.thresholds],
            "metrics": self.store.to_dict(),
            "interval_ns": self.interval_ns,
            "intervals": [iv.to_dict() for iv in self.intervals],
            "warmup_metrics": None if self.warmup_store is None else self.warmup_store.to_dict(),
            "scope": self.scope,
            "t0_ns": self.t0_ns,
            "cpu_ns": self.cpu_ns,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunResult:
        return cls(
            store=MetricStore.from_dict(data["metrics"]),
            scenarios={k: ScenarioResult.from_dict(v) for k, v in data["scenarios"].items()},
            thresholds=[ThresholdResult.from_dict(r) for r in data["thresholds"]],
            started_at=str(data["started_at"]),
            duration_ns=int(data["duration_ns"]),
            health_limits=HealthLimits.from_dict(data["health_limits"]),
            aborted=str(data["aborted"]),
            # absent from run files written before intervals were kept
            intervals=[Interval.from_dict(iv) for iv in data.get("intervals", ())],
            interval_ns=int(data.get("interval_ns", 1_000_000_000)),
            warmup_store=(
                MetricStore.from_dict(data["warmup_metrics"])
                if data.get("warmup_metrics") is not None
                else None
            ),
            scope={str(k): str(v) for k, v in data.get("scope", {}).items()},
            t0_ns=int(data.get("t0_ns", 0)),
            cpu_ns={str(k): int(v) for k, v in data.get("cpu_ns", {}).items()},
        )
