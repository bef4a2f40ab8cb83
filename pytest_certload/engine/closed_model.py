"""The closed model (``constant-vus``, ``ramping-vus``): VUs loop over the iteration
function; the next iteration starts when the previous one ends.

The VU count follows the executor's steps; a VU above the target finishes its iteration
(within ``graceful_ramp_down``) and stops.
"""

from __future__ import annotations

import anyio
from anyio import CancelScope, create_task_group

from .executors import ConstantVUs, RampingVUs, vu_steps
from .scenario_run import ScenarioRun
from .vu import VU

__all__ = ["ClosedModelRun"]


class ClosedModelRun(ScenarioRun):
    """One VU-driven scenario while it runs."""

    executor: ConstantVUs | RampingVUs

    def init_vus(self) -> None:
        ex = self.sc.executor
        assert isinstance(ex, ConstantVUs | RampingVUs)
        self.executor = ex
        #: how many VUs should be running now (VU ``i`` runs while ``i < target``)
        self.target = 0
        self._running: set[int] = set()
        self._scopes: dict[int, CancelScope] = {}
        self._by_index: dict[int, VU] = {}
        self._dispatch_done = False
        self._drained = anyio.Event()
        index, n = self.shard
        for i in range(index, ex.vus_limit, n):
            self._vu(i).http.client  # noqa: B018 - creates the client now, not at first use

    def _vu(self, index: int) -> VU:
        vu = self._by_index.get(index)
        if vu is None:
            vu = self._by_index[index] = self._new_vu()
        return vu

    async def _drive(self, start: int) -> None:
        ex = self.executor
        steps = vu_steps(ex)
        stop_at = start + ex.duration_ns + self.sc.graceful_stop_ns
        ramp_down_ns = ex.graceful_ramp_down_ns if isinstance(ex, RampingVUs) else 0
        spread = ex.start_spread_ns
        mine, n = self.shard
        with CancelScope() as scope:
            async with create_task_group() as tg:
                tg.start_soon(self._stopper, scope, stop_at)
                for step in steps[:-1]:
                    await self.clock.sleep_until(start + step.at_ns)
                    previous, self.target = self.target, step.vus
                    self.store.set_gauge("vus", step.vus, self.tags)
                    self.timeline.vus = step.vus
                    # VUs joining together start their first iterations spread evenly
                    # over start_spread (by their index in the whole run, so the workers
                    # of a distributed run interleave); 0: all at once, as k6
                    joining = step.vus - previous
                    for index in range(step.vus):
                        if index % n == mine and index not in self._running:
                            self._running.add(index)
                            offset = 0
                            if spread and joining > 1 and index >= previous:
                                offset = spread * (index - previous) // joining
                            tg.start_soon(self._loop, index, start + step.at_ns + offset)
                    for index in range(step.vus, previous):
                        if index % n == mine:
                            tg.start_soon(self._stop_later, index, ramp_down_ns)
                await self.clock.sleep_until(start + steps[-1].at_ns)
                self.target = 0
                self.store.set_gauge("vus", 0, self.tags)
                self._dispatch_done = True
                if not self._running:
                    self._drained.set()
                await self._drained.wait()
                scope.cancel()

    async def _stop_later(self, index: int, after_ns: int) -> None:
        """Cancel VU ``index`` if it is still above the target ``after_ns`` from now."""
        scope = self._scopes.get(index)
        await self.clock.sleep(after_ns)
        still_running = index in self._running and self._scopes.get(index) is scope
        if still_running and scope is not None and self.target <= index:
            scope.cancel()

    async def _loop(self, index: int, first_at: int) -> None:
        """VU ``index`` loops from ``first_at`` while the target counts it in."""
        vu = self._vu(index)
        clock = self.clock
        looping = False
        try:
            with CancelScope() as scope:
                self._scopes[index] = scope
                if first_at > clock.now_ns():
                    await clock.sleep_until(first_at)
                looping = True
                while self.target > index:
                    t = clock.now_ns()
                    self._begin_iteration(vu, t, 0)
                    self.inflight += 1
                    try:
                        await self._call(vu)
                    finally:
                        self.inflight -= 1
                    self._end_iteration(t)
                    vu.iteration += 1
                    await anyio.lowlevel.checkpoint()
            if scope.cancelled_caught and looping:
                self.interrupted += 1
        finally:
            self._running.discard(index)
            self._scopes.pop(index, None)
            if self._dispatch_done and not self._running:
                self._drained.set()
