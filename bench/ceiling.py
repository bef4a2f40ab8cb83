"""Closed-loop ceiling of one HTTP backend on one core, optionally beside wrk.

    python bench/ceiling.py [--url URL] [--seconds 10] [--backend fast] [--connections 50]
                            [--cpu 0] [--wrk | --no-wrk] [--no-uvloop]

``--connections`` tasks, each with its own client (one keep-alive connection),
send requests back to back for ``--seconds``. Without ``--url`` a private nginx
is started on the other core. The last line is always

    rps=<float> cpu_us_per_req=<float> backend=<name>

and, with wrk, the line before it is ``wrk_rps=<float> ratio=<ours/wrk>``.
Prints figures only; never passes or fails on them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402

from pytest_certload.errors import TransportError  # noqa: E402
from pytest_certload.http import BACKENDS, make_client  # noqa: E402


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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="target URL (default: a private nginx on the other core)")
    parser.add_argument("--seconds", type=_positive_float, default=10.0, metavar="N")
    parser.add_argument("--backend", choices=BACKENDS, default="fast")
    parser.add_argument("--connections", type=_positive_int, default=50, metavar="N")
    parser.add_argument(
        "--cpu", type=int, default=0, metavar="N", help="pin to this CPU (-1: no pinning)"
    )
    parser.add_argument(
        "--wrk",
        action=argparse.BooleanOptionalAction,
        default=shutil.which("wrk") is not None,
        help="run wrk first for a reference ceiling (default: on when wrk is on PATH)",
    )
    parser.add_argument("--no-uvloop", dest="uvloop", action="store_false", default=True)
    parser.add_argument(
        "--insecure", action="store_true", help="do not verify the server's certificate"
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="with no --url: serve HTTPS from the private nginx (a throw-away CA)",
    )
    return parser.parse_args(argv)


@contextlib.contextmanager
def _target(args: argparse.Namespace) -> Iterator[str]:
    """The URL to load; sets ``args.verify`` (CA path, True, or False)."""
    args.verify = not args.insecure
    if args.url:
        yield args.url
        return
    from tests.support.servers import generate_tls, start_nginx

    other = next((c for c in args.cpus if c != args.cpu), None)
    with tempfile.TemporaryDirectory(prefix="certload-ceiling-") as tmp:
        tls = generate_tls(tmp) if args.tls else None
        if tls is not None and not args.insecure:
            args.verify = tls.ca
        with start_nginx(cpu=other, tls=tls) as server:
            print(f"started nginx at {server.url} on cpu {other}", flush=True)
            yield server.url + "/"


def run_wrk(url: str, seconds: float, connections: int, cpu: int) -> float | None:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", url]
    if cpu >= 0 and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    print("running: " + " ".join(cmd), flush=True)
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + 30, check=False
    ).stdout
    match = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if match is None:
        print(f"wrk gave no Requests/sec line:\n{out}", flush=True)
        return None
    return float(match.group(1))


async def closed_loop(
    url: str, seconds: float, connections: int, backend: str, verify: bool | str
) -> tuple[int, int, float]:
    """Returns (ok responses, errors, elapsed seconds)."""
    clients = [make_client(backend, verify=verify) for _ in range(connections)]
    counts = [0] * connections
    errors = [0] * connections
    stop_at = time.monotonic() + seconds

    async def worker(i: int) -> None:
        client = clients[i]
        get = client.get
        n = 0
        while True:
            try:
                await get(url)
            except TransportError:
                errors[i] += 1
            n += 1
            if not n & 63 and time.monotonic() >= stop_at:
                break
        counts[i] = n

    # warm the connections so connection set-up is not in the measurement
    for client in clients:
        await client.get(url)
    t0 = time.monotonic()
    stop_at = t0 + seconds
    async with anyio.create_task_group() as tg:
        for i in range(connections):
            tg.start_soon(worker, i)
    elapsed = time.monotonic() - t0
    for client in clients:
        await client.aclose()
    return sum(counts) - sum(errors), sum(errors), elapsed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.cpus = sorted(os.sched_getaffinity(0))  # before pinning ourselves
    if args.cpu >= 0:
        try:
            os.sched_setaffinity(0, {args.cpu})
            print(f"pinned to cpu {args.cpu}", flush=True)
        except (OSError, AttributeError) as exc:
            print(f"could not pin to cpu {args.cpu}: {exc}", flush=True)
    with _target(args) as url:
        wrk_rps = None
        if args.wrk:
            wrk_rps = run_wrk(url, args.seconds, args.connections, args.cpu)
            if wrk_rps is not None:
                print(f"wrk: {wrk_rps:.0f} req/s", flush=True)
        print(
            f"closed loop: backend={args.backend} connections={args.connections} "
            f"seconds={args.seconds:g} uvloop={args.uvloop} url={url}",
            flush=True,
        )
        before = resource.getrusage(resource.RUSAGE_SELF)
        ok, errors, elapsed = anyio.run(
            closed_loop,
            url,
            args.seconds,
            args.connections,
            args.backend,
            args.verify,
            backend_options={"use_uvloop": args.uvloop},
        )
        after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    total = ok + errors
    rps = ok / elapsed if elapsed > 0 else 0.0
    cpu_us = cpu_s * 1e6 / total if total else 0.0
    print(f"ok={ok} errors={errors} elapsed={elapsed:.2f}s cpu={cpu_s:.2f}s", flush=True)
    if wrk_rps:
        print(f"wrk_rps={wrk_rps:.1f} ratio={rps / wrk_rps:.3f}")
    print(f"rps={rps:.1f} cpu_us_per_req={cpu_us:.1f} backend={args.backend}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
