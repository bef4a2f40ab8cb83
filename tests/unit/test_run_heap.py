"""A run keeps the heap it started with out of the garbage collector's sight until it
ends (``gc.freeze``): a full collection of a pytest session's objects took 50-70 ms on
the reference machine, long enough to stall the event loop past the hiccup limit."""

from __future__ import annotations

import gc

from pytest_certload.engine import VU, ConstantVUs, RunOptions, Scenario, run_sync


def test_a_real_clock_run_freezes_the_heap_it_starts_with_and_unfreezes_it() -> None:
    seen: list[int] = []

    async def look(vu: VU) -> None:
        seen.append(gc.get_freeze_count())
        await vu.sleep(0.05)

    assert gc.get_freeze_count() == 0
    run_sync(
        [Scenario("heap", look, ConstantVUs(1, "150ms"), graceful_stop="1s")],
        options=RunOptions(hiccups=False),
    )
    assert seen
    assert min(seen) > 0, "the heap was not frozen during the run"
    assert gc.get_freeze_count() == 0, "the heap stayed frozen after the run"
