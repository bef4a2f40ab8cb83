"""Open-model ceiling with 1 and 2 local execnet gateways (``--certload-tx``).

    python bench/distributed.py [--url URL] [--rates 1000,2000,4000,8000] [--seconds 5]
                                [--gateways 1,2] [--backend fast] [--max-vus 200]

For each gateway count and each target rate, runs one ``constant-arrival-rate``
scenario (a GET per iteration) split across that many ``popen`` gateways and prints the
merged figures: achieved rate, scheduled iterations, started/scheduled, dropped
iterations, schedule-lag p99, latency p99 and the health verdict. Without ``--url`` a
private nginx is started (it shares the machine's cores with the generators). One line
per run::

    gateways=<n> target=<rate>/s achieved=<rate>/s scheduled=<n> started=<ratio> dropped=<n>
        lag_p99_ms=<ms> p99_ms=<ms> healthy=<yes|no> wall_s=<s>
        worker_cpu_s=<s> cpu_us_per_it=<µs>

``worker_cpu_s`` is the CPU time of the gateway processes (user + system, from
``RUSAGE_CHILDREN`` once they are reaped, so it includes their start-up and imports);
``cpu_us_per_it`` divides it by the iterations started: comparable across runs on a
busy machine, where absolute rates are not.

Prints figures only; never passes or fails on them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import resource
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pytest_certload.engine import (  # noqa: E402
    VU,
    ConstantArrivalRate,
    HTTPOptions,
    RunOptions,
    Scenario,
)
from pytest_certload.engine.health import HealthLimits  # noqa: E402
from pytest_certload.metrics import TrendSink  # noqa: E402


async def hit(url: str, vu: VU) -> None:
    """The iteration: module-level, so the gateways can import it as bench.distributed.hit."""
    await vu.http.get(url, name="/")


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} needs whole numbers greater than 0")
    return values


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--url", help="target URL (default: a private nginx)")
    parser.add_argument("--rates", type=_int_list, default=[1000, 2000, 4000, 8000])
    parser.add_argument("--gateways", type=_int_list, default=[1, 2])
    parser.add_argument("--seconds", type=_positive_float, default=5.0, metavar="N")
    parser.add_argument("--backend", choices=("fast", "httpx"), default="fast")
    parser.add_argument("--max-vus", type=int, default=200, metavar="N")
    return parser.parse_args(argv)


@contextlib.contextmanager
def _target(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.support.servers import start_nginx

    with start_nginx() as server:
        print(f"started nginx at {server.url}", flush=True)
        yield server.url + "/"


def _p99_ms(store: Any, metric: str) -> float | None:
    sink = store.select(metric, {"scenario": "ceiling"})
    if isinstance(sink, TrendSink) and sink.count:
        return sink.quantile(99) / 1e6
    return None


def one_run(url: str, rate: int, gateways: int, args: argparse.Namespace) -> str:
    # import ourselves by module name: functions of __main__ cannot be shipped
    me = importlib.import_module("bench.distributed")
    from pytest_certload.distributed import run_distributed

    executor = ConstantArrivalRate(
        rate,
        f"{args.seconds}s",
        pre_allocated_vus=min(50, args.max_vus),
        max_vus=args.max_vus,
    )
    scenario = Scenario("ceiling", partial(me.hit, url), executor, graceful_stop="2s")
    options = RunOptions(
        http=HTTPOptions(backend=args.backend), health=HealthLimits(), teardown_timeout="2s"
    )
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = run_distributed([scenario], tx=[f"{gateways}*popen"], options=options)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the gateways, once reaped
    wall = time.monotonic() - started
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    merged = run.merged
    health = merged.scenarios["ceiling"].health
    lag = _p99_ms(merged.store, "schedule_lag")
    p99 = _p99_ms(merged.store, "http_req_duration")
    ratio = health.started / health.scheduled if health.scheduled else 0.0
    line = (
        f"gateways={gateways} target={rate}/s achieved={health.achieved_rate or 0:.0f}/s "
        f"scheduled={health.scheduled} started={ratio:.3f} dropped={health.dropped} "
        f"lag_p99_ms={lag if lag is not None else float('nan'):.1f} "
        f"p99_ms={p99 if p99 is not None else float('nan'):.1f} "
        f"healthy={'yes' if merged.trustworthy else 'no'} wall_s={wall:.1f} "
        f"worker_cpu_s={cpu_s:.1f} cpu_us_per_it={cpu_s * 1e6 / max(health.started, 1):.0f}"
    )
    for problem in merged.untrustworthy:
        line += f"\n    {problem}"
    return line


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with _target(args.url) as url:
        print(
            f"open model, {args.seconds:g} s per run, backend={args.backend}, "
            f"max_vus={args.max_vus}, url={url}",
            flush=True,
        )
        for gateways in args.gateways:
            for rate in args.rates:
                print(one_run(url, rate, gateways, args), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
