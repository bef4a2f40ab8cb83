"""Clocks for the engine: the real monotonic one and a virtual one for exact tests.

All times are integer nanoseconds on a monotonic scale (``time.perf_counter_ns`` for the
real clock). Deadlines never use the wall clock.
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import Protocol

import anyio
import anyio.lowlevel

__all__ = ["Clock", "RealClock", "VirtualClock"]

_EARLY_NS = 500_000


class Clock(Protocol):
    def now_ns(self) -> int: ...

    async def sleep_until(self, t_ns: int) -> None: ...

    async def sleep(self, duration_ns: int) -> None: ...


class RealClock:
    """``perf_counter_ns`` time and anyio sleeps."""

    now_ns = staticmethod(time.perf_counter_ns)

    async def sleep_until(self, t_ns: int) -> None:
        # event-loop timers have millisecond granularity: uvloop rounds a delay to the
        # nearest millisecond, so it may fire up to 0.5 ms early (and a sub-0.5 ms sleep
        # returns at once). Sleep again only while more than _EARLY_NS remain; re-sleeping
        # for less would spin (a core's worth of wake-ups at a few thousand per second).
        delay = t_ns - time.perf_counter_ns()
        if delay <= 0:
            await anyio.lowlevel.checkpoint()
            return
        while delay > _EARLY_NS:
            await anyio.sleep(delay / 1e9)
            delay = t_ns - time.perf_counter_ns()

    async def sleep(self, duration_ns: int) -> None:
        await self.sleep_until(time.perf_counter_ns() + duration_ns)


class VirtualClock:
    """Discrete-event time for tests: sleeping tasks wake in time order, instantly.

    Time only moves when every task is waiting on the clock: :meth:`run` (started in the
    same task group as the code under test) lets the event loop settle, then jumps to the
    earliest pending wake-up. Code under test must do no real I/O.
    """

    def __init__(self, start_ns: int = 0, *, settle_rounds: int = 20) -> None:
        self._now = start_ns
        self._waiters: list[tuple[int, int, anyio.Event]] = []
        self._seq = itertools.count()
        self._settle = settle_rounds
        self._stopped = False

    def now_ns(self) -> int:
        return self._now

    async def sleep_until(self, t_ns: int) -> None:
        if t_ns <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        heapq.heappush(self._waiters, (t_ns, next(self._seq), event))
        await event.wait()

    async def sleep(self, duration_ns: int) -> None:
        await self.sleep_until(self._now + duration_ns)

    def stop(self) -> None:
        self._stopped = True

    async def run(self) -> None:
        """Advance time until :meth:`stop` is called and no wake-up is pending."""
        while True:
            for _ in range(self._settle):
                await anyio.lowlevel.checkpoint()
            if not self._waiters:
                if self._stopped:
                    return
                await anyio.sleep(0.001)  # let real completions (if any) arrive
                continue
            t, _, event = heapq.heappop(self._waiters)
            self._now = max(self._now, t)
            event.set()
