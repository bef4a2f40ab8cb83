"""The hiccup meter: how late the generator's own event loop runs (the jHiccup idea).

A task sleeps 1 ms again and again and records by how much each sleep overshot, in the
``generator_hiccup`` trend (ns, no tags: it belongs to the process, not a scenario). On an
idle loop that is a few tens of microseconds; a garbage-collection pause, a CPU-bound
iteration or a starved process shows up as a sleep that ended tens or hundreds of
milliseconds late. Every request whose answer arrived during such a stall was timed late
by the same amount, so an interval whose longest hiccup exceeds the health limit
(``HealthLimits.max_hiccup_ns``) measured the generator, not the server.

It runs in every generator process (each ``--certload-tx`` worker has its own) and only on
the real clock: under a virtual clock there is no loop to be late.
"""

from __future__ import annotations

import time

import anyio

from ..metrics import GENERATOR_HICCUP, MetricStore

__all__ = ["PERIOD_NS", "hiccup_meter"]

PERIOD_NS = 1_000_000
"""How long the meter sleeps each time (1 ms)."""


async def hiccup_meter(store: MetricStore, *, period_ns: int = PERIOD_NS) -> None:
    """Record the event loop's oversleep into ``store`` until cancelled."""
    period_s = period_ns / 1e9
    now = time.perf_counter_ns
    add = store.add_trend
    while True:
        before = now()
        await anyio.sleep(period_s)
        late = now() - before - period_ns
        # a loop timer may fire up to half a millisecond early (uvloop rounds to 1 ms)
        add(GENERATOR_HICCUP, late if late > 0 else 0)
