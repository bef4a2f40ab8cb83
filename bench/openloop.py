"""Open-model (constant-arrival-rate) accuracy of the engine on one core.

    python bench/openloop.py [--url URL] --rate R --seconds N [--backend fast] [--cpu 0]
                             [--max-vus 500]

Runs one constant-arrival-rate scenario through the real engine (the same code path as a
test) and prints the achieved start rate, schedule lag and latency. Without ``--url`` a
private nginx is started on the other core. The last line is always

    achieved=<float> lag_p99_ms=<float> latency_p99_ms=<float>

where ``achieved`` is the fraction of scheduled iterations that started (1.0 = all).
Prints figures only; never passes or fails on them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_certload.engine import (  # noqa: E402
    VU,
    ConstantArrivalRate,
    HTTPOptions,
    RunOptions,
    Scenario,
    run_sync,
)
from pytest_certload.engine.health import HealthLimits  # noqa: E402
from pytest_certload.http import BACKENDS  # noqa: E402
from pytest_certload.metrics import TrendSink  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="target URL (default: a private nginx on the other core)")
    parser.add_argument("--rate", type=float, required=True, metavar="R", help="iterations/s")
    parser.add_argument("--seconds", type=float, default=10.0, metavar="N")
    parser.add_argument("--backend", choices=BACKENDS, default="fast")
    parser.add_argument("--max-vus", type=int, default=500, metavar="N")
    parser.add_argument("--cpu", type=int, default=0, help="pin the generator to this CPU")
    return parser.parse_args(argv)


@contextlib.contextmanager
def _target(url: str | None, cpu: int) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.support.servers import start_nginx

    cpus = sorted(CPUS)
    other = next((c for c in cpus if c != cpu), None)
    with start_nginx(cpu=other) as server:
        print(f"started nginx at {server.url} on cpu {other}", flush=True)
        yield server.url + "/"


CPUS = os.sched_getaffinity(0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {args.cpu})
    with _target(args.url, args.cpu) as url:

        async def hit(vu: VU) -> None:
            await vu.http.get(url, name="/")

        pre = min(args.max_vus, max(10, int(args.rate // 20)))
        scenario = Scenario(
            "openloop",
            hit,
            ConstantArrivalRate(
                args.rate, round(args.seconds * 1e9), pre_allocated_vus=pre, max_vus=args.max_vus
            ),
            graceful_stop="5s",
        )
        options = RunOptions(
            http=HTTPOptions(backend=args.backend, verify=False),
            health=HealthLimits(min_rate_ratio=0, max_dropped_ratio=1, max_lag_p99_ns=10**12),
        )
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        result = run_sync([scenario], options=options)
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    health = result.scenarios["openloop"].health
    lag = result.store.select("schedule_lag", {"scenario": "openloop"})
    latency = result.store.select("http_req_duration", {"scenario": "openloop"})
    service = result.store.select("http_req_service_time", {"scenario": "openloop"})
    assert isinstance(lag, TrendSink)
    assert isinstance(latency, TrendSink)
    assert isinstance(service, TrendSink)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    achieved = health.started / health.scheduled if health.scheduled else 0.0
    failed = result.store.select("http_req_failed", {"scenario": "openloop"})
    print(
        f"backend={args.backend} rate={args.rate:g}/s seconds={args.seconds:g} "
        f"scheduled={health.scheduled} started={health.started} dropped={health.dropped} "
        f"failed={getattr(failed, 'trues', 0)}"
    )
    print(
        f"lag p50={lag.quantile(50) / 1e6:.3f} ms p99={lag.quantile(99) / 1e6:.3f} ms "
        f"max={lag.max() / 1e6:.3f} ms; service p50={service.quantile(50) / 1e6:.3f} ms "
        f"p99={service.quantile(99) / 1e6:.3f} ms; cpu {cpu / args.seconds:.0%} of a core, "
        f"{cpu * 1e6 / max(health.started, 1):.1f} us/iteration"
    )
    print(
        f"achieved={achieved:.4f} lag_p99_ms={lag.quantile(99) / 1e6:.3f} "
        f"latency_p99_ms={latency.quantile(99) / 1e6:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
