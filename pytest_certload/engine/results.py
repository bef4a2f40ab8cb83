"""What a run measured and concluded, and its one serialised form.

Every type here has symmetric ``to_dict``/``from_dict``: JSON-safe, durations in integer
nanoseconds, ``from_dict(to_dict(x)) == x`` (the metric store round-trips exactly, HDR
histograms included). ``record.py`` writes these dicts into run files, and the
distributed controller receives them from its workers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
    of requests (empty in a run of one process).
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
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
        )


@dataclass
class RunResult:
    """What a run measured and what its thresholds and health checks concluded."""

    store: MetricStore
    scenarios: dict[str, ScenarioResult]
    thresholds: list[ThresholdResult]
    started_at: str
    duration_ns: int
    health_limits: HealthLimits
    aborted: str = ""

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
        ]

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
        return RunResult(
            store=self.store.subset({"scenario": scenario}),
            # a copy: judging the view must not change the shared run
            scenarios={scenario: ScenarioResult.from_dict(own.to_dict())},
            thresholds=[],
            started_at=self.started_at,
            duration_ns=self.duration_ns,
            health_limits=self.health_limits,
            aborted=self.aborted,
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
        )
