"""What server-side telemetry costs the generator, on the local stack.

    PYTHONPATH=. .venv/bin/python bench/telemetry_overhead.py [--seconds 20] [--rate 100]

Boots the embedded stack (PostgreSQL, the certctl reference double and the four
connector targets, as the main job does), then:

1. runs the sampler alone at 1 s for ``--seconds`` and prints its own CPU time: the
   fixed cost of its start and stop (a database connection, two reads of certctl's
   metrics over TLS) and the steady cost per sample, as % of one core at 1 s;
2. runs the same open-model load (``GET /api/v1/certificates`` at ``--rate`` per second
   for ``--seconds``) twice with telemetry off and twice on, alternating, and prints the
   generator's CPU per request of each (the engine's own ``RunResult.cpu_ns``, less the
   sampler's thread) and the ratio on/off.

The last line is always

    start_ms=<f> per_sample_ms=<f> steady_core_pct=<f> processes=<n> cpu_per_req_off_us=<f> \
cpu_per_req_on_us=<f> ratio=<f>

Prints figures only; never passes or fails on them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anyio.from_thread import start_blocking_portal  # noqa: E402

from pytest_certload.engine import (  # noqa: E402
    VU,
    ConstantArrivalRate,
    HTTPOptions,
    RunOptions,
    Scenario,
    run_sync,
)
from pytest_certload.engine.health import HealthLimits  # noqa: E402
from pytest_certload.stack import TARGET_TYPES, StackInfo  # noqa: E402
from pytest_certload.stack.local import LocalStack  # noqa: E402
from pytest_certload.telemetry import Sampler, TelemetrySources  # noqa: E402

S = 1_000_000_000


def _sources(local: LocalStack, info: StackInfo) -> TelemetrySources:
    return TelemetrySources(
        processes=local.process_ids(),
        dsn=info.dsn,
        certctl_url=info.certctl_url,
        token=info.token,
        verify=info.verify(),
    )


def _sampler_alone(sources: TelemetrySources, seconds: float) -> tuple[float, float, float, int]:
    sampler = Sampler(sources, interval_ns=S)
    before = time.thread_time_ns()
    sampler.start()
    start_ms = (time.thread_time_ns() - before) / 1e6
    time.sleep(seconds)
    before = time.thread_time_ns()
    server = sampler.stop()
    stop_ns = time.thread_time_ns() - before
    samples = max(len(server.ticks), 1)
    # the thread's own CPU: all the sampler spent, less its start and stop (this thread)
    steady_ns = server.sampler_cpu_ns - start_ms * 1e6 - stop_ns
    start_ms += stop_ns / 1e6
    per_sample_ms = steady_ns / samples / 1e6
    processes = sum(1 for _ in sources.processes)
    return start_ms, per_sample_ms, 100 * per_sample_ms / 1000, processes


def _load(info: StackInfo, rate: int, seconds: float, sources: TelemetrySources | None) -> float:
    headers = {"Authorization": f"Bearer {info.token}"}

    async def listing(vu: VU) -> None:
        await vu.http.get(info.certctl_url + "/api/v1/certificates?per_page=20", headers=headers)

    scenario = Scenario(
        "list", listing, ConstantArrivalRate(rate, int(seconds * S), pre_allocated_vus=50)
    )
    options = RunOptions(
        http=HTTPOptions(verify=info.verify(), backend="fast"),
        health=HealthLimits(max_lag_p99_ns=2 * S, max_delay_p99_ns=2 * S),
    )
    sampler = Sampler(sources) if sources is not None else None
    if sampler is not None:
        sampler.start()
    result = run_sync([scenario], options=options)
    cpu_ns = result.cpu_ns["local"]
    if sampler is not None:
        cpu_ns = sampler.stop(t0_ns=result.t0_ns, generator_cpu_ns=result.cpu_ns).generator_cpu_ns[
            "local"
        ]
    requests = result.store.select("http_reqs", {}).count  # type: ignore[union-attr]
    return cpu_ns / max(int(requests), 1) / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=100)
    args = parser.parse_args()
    with start_blocking_portal(backend="asyncio") as portal:
        local = LocalStack(targets=TARGET_TYPES)
        info = portal.call(local.start)
        try:
            sources = _sources(local, info)
            start_ms, per_sample_ms, pct, processes = _sampler_alone(sources, args.seconds)
            print(
                f"sampler alone: start+stop {start_ms:.1f} ms, {per_sample_ms:.2f} ms CPU per "
                f"sample over {processes} services = {pct:.2f} % of a core at 1 s"
            )
            off, on = [], []
            for _ in range(2):
                off.append(_load(info, args.rate, args.seconds, None))
                on.append(_load(info, args.rate, args.seconds, sources))
                print(f"generator CPU per request: off {off[-1]:.1f} µs, on {on[-1]:.1f} µs")
        finally:
            portal.call(local.stop)
    cpu_off, cpu_on = min(off), min(on)
    print(
        f"start_ms={start_ms:.1f} per_sample_ms={per_sample_ms:.3f} steady_core_pct={pct:.3f} "
        f"processes={processes} cpu_per_req_off_us={cpu_off:.1f} cpu_per_req_on_us={cpu_on:.1f} "
        f"ratio={cpu_on / cpu_off:.3f}"
    )


if __name__ == "__main__":
    main()
