"""The ``certload`` fixture's object: run scenarios for one test and judge them.

Kept free of pytest imports: :class:`LoadTest` works with anything shaped like a pytest
item (``nodeid``, ``user_properties``, ``get_closest_marker``), a
:class:`~pytest_certload.settings.Settings` and a
:class:`~pytest_certload.record.SessionRecord`, so it can be exercised on its own.
:func:`validate_marker_kwargs` checks ``@pytest.mark.certload(...)`` at collection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from .distributed import run_distributed
from .engine import (
    HealthLimits,
    HTTPOptions,
    Progress,
    RunOptions,
    RunResult,
    Scenario,
    StopRequest,
    run_sync,
)
from .errors import ConfigError, ThresholdBreach, UntrustworthyRun
from .interrupts import Interrupts
from .record import RunRecord, SessionRecord
from .report.junit import run_properties
from .settings import Settings
from .stack import StackInfo
from .stack.session import OpenStack
from .thresholds import Threshold, parse_thresholds, threshold_list
from .units import DURATION_GRAMMAR, NS_PER_S, parse_duration_ns

__all__ = ["MARKER_KWARGS", "SMOKE_DEFAULT_NS", "LoadTest", "TestItem", "validate_marker_kwargs"]

SMOKE_DEFAULT_NS = 20 * NS_PER_S
#: keyword arguments of ``@pytest.mark.certload(...)``
MARKER_KWARGS = ("smoke_duration", "thresholds", "health", "min_tail_samples", "target")


_STACK_DIED = "the stack's service died during the run"


class _Marker(Protocol):
    kwargs: Mapping[str, Any]


class TestItem(Protocol):
    """What :class:`LoadTest` needs of a pytest item."""

    nodeid: str
    user_properties: list[tuple[str, object]]

    def get_closest_marker(self, name: str) -> _Marker | None: ...


def _duration_ns(value: object, what: str) -> int:
    """A duration a user wrote: a string with a unit (a bare number is refused: ``2``
    would otherwise silently mean 2 ns)."""
    if not isinstance(value, str):
        raise ConfigError(
            f"{value!r} is not a valid {what}: a duration needs a unit; use {DURATION_GRAMMAR}."
        )
    return parse_duration_ns(value, what=what, allow_zero=False)


def validate_marker_kwargs(args: Sequence[Any], kwargs: Mapping[str, Any], where: str) -> None:
    """Check ``certload(...)`` marker arguments at collection time."""
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
        _duration_ns(
            kwargs["smoke_duration"], f"smoke_duration of @pytest.mark.certload at {where}"
        )
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


class LoadTest:
    """The ``certload`` fixture: runs scenarios for one test and judges them.

    A threshold breach of a trustworthy run raises :class:`ThresholdBreach` from
    :meth:`run` (the test fails in its call phase); a run whose generator could not
    deliver the load, or whose target never answered, raises :class:`UntrustworthyRun`
    from :meth:`finish` (the test errors at teardown).
    """

    def __init__(
        self,
        item: TestItem,
        settings: Settings,
        session: SessionRecord,
        *,
        stack: StackInfo | None = None,
        interrupts: Interrupts | None = None,
        watch: OpenStack | None = None,
    ) -> None:
        self._item = item
        self.settings = settings
        self._session = session
        self._interrupts = interrupts or Interrupts()
        #: the open stack whose services are checked before and after each run
        self._watch = watch
        #: the session's stack when the test uses ``certload_stack``
        self.stack = stack
        self.results: list[RunResult] = []
        self._pending: list[str] = []
        marker = item.get_closest_marker("certload")
        self._marker: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
        #: where progress lines go while a run is in progress (set by the plugin)
        self.progress_sink: Callable[[str], None] | None = None

    # -- options --------------------------------------------------------------------
    @property
    def target(self) -> str:
        return str(self._marker.get("target") or self._session.target or "")

    def http_options(self, **overrides: Any) -> HTTPOptions:
        verify: bool | str = True
        ca = self.settings.ca
        if ca == "insecure":
            verify = False
        elif ca:
            verify = ca
        elif self.stack is not None:
            verify = str(self.stack.ca) if self.stack.ca else self.stack.verify_tls
        return replace(HTTPOptions(backend=self.settings.http_backend, verify=verify), **overrides)

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
        smoke_duration: str | None = None,
        label: str = "",
        http: HTTPOptions | None = None,
    ) -> RunResult:
        """Run ``scenarios`` concurrently with the session's settings and judge them.

        Durations follow the profile: ``canonical`` keeps each executor's duration,
        ``smoke`` shortens it to ``smoke_duration`` (argument, else the ``certload``
        marker's, else 20 s); ``--certload-duration`` overrides both. Thresholds of the
        marker are added to ``thresholds``.
        """
        source = self._item.nodeid
        parsed = threshold_list(thresholds, source=source)
        if "thresholds" in self._marker:
            parsed += parse_thresholds(
                self._marker["thresholds"], source=f"@pytest.mark.certload of {source}"
            )
        smoke_ns: int | None = None
        if smoke_duration is not None:
            smoke_ns = _duration_ns(smoke_duration, f"smoke_duration of certload.run() in {source}")
        elif "smoke_duration" in self._marker:
            smoke_ns = _duration_ns(
                self._marker["smoke_duration"],
                f"smoke_duration of @pytest.mark.certload at {source}",
            )
        scs = [self._duration_for(sc, smoke_ns) for sc in scenarios]
        health = self.settings.health
        if "health" in self._marker:
            health = HealthLimits.parse(str(self._marker["health"]), source=source)
        self._check_stack_before()
        with self._interrupts.run_in_progress() as stop:
            result = self._run(scs, parsed, source, health, http, stop)
        self._check_stack_after(result)
        self.results.append(result)
        self._session.add(RunRecord(source, label, result, self.target))
        self._item.user_properties.extend(run_properties(result))
        self._interrupts.interrupt_if_requested()
        return self._judge(result)

    def _run(
        self,
        scenarios: Sequence[Scenario],
        thresholds: list[Threshold],
        source: str,
        health: HealthLimits,
        http: HTTPOptions | None,
        stop: StopRequest,
    ) -> RunResult:
        options = RunOptions(
            http=http or self.http_options(),
            health=health,
            min_tail_samples=int(
                self._marker.get("min_tail_samples", self.settings.min_tail_samples)
            ),
            progress=self._progress if self.settings.progress_ns else None,
            progress_every=self.settings.progress_ns or "10s",
            stop=stop,
        )
        if self.settings.tx:
            return run_distributed(
                scenarios,
                tx=self.settings.tx,
                thresholds=thresholds,
                options=options,
                threshold_source=source,
            ).merged
        return run_sync(scenarios, thresholds=thresholds, options=options, threshold_source=source)

    def _check_stack_before(self) -> None:
        """A stack with a dead service measures nothing worth judging: refuse to start."""
        dead = self._watch.dead_services() if self._watch is not None else []
        if dead:
            raise UntrustworthyRun(
                "the stack is broken, so this run was not started:\n"
                + "\n".join(f"  - {line}" for line in dead)
            )

    def _check_stack_after(self, result: RunResult) -> None:
        """A service that died during the run is the cause of whatever it measured."""
        if self._watch is None:
            return
        dead = self._watch.dead_services()
        if not dead:
            return
        kept = self._watch.copy_logs()
        where = f"; the service logs are kept in {kept[0].parent}" if kept else ""
        problems = [f"{_STACK_DIED}: {line}{where}" for line in dead]
        for scenario in result.scenarios.values():
            scenario.health.problems += problems

    def _progress(self, p: Progress) -> None:
        if self.progress_sink is None:
            return
        total = p.total_ns / 1e9
        self.progress_sink(
            f"certload {self._item.nodeid}: {p.elapsed_ns / 1e9:5.0f}/{total:.0f} s, "
            f"{p.rate_per_s:7.1f} it/s, {p.iterations:,} iterations, "
            f"{p.failed:,} failed requests, {p.dropped:,} dropped, {p.vus} VUs"
        )

    def _judge(self, result: RunResult) -> RunResult:
        why = [f"  ! {cause}" for cause in result.causes()]
        because = "\nwhy requests failed:\n" + "\n".join(why) if why else ""
        if result.unreachable:
            self._pending.append(
                "target unreachable: no request got an HTTP answer: "
                + "; ".join(result.unreachable)
                + because
            )
            return result
        if not result.trustworthy:
            died = any(_STACK_DIED in line for line in result.untrustworthy)
            lines = [
                "a service of the stack died during the run, so no verdict is trusted:"
                if died
                else "the generator could not deliver the load, so no verdict is trusted:"
            ]
            lines += [f"  - {line}" for line in result.untrustworthy]
            if result.breaches:
                lines.append("thresholds that breached in this untrustworthy run:")
                lines += [f"  - {r.message()}" for r in result.breaches]
            self._pending.append("\n".join(lines) + because)
            return result
        problems = [r.message() for r in result.breaches]
        if result.aborted:
            problems.append(f"run aborted: {result.aborted}")
        if problems:
            raise ThresholdBreach(
                f"{len(result.breaches)} threshold(s) breached:\n"
                + "\n".join(f"  ✗ {p}" for p in problems)
                + because
            )
        return result

    def finish(self) -> None:
        """Called at fixture teardown: an untrustworthy or unreachable run errors here."""
        if self._pending:
            raise UntrustworthyRun("\n".join(self._pending))
