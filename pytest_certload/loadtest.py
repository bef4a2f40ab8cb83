"""The ``certload`` fixture's object: run scenarios for one test and judge them.

A test runs its scenarios on its own (:meth:`LoadTest.run`), or as a member of a
**shared run** (:meth:`LoadTest.run_shared`): certctl's k6 runs some scenarios at the
same time (the API pair, the four connector targets), and so do the tests marked
``@pytest.mark.certload(group=..., scenario=...)``. The first member test to run starts
one run of every *selected* member's scenario (:class:`SharedRuns` keeps it for the
session); each member judges only its own scenario's share of it, so one breach fails
one test. ``--certload-isolate`` runs each member alone instead.

Kept free of pytest imports: :class:`LoadTest` works with anything shaped like a pytest
item (``nodeid``, ``user_properties``, ``iter_markers``), a
:class:`~pytest_certload.settings.Settings` and a
:class:`~pytest_certload.record.SessionRecord`, so it can be exercised on its own.
:func:`validate_marker_kwargs` checks ``@pytest.mark.certload(...)`` at collection.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

from .certctl.defects import DOCS as DEFECTS_DOCS
from .certctl.defects import KNOWN_DEFECTS, excusing, shown
from .distributed import run_distributed
from .engine import (
    HealthLimits,
    HTTPOptions,
    Progress,
    RunOptions,
    RunResult,
    Scenario,
    ScenarioResult,
    StopRequest,
    judge_run,
    run_sync,
)
from .engine.capacity import (
    CapacityResult,
    CapacityStep,
    contract_rate,
    search,
    step_scenario,
    summarize,
    thresholds_for,
)
from .errors import ConfigError, ThresholdBreach, UntrustworthyRun
from .interrupts import Interrupts
from .record import RunRecord, SessionRecord
from .redaction import redact_url
from .report.diagnoses import diagnosis_lines
from .report.junit import context_properties, run_properties
from .report.meta import measured_text
from .settings import Settings
from .stack import TARGET_TYPES, StackInfo
from .stack.database import TABLE_RE, RowCounts, count_rows
from .stack.session import OpenStack
from .telemetry import Sampler, ServerTelemetry, TelemetrySources
from .thresholds import Threshold, ThresholdResult, parse_thresholds, threshold_list
from .units import DURATION_GRAMMAR, NS_PER_MS, NS_PER_S, exact_ns, parse_duration_ns

__all__ = [
    "MARKER_KWARGS",
    "SMOKE_DEFAULT_NS",
    "LoadTest",
    "SharedRun",
    "SharedRuns",
    "TestItem",
    "marker_kwargs",
    "shared_members",
    "validate_marker_kwargs",
]

SMOKE_DEFAULT_NS = 20 * NS_PER_S
CAPACITY_RAMP_NS = 2 * NS_PER_S
CAPACITY_COOLDOWN_S = 2.0
"""Pause after a failed capacity step, for the server to drain what it still holds."""
"""Each capacity step ramps from the previous rate over this long (set apart as warm-up)."""
#: keyword arguments of ``@pytest.mark.certload(...)``: ``smoke_duration`` a duration
#: string with a unit (``"20s"``; a bare number is refused), ``thresholds`` k6's mapping,
#: ``health`` the ``--certload-health`` grammar, ``min_tail_samples`` a count of samples,
#: ``target`` a label for the reports, ``group`` and ``scenario`` names of a shared run
MARKER_KWARGS = (
    "smoke_duration",
    "thresholds",
    "health",
    "min_tail_samples",
    "target",
    "group",
    "scenario",
    "known_defects",
    "tables",
    "connector_target",
)
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


_STACK_DIED = "the stack's service died during the run"


class _Marker(Protocol):
    @property
    def kwargs(self) -> Mapping[str, Any]: ...


class _Marked(Protocol):
    def iter_markers(self, name: str) -> Iterator[_Marker]: ...


class TestItem(_Marked, Protocol):
    """What :class:`LoadTest` needs of a pytest item."""

    nodeid: str
    user_properties: list[tuple[str, object]]


def marker_kwargs(item: _Marked) -> dict[str, Any]:
    """Every ``certload`` marker's keyword arguments on ``item``, the closest one winning
    (a parametrized case's own marker over its function's, the function's over its
    module's)."""
    merged: dict[str, Any] = {}
    for marker in reversed(list(item.iter_markers("certload"))):
        merged.update(marker.kwargs)
    return merged


def shared_members(items: Iterable[_Marked], group: str) -> dict[str, dict[str, Any]]:
    """The scenarios of shared run ``group`` whose tests are selected, in test order, with
    each member test's marker arguments (its ``smoke_duration``, ``health``, ...). A test
    marked ``skip`` (e.g. its connector target is not in the stack) is no member."""
    members: dict[str, dict[str, Any]] = {}
    for item in items:
        if any(True for _ in item.iter_markers("skip")):
            continue
        kwargs = marker_kwargs(item)
        if kwargs.get("group") == group:
            members.setdefault(str(kwargs["scenario"]), kwargs)
    return members


@dataclass(frozen=True)
class SharedRun:
    """One shared run: the group, what ran together, and the run's result."""

    group: str
    scenarios: tuple[str, ...]
    result: RunResult
    server: ServerTelemetry | None = None
    #: the rows of the tables its members touch, before it ran
    database: RowCounts | None = None


class SharedRuns:
    """The session's shared runs, by group: each runs once, the first member starts it."""

    def __init__(self, members: Callable[[str], dict[str, dict[str, Any]]]) -> None:
        #: the selected member scenarios of a group and their tests' marker arguments
        #: (computed from the session's items)
        self.members = members
        self._runs: dict[str, SharedRun] = {}

    def get(self, group: str) -> SharedRun | None:
        return self._runs.get(group)

    def keep(self, run: SharedRun) -> None:
        self._runs[run.group] = run


def _duration_ns(value: object, what: str) -> int:
    """A duration a user wrote: a string with a unit. A bare number is refused: k6 users
    mean seconds, the engine reads a bare int as nanoseconds, so ``20`` is refused with
    ``'20s'`` as the fix rather than guessed."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ConfigError(
            f"{value!r} is not a valid {what}: a duration needs a unit (a bare number is "
            f"nanoseconds in the engine, so {value} would mean {value} ns); write "
            f"'{value}s', or {DURATION_GRAMMAR}."
        )
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
    for key in ("group", "scenario"):
        if key in kwargs and not (isinstance(kwargs[key], str) and _NAME_RE.match(kwargs[key])):
            raise ConfigError(
                f"{kwargs[key]!r} is not a valid {key} of @pytest.mark.certload at {where}; "
                "use letters, digits, '_', '-' or '.', e.g. group='k6', "
                "scenario='issuance_acceptance'."
            )
    if "known_defects" in kwargs:
        _check_known_defects(kwargs["known_defects"], where)
    if "tables" in kwargs:
        tables = kwargs["tables"]
        if (
            isinstance(tables, str)
            or not isinstance(tables, list | tuple)
            or not all(isinstance(t, str) and TABLE_RE.match(t) for t in tables)
        ):
            raise ConfigError(
                f"{tables!r} is not a valid tables of @pytest.mark.certload at {where}; give "
                "a list of the database tables the test's run touches, e.g. "
                "tables=['managed_certificates', 'jobs'] (their rows are counted before "
                "each run)."
            )
    if "connector_target" in kwargs and kwargs["connector_target"] not in TARGET_TYPES:
        raise ConfigError(
            f"{kwargs['connector_target']!r} is not a valid connector_target of "
            f"@pytest.mark.certload at {where}; use one of {', '.join(TARGET_TYPES)}."
        )
    if "min_tail_samples" in kwargs:
        value = kwargs["min_tail_samples"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(
                f"{value!r} is not a valid min_tail_samples of @pytest.mark.certload at "
                f"{where}; use a whole number, 1 or more."
            )


def _check_known_defects(value: object, where: str) -> None:
    """``known_defects=[...]``: ids of known certctl defects that fail a test by themselves."""
    excusing_ids = [d.id for d in KNOWN_DEFECTS.values() if d.excuses]
    valid = f"use a list of known defect ids ({', '.join(excusing_ids)}; see {DEFECTS_DOCS})"
    if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
        raise ConfigError(
            f"{value!r} is not a valid known_defects of @pytest.mark.certload at {where}; "
            f"{valid}, e.g. known_defects=['acme-finalize-500']."
        )
    for item in value:
        defect = KNOWN_DEFECTS.get(item) if isinstance(item, str) else None
        if defect is None:
            raise ConfigError(
                f"{item!r} in known_defects of @pytest.mark.certload at {where} is not a "
                f"known certctl defect; {valid}."
            )
        if not defect.excuses:
            raise ConfigError(
                f"{item!r} in known_defects of @pytest.mark.certload at {where} cannot be "
                "expected: it only hides the real cause of a failure (the ids the scenario "
                f"sends), so it never makes a test xfail; {valid}."
            )


def _rejudge(sc: ScenarioResult, run_limits: HealthLimits, own: HealthLimits) -> None:
    """Judge ``sc``'s generator health by its own test's limits, as if it had run alone,
    keeping the problems the figures do not show (a lost worker, a service that died)."""
    by_run = replace(sc.health, problems=[])
    by_run.judge(run_limits)
    beyond_figures = [p for p in sc.health.problems if p not in by_run.problems]
    sc.health.judge(own)
    sc.health.problems += beyond_figures


def breach_message(r: ThresholdResult, result: RunResult, server: ServerTelemetry | None) -> str:
    """A breach's message, ending with what the server did where it breached: in its
    worst window, or over the judged part of the run."""
    message = r.message()
    if server is None:
        return message
    worst = r.worst_window()
    if worst is None:
        line = server.context(result.duration_ns - result.judged_duration_ns(), result.duration_ns)
        return f"{message}\n      {line}" if line else message
    start = worst.start_ns
    t = r.threshold
    if t.op in ("<", "<=") and worst.observed and result.store.is_time(t.metric):
        # a latency lands in the window its request ended in: what made it slow began
        # up to that latency earlier, so look from there
        start = max(0, start - int(worst.observed * NS_PER_MS))
    line = server.context(start, worst.end_ns)
    return f"{message}\n      {line}" if line else message


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
        shared: SharedRuns | None = None,
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
        self._marker = marker_kwargs(item)
        self._shared = shared if shared is not None else SharedRuns(lambda group: {})
        #: where progress lines go while a run is in progress (set by the plugin)
        self.progress_sink: Callable[[str], None] | None = None

    # -- options --------------------------------------------------------------------
    @property
    def target(self) -> str:
        return str(self._marker.get("target") or self._session.target or "")

    def _run_target(self, result: RunResult) -> str:
        """What a run measured: :attr:`target`, or for a run of connector targets only
        (it never contacts certctl) those targets and their URLs."""
        if self._marker.get("target") or self.stack is None:
            return self.target
        urls = {kind: redact_url(url) for kind, url in self.stack.targets.items()}
        return measured_text(self.target, {"targets": urls}, [result])[0]

    def http_options(self, **overrides: Any) -> HTTPOptions:
        """The session's HTTP options (backend, HTTP version, trust of the stack's CA)
        with ``overrides`` applied, e.g. ``http_options(fresh_connection=True,
        http_version="1.1")`` (what the connector tier's handshake scenarios use)."""
        verify: bool | str = True
        ca = self.settings.ca
        if ca == "insecure":
            verify = False
        elif ca:
            verify = ca
        elif self.stack is not None:
            verify = str(self.stack.ca) if self.stack.ca else self.stack.verify_tls
        source = self.settings.sources.get("certload_http_backend", "default")
        backend = None if source == "default" else self.settings.http_backend
        version = self.settings.http_version
        try:
            return replace(
                HTTPOptions(backend=backend, verify=verify, http_version=version), **overrides
            )
        except ConfigError as exc:
            if "http_version" in overrides or not overrides.get("http2"):
                raise
            where = self.settings.sources.get("certload_http_version", "default")
            raise ConfigError(
                f"{exc} The HTTP version {version!r} comes from {where}; give "
                "--certload-http-version auto (or 2), or drop http2=True."
            ) from None

    def _duration_for(self, sc: Scenario, smoke_ns: int | None) -> Scenario:
        sc = self._profile_duration(sc, smoke_ns)
        if self.settings.warmup_ns is None:
            return sc
        try:
            return replace(sc, warmup=exact_ns(self.settings.warmup_ns))
        except ConfigError as exc:
            where = self.settings.sources.get("certload_warmup", "--certload-warmup")
            raise ConfigError(f"{exc} (the warm-up comes from {where})") from None

    def _profile_duration(self, sc: Scenario, smoke_ns: int | None) -> Scenario:
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
        marker's, else 20 s: a duration string with a unit such as ``"20s"``, a bare
        number is refused); ``--certload-duration`` overrides both. Thresholds of the
        marker are added to ``thresholds``.
        """
        parsed = self._thresholds(thresholds)
        scs = [self._shortened(sc, smoke_duration) for sc in scenarios]
        rows = self._row_counts(self._tables())
        result, server = self._execute(scs, parsed, http, self._item.nodeid)
        capacity = self._capacity(scs, parsed, http, result, smoke_duration)
        return self._record(result, label, capacity=capacity, server=server, database=rows)

    def run_shared(
        self,
        scenarios: Mapping[str, Scenario],
        *,
        thresholds: Mapping[str, Any] | Sequence[Threshold] | None = None,
        smoke_duration: str | None = None,
        label: str = "",
        http: HTTPOptions | None = None,
    ) -> RunResult:
        """Run this test's scenario as a member of a shared run and judge it.

        The test's ``@pytest.mark.certload(group=..., scenario=...)`` names the group and
        its own scenario; ``scenarios`` maps every member's scenario name to its
        :class:`Scenario` (the same mapping in every member test). The first member to
        get here runs the scenarios of every selected member of the group at once; the
        others reuse that run. Each judges ``thresholds`` on its own scenario's share
        (its series, its health), so a breach fails its test only. Under
        ``--certload-isolate`` the scenario runs alone, as :meth:`run` would.
        """
        group, own = self._marker.get("group"), self._marker.get("scenario")
        where = self._item.nodeid
        if not group or not own:
            raise ConfigError(
                f"certload.run_shared() in {where} needs the test marked with its group and "
                "its own scenario, e.g. @pytest.mark.certload(group='k6', "
                "scenario='issuance_acceptance'); use certload.run() for a run of its own."
            )
        if own not in scenarios:
            raise ConfigError(
                f"{where} is marked scenario={own!r} but run_shared() got no scenario of "
                f"that name; it got {', '.join(sorted(scenarios)) or 'none'}."
            )
        parsed = self._thresholds(thresholds)
        aborting = [t for t in parsed if t.abort_on_fail]
        if aborting and not self.settings.isolate:
            raise ConfigError(
                f"{aborting[0].selector} {aborting[0].expression!r} of {where} has "
                "abortOnFail, which a shared run cannot honour (it would stop the other "
                "members' scenarios too); drop abortOnFail, or run the scenario on its own "
                "with certload.run() or --certload-isolate."
            )
        if self.settings.isolate:
            rows = self._row_counts(self._tables())
            result, server = self._execute(
                [self._shortened(scenarios[own], smoke_duration)], parsed, http, where
            )
            return self._record(result, label, server=server, database=rows)
        shared = self._shared.get(group)
        if shared is None or own not in shared.scenarios:
            members = self._shared.members(group)
            members.pop(own, None)
            unknown = [m for m in members if m not in scenarios]
            if unknown:
                raise ConfigError(
                    f"the shared run {group!r} has selected member scenario(s) "
                    f"{', '.join(unknown)} that run_shared() in {where} was not given; "
                    "pass every member's scenario in the same mapping."
                )
            # each member's scenario keeps the smoke duration its own test asks for
            together = [self._shortened(scenarios[own], smoke_duration)]
            together += [
                self._shortened(scenarios[m], None, kwargs.get("smoke_duration"))
                for m, kwargs in members.items()
            ]
            what = f"shared run {group!r} ({', '.join(sc.name for sc in together)})"
            rows = self._row_counts(self._tables(*members.values()))
            result, server = self._execute(together, [], http, what)
            shared = SharedRun(group, tuple(sc.name for sc in together), result, server, rows)
            self._shared.keep(shared)
        view = shared.result.view(own)
        limits = self._health()
        view.health_limits = limits
        _rejudge(view.scenarios[own], shared.result.health_limits, limits)
        view.thresholds = judge_run(parsed, view, min_tail_samples=self._min_tail_samples())
        others = tuple(name for name in shared.scenarios if name != own)
        capacity = self._capacity([scenarios[own]], parsed, http, view, smoke_duration)
        return self._record(
            view,
            label,
            group=group,
            ran_with=others,
            capacity=capacity,
            server=shared.server,
            database=shared.database,
        )

    def _thresholds(
        self, thresholds: Mapping[str, Any] | Sequence[Threshold] | None
    ) -> list[Threshold]:
        """The test's thresholds plus its marker's."""
        source = self._item.nodeid
        parsed = threshold_list(thresholds, source=source)
        if "thresholds" in self._marker:
            parsed += parse_thresholds(
                self._marker["thresholds"], source=f"@pytest.mark.certload of {source}"
            )
        return parsed

    def _tables(self, *members: Mapping[str, Any]) -> tuple[str, ...]:
        """The tables this test's marker declares, and those of ``members`` (the marker
        arguments of the other member tests of a shared run)."""
        declared: list[str] = []
        for kwargs in (self._marker, *members):
            declared += [str(t) for t in kwargs.get("tables", ())]
        return tuple(dict.fromkeys(declared))

    def _row_counts(self, tables: Sequence[str]) -> RowCounts | None:
        """The rows of ``tables`` now, before a run (None when none is declared)."""
        if not tables:
            return None
        if self.stack is None:
            return RowCounts(tuple(tables), note="not read: the test did not use the stack")
        return count_rows(self.stack.dsn, tables)  # without a DSN: "not read: no DSN"

    def _min_tail_samples(self) -> int:
        return int(self._marker.get("min_tail_samples", self.settings.min_tail_samples))

    def _shortened(
        self,
        sc: Scenario,
        smoke_duration: str | None,
        marker_smoke: object = None,
    ) -> Scenario:
        """``sc`` with the duration the profile gives it: ``smoke_duration`` (the call's),
        else ``marker_smoke`` (a member test's marker) or this test's marker's."""
        return self._duration_for(sc, self._smoke_ns(smoke_duration, marker_smoke))

    def _smoke_ns(self, smoke_duration: str | None, marker_smoke: object = None) -> int | None:
        """The smoke duration asked for: the call's, else a member's or this marker's."""
        source = self._item.nodeid
        if smoke_duration is not None:
            return _duration_ns(smoke_duration, f"smoke_duration of certload.run() in {source}")
        smoke = marker_smoke if marker_smoke is not None else self._marker.get("smoke_duration")
        if smoke is None:
            return None
        return _duration_ns(smoke, f"smoke_duration of @pytest.mark.certload at {source}")

    def _health(self) -> HealthLimits:
        if "health" in self._marker:
            return HealthLimits.parse(str(self._marker["health"]), source=self._item.nodeid)
        return self.settings.health

    def _execute(
        self,
        scenarios: Sequence[Scenario],
        thresholds: list[Threshold],
        http: HTTPOptions | None,
        what: str,
    ) -> tuple[RunResult, ServerTelemetry | None]:
        """One run with the session's settings, the stack checked before and after, and
        (unless ``--certload-telemetry off``) the stack and the generator sampled beside
        it."""
        self._check_stack_before()
        sampler = None
        if self.settings.telemetry_ns:
            sampler = Sampler(self._telemetry_sources(), interval_ns=self.settings.telemetry_ns)
            sampler.start()
        result: RunResult | None = None
        try:
            with self._interrupts.run_in_progress() as stop:
                result = self._run(scenarios, thresholds, self._health(), http, stop, what)
        finally:
            server = (
                sampler.stop(
                    t0_ns=result.t0_ns if result is not None else None,
                    generator_cpu_ns=result.cpu_ns if result is not None else None,
                )
                if sampler is not None
                else None
            )
        self._check_stack_after(result)
        return result, server

    def _telemetry_sources(self) -> TelemetrySources:
        """What the sampler can read of this session's stack."""
        watch = self._watch
        if watch is None:
            return TelemetrySources(
                notes=("no stack in this session: only the generator's processes are sampled",)
            )
        info = watch.info
        pids = watch.process_ids()
        notes: tuple[str, ...] = ()
        if not pids:
            notes = (
                f"no process figures: the {info.provider} stack's processes are not ours "
                "to sample (only database statistics and certctl's metrics are read)",
            )
        return TelemetrySources(
            processes=pids,
            dsn=info.dsn,
            certctl_url=info.certctl_url,
            token=info.token,
            verify=info.verify(),
            notes=notes,
        )

    def _capacity(
        self,
        scenarios: Sequence[Scenario],
        thresholds: list[Threshold],
        http: HTTPOptions | None,
        result: RunResult,
        smoke_duration: str | None,
    ) -> list[CapacityResult]:
        """With ``--certload-capacity``: search each open-model scenario's capacity, if
        the run at the contract rate passed (a failing contract rate fails the test as
        it always does, with nothing more to search)."""
        if not self.settings.capacity or not result.ok:
            return []
        found = []
        for sc in scenarios:
            if not sc.open_model or sc.name not in result.scenarios:
                continue
            found.append(self._search(sc, thresholds, http, result, smoke_duration))
        return found

    def _search(
        self,
        sc: Scenario,
        thresholds: list[Threshold],
        http: HTTPOptions | None,
        result: RunResult,
        smoke_duration: str | None,
    ) -> CapacityResult:
        settings = self.settings
        contract = contract_rate(sc)
        text = settings.capacity_max
        ceiling = contract * float(text[:-1]) if text.endswith("x") else float(text)
        dwell = settings.capacity_step_ns or self._smoke_ns(smoke_duration) or SMOKE_DEFAULT_NS
        own = thresholds_for(sc.name, thresholds)
        view = result.view(sc.name) if len(result.scenarios) > 1 else result
        first = summarize(
            contract,
            view,
            sc.name,
            judge_run(own, view, min_tail_samples=self._min_tail_samples()),
        )

        def run_step(rate: float, previous: float) -> CapacityStep:
            step = step_scenario(sc, rate, previous, dwell_ns=dwell, ramp_ns=CAPACITY_RAMP_NS)
            what = f"capacity {sc.name} at {rate:,.0f}/s"
            ran, _ = self._execute([step], own, http, what)
            found = summarize(rate, ran, sc.name, ran.thresholds)
            if not found.passed:
                # what the server still holds from this step must not count against the
                # next one (which ramps up from the last passing rate)
                time.sleep(CAPACITY_COOLDOWN_S)
            return found

        return search(
            run_step,
            scenario=sc.name,
            contract=contract,
            precision=settings.capacity_precision,
            max_rate=ceiling,
            deadline_s=settings.capacity_time_ns / NS_PER_S,
            first=first,
        )

    def _record(
        self,
        result: RunResult,
        label: str,
        *,
        group: str = "",
        ran_with: tuple[str, ...] = (),
        capacity: Sequence[CapacityResult] = (),
        server: ServerTelemetry | None = None,
        database: RowCounts | None = None,
    ) -> RunResult:
        """Keep the run (run file, junit properties), then judge it for this test."""
        self.results.append(result)
        record = RunRecord(
            self._item.nodeid,
            label,
            result,
            self._run_target(result),
            group=group,
            ran_with=ran_with,
            capacity=tuple(capacity),
            server=server,
            database=database,
        )
        self._session.add(record)
        self._item.user_properties.extend(run_properties(result))
        self._item.user_properties.extend(context_properties(self._session, record))
        for found in capacity:
            if found.capacity is not None:
                self._item.user_properties.append(
                    (f"certload.{found.scenario}.capacity_rps", f"{found.capacity:.1f}")
                )
            self._item.user_properties.append((f"certload.{found.scenario}.capacity", found.line()))
        if ran_with:
            self._item.user_properties.append(
                ("certload.shared_run", f"{group}: ran with {', '.join(ran_with)}")
            )
        if server is not None:
            whole = server.context(0, result.duration_ns)
            if whole:
                self._item.user_properties.append(("certload.server", whole))
        self._interrupts.interrupt_if_requested()
        return self._judge(result, server)

    def _run(
        self,
        scenarios: Sequence[Scenario],
        thresholds: list[Threshold],
        health: HealthLimits,
        http: HTTPOptions | None,
        stop: StopRequest,
        what: str,
    ) -> RunResult:
        options = RunOptions(
            http=http or self.http_options(),
            health=health,
            min_tail_samples=self._min_tail_samples(),
            progress=partial(self._progress, what) if self.settings.progress_ns else None,
            progress_every=self.settings.progress_ns or "10s",
            stop=stop,
        )
        source = self._item.nodeid
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

    def _progress(self, what: str, p: Progress) -> None:
        if self.progress_sink is None:
            return
        total = p.total_ns / 1e9
        self.progress_sink(
            f"certload {what}: {p.elapsed_ns / 1e9:5.0f}/{total:.0f} s, "
            f"{p.rate_per_s:7.1f} it/s, {p.iterations:,} iterations, "
            f"{p.failed:,} failed requests, {p.dropped:,} dropped, {p.vus} VUs"
        )

    def _judge(self, result: RunResult, server: ServerTelemetry | None = None) -> RunResult:
        why = [f"  ! {line}" for line in diagnosis_lines(result)]
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
            if server is not None and (whole := server.context(0, result.duration_ns)):
                lines.append(f"  {whole}")
            self._pending.append("\n".join(lines) + because)
            return result
        problems = [breach_message(r, result, server) for r in result.breaches]
        if result.aborted:
            problems.append(f"run aborted: {result.aborted}")
        if problems:
            raise ThresholdBreach(
                f"{len(result.breaches)} threshold(s) breached:\n"
                + "\n".join(f"  ✗ {p}" for p in problems)
                + because
            )
        return result

    # -- known certctl defects --------------------------------------------------------------
    def known_defect_reason(self) -> str:
        """Why this test's failure is a known certctl defect's, as an xfail reason (the
        defect, certctl's file and function, the evidence), or ``""``: not one, or
        ``--certload-known-defects fail``."""
        if self.settings.known_defects != "xfail":
            return ""
        reasons: dict[str, str] = {}
        for match in excusing(self.results):
            reasons.setdefault(match.defect.id, match.reason())
        return "; ".join(reasons.values())

    def missing_defects(self) -> str:
        """For a test that passed: the failure message of a strict XPASS when it is
        marked ``certload(known_defects=[...])`` and none of its runs shows one of them
        (certctl may have fixed it), else ``""``."""
        if self.settings.known_defects != "xfail":
            return ""
        expected = self._marker.get("known_defects") or ()
        missing = [d for d in expected if not shown(self.results, d)]
        if not missing:
            return ""
        named = "; ".join(
            f"{d} ({KNOWN_DEFECTS[d].title}, {KNOWN_DEFECTS[d].source})" for d in missing
        )
        return (
            f"[XPASS(strict)] known certctl defect(s) no longer shown: {named}. The test is "
            "marked @pytest.mark.certload(known_defects=...) but none of its runs has the "
            "defect's evidence: if certctl fixed it, remove it from the mark (see "
            f"{DEFECTS_DOCS})."
        )

    def finish(self) -> None:
        """Called at fixture teardown: an untrustworthy or unreachable run errors here."""
        if self._pending:
            raise UntrustworthyRun("\n".join(self._pending))
