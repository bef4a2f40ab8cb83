"""The open model (``constant-arrival-rate``, ``ramping-arrival-rate``): iterations are
dispatched on a schedule, whether or not earlier ones finished.

Each VU is a long-lived worker task waiting for its next assignment, so an iteration
costs an event wake-up rather than a task spawn. Latency is measured from the intended
start: the schedule lag of every iteration is recorded and carried into its requests.
"""

from __future__ import annotations

import anyio
from anyio import CancelScope, create_task_group

from .executors import ConstantArrivalRate, RampingArrivalRate, arrival_offsets_ns
from .scenario_run import ScenarioRun
from .vu import VU

__all__ = ["OpenModelRun"]


class _Slot:
    """An open-model VU's worker mailbox: the next intended start and a wake-up."""

    __slots__ = ("intended", "vu", "wake")

    def __init__(self, vu: VU) -> None:
        self.vu = vu
        self.intended = 0
        self.wake = anyio.Event()


class OpenModelRun(ScenarioRun):
    """One arrival-rate scenario while it runs."""

    executor: ConstantArrivalRate | RampingArrivalRate

    def init_vus(self) -> None:
        ex = self.sc.executor
        assert isinstance(ex, ConstantArrivalRate | RampingArrivalRate)
        self.executor = ex
        self._scheduled = 0
        self._dropped = 0
        self._idle: list[_Slot] = []
        self._dispatch_done = False
        self._drained = anyio.Event()
        for _ in range(self._share(ex.pre_allocated_vus)):
            vu = self._new_vu()
            vu.http.client  # noqa: B018 - creates the client now, not at first use
            self._idle.append(_Slot(vu))

    @property
    def scheduled(self) -> int:
        return self._scheduled

    @property
    def dropped(self) -> int:
        return self._dropped

    async def _drive(self, start: int) -> None:
        ex = self.executor
        stop_at = start + ex.duration_ns + self.sc.graceful_stop_ns
        limit = self._share(ex.vus_limit)
        index, n = self.shard
        clock = self.clock
        idle = self._idle
        with CancelScope() as scope:
            async with create_task_group() as tg:
                tg.start_soon(self._stopper, scope, stop_at)
                for slot in list(idle):
                    tg.start_soon(self._worker, slot)
                for k, offset in enumerate(arrival_offsets_ns(ex)):
                    if n > 1 and k % n != index:
                        continue
                    intended = start + offset
                    await clock.sleep_until(intended)
                    self._scheduled += 1
                    self.timeline.scheduled += 1
                    if idle:
                        slot = idle.pop()
                    elif len(self.vus) < limit:
                        slot = _Slot(self._new_vu())
                        tg.start_soon(self._worker, slot)
                    else:
                        self._dropped += 1
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

    async def _worker(self, slot: _Slot) -> None:
        while True:
            await slot.wake.wait()
            slot.wake = anyio.Event()
            try:
                await self._iteration(slot.vu, slot.intended)
            finally:
                self._idle.append(slot)
                if self._dispatch_done and self.inflight == 0:
                    self._drained.set()

    async def _iteration(self, vu: VU, intended: int) -> None:
        actual = self.clock.now_ns()
        lag = actual - intended if actual > intended else 0
        self._begin_iteration(vu, intended, lag)
        self.store.add_trend("schedule_lag", lag, self.tags)
        try:
            await self._call(vu)
            # a timer may fire up to _EARLY_NS early: measure from whichever came first
            self._end_iteration(min(intended, actual))
        finally:
            self.inflight -= 1
            vu.iteration += 1

    def _rates(self, elapsed: int) -> tuple[float | None, float | None]:
        ex = self.executor
        target = ex.target_rate_per_s / self.shard[1]
        span = ex.duration_ns
        return target, (self.ctx.iterations_started * 1e9 / span if span else None)
