"""acme_flow's warm-up against its steady state, second by second, on the local stack.

    PYTHONPATH=. .venv/bin/python bench/acme_flow_warmup.py [--duration 20s] \
        [--warmup 5s] [--vus 100] [--backend fast|httpx]

Boots PostgreSQL and the certctl reference double (:class:`LocalStack`, no connector
sidecars: acme_flow talks to certctl only), then runs the shipped ``acme_flow``
iteration of ``tests/load/test_acme.py`` through the engine API (``run_sync``), as
the test does: ``ConstantVUs`` closed model, 100 VUs, graceful stop 30 s, the
surface's Trends declared. Its 1 s think time bounds every iteration, so the run ends
about a second after ``--duration``; the stack is stopped whatever happens.

It prints one row per timeline interval (start offset, VUs, iterations, requests,
failed, p50/p95/p99/max of ``http_req_duration`` in that interval), the whole-run
p95/p99 of ``http_req_duration`` and of the three ACME Trends, and, for the intervals
in the warm-up and after it, the median and max of the per-interval p95 and p99, and the
exact p95/p99 of the warm-up's samples and of those after it: the scenario runs with
``warmup=`` so the engine keeps the two apart (``RunResult.warmup_store`` and
``RunResult.store``), as a test with a warm-up would be judged. Medians are nearest rank,
the project's quantile definition (the lower middle for an even count). The last line is
always

    whole_p95_ms=<f> whole_p99_ms=<f> warmup_p95_ms=<f> steady_p95_ms=<f> \
steady_p99_ms=<f> warmup_p95_max_ms=<f> steady_p95_median_ms=<f> steady_p95_max_ms=<f> \
steady_p99_median_ms=<f> steady_p99_max_ms=<f>

Prints figures only; never passes or fails on them.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anyio.from_thread import start_blocking_portal  # noqa: E402

from pytest_certload.certctl import AcmeSurface, CertctlSetup, bearer  # noqa: E402
from pytest_certload.engine import (  # noqa: E402
    ConstantVUs,
    HTTPOptions,
    RunOptions,
    RunResult,
    Scenario,
    TimelineRow,
    run_sync,
)
from pytest_certload.errors import ConfigError  # noqa: E402
from pytest_certload.http import BACKENDS  # noqa: E402
from pytest_certload.metrics import TrendSink  # noqa: E402
from pytest_certload.stack.local import LocalStack  # noqa: E402
from pytest_certload.units import NS_PER_MS, NS_PER_S, parse_duration_ns  # noqa: E402
from tests.load.test_acme import acme_flow  # noqa: E402

SCENARIO = "acme_flow"
PROFILE = "prof-standard-tls"  # tests/load/conftest.py: certload_acme_profile
GRACEFUL_STOP = "30s"  # as tests/load/test_acme.py


def _duration(text: str) -> int:
    try:
        return parse_duration_ns(text, default_unit="s", allow_zero=False)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration", type=_duration, default="20s", metavar="D", help="load duration (20s)"
    )
    parser.add_argument(
        "--warmup", type=_duration, default="5s", metavar="D", help="warm-up to set apart (5s)"
    )
    parser.add_argument("--vus", type=_positive_int, default=100, help="closed-model VUs (100)")
    parser.add_argument("--backend", choices=BACKENDS, default="fast", help="HTTP backend (fast)")
    args = parser.parse_args(argv)
    if args.warmup >= args.duration:
        parser.error(
            f"--warmup {args.warmup / NS_PER_S:g}s leaves no steady state in "
            f"--duration {args.duration / NS_PER_S:g}s; make it shorter than the duration"
        )
    return args


def ms(ns: float) -> float:
    return ns / NS_PER_MS


def median_low(values: Sequence[int]) -> int:
    """Nearest-rank median (the lower middle for an even count)."""
    ordered = sorted(values)
    return ordered[math.ceil(len(ordered) / 2) - 1]


def figures_of(sink: object) -> tuple[int, int, int] | None:
    """(count, p95, p99) of a trend, or None if empty."""
    if not isinstance(sink, TrendSink) or not sink.count:
        return None
    q = sink.quantiles((95, 99))
    return sink.count, q[95], q[99]


def whole_run(result: RunResult, metric: str) -> tuple[int, int, int] | None:
    """(count, p95, p99) of ``metric`` over the whole scenario, warm-up included (what a
    run without a warm-up would judge), or None if empty."""
    sink = result.store.select(metric, {"scenario": SCENARIO})
    if result.warmup_store is not None:
        warm = result.warmup_store.select(metric, {"scenario": SCENARIO})
        if isinstance(sink, TrendSink) and isinstance(warm, TrendSink):
            sink.merge(warm)
        elif warm is not None:
            sink = warm
    return figures_of(sink)


def print_timeline(rows: Sequence[TimelineRow], warmup_ns: int, duration_ns: int) -> None:
    print(
        f"{'start_s':>7} {'vus':>4} {'iters':>5} {'reqs':>5} {'failed':>6} "
        f"{'p50_ms':>8} {'p95_ms':>8} {'p99_ms':>8} {'max_ms':>8}  phase"
    )
    for r in rows:
        if r.start_ns < warmup_ns:
            phase = "warm-up"
        elif r.start_ns < duration_ns:
            phase = "steady"
        else:
            phase = "graceful stop (not counted)"
        print(
            f"{r.start_ns / NS_PER_S:7.1f} {r.vus:4d} {r.iterations:5d} {r.requests:5d} "
            f"{r.failed:6d} {ms(r.p50_ns):8.1f} {ms(r.p95_ns):8.1f} {ms(r.p99_ns):8.1f} "
            f"{ms(r.max_ns):8.1f}  {phase}"
        )


def summarise(result: RunResult, surface: AcmeSurface, warmup_ns: int, duration_ns: int) -> None:
    sc = result.scenarios[SCENARIO]
    rows = [r for r in sc.timeline if r.requests]
    print_timeline(sc.timeline, warmup_ns, duration_ns)
    print()
    whole = whole_run(result, "http_req_duration")
    if whole is None:
        raise SystemExit("acme_flow made no request; see the causes above")
    count, p95, p99 = whole
    print(
        f"whole run ({result.duration_ns / NS_PER_S:.1f} s, {count:,} requests): "
        f"http_req_duration p95={ms(p95):.1f} ms p99={ms(p99):.1f} ms"
    )
    for trend in surface.trends:
        trend_figures = whole_run(result, trend)
        if trend_figures is not None:
            n, t95, t99 = trend_figures
            print(f"  {trend:<22} n={n:>6,} p95={ms(t95):7.1f} ms p99={ms(t99):7.1f} ms")
    warm = [r for r in rows if r.start_ns < warmup_ns]
    steady = [r for r in rows if warmup_ns <= r.start_ns < duration_ns]
    figures: dict[str, float] = {"whole_p95_ms": ms(p95), "whole_p99_ms": ms(p99)}
    stores = (("warmup", result.warmup_store), ("steady", result.store))
    for label, store in stores:
        exact = (
            None
            if store is None
            else figures_of(store.select("http_req_duration", {"scenario": SCENARIO}))
        )
        if exact is None:
            continue
        n, e95, e99 = exact
        print(
            f"{label} exact ({n:,} requests): http_req_duration p95={ms(e95):.1f} ms "
            f"p99={ms(e99):.1f} ms"
        )
        figures[f"{label}_p95_ms"] = ms(e95)
        figures[f"{label}_p99_ms"] = ms(e99)
    for label, chosen in (("warmup", warm), ("steady", steady)):
        if not chosen:
            print(f"{label}: no interval with requests")
            continue
        p95s = [r.p95_ns for r in chosen]
        p99s = [r.p99_ns for r in chosen]
        first, last = chosen[0].start_ns / NS_PER_S, chosen[-1].end_ns / NS_PER_S
        print(
            f"{label} ({first:.0f}-{last:.0f} s, {len(chosen)} intervals, "
            f"{sum(r.requests for r in chosen):,} requests): per-interval p95 "
            f"median={ms(median_low(p95s)):.1f} max={ms(max(p95s)):.1f} ms; per-interval "
            f"p99 median={ms(median_low(p99s)):.1f} max={ms(max(p99s)):.1f} ms"
        )
        figures[f"{label}_p95_median_ms"] = ms(median_low(p95s))
        figures[f"{label}_p95_max_ms"] = ms(max(p95s))
        figures[f"{label}_p99_median_ms"] = ms(median_low(p99s))
        figures[f"{label}_p99_max_ms"] = ms(max(p99s))
    for line in result.untrustworthy + result.causes():
        print(f"note: {line}")
    if result.aborted:
        print(f"note: the run was aborted: {result.aborted}")
    keys = (
        "whole_p95_ms",
        "whole_p99_ms",
        "warmup_p95_ms",
        "steady_p95_ms",
        "steady_p99_ms",
        "warmup_p95_max_ms",
        "steady_p95_median_ms",
        "steady_p95_max_ms",
        "steady_p99_median_ms",
        "steady_p99_max_ms",
    )
    print(" ".join(f"{k}={figures.get(k, math.nan):.1f}" for k in keys))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load = os.getloadavg()
    print(
        f"acme_flow: {args.vus} VUs for {args.duration / NS_PER_S:g} s, warm-up "
        f"{args.warmup / NS_PER_S:g} s, backend {args.backend}; {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {load[0]:.2f}",
        flush=True,
    )
    with start_blocking_portal(backend="asyncio") as portal:
        stack = LocalStack(certctl="double", targets=())
        started = time.perf_counter()
        info = portal.call(stack.start)
        try:
            print(f"stack ready in {time.perf_counter() - started:.1f} s", flush=True)
            with CertctlSetup(info.certctl_url, info.token, verify=info.verify()) as setup:
                directory = setup.acme_directory(PROFILE)
            surface = AcmeSurface(directory.url, bearer(info.token))
            scenario = Scenario(
                SCENARIO,
                partial(acme_flow, surface),
                ConstantVUs(args.vus, args.duration),
                graceful_stop=GRACEFUL_STOP,
                metrics=surface.metrics,
                warmup=args.warmup,
            )
            assert info.ca is not None  # the local stack makes its own CA
            options = RunOptions(http=HTTPOptions(backend=args.backend, verify=str(info.ca)))
            result = run_sync([scenario], options=options, threshold_source=__file__)
        finally:
            portal.call(stack.stop)
    summarise(result, surface, args.warmup, args.duration)
    return 0


if __name__ == "__main__":
    sys.exit(main())
