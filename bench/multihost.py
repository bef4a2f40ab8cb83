"""Distributed load over real network stacks: ``socket=`` and ``ssh=`` workers in network
namespaces on this machine (root only).

    python bench/multihost.py [--runs 3] [--rate 40] [--seconds 4] [--cuts ssh,socket]

Builds the lab of ``tests/support/netlab.py`` (certctl, the reference double, in
namespace ``srv``; an execnet socket server in ``w1``; an sshd with throwaway keys in
``w2``; this process the controller) and drives the shipped ``list_certificates``
scenario of ``tests/load/k6.py`` (``--rate`` per second for ``--seconds``) through both
workers with ``run_distributed``, the engine of ``--certload-tx``. Prints:

* the lab's set-up times (namespaces, sshd, socket server, PostgreSQL + the double);
* per run: wall time (gateways opened, run, gateways closed), each worker's round trip,
  measured clock offset (one kernel clock: the true offset is 0), late start and
  requests, the merged requests and p50/p95/p99, whether the merged HDR histogram equals
  the union of the workers' (bucket by bucket), and the verdict of the shipped test's
  thresholds;
* per cut (``--cuts``): that worker's link taken down at a quarter of the run, when the
  controller found it lost, how (``died``: its connection closed; ``given up``: the
  run's bound) and the survivor's requests;
* the teardown time and what it left (nothing, or a list).

Prints figures only; never passes or fails on them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pytest_certload.certctl import bearer  # noqa: E402
from pytest_certload.distributed import DistributedRun, run_distributed  # noqa: E402
from pytest_certload.engine import (  # noqa: E402
    ConstantArrivalRate,
    HTTPOptions,
    Progress,
    RunOptions,
    Scenario,
)
from pytest_certload.engine.health import HealthLimits  # noqa: E402
from pytest_certload.errors import CertloadError  # noqa: E402
from pytest_certload.metrics import MetricStore, TrendSink  # noqa: E402
from tests.load import k6  # noqa: E402
from tests.support.lab_certctl import LabCertctl, certctl_in_lab  # noqa: E402
from tests.support.netlab import Lab, network_lab, unavailable  # noqa: E402

SCENARIO = "list_certificates"
THRESHOLDS = {
    f"http_req_duration{{scenario:{SCENARIO}}}": ["p(95)<800", "p(99)<2000"],
    "http_req_failed": ["rate<0.01"],
}
MARGIN = "2s"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _cuts(text: str) -> list[str]:
    cuts = [c.strip() for c in text.split(",") if c.strip()]
    bad = [c for c in cuts if c not in ("ssh", "socket")]
    if bad:
        raise argparse.ArgumentTypeError(
            f"{', '.join(bad)}: --cuts takes 'ssh', 'socket' or both, comma-separated"
        )
    return cuts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=_positive_int, default=3, metavar="N")
    parser.add_argument("--rate", type=_positive_int, default=40, metavar="PER_S")
    parser.add_argument("--seconds", type=_positive_float, default=4.0, metavar="S")
    parser.add_argument("--cuts", type=_cuts, default=["ssh", "socket"], metavar="KINDS")
    return parser.parse_args(argv)


def _scenario(certctl: LabCertctl, rate: int, seconds: float) -> Scenario:
    shipped = k6.k6_scenarios(certctl.url, bearer(certctl.token), {}, HTTPOptions())
    executor = ConstantArrivalRate(rate, f"{seconds}s", pre_allocated_vus=10, max_vus=2 * rate)
    return replace(shipped[SCENARIO], executor=executor, start_time=0, graceful_stop="2s")


def _options(certctl: LabCertctl, progress: Callable[[Progress], None] | None = None) -> RunOptions:
    return RunOptions(
        http=HTTPOptions(backend="fast", verify=str(certctl.ca)),
        health=HealthLimits(max_lag_p99_ns=300_000_000, max_delay_p99_ns=300_000_000),
        teardown_timeout="1s",
        progress=progress,
        progress_every="100ms",
    )


def _trend(store: MetricStore) -> TrendSink | None:
    sink = store.select("http_req_duration", {"scenario": SCENARIO})
    return sink if isinstance(sink, TrendSink) else None


def _ms(sink: TrendSink | None, q: float) -> str:
    return f"{sink.quantile(q) / 1e6:.1f}" if sink is not None and sink.count else "nan"


def _run_line(i: int, run: DistributedRun, wall: float) -> str:
    merged = run.merged
    sink = _trend(merged.store)
    union = MetricStore()
    for w in run.workers:
        if w.result is not None:
            union.merge(w.result.store)
    joined = _trend(union)
    exact = sink is not None and joined is not None and sink.counts() == joined.counts()
    line = (
        f"run={i} wall_s={wall:.2f} requests={sink.count if sink else 0} "
        f"p50_ms={_ms(sink, 50)} p95_ms={_ms(sink, 95)} p99_ms={_ms(sink, 99)} "
        f"merge_exact={'yes' if exact else 'no'} "
        f"verdict={'pass' if merged.ok else 'fail' if merged.trustworthy else 'untrustworthy'}"
    )
    for w in run.workers:
        own = _trend(w.result.store) if w.result is not None else None
        late = f"{w.late_ns / 1e6:.2f}" if w.late_ns is not None else "nan"
        line += (
            f"\n    {w.name} ({w.spec.split('=')[0]}): rtt_ms={w.rtt_ns / 1e6:.2f} "
            f"offset_us={w.clock_offset_ns / 1e3:+.0f} late_ms={late} "
            f"requests={own.count if own else 0}"
        )
    for problem in merged.untrustworthy:
        line += f"\n    untrustworthy: {problem}"
    return line


def _cut_line(
    lab: Lab, tx: list[str], certctl: LabCertctl, kind: str, args: argparse.Namespace
) -> str:
    role = "w2" if kind == "ssh" else "w1"
    cut_at: list[int] = []

    def progress(p: Progress) -> None:
        if not cut_at and p.elapsed_ns >= args.seconds * 1e9 / 4:
            lab.cut(role)
            cut_at.append(p.elapsed_ns)

    started = time.monotonic()
    try:
        run = run_distributed(
            [_scenario(certctl, args.rate, args.seconds)],
            tx=tx,
            thresholds=THRESHOLDS,
            options=_options(certctl, progress),
            margin=MARGIN,
        )
    finally:
        lab.mend(role)
    wall = time.monotonic() - started
    lost = next(w for w in run.workers if w.name == role)
    survivor = next(w for w in run.workers if w.name != role)
    how = "died" if "died during the run" in lost.problem else "given up"
    own = _trend(survivor.result.store) if survivor.result is not None else None
    cut_s = cut_at[0] / 1e9 if cut_at else float("nan")
    lost_s = lost.lost_ns / 1e9 if lost.lost_ns is not None else float("nan")
    return (
        f"cut={kind} ({role}) cut_at_s={cut_s:.2f} lost_at_s={lost_s:.2f} "
        f"detected_after_s={lost_s - cut_s:.2f} how={how} "
        f"survivor_requests={own.count if own else 0} wall_s={wall:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reason = unavailable()
    if reason is not None:
        print(f"no network-namespace lab here: {reason}", file=sys.stderr)
        return 2
    started = time.monotonic()
    with network_lab(("w1", "w2")) as lab:
        built = time.monotonic()
        tx = [lab.start_socketserver("w1"), lab.start_sshd("w2")]
        hosts = time.monotonic()
        with certctl_in_lab(lab) as certctl:
            ready = time.monotonic()
            print(
                f"lab {lab.name} {lab.subnet}: namespaces_s={built - started:.2f} "
                f"sshd+socketserver_s={hosts - built:.2f} postgres+certctl_s={ready - hosts:.2f}",
                flush=True,
            )
            print(
                f"{SCENARIO} at {args.rate}/s for {args.seconds:g} s through "
                f"{', '.join(spec.split('//')[0] for spec in tx)}",
                flush=True,
            )
            walls = []
            for i in range(1, args.runs + 1):
                t = time.monotonic()
                run = run_distributed(
                    [_scenario(certctl, args.rate, args.seconds)],
                    tx=tx,
                    thresholds=THRESHOLDS,
                    options=_options(certctl),
                    margin=MARGIN,
                )
                walls.append(time.monotonic() - t)
                print(_run_line(i, run, walls[-1]), flush=True)
            if walls:
                print(f"median run wall_s={statistics.median(walls):.2f}", flush=True)
            for kind in args.cuts:
                print(_cut_line(lab, tx, certctl, kind, args), flush=True)
            if args.cuts:  # the links mended: do both hosts take a run again?
                t = time.monotonic()
                try:
                    run = run_distributed(
                        [_scenario(certctl, args.rate, args.seconds)],
                        tx=tx,
                        thresholds=THRESHOLDS,
                        options=_options(certctl),
                        margin=MARGIN,
                        startup_timeout="20s",
                    )
                except CertloadError as exc:
                    first = str(exc).splitlines()[:3]
                    print(f"after the cuts: no run ({' | '.join(first)})", flush=True)
                else:
                    print(_run_line(0, run, time.monotonic() - t).replace("run=0", "after-cuts"))
        closing = time.monotonic()
    print(
        f"teardown_s={time.monotonic() - closing:.2f} left={lab.leftovers() or 'nothing'}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
