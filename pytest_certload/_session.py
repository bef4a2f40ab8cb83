"""What the pytest glue delegates to: running scenarios for a test and recording results.

Kept free of pytest imports: it works with anything shaped like a pytest item (``nodeid``,
``user_properties``, ``get_closest_marker``) so it can be exercised on its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from .engine import HTTPOptions, RunOptions, RunResult, Scenario, run_sync
from .engine.health import HealthLimits
from .engine.runner import Progress
from .errors import ConfigError, ThresholdBreach, UntrustworthyRun
from .report.stats import scenario_stats
from .thresholds import Threshold, parse_thresholds

__all__ = [
    "MARKER_KWARGS",
    "SMOKE_DEFAULT_NS",
    "LoadTest",
    "RunRecord",
    "SessionRecorder",
    "ThresholdBreach",
    "UntrustworthyRun",
    "settings_of",
    "validate_marker_kwargs",
]

SMOKE_DEFAULT_NS = 20_000_000_000
#: keyword arguments of ``@pytest.mark.certload(...)``
MARKER_KWARGS = ("smoke_duration", "thresholds", "health", "min_tail_samples", "target")


class _Item(Protocol):
    nodeid: str
    user_properties: list[tuple[str, object]]

    def get_closest_marker(self, name: str) -> Any: ...


def settings_of(config: Any) -> Any:
    from .plugin import SETTINGS_KEY

    return config.stash[SETTINGS_KEY]


def validate_marker_kwargs(args: Sequence[Any], kwargs: Mapping[str, Any], where: str) -> None:
    """Check ``certload(...)`` marker arguments at collection time."""
    from .units import as_ns as _ns

    if args:
        raise ConfigError(
            f"@pytest.mark.certload takes keyword arguments only (at {where}); got positional "
            f"{list(args)!r}; valid keywords: {', '.join(MARKER_KWARGS)}."
        )
    unknown = sorted(set(kwargs) - set(MARKER_KWARGS))
    if unknown:
        raise ConfigError(
            f"unknown argument(s) {', '.join(unknown)} of @pytest.mark.certload at {where}; "
            f"valid keywords: {', '.join(MARKER_KWARGS)}."
        )
    if "smoke_duration" in kwargs:
        _ns(kwargs["smoke_duration"], f"smoke_duration of @pytest.mark.certload at {where}")
    if "thresholds" in kwargs:
        parse_thresholds(kwargs["thresholds"], source=where)
    if "health" in kwargs:
        HealthLimits.parse(str(kwargs["health"]), source=f"@pytest.mark.certload at {where}")
    if "min_tail_samples" in kwargs:
        value = kwargs["min_tail_samples"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"{value!r} is not a valid min_tail_samples of @pytest.mark.certload at "
                f"{where}; use a whole number, 1 or more."
            )


@dataclass
class RunRecord:
    nodeid: str
    label: str
    result: RunResult
    target: str
    path: Path | None = None


@dataclass
class SessionRecorder:
    """Everything measured in this pytest session, for the end-of-run reports."""

    KEY: ClassVar[Any] = None  # set by the plugin to a pytest StashKey
    output_dir: Path
    target: str = ""
    target_details: dict[str, Any] = field(default_factory=dict)
    records: list[RunRecord] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)

    def add(self, record: RunRecord) -> None:
        self.records.append(record)
        record.path = self._write(record)

    def _write(self, record: RunRecord) -> Path | None:
        """Persist one run at once, so a later crash cannot lose what it measured."""
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", record.nodeid).strip("_")[:150]
        directory = self.output_dir / "runs"
        index = sum(1 for r in self.records if r.nodeid == record.nodeid)
        path = directory / f"{name}.{index}.json"
        try:
            directory.mkdir(parents=True, exist_ok=True)
            payload = {
                "nodeid": record.nodeid,
                "label": record.label,
                "target": record.target,
                "result": record.result.to_dict(),
                "thresholds": [
                    {
                        "selector": r.threshold.selector,
                        "expression": r.threshold.expression,
                        "ok": r.ok,
                        "observed": r.observed,
                        "count": r.count,
                        "reason": r.reason,
                        "source": r.threshold.source,
                    }
                    for r in record.result.thresholds
                ],
            }
            path.write_text(json.dumps(payload, indent=1, default=str))
        except OSError:
            return None
        return path


class LoadTest:
    """The ``certload`` fixture: runs scenarios for one test and judges them."""

    def __init__(self, item: _Item, settings: Any, recorder: SessionRecorder) -> None:
        self._item = item
        self.settings = settings
        self._recorder = recorder
        self.results: list[RunResult] = []
        self._pending: list[str] = []
        marker = item.get_closest_marker("certload")
        self._marker: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
        self.progress_sink: Any = None  # set by the plugin: callable(str) printing a line
        self.stack: Any = None  # the session's StackInfo when the test uses certload_stack

    # -- options --------------------------------------------------------------------
    @property
    def target(self) -> str:
        return str(self._marker.get("target") or self._recorder.target or "")

    def http_options(self, **overrides: Any) -> HTTPOptions:
        verify: bool | str = True
        ca = self.settings.ca
        if ca == "insecure":
            verify = False
        elif ca:
            verify = ca
        elif self.stack is not None:
            verify = str(self.stack.ca) if self.stack.ca else self.stack.verify_tls
        base = HTTPOptions(backend=self.settings.http_backend, verify=verify)
        return HTTPOptions(**{**base.__dict__, **overrides})

    def _duration_for(self, sc: Scenario, smoke_ns: int | None) -> Scenario:
        if self.settings.duration_ns is not None:
            return sc.with_duration(self.settings.duration_ns)
        if self.settings.profile == "canonical":
            return sc
        target = smoke_ns if smoke_ns is not None else SMOKE_DEFAULT_NS
        if sc.executor.duration_ns <= target:
            return sc
        return sc.with_duration(target)

    # -- running ------------------------------------------------------------------------
    def run(
        self,
        *scenarios: Scenario,
        thresholds: Mapping[str, Any] | Sequence[Threshold] | None = None,
        smoke_duration: str | int | None = None,
        label: str = "",
        http: HTTPOptions | None = None,
    ) -> RunResult:
        """Run ``scenarios`` concurrently with the session's settings and judge them.

        Durations follow the profile: ``canonical`` keeps each executor's duration,
        ``smoke`` shortens it to ``smoke_duration`` (argument, else the ``certload``
        marker's, else 20 s); ``--certload-duration`` overrides both. Thresholds of the
        marker are added to ``thresholds``.
        """
        from .units import as_ns as _ns

        source = self._item.nodeid
        parsed: list[Threshold] = []
        if thresholds is not None:
            parsed += (
                parse_thresholds(thresholds, source=source)
                if isinstance(thresholds, Mapping)
                else list(thresholds)
            )
        if "thresholds" in self._marker:
            parsed += parse_thresholds(
                self._marker["thresholds"], source=f"@pytest.mark.certload of {source}"
            )
        smoke = smoke_duration if smoke_duration is not None else self._marker.get("smoke_duration")
        smoke_ns = _ns(smoke, "smoke_duration") if smoke is not None else None
        scs = [self._duration_for(sc, smoke_ns) for sc in scenarios]
        health = self.settings.health
        if "health" in self._marker:
            health = HealthLimits.parse(str(self._marker["health"]), source=source)
        options = RunOptions(
            http=http or self.http_options(),
            health=health,
            min_tail_samples=int(
                self._marker.get("min_tail_samples", self.settings.min_tail_samples)
            ),
            progress=self._progress if self.settings.progress_ns else None,
            progress_every=self.settings.progress_ns or "10s",
        )
        if self.settings.tx:
            from .distributed import run_distributed

            result = run_distributed(
                scs,
                tx=self.settings.tx,
                thresholds=parsed,
                options=options,
                threshold_source=source,
            ).merged
        else:
            result = run_sync(scs, thresholds=parsed, options=options, threshold_source=source)
        self.results.append(result)
        self._recorder.add(RunRecord(source, label, result, self.target))
        self._add_properties(result)
        return self._judge(result)

    def _progress(self, p: Progress) -> None:
        if self.progress_sink is None:
            return
        total = p.total_ns / 1e9
        self.progress_sink(
            f"certload {self._item.nodeid}: {p.elapsed_ns / 1e9:5.0f}/{total:.0f} s, "
            f"{p.rate_per_s:7.1f} it/s, {p.iterations:,} iterations, "
            f"{p.failed:,} failed requests, {p.dropped:,} dropped, {p.vus} VUs"
        )

    def _add_properties(self, result: RunResult) -> None:
        props = self._item.user_properties
        for name in result.scenarios:
            stats = scenario_stats(result, name)
            for key in (
                "requests",
                "rps",
                "p50_ms",
                "p90_ms",
                "p95_ms",
                "p99_ms",
                "max_ms",
                "error_rate",
                "lag_p99_ms",
            ):
                value = stats.get(key)
                if value is not None:
                    props.append((f"certload.{name}.{key}", _fmt(value)))
        for r in result.thresholds:
            verdict = "ok" if r.ok else "breached"
            props.append(
                (
                    f"certload.threshold.{r.threshold.selector}.{r.threshold.expression}",
                    f"{verdict}: {r.message()}",
                )
            )
        props.append(("certload.verdict", verdict_of(result)))

    def _judge(self, result: RunResult) -> RunResult:
        if result.unreachable:
            self._pending.append(
                "target unreachable: no request got an HTTP answer: "
                + "; ".join(result.unreachable)
            )
            return result
        if not result.trustworthy:
            lines = ["the generator could not deliver the load, so no verdict is trusted:"]
            lines += [f"  - {line}" for line in result.untrustworthy]
            if result.breaches:
                lines.append("thresholds that breached in this untrustworthy run:")
                lines += [f"  - {r.message()}" for r in result.breaches]
            self._pending.append("\n".join(lines))
            return result
        problems = [r.message() for r in result.breaches]
        if result.aborted:
            problems.append(f"run aborted: {result.aborted}")
        if problems:
            raise ThresholdBreach(
                f"{len(result.breaches)} threshold(s) breached:\n"
                + "\n".join(f"  ✗ {p}" for p in problems)
            )
        return result

    def finish(self) -> None:
        """Called at fixture teardown: an untrustworthy or unreachable run errors here."""
        if self._pending:
            raise UntrustworthyRun("\n".join(self._pending))


def verdict_of(result: RunResult) -> str:
    if result.unreachable:
        return "unreachable"
    if not result.trustworthy:
        return "untrustworthy"
    if result.breaches or result.aborted:
        return "breached"
    return "passed"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)
