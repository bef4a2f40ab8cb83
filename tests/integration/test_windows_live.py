"""Verdicts over time against the controlled-latency server: a server stall fails a
windowed threshold and names its window while the whole-run figure passes; a stall of the
generator itself is seen by the hiccup meter and makes the verdict untrustworthy.

Bounds are generous: the machine is shared. What is asserted is where things land (which
window), not how fast anything was.
"""

from __future__ import annotations

import time

from pytest_certload.engine import (
    VU,
    ConstantArrivalRate,
    HTTPOptions,
    RunOptions,
    Scenario,
    run_sync,
)
from pytest_certload.engine.health import HealthLimits
from pytest_certload.metrics import GENERATOR_HICCUP, TrendSink
from tests.support.servers import latency_server

S = 1_000_000_000
MS = 1_000_000
OPTIONS = RunOptions(
    health=HealthLimits(max_lag_p99_ns=2 * S, max_delay_p99_ns=2 * S),
    http=HTTPOptions(backend="fast"),
)


def test_a_server_stall_fails_its_window_while_the_whole_run_passes() -> None:
    with latency_server(delay_ms=5) as srv:

        async def hit(vu: VU) -> None:
            await vu.http.get(srv.url + "/x", name="/x")

        async def stall(vu: VU) -> None:
            await vu.http.post(srv.url + "/_control/stall?seconds=2", name="stall")

        # 40 s at 20/s: the ~30 requests the 2 s stall holds beyond 500 ms are under 5 %
        # of the run, so the whole-run p95 passes; in the window they land in they are most
        result = run_sync(
            [
                Scenario("main", hit, ConstantArrivalRate(20, "40s", pre_allocated_vus=80)),
                Scenario(
                    "trigger",
                    stall,
                    ConstantArrivalRate(1, "1s", pre_allocated_vus=1),
                    start_time="20s",
                ),
            ],
            thresholds={
                "http_req_duration{scenario:main}": [
                    "p(95)<500",
                    {"threshold": "p(95)<500", "window": "1s"},
                ]
            },
            options=OPTIONS,
        )
    whole, windowed = result.thresholds
    assert whole.ok, whole.reason
    assert windowed.breached, windowed.reason
    worst = windowed.worst_window()
    assert worst is not None
    # the stalled requests are answered when the stall ends, 22 s in (a second of slack)
    assert 21 * S <= worst.start_ns <= 23 * S, windowed.reason
    assert worst.observed is not None
    assert worst.observed > 500
    assert f"worst {worst.span()}:" in windowed.reason
    assert not windowed.stalled  # the server stalled, not the generator
    assert result.verdict == "breached"


def test_a_blocked_generator_loop_is_seen_and_makes_the_window_untrustworthy() -> None:
    with latency_server(delay_ms=5) as srv:

        async def hit(vu: VU) -> None:
            await vu.http.get(srv.url + "/x", name="/x")

        async def block(vu: VU) -> None:
            time.sleep(0.2)

        result = run_sync(
            [
                Scenario("main", hit, ConstantArrivalRate(50, "6s", pre_allocated_vus=30)),
                Scenario(
                    "block",
                    block,
                    ConstantArrivalRate(1, "1s", pre_allocated_vus=1),
                    start_time="3s",
                ),
            ],
            thresholds={
                "http_req_duration{scenario:main}": [{"threshold": "p(95)<100", "window": "1s"}]
            },
            options=OPTIONS,
        )
    hiccups = result.store.select(GENERATOR_HICCUP, {})
    assert isinstance(hiccups, TrendSink)
    assert hiccups.max() >= 190 * MS
    blocked = max(result.intervals, key=lambda iv: iv.hiccup_max_ns())
    assert 3 <= blocked.index <= 4, [iv.hiccup_max_ns() for iv in result.intervals]
    (verdict,) = result.thresholds
    window = next(w for w in verdict.windows if w.start_ns == blocked.index * S)
    assert window.stalled
    assert window.hiccup_ns >= 190 * MS
    # the requests the block held back breached p(95) in that window only: the generator's
    # fault, so the run is untrustworthy, not failed
    assert verdict.breached, verdict.reason
    assert all(w.stalled for w in verdict.breached_windows), verdict.windows
    assert verdict.stalled.startswith("breached only in windows where the generator stalled")
    assert result.verdict == "untrustworthy"
