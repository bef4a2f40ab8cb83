"""One scenario while it runs: what both load models share.

:class:`ScenarioRun` owns the scenario's VUs and their clients, its timeline, the call of
the iteration function and the health verdict at the end. The two models subclass it:
:class:`~.open_model.OpenModelRun` dispatches iterations on a schedule,
:class:`~.closed_model.ClosedModelRun` loops VUs.
"""

from __future__ import annotations

import traceback

import anyio
from anyio import CancelScope, get_cancelled_exc_class

from ..metrics import MetricStore, TrendSink, tagset
from .clock import Clock
from .health import HealthLimits, ScenarioHealth
from .options import HTTPOptions, Scenario
from .results import ScenarioResult
from .timeline import Timeline
from .vu import DEFAULT_EXPECTED, VU, ScenarioContext

__all__ = ["ScenarioRun", "VUIds"]


class VUIds:
    """Hands out VU ids unique in the whole run (k6's ``__VU``), from 1."""

    def __init__(self) -> None:
        self.last = 0

    def next(self) -> int:
        self.last += 1
        return self.last


class ScenarioRun:
    """State of one scenario while it runs, whichever model drives it."""

    def __init__(
        self,
        sc: Scenario,
        store: MetricStore,
        clock: Clock,
        http: HTTPOptions,
        vu_ids: VUIds,
        shard: tuple[int, int] | None = None,
    ) -> None:
        self.sc = sc
        self.store = store
        self.clock = clock
        self.shard = shard or (0, 1)
        tags = {"scenario": sc.name, **sc.tags}
        self.timeline = Timeline()
        self.ctx = ScenarioContext(
            name=sc.name,
            tags=tags,
            store=store,
            client_factory=(sc.http or http).factory(),
            open_model=sc.open_model,
            clock=clock,
            timeline=self.timeline,
            expected_statuses=(
                sc.expected_statuses if sc.expected_statuses is not None else DEFAULT_EXPECTED
            ),
        )
        self.tags = tagset(tags)
        self._vu_ids = vu_ids
        self.vus: list[VU] = []
        #: iterations in progress, and those cut off by a stop or an abort
        self.inflight = 0
        self.interrupted = 0
        self.started = False
        self.finished = False
        self.t_start = 0
        self.t_end = 0
        self.scope: CancelScope | None = None

    # -- what the models provide -------------------------------------------------------
    def init_vus(self) -> None:
        """Create the VUs (and their HTTP clients) the executor starts with, before t0."""
        raise NotImplementedError

    async def _drive(self, start: int) -> None:
        """Run the executor from ``start`` until its end (graceful stop included)."""
        raise NotImplementedError

    @property
    def scheduled(self) -> int:
        """Iterations the schedule asked for (open model; 0 in the closed model)."""
        return 0

    @property
    def dropped(self) -> int:
        """Scheduled iterations no VU was free for (open model; 0 in the closed model)."""
        return 0

    # -- shared machinery ---------------------------------------------------------------
    def _share(self, count: int) -> int:
        """This worker's share of ``count`` VUs (at least one)."""
        index, n = self.shard
        return max(1, len(range(index, count, n)))

    def _new_vu(self) -> VU:
        vu = VU(self.ctx, self._vu_ids.next(), len(self.vus) + 1)
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

    async def run(self, t0: int, teardown_ns: int) -> None:
        start = t0 + self.sc.start_time_ns
        try:
            await self.clock.sleep_until(start)
            self.started = True
            self.t_start = self.clock.now_ns()
            self.timeline.begin(self.t_start - t0)
            with CancelScope() as self.scope:
                await self._drive(self.t_start)
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

    async def _call(self, vu: VU) -> None:
        """One call of the iteration function; what it raises is counted, not raised."""
        try:
            await self.sc.exec(vu)
        except get_cancelled_exc_class():
            raise
        except Exception as exc:
            frame = traceback.extract_tb(exc.__traceback__)[-1:] or None
            where = f" at {frame[0].filename}:{frame[0].lineno}" if frame else ""
            self.ctx.note_error(f"{type(exc).__name__}: {exc}{where}")

    def _begin_iteration(self, vu: VU, intended: int, lag: int) -> None:
        vu.current_lag_ns = lag
        vu.intended_start_ns = intended
        self.ctx.iterations_started += 1
        self.timeline.iterations += 1

    def _end_iteration(self, since: int) -> None:
        self.store.add_trend("iteration_duration", self.clock.now_ns() - since, self.tags)
        self.store.add_counter("iterations", 1, self.tags)

    def unreachable(self, now: int, limits: HealthLimits) -> bool:
        """Whether this scenario, by ``now``, finds its target unreachable."""
        return self.started and limits.unreachable(
            answered=self.ctx.http_ok,
            failures=self.ctx.transport_failures,
            elapsed_ns=now - self.t_start,
        )

    # -- verdict -------------------------------------------------------------------------
    def _rates(self, elapsed: int) -> tuple[float | None, float | None]:
        """(target, achieved) iterations per second."""
        return None, (self.ctx.iterations_started * 1e9 / elapsed if elapsed else None)

    def result(self, t0: int, limits: HealthLimits, store: MetricStore) -> ScenarioResult:
        """The scenario's result; ``store`` holds the run's judged samples."""
        sc = self.sc
        elapsed = max(self.t_end - self.t_start, 0)
        lag_sink = store.select("schedule_lag", {"scenario": sc.name})
        lag_p99 = (
            lag_sink.quantile(99) if isinstance(lag_sink, TrendSink) and lag_sink.count else None
        )
        delay_sink = store.select("http_req_generator_delay", {"scenario": sc.name})
        delay_p99 = (
            delay_sink.quantile(99)
            if isinstance(delay_sink, TrendSink) and delay_sink.count
            else None
        )
        target_rate, achieved = self._rates(elapsed)
        unreachable = ""
        if self.ctx.http_ok == 0 and self.ctx.transport_failures:
            unreachable = self.ctx.first_transport_error
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
            delay_p99_ns=delay_p99,
            delay_unmeasured=self.ctx.delay_unmeasured,
            delay_unmeasured_why=self.ctx.delay_unmeasured_why,
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
            request_errors=self.ctx.request_errors,
            warmup_ns=sc.warmup_ns,
        )
