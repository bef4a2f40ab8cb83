"""Deterministic runs for the report and baseline tests: the engine on a virtual clock.

Each iteration "sends a request" whose latency is drawn from a seeded log-normal
distribution: it sleeps that long on the virtual clock and records what the HTTP client
would (``http_reqs``, ``http_req_duration``, ``http_req_failed`` and the timeline), so the
runs are exact and instant, and two seeds give two samples of the same load.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio

from pytest_certload.engine import VU, ConstantArrivalRate, RunResult, Scenario, VirtualClock, run
from pytest_certload.engine.capacity import CapacityResult, CapacityStep, search
from pytest_certload.metrics import GENERATOR_HICCUP, tagset
from pytest_certload.record import RunRecord, SessionRecord
from pytest_certload.telemetry import GENERATOR, ServerTelemetry, Tick
from pytest_certload.units import NS_PER_S

MS = 1_000_000


def _iteration(rng: random.Random, median_ms: float, fail_ratio: float, proto: str = "") -> Any:
    async def iteration(vu: VU) -> None:
        latency = max(1, round(rng.lognormvariate(0.0, 0.35) * median_ms * MS))
        await vu.sleep(latency / 1e9)
        failed = rng.random() < fail_ratio
        ctx = vu.context
        fields = {**ctx.tags, "name": "/synthetic", "method": "GET", "status": "200"}
        if proto:
            fields["proto"] = proto
        tags = tagset(fields)
        ctx.store.add_counter("http_reqs", 1, tags)
        ctx.store.add_trend("http_req_duration", latency, tags)
        ctx.store.add_rate("http_req_failed", failed, tags)
        vu.trend("synthetic_sign_duration", latency // 4)
        if ctx.timeline is not None:
            ctx.timeline.record_request(latency, failed)

    return iteration


def synthetic_run(
    *,
    seed: int,
    median_ms: float = 20.0,
    scenarios: Sequence[str] = ("issuance_acceptance", "list_certificates"),
    rate: int = 100,
    duration: str = "10s",
    fail_ratio: float = 0.005,
    protos: Mapping[str, str] | None = None,
) -> RunResult:
    """One run of ``scenarios`` at ``rate``/s each, latencies around ``median_ms``;
    ``protos`` gives a scenario's requests a ``proto`` tag (the HTTP version spoken)."""
    rng = random.Random(seed)
    scs = [
        Scenario(
            name,
            _iteration(rng, median_ms, fail_ratio, (protos or {}).get(name, "")),
            ConstantArrivalRate(rate, duration, pre_allocated_vus=20, max_vus=50),
            metrics={"synthetic_sign_duration": "time"},
        )
        for name in scenarios
    ]
    thresholds = {
        f"http_req_duration{{scenario:{scenarios[0]}}}": ["p(95)<40", "p(99)<45"],
        "http_req_failed": ["rate<0.01"],
    }

    async def main() -> RunResult:
        clock = VirtualClock()
        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.run)
            try:
                result = await run(scs, thresholds=thresholds, clock=clock)
            finally:
                clock.stop()
        return result

    return anyio.run(main)


def synthetic_server(duration_ns: int, *, lock_from_s: int = 2) -> ServerTelemetry:
    """Telemetry of a run of ``duration_ns``: certctl and postgres busy, one statement,
    sessions waiting on a lock from ``lock_from_s`` on."""
    ticks = []
    for i in range(max(1, duration_ns // NS_PER_S)):
        waiting = 3 if i >= lock_from_s else 0
        ticks.append(
            Tick(
                i * NS_PER_S,
                (i + 1) * NS_PER_S,
                cpu_ns={"certctl": 400_000_000, "postgres": 200_000_000, GENERATOR: 300_000_000},
                rss_bytes={"certctl": 90_000_000, "postgres": 200_000_000, GENERATOR: 80_000_000},
                threads={"certctl": 6, "postgres": 10, GENERATOR: 3},
                fds={"certctl": 40, "postgres": 200, GENERATOR: 30},
                db={"xact_commit": 100, "blks_hit": 5000},
                sessions={"active": 1 + waiting, "idle_in_transaction": 0, "waiting": waiting},
                wait_events={"Lock:relation": waiting} if waiting else {},
                db_time_ms=50.0,
                statements=[(7, 100, 40.0)],
            )
        )
    return ServerTelemetry(
        interval_ns=NS_PER_S,
        ticks=ticks,
        services=["certctl", "postgres", GENERATOR],
        texts={7: "SELECT id FROM managed_certificates WHERE status = $1"},
        top=[(7, 100 * len(ticks), 40.0 * len(ticks))],
        generator_cpu_ns={"local": 300_000_000 * len(ticks)},
    )


def recorder_with(
    output_dir: Path,
    runs: Sequence[tuple[str, RunResult]],
    *,
    double: bool = True,
    servers: Mapping[str, ServerTelemetry] | None = None,
) -> SessionRecord:
    """A session record holding ``(nodeid, result)`` runs, as the plugin would fill it
    (``servers``: the telemetry of some of them, by nodeid)."""
    recorder = SessionRecord(output_dir=output_dir, profile="smoke", http_backend="fast")
    if double:
        recorder.target = (
            "certctl reference double 0.1.0 at https://127.0.0.1:8443 (local provider)"
        )
        recorder.target_details = {
            "url": "https://127.0.0.1:8443",
            "provider": "local",
            "version": {"version": "double-0.1.0"},
            "kind": "double",
        }
    for nodeid, result in runs:
        server = (servers or {}).get(nodeid)
        recorder.add(RunRecord(nodeid, "", result, recorder.target, server=server))
        recorder.outcomes[nodeid] = "passed" if result.ok else "failed"
    recorder.write_index()
    return recorder


#: a test module running one scenario through the plugin (``.format(delay=seconds)``)
SCENARIO_FILE = """
import pytest
from pytest_certload.engine import ConstantArrivalRate, Scenario

DELAY = {delay}

async def work(vu):
    await vu.sleep(DELAY)


@pytest.mark.certload(health="lag_p99=500ms")
def test_work(certload):
    certload.run(Scenario("work", work, ConstantArrivalRate(100, "2s", pre_allocated_vus=20)),
                 thresholds={{"iteration_duration{{scenario:work}}": ["p(95)<5000"]}})
"""


#: the run times (s) of :func:`windowed_run`: a cold start inside the warm-up, a slow
#: spell of the server, and a stall of the generator that slows both scenarios
COLD = (0.0, 1.5)
SLOW = (5.0, 5.8)
STALL = (8.0, 8.8)
STALL_MS = 200


def _spells(
    rng: random.Random, median_ms: float, spells: Sequence[tuple[float, float]], stall: bool
) -> Any:
    """An iteration like :func:`_iteration`, 6x slower inside ``spells`` (run seconds);
    with ``stall``, the first iteration inside :data:`STALL` records a generator hiccup."""
    stalled = [False]

    async def iteration(vu: VU) -> None:
        now = (vu.intended_start_ns or 0) / 1e9
        slow = any(a <= now < b for a, b in spells)
        latency = max(1, round(rng.lognormvariate(0.0, 0.2) * median_ms * (6 if slow else 1) * MS))
        ctx = vu.context
        if stall and STALL[0] <= now < STALL[1] and not stalled[0]:
            stalled[0] = True
            ctx.store.add_trend(GENERATOR_HICCUP, STALL_MS * MS)
        await vu.sleep(latency / 1e9)
        tags = tagset({**ctx.tags, "name": "/synthetic", "method": "GET", "status": "200"})
        ctx.store.add_counter("http_reqs", 1, tags)
        ctx.store.add_trend("http_req_duration", latency, tags)
        ctx.store.add_rate("http_req_failed", False, tags)
        if ctx.timeline is not None:
            ctx.timeline.record_request(latency, False)

    return iteration


def windowed_run(*, seed: int = 7) -> RunResult:
    """Two scenarios with a 2 s warm-up (slow cold start) and a 1 s windowed ``p(95)<40``
    each: ``issuance`` breaches in the window of :data:`SLOW` (the server's) and in that of
    :data:`STALL` (the generator's), ``listing`` only in the stalled one, so its breach is
    the generator's and the run is untrustworthy."""
    rng = random.Random(seed)
    scs = [
        Scenario(
            "issuance",
            _spells(rng, 20.0, (COLD, SLOW, STALL), stall=True),
            ConstantArrivalRate(100, "10s", pre_allocated_vus=30, max_vus=60),
            warmup="2s",
        ),
        Scenario(
            "listing",
            _spells(rng, 20.0, (COLD, STALL), stall=False),
            ConstantArrivalRate(100, "10s", pre_allocated_vus=30, max_vus=60),
            warmup="2s",
        ),
    ]
    thresholds: dict[str, list[Any]] = {
        "http_req_duration{scenario:issuance}": [{"threshold": "p(95)<40", "window": "1s"}],
        "http_req_duration{scenario:listing}": [{"threshold": "p(95)<40", "window": "1s"}],
        "http_req_failed": ["rate<0.01"],
    }

    async def main() -> RunResult:
        clock = VirtualClock()
        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.run)
            try:
                result = await run(scs, thresholds=thresholds, clock=clock)
            finally:
                clock.stop()
        return result

    return anyio.run(main)


def knee_step(rate: float, *, knee: float, generator: float = float("inf")) -> CapacityStep:
    """One capacity step of a model server that holds ``knee``/s: latency grows as the
    offered rate nears it (an M/M/1-like curve) and breaks ``p(95)<40`` above it; above
    ``generator``/s the generator, not the server, gives out."""
    load = min(rate / knee, 0.999)
    p50 = 5 / (1 - 0.8 * load)
    p95, p99 = p50 * 1.4, p50 * 1.7
    errors = 0.001
    verdict, reason = "pass", ""
    if rate > generator:
        verdict, reason = "generator", "schedule lag p99 80 ms (limit 50 ms)"
    elif rate > knee:
        p95, p99, errors = 40 * rate / knee + 20, 120 * rate / knee, 0.004 * rate / knee
        verdict = "fail"
        reason = (
            f"http_req_duration{{scenario:agent_storm}} p(95)<40: observed {p95:.1f} ms "
            "over 2,000 samples (limit 40 ms)"
        )
    return CapacityStep(rate, rate * 0.998, verdict, reason, round(rate * 8), errors, p50, p95, p99)


def knee_search(
    knee: float,
    *,
    scenario: str = "agent_storm",
    contract: float = 100.0,
    generator: float = float("inf"),
    precision: float = 0.1,
    max_rate: float | None = None,
) -> CapacityResult:
    """The capacity search (the engine's) against :func:`knee_step`'s model server."""
    found = search(
        lambda rate, _previous: knee_step(rate, knee=knee, generator=generator),
        scenario=scenario,
        contract=contract,
        precision=precision,
        max_rate=max_rate,
    )
    return found


def with_capacity(
    output_dir: Path,
    runs: Sequence[tuple[str, RunResult, Sequence[CapacityResult]]],
    *,
    double: bool = True,
) -> SessionRecord:
    """Like :func:`recorder_with`, each run with the capacity searches of its test."""
    recorder = recorder_with(output_dir, [], double=double)
    recorder.machine = {
        "hostname": "ci-1",
        "cpus": 4,
        "platform": "Linux-6.8.0-x86_64",
        "python": "3.11.9",
    }
    recorder.started_at, recorder.finished_at = (
        "2026-11-27T10:00:00+00:00",
        "2026-11-27T10:12:30+00:00",
    )
    recorder.generator_version = "0.4.0"
    for nodeid, result, capacity in runs:
        recorder.add(RunRecord(nodeid, "", result, recorder.target, capacity=tuple(capacity)))
        recorder.outcomes[nodeid] = "passed" if result.ok else "failed"
    recorder.write_index()
    return recorder
