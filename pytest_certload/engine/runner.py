"""The run loop: scenarios, their executors, the ticker, and the result.

Usable without pytest::

    import anyio
    from pytest_certload.engine import Scenario, ConstantArrivalRate, run

    async def hit(vu):
        await vu.http.get("https://127.0.0.1:8443/health", name="/health")

    result = anyio.run(run, [Scenario("health", hit, ConstantArrivalRate(50, "10s"))])
    print(result.ok, result.breaches)
"""

from __future__ import annotations

import datetime as _dt
import re
import traceback
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
from anyio import CancelScope, create_task_group, get_cancelled_exc_class

from ..errors import ConfigError
from ..metrics import MetricStore, MetricType, TrendSink, declare_builtins, tagset
from ..thresholds import Threshold, ThresholdResult, abort_check, evaluate, parse_thresholds
from ..units import as_ns
from .clock import Clock, RealClock
from .executors import (
    ConstantArrivalRate,
    ConstantVUs,
    Executor,
    RampingArrivalRate,
    RampingVUs,
    arrival_offsets_ns,
    vu_steps,
)
from .health import HealthLimits, ScenarioHealth
from .timeline import Timeline, TimelineRow
from .vu import DEFAULT_EXPECTED, VU, ScenarioContext

if TYPE_CHECKING:
    from ..http import Client

__all__ = [
    "HTTPOptions",
    "Progress",
    "RunOptions",
    "RunResult",
    "Scenario",
    "ScenarioResult",
    "run",
    "run_sync",
]

IterationFn = Callable[[VU], Awaitable[None]]
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_METRIC_KINDS = {
    "trend": (MetricType.TREND, False),
    "time": (MetricType.TREND, True),
    "counter": (MetricType.COUNTER, False),
    "rate": (MetricType.RATE, False),
    "gauge": (MetricType.GAUGE, False),
}


@dataclass(frozen=True)
class HTTPOptions:
    """How VUs talk HTTP: backend, TLS verification, HTTP/2, connection reuse, timeout."""

    backend: str = "fast"
    verify: bool | str = True
    http2: bool = False
    fresh_connection: bool = False
    timeout: str | int = "60s"

    def factory(self) -> Callable[[], Client]:
        """A function making one client per VU (TLS contexts follow :mod:`..http.tls`)."""
        from ..http import make_client

        return partial(
            make_client,
            self.backend,
            verify=self.verify,
            http2=self.http2,
            fresh_connection=self.fresh_connection,
            timeout_ns=as_ns(self.timeout, "HTTP timeout"),
        )


@dataclass(frozen=True)
class Scenario:
    """A k6 scenario: an async iteration function driven by an executor.

    ``metrics`` declares custom metrics the iteration records, name -> kind, where kind is
    ``time`` (a Trend of nanosecond durations), ``trend``, ``counter``, ``rate`` or
    ``gauge``. ``http`` overrides the run's HTTP options for this scenario (e.g.
    ``fresh_connection=True`` for handshake probes). ``expected_statuses`` are the
    statuses that do not count as failed requests (default 200-399).
    """

    name: str
    exec: IterationFn
    executor: Executor
    start_time: str | int = 0
    graceful_stop: str | int = "30s"
    tags: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, str] = field(default_factory=dict)
    http: HTTPOptions | None = None
    expected_statuses: Collection[int] | None = None

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ConfigError(
                f"{self.name!r} is not a valid scenario name; use letters, digits, '_', '-' "
                "or '.', e.g. 'issuance_acceptance'."
            )
        if not callable(self.exec):
            raise ConfigError(f"exec of scenario {self.name!r} is {self.exec!r}, not a function.")
        as_ns(self.start_time, f"start_time of scenario {self.name!r}", allow_zero=True)
        as_ns(self.graceful_stop, f"graceful_stop of scenario {self.name!r}", allow_zero=True)
        for metric, kind in self.metrics.items():
            if kind not in _METRIC_KINDS:
                raise ConfigError(
                    f"{kind!r} is not a metric kind (custom metric {metric!r} of scenario "
                    f"{self.name!r}); use one of {', '.join(_METRIC_KINDS)}."
                )

    @property
    def start_time_ns(self) -> int:
        return as_ns(self.start_time, "start_time", allow_zero=True)

    @property
    def graceful_stop_ns(self) -> int:
        return as_ns(self.graceful_stop, "graceful_stop", allow_zero=True)

    @property
    def open_model(self) -> bool:
        return isinstance(self.executor, ConstantArrivalRate | RampingArrivalRate)

    def with_duration(self, duration_ns: int) -> Scenario:
        """The same scenario with its executor's duration replaced (stages scaled)."""
        return replace(self, executor=self.executor.with_duration(duration_ns))


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


@dataclass(frozen=True)
class RunOptions:
    """Everything about a run that is not a scenario or a threshold."""

    http: HTTPOptions = field(default_factory=HTTPOptions)
    health: HealthLimits = field(default_factory=HealthLimits)
    min_tail_samples: int = 1
    interval: str | int = "1s"
    teardown_timeout: str | int = "5s"
    progress: Callable[[Progress], None] | None = None
    progress_every: str | int = "10s"
    uvloop: bool = True
    #: ``(index, count)``: run only this worker's share of every scenario (multi-process
    #: runs): open-model iteration k when ``k % count == index``, closed-model VU i when
    #: ``i % count == index``, and a matching share of ``pre_allocated_vus``/``max_vus``
    shard: tuple[int, int] | None = None


@dataclass
class ScenarioResult:
    name: str
    executor: dict[str, Any]
    tags: dict[str, str]
    start_offset_ns: int
    elapsed_ns: int
    health: ScenarioHealth
    timeline: list[TimelineRow]
    error_samples: dict[str, int]
    folded_names: int = 0

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
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScenarioResult:
        return cls(
            d["name"],
            dict(d["executor"]),
            dict(d["tags"]),
            d["start_offset_ns"],
            d["elapsed_ns"],
            ScenarioHealth.from_dict(d["health"]),
            [TimelineRow.from_dict(r) for r in d["timeline"]],
            dict(d["error_samples"]),
            d.get("folded_names", 0),
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

    @property
    def trustworthy(self) -> bool:
        return not self.untrustworthy and not self.unreachable

    @property
    def ok(self) -> bool:
        return self.trustworthy and not self.breaches and not self.aborted

    def to_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "duration_ns": self.duration_ns,
            "aborted": self.aborted,
            "health_limits": self.health_limits.to_dict(),
            "scenarios": {k: v.to_dict() for k, v in self.scenarios.items()},
            "metrics": self.store.to_dict(),
        }


class _ScenarioRun:
    """State of one scenario while it runs."""

    def __init__(
        self,
        sc: Scenario,
        store: MetricStore,
        clock: Clock,
        http: HTTPOptions,
        vu_ids: list[int],
        shard: tuple[int, int] | None = None,
    ) -> None:
        self.sc = sc
        self.clock = clock
        self.shard = shard or (0, 1)
        tags = {"scenario": sc.name, **sc.tags}
        self.ctx = ScenarioContext(
            name=sc.name,
            tags=tags,
            store=store,
            client_factory=(sc.http or http).factory(),
            open_model=sc.open_model,
            clock=clock,
            expected_statuses=(
                sc.expected_statuses if sc.expected_statuses is not None else DEFAULT_EXPECTED
            ),
        )
        self.timeline = Timeline()
        self.ctx.timeline = self.timeline
        self.tags = tagset(tags)
        self.store = store
        self._vu_ids = vu_ids
        self.vus: list[VU] = []
        self.idle: list[VU] = []
        self.scheduled = 0
        self.dropped = 0
        self.inflight = 0
        self.interrupted = 0
        self.started = False
        self.finished = False
        self.t_start = 0
        self.t_end = 0
        self.active_vus = 0
        self._drained: anyio.Event | None = None
        self._dispatch_done = False
        self.scope: CancelScope | None = None
        self.target = 0
        self._running: set[int] = set()
        self._vu_scopes: dict[int, CancelScope] = {}
        self._closed_vus: dict[int, VU] = {}

    # -- VUs -----------------------------------------------------------------
    def _share(self, count: int) -> int:
        """This worker's share of ``count`` VUs (at least one)."""
        index, n = self.shard
        return max(1, len(range(index, count, n)))

    def init_vus(self) -> None:
        """Create the VUs (and their HTTP clients) the executor starts with, before t0."""
        ex = self.sc.executor
        if isinstance(ex, ConstantArrivalRate | RampingArrivalRate):
            for _ in range(self._share(ex.pre_allocated_vus)):
                vu = self._new_vu()
                vu.http.client  # noqa: B018 - creates the client now, not at first use
                self.idle.append(vu)
            return
        index, n = self.shard
        for i in range(index, ex.vus_limit, n):
            self._closed_vu(i).http.client  # noqa: B018

    def _closed_vu(self, index: int) -> VU:
        vu = self._closed_vus.get(index)
        if vu is None:
            vu = self._closed_vus[index] = self._new_vu()
        return vu

    def _new_vu(self) -> VU:
        self._vu_ids[0] += 1
        vu = VU(self.ctx, self._vu_ids[0], len(self.vus) + 1)
        self.vus.append(vu)
        self.store.set_gauge("vus_max", len(self.vus), self.tags)
        return vu

    async def close_clients(self, timeout_ns: int) -> None:
        with anyio.move_on_after(timeout_ns / 1e9, shield=True):
            for vu in self.vus:
                try:
                    await vu.http.aclose()
                except Exception:
                    continue

    # -- running ---------------------------------------------------------------
    async def run(self, t0: int, teardown_ns: int) -> None:
        sc = self.sc
        start = t0 + sc.start_time_ns
        try:
            await self.clock.sleep_until(start)
            self.started = True
            self.t_start = self.clock.now_ns()
            self.timeline.begin(self.t_start - t0)
            with CancelScope() as self.scope:
                if isinstance(sc.executor, ConstantArrivalRate | RampingArrivalRate):
                    await self._open(sc.executor, self.t_start)
                else:
                    await self._closed(sc.executor, self.t_start)
        finally:
            self.t_end = self.clock.now_ns()
            self.finished = True
            if self.started:
                self.timeline.close_interval(self.t_end - t0)
            await self.close_clients(teardown_ns)

    def abort(self) -> None:
        if self.scope is not None:
            self.interrupted += self.inflight
            self.scope.cancel()

    async def _stopper(self, scope: CancelScope, stop_at: int) -> None:
        await self.clock.sleep_until(stop_at)
        self.interrupted += self.inflight
        scope.cancel()

    async def _open(self, ex: ConstantArrivalRate | RampingArrivalRate, start: int) -> None:
        """Dispatch iterations on schedule to idle VUs.

        Each VU is a long-lived worker task waiting for its next assignment, so an
        iteration costs an event wake-up rather than a task spawn.
        """
        sc = self.sc
        stop_at = start + ex.duration_ns + sc.graceful_stop_ns
        limit = self._share(ex.vus_limit)
        index, n = self.shard
        self._drained = anyio.Event()
        clock = self.clock
        idle = [_Slot(vu) for vu in self.idle]
        self.idle.clear()
        with CancelScope() as scope:
            async with create_task_group() as tg:
                tg.start_soon(self._stopper, scope, stop_at)
                for slot in idle:
                    tg.start_soon(self._worker, slot, idle)
                for k, offset in enumerate(arrival_offsets_ns(ex)):
                    if n > 1 and k % n != index:
                        continue
                    intended = start + offset
                    await clock.sleep_until(intended)
                    self.scheduled += 1
                    self.timeline.scheduled += 1
                    if idle:
                        slot = idle.pop()
                    elif len(self.vus) < limit:
                        slot = _Slot(self._new_vu())
                        tg.start_soon(self._worker, slot, idle)
                    else:
                        self.dropped += 1
                        self.timeline.dropped += 1
                        self.store.add_counter("dropped_iterations", 1, self.tags)
                        continue
                    self.inflight += 1
                    slot.intended = intended
                    slot.wake.set()
                self._dispatch_done = True
                if self.inflight == 0:
                    self._drained.set()
                await self._drained.wait()
                scope.cancel()

    async def _worker(self, slot: _Slot, idle: list[_Slot]) -> None:
        while True:
            await slot.wake.wait()
            slot.wake = anyio.Event()
            try:
                await self._open_iteration(slot.vu, slot.intended)
            finally:
                idle.append(slot)
                if self._dispatch_done and self.inflight == 0 and self._drained is not None:
                    self._drained.set()

    async def _open_iteration(self, vu: VU, intended: int) -> None:
        clock = self.clock
        actual = clock.now_ns()
        lag = actual - intended if actual > intended else 0
        vu.current_lag_ns = lag
        vu.intended_start_ns = intended
        self.store.add_trend("schedule_lag", lag, self.tags)
        self.ctx.iterations_started += 1
        self.timeline.iterations += 1
        try:
            await self._call(vu)
            # a timer may fire up to _EARLY_NS early: measure from whichever came first
            self.store.add_trend(
                "iteration_duration", clock.now_ns() - min(intended, actual), self.tags
            )
            self.store.add_counter("iterations", 1, self.tags)
        finally:
            self.inflight -= 1
            vu.iteration += 1

    async def _call(self, vu: VU) -> None:
        try:
            await self.sc.exec(vu)
        except get_cancelled_exc_class():
            raise
        except Exception as exc:
            frame = traceback.extract_tb(exc.__traceback__)[-1:] or None
            where = f" at {frame[0].filename}:{frame[0].lineno}" if frame else ""
            self.ctx.note_error(f"{type(exc).__name__}: {exc}{where}")

    async def _closed(self, ex: ConstantVUs | RampingVUs, start: int) -> None:
        sc = self.sc
        steps = vu_steps(ex)
        stop_at = start + ex.duration_ns + sc.graceful_stop_ns
        ramp_down_ns = ex.graceful_ramp_down_ns if isinstance(ex, RampingVUs) else 0
        mine, n = self.shard
        self._drained = anyio.Event()
        with CancelScope() as scope:
            async with create_task_group() as tg:
                tg.start_soon(self._stopper, scope, stop_at)
                for step in steps[:-1]:
                    await self.clock.sleep_until(start + step.at_ns)
                    previous, self.target = self.target, step.vus
                    self.store.set_gauge("vus", step.vus, self.tags)
                    self.timeline.vus = step.vus
                    for index in range(step.vus):
                        if index % n != mine:
                            continue
                        if index not in self._running:
                            self._running.add(index)
                            tg.start_soon(self._vu_loop, index)
                    for index in range(step.vus, previous):
                        if index % n == mine:
                            tg.start_soon(self._cancel_later, index, ramp_down_ns)
                await self.clock.sleep_until(start + steps[-1].at_ns)
                self.target = 0
                self.store.set_gauge("vus", 0, self.tags)
                self._dispatch_done = True
                if not self._running:
                    self._drained.set()
                await self._drained.wait()
                scope.cancel()

    async def _cancel_later(self, index: int, after_ns: int) -> None:
        scope = self._vu_scopes.get(index)
        await self.clock.sleep(after_ns)
        still_running = index in self._running and self._vu_scopes.get(index) is scope
        if still_running and scope is not None and self.target <= index:
            scope.cancel()

    async def _vu_loop(self, index: int) -> None:
        vu = self._closed_vu(index)
        clock = self.clock
        try:
            with CancelScope() as scope:
                self._vu_scopes[index] = scope
                while self.target > index:
                    t = clock.now_ns()
                    vu.current_lag_ns = 0
                    vu.intended_start_ns = t
                    self.inflight += 1
                    self.ctx.iterations_started += 1
                    self.timeline.iterations += 1
                    try:
                        await self._call(vu)
                    finally:
                        self.inflight -= 1
                    self.store.add_trend("iteration_duration", clock.now_ns() - t, self.tags)
                    self.store.add_counter("iterations", 1, self.tags)
                    vu.iteration += 1
                    await anyio.lowlevel.checkpoint()
            if scope.cancelled_caught:
                self.interrupted += 1
        finally:
            self._running.discard(index)
            self._vu_scopes.pop(index, None)
            if self._dispatch_done and not self._running and self._drained is not None:
                self._drained.set()

    # -- verdict -----------------------------------------------------------------
    def result(self, t0: int, limits: HealthLimits) -> ScenarioResult:
        sc = self.sc
        elapsed = max(self.t_end - self.t_start, 0)
        lag_sink = self.store.select("schedule_lag", {"scenario": sc.name})
        lag_p99 = (
            lag_sink.quantile(99) if isinstance(lag_sink, TrendSink) and lag_sink.count else None
        )
        target_rate: float | None = None
        achieved: float | None = None
        if sc.open_model:
            ex = sc.executor
            assert isinstance(ex, ConstantArrivalRate | RampingArrivalRate)
            target_rate = ex.target_rate_per_s / self.shard[1]
            span = ex.duration_ns
            achieved = self.ctx.iterations_started * 1e9 / span if span else None
        elif elapsed:
            achieved = self.ctx.iterations_started * 1e9 / elapsed
        unreachable = ""
        if self.ctx.http_ok == 0 and self.ctx.connect_errors:
            unreachable = self.ctx.first_connect_error
        health = ScenarioHealth(
            scenario=sc.name,
            open_model=sc.open_model,
            scheduled=self.scheduled,
            started=self.ctx.iterations_started,
            dropped=self.dropped,
            interrupted=self.interrupted,
            lag_p99_ns=lag_p99,
            iteration_errors=self.ctx.iteration_errors,
            target_rate=target_rate,
            achieved_rate=achieved,
            unreachable=unreachable,
        )
        health.judge(limits)
        return ScenarioResult(
            name=sc.name,
            executor=sc.executor.describe(),
            tags=dict(self.ctx.tags),
            start_offset_ns=self.t_start - t0 if self.started else sc.start_time_ns,
            elapsed_ns=elapsed,
            health=health,
            timeline=list(self.timeline.rows),
            error_samples=dict(self.ctx.error_samples),
            folded_names=self.ctx.folded_names,
        )


class _Slot:
    """An open-model VU's worker mailbox: the next intended start and a wake-up."""

    __slots__ = ("intended", "vu", "wake")

    def __init__(self, vu: VU) -> None:
        self.vu = vu
        self.intended = 0
        self.wake = anyio.Event()


def _normalise_thresholds(
    thresholds: Sequence[Threshold] | Mapping[str, Any] | None, source: str
) -> list[Threshold]:
    if thresholds is None:
        return []
    if isinstance(thresholds, Mapping):
        return parse_thresholds(thresholds, source=source)
    return list(thresholds)


async def run(
    scenarios: Sequence[Scenario],
    *,
    thresholds: Sequence[Threshold] | Mapping[str, Any] | None = None,
    options: RunOptions | None = None,
    clock: Clock | None = None,
    threshold_source: str = "run()",
) -> RunResult:
    """Run ``scenarios`` concurrently and judge ``thresholds`` on what they measured.

    Never raises because of the server: failures are data in the result. The run ends at
    the latest scenario's ``start_time + duration + graceful_stop`` even if the server
    hangs; clients are closed within ``teardown_timeout``.
    """
    options = options or RunOptions()
    clock = clock or RealClock()
    if not scenarios:
        raise ConfigError("run() needs at least one scenario.")
    names = [sc.name for sc in scenarios]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"scenario names must be unique; repeated: {', '.join(dupes)}.")
    parsed = _normalise_thresholds(thresholds, threshold_source)
    store = MetricStore()
    declare_builtins(store)
    for sc in scenarios:
        for metric, kind in sc.metrics.items():
            mtype, is_time = _METRIC_KINDS[kind]
            store.declare(metric, mtype, time=is_time)
    interval = as_ns(options.interval, "timeline interval")
    progress_every = as_ns(options.progress_every, "progress interval")
    teardown = as_ns(options.teardown_timeout, "teardown timeout", allow_zero=True)
    vu_ids = [0]
    runs = [_ScenarioRun(sc, store, clock, options.http, vu_ids, options.shard) for sc in scenarios]
    total_ns = max(
        sc.start_time_ns + sc.executor.duration_ns + sc.graceful_stop_ns for sc in scenarios
    )
    planned_ns = max(sc.start_time_ns + sc.executor.duration_ns for sc in scenarios)
    abortable = [t for t in parsed if t.abort_on_fail]
    started_at = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    aborted = ""
    for r in runs:
        r.init_vus()
    t0 = clock.now_ns()

    def abort_all(reason: str) -> None:
        nonlocal aborted
        if not aborted:
            aborted = reason
        for r in runs:
            r.abort()

    async def ticker() -> None:
        next_tick = t0 + interval
        next_progress = t0 + progress_every
        last_iterations = 0
        last_progress_t = t0
        while True:
            await clock.sleep_until(next_tick)
            now = next_tick
            for r in runs:
                if r.started and not r.finished:
                    r.timeline.close_interval(now - t0)
            elapsed = now - t0
            for r in runs:
                if (
                    r.started
                    and r.ctx.http_ok == 0
                    and r.ctx.connect_errors >= 10
                    and now - r.t_start >= 2_000_000_000
                ):
                    abort_all(f"unreachable: {r.ctx.first_connect_error}")
            if abortable:
                for res in abort_check(
                    abortable, store, elapsed_ns=elapsed, min_tail_samples=options.min_tail_samples
                ):
                    abort_all(f"abortOnFail threshold breached: {res.message()}")
            if options.progress is not None and now >= next_progress:
                its = sum(r.ctx.iterations_started for r in runs)
                span = max(now - last_progress_t, 1)
                options.progress(
                    Progress(
                        elapsed_ns=elapsed,
                        total_ns=planned_ns,
                        iterations=its,
                        rate_per_s=(its - last_iterations) * 1e9 / span,
                        requests=_count(store, "http_reqs"),
                        failed=_failed_requests(store),
                        dropped=sum(r.dropped for r in runs),
                        vus=sum(len(r.vus) for r in runs),
                    )
                )
                last_iterations, last_progress_t = its, now
                next_progress += progress_every
            next_tick += interval

    hard_limit_s = (total_ns + 2 * teardown) / 1e9 + 10
    with anyio.move_on_after(hard_limit_s) as watchdog:
        async with create_task_group() as outer:
            outer.start_soon(ticker)
            async with create_task_group() as inner:
                for r in runs:
                    inner.start_soon(r.run, t0, teardown)
            outer.cancel_scope.cancel()
    if watchdog.cancelled_caught and not aborted:
        aborted = f"hard deadline of {hard_limit_s:.0f} s reached; in-flight work abandoned"
    duration_ns = clock.now_ns() - t0
    results = {r.sc.name: r.result(t0, options.health) for r in runs}
    judged = evaluate(
        parsed, store, min_tail_samples=options.min_tail_samples, duration_ns=duration_ns
    )
    return RunResult(
        store=store,
        scenarios=results,
        thresholds=judged,
        started_at=started_at,
        duration_ns=duration_ns,
        health_limits=options.health,
        aborted=aborted,
    )


def _count(store: MetricStore, name: str) -> int:
    sink = store.select(name, {})
    return int(getattr(sink, "count", 0)) if sink is not None else 0


def _failed_requests(store: MetricStore) -> int:
    sink = store.select("http_req_failed", {})
    return int(getattr(sink, "trues", 0)) if sink is not None else 0


def run_sync(
    scenarios: Sequence[Scenario],
    *,
    thresholds: Sequence[Threshold] | Mapping[str, Any] | None = None,
    options: RunOptions | None = None,
    threshold_source: str = "run_sync()",
    clock: Clock | None = None,
) -> RunResult:
    """:func:`run` in a fresh event loop (uvloop when installed and enabled)."""
    options = options or RunOptions()
    use_uvloop = False
    if options.uvloop:
        try:
            import uvloop  # noqa: F401

            use_uvloop = True
        except ImportError:
            use_uvloop = False
    return anyio.run(
        partial(
            run,
            scenarios,
            thresholds=thresholds,
            options=options,
            clock=clock,
            threshold_source=threshold_source,
        ),
        backend="asyncio",
        backend_options={"use_uvloop": use_uvloop},
    )
