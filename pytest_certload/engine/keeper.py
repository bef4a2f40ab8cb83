"""Interval by interval: cut the live store, keep each interval, fold it into the run.

VUs record into one live :class:`~..metrics.MetricStore`. Once per timeline interval the
run loop calls :meth:`IntervalKeeper.cut`, which only rotates that store (a few dict
swaps) and queues what it held. A task of its own, :meth:`IntervalKeeper.run`, then
serialises the interval (HDR histograms encoded, for windows and the HDR log) and merges
it into the run's judged store, or into the warm-up store for a scenario still in its
warm-up, one metric at a time with a checkpoint in between. That work is a few
milliseconds per hundred series; done in one go at the tick it would stall the event loop
(and every VU's timing) once a second, so it is spread out, and each metric is folded
whole (shielded from cancellation), so nothing is half-merged when the run stops.
:meth:`drain` folds whatever is still queued once the run has ended.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.lowlevel
from anyio import CancelScope

from ..intervals import Interval
from ..metrics import FORMAT_VERSION, MetricStore, MetricType, TagSet

__all__ = ["IntervalKeeper"]


class IntervalKeeper:
    """The run's intervals, its judged store and its warm-up store, kept up to date."""

    def __init__(
        self,
        live: MetricStore,
        store: MetricStore,
        warm: MetricStore,
        warming_until: Mapping[str, int],
        *,
        spread: bool,
        on_interval: Callable[[Interval], None] | None = None,
    ) -> None:
        """``warming_until`` maps a scenario with a warm-up to its first interval after it;
        ``spread`` checkpoints between metrics (a real clock); ``on_interval`` is called
        with each interval once it is folded in."""
        self.live = live
        self.store = store
        self.warm = warm
        self.warming_until = dict(warming_until)
        self.intervals: list[Interval] = []
        self._spread = spread
        self._on_interval = on_interval
        self._queue: deque[tuple[Interval, MetricStore]] = deque()
        #: the interval being folded, and the metrics of it not folded yet
        self._current: tuple[Interval, MetricStore, list[str]] | None = None
        self._wake = anyio.Event()
        self._cut_from = 0
        self._cuts = 0  # intervals cut so far: the next one's index

    def cut(self, end_ns: int) -> None:
        """Close the current interval at ``end_ns`` (offset from the run start)."""
        iv = Interval(self._cuts, self._cut_from, end_ns, [])
        self._cuts += 1
        self._cut_from = end_ns
        self._queue.append((iv, self.live.rotate()))
        self._wake.set()

    async def run(self) -> None:
        """Fold queued intervals in as they come, until cancelled (what a cancellation
        leaves half-folded, :meth:`drain` finishes)."""
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            while self._queue:
                iv, closed, names = self._next()
                while names:
                    with CancelScope(shield=True):
                        self._fold(iv, closed, names[0])
                        names.pop(0)
                    if self._spread:
                        await anyio.lowlevel.checkpoint()
                self._current = None
                self._done(iv)

    def drain(self) -> None:
        """Fold in, at once, the interval being folded and every one still queued (after
        the run: ``on_interval`` is not called, there is no run left to act on)."""
        while self._current is not None or self._queue:
            iv, closed, names = self._current or self._next()
            while names:
                self._fold(iv, closed, names.pop(0))
            self._current = None
            self.intervals.append(iv)

    def _next(self) -> tuple[Interval, MetricStore, list[str]]:
        iv, closed = self._queue.popleft()
        iv.parts.append(_empty_part())
        self._current = (iv, closed, closed.names())
        return self._current

    def _done(self, iv: Interval) -> None:
        self.intervals.append(iv)
        if self._on_interval is not None:
            self._on_interval(iv)

    def _fold(self, iv: Interval, closed: MetricStore, name: str) -> None:
        iv.add_metric(closed, name)
        warming = {s for s, first in self.warming_until.items() if iv.index < first}
        if not warming or closed.type_of(name) is MetricType.GAUGE:
            # a gauge is state, not a sample: it stays with the run
            self.store.merge(closed, only=lambda n, _tags: n == name)
            return

        def warming_series(n: str, tags: TagSet) -> bool:
            return n == name and dict(tags).get("scenario") in warming

        self.store.merge(closed, only=lambda n, tags: n == name and not warming_series(n, tags))
        self.warm.merge(closed, only=warming_series)


def _empty_part() -> dict[str, Any]:
    return {"format": FORMAT_VERSION, "metrics": {}}
