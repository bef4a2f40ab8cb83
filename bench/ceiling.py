"""Closed-loop ceiling of one HTTP backend on one core, optionally beside wrk; with
``--http2``, HTTP/1.1 and HTTP/2 of both backends beside k6.

    python bench/ceiling.py [--url URL] [--seconds 10] [--backend fast] [--connections 50]
                            [--cpu 0] [--wrk | --no-wrk] [--no-uvloop] [--tls]
                            [--http-version auto|1.1|2]
    python bench/ceiling.py --http2 [--seconds 10] [--rounds 2] [--k6 PATH | --no-k6]

``--connections`` tasks, each with its own client (one keep-alive connection),
send requests back to back for ``--seconds``. Without ``--url`` a private nginx
is started on the other core. The last line is always

    rps=<float> cpu_us_per_req=<float> backend=<name>

and, with wrk, the line before it is ``wrk_rps=<float> ratio=<ours/wrk>``.

``--http2`` starts nginx with TLS and ``http2 on`` (or loads ``--url``, an https URL
that offers h2) and runs, one after the other on the same core for ``--seconds`` each:
the fast backend over HTTP/1.1 and over HTTP/2, the httpx backend over HTTP/2 and k6
(50 VUs of ``http.get``, which negotiates HTTP/2 as k6 always does; its CPU from
``RUSAGE_CHILDREN``), ``--rounds`` times. It prints a table of requests/s, CPU µs per
request and requests/s per core (10⁶ / µs), the share of responses in HTTP/2, and as its
last line ``key=value`` pairs: per variant ``<variant>_rps`` and ``<variant>_cpu_us``
(medians over the rounds) and ``h2_per_core_ratio`` (the httpx backend's CPU per HTTP/2
request over the fast backend's, the median of each round's ratio).
Prints figures only; never passes or fails on them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402

from bench.k6bin import find_k6, k6_version  # noqa: E402
from pytest_certload.errors import TransportError  # noqa: E402
from pytest_certload.http import BACKENDS, HTTP_VERSIONS, make_client  # noqa: E402

#: the --http2 variants: label -> (backend, http_version)
VARIANTS = {"fast_h1": ("fast", "1.1"), "fast_h2": ("fast", "2"), "httpx_h2": ("httpx", "2")}
K6_SCRIPT = """
import http from "k6/http";
import { Rate } from "k6/metrics";
const h2 = new Rate("certload_h2");
export const options = {
  vus: Number(__ENV.CEILING_VUS),
  duration: __ENV.CEILING_DURATION,
  discardResponseBodies: true,
};
export default function () {
  const res = http.get(__ENV.CEILING_URL);
  h2.add(res.proto === "HTTP/2.0");
}
export function handleSummary(data) {
  return { [__ENV.CEILING_SUMMARY]: JSON.stringify(data) };
}
"""


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
    parser.add_argument(
        "--http-version",
        choices=HTTP_VERSIONS,
        default="auto",
        help="the HTTP version the backend speaks (auto: what ALPN negotiates)",
    )
    parser.add_argument(
        "--http2",
        action="store_true",
        help="HTTP/1.1 and HTTP/2 of both backends beside k6, on nginx with TLS and http2",
    )
    parser.add_argument(
        "--rounds", type=_positive_int, default=2, metavar="N", help="--http2: rounds (2)"
    )
    parser.add_argument("--k6", type=Path, metavar="PATH", help="--http2: the k6 binary")
    parser.add_argument(
        "--no-k6", dest="with_k6", action="store_false", help="--http2: leave k6 out"
    )
    args = parser.parse_args(argv)
    if args.http2:
        args.tls = True
        args.wrk = False
    return args


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
        with start_nginx(cpu=other, tls=tls, http2=args.http2) as server:
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
    url: str,
    seconds: float,
    connections: int,
    backend: str,
    verify: bool | str,
    http_version: str = "auto",
    versions: dict[str, int] | None = None,
) -> tuple[int, int, float]:
    """Returns (ok responses, errors, elapsed seconds); counts the warm-up responses'
    HTTP versions into ``versions``."""
    clients = [
        make_client(backend, verify=verify, http_version=http_version) for _ in range(connections)
    ]
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
        version = (await client.get(url)).http_version
        if versions is not None:
            versions[version] = versions.get(version, 0) + 1
    t0 = time.monotonic()
    stop_at = t0 + seconds
    async with anyio.create_task_group() as tg:
        for i in range(connections):
            tg.start_soon(worker, i)
    elapsed = time.monotonic() - t0
    for client in clients:
        await client.aclose()
    return sum(counts) - sum(errors), sum(errors), elapsed


def measure(args: argparse.Namespace, url: str, backend: str, version: str) -> dict[str, float]:
    """One closed-loop run in this process: requests/s, CPU µs per request, h2 share."""
    versions: dict[str, int] = {}
    before = resource.getrusage(resource.RUSAGE_SELF)
    ok, errors, elapsed = anyio.run(
        closed_loop,
        url,
        args.seconds,
        args.connections,
        backend,
        args.verify,
        version,
        versions,
        backend_options={"use_uvloop": args.uvloop},
    )
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    total = ok + errors
    return {
        "rps": ok / elapsed if elapsed > 0 else 0.0,
        "cpu_us": cpu_s * 1e6 / total if total else 0.0,
        "h2": versions.get("HTTP/2", 0) / max(1, sum(versions.values())),
        "errors": float(errors),
    }


def measure_k6(args: argparse.Namespace, k6: Path, url: str, workdir: Path) -> dict[str, float]:
    """One k6 run on ``args.cpu`` (``--connections`` VUs): its requests/s and CPU."""
    script = workdir / "ceiling.js"
    script.write_text(K6_SCRIPT)
    summary = workdir / "summary.json"
    env = dict(os.environ)
    env.update(
        {
            "CEILING_URL": url,
            "CEILING_VUS": str(args.connections),
            "CEILING_DURATION": f"{args.seconds:g}s",
            "CEILING_SUMMARY": str(summary),
            "K6_NO_USAGE_REPORT": "true",
        }
    )
    if isinstance(args.verify, str):
        env["SSL_CERT_FILE"] = args.verify  # Go's crypto/x509 reads it: TLS verified
    cmd = [str(k6), "run", "--quiet", "--no-usage-report", "--no-color", "--address", ""]
    if args.verify is False:
        cmd.append("--insecure-skip-tls-verify")
    cmd.append(str(script))
    if args.cpu >= 0 and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(args.cpu), *cmd]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, env=env, capture_output=True, timeout=args.seconds + 120, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    metrics = json.loads(summary.read_text())["metrics"]
    count = metrics["http_reqs"]["values"]["count"]
    failed = metrics.get("http_req_failed", {}).get("values", {}).get("passes", 0)
    return {
        "rps": metrics["http_reqs"]["values"]["rate"],
        "cpu_us": cpu_s * 1e6 / count if count else 0.0,
        "h2": metrics["certload_h2"]["values"]["rate"],
        "errors": float(failed),
    }


def http2_side_by_side(args: argparse.Namespace) -> int:
    """``--http2``: every variant on the same nginx and core, ``--rounds`` times."""
    k6 = find_k6(args.k6) if args.with_k6 else None
    if k6 is not None:
        print(f"k6: {k6_version(k6)} ({k6})", flush=True)
    rounds: list[dict[str, dict[str, float]]] = []
    with _target(args) as url, tempfile.TemporaryDirectory(prefix="certload-k6-") as tmp:
        for n in range(args.rounds):
            figures: dict[str, dict[str, float]] = {}
            for label, (backend, version) in VARIANTS.items():
                print(f"round {n + 1}: {label} ...", flush=True)
                figures[label] = measure(args, url, backend, version)
            if k6 is not None:
                print(f"round {n + 1}: k6 ...", flush=True)
                figures["k6"] = measure_k6(args, k6, url, Path(tmp))
            rounds.append(figures)
            load = os.getloadavg()[0]
            print(f"\nround {n + 1} (load average {load:.2f}), {args.seconds:g} s each:")
            print("| variant | req/s | CPU µs/request | req/s per core | HTTP/2 share | errors |")
            print("|---|---|---|---|---|---|")
            for label, f in figures.items():
                per_core = 1e6 / f["cpu_us"] if f["cpu_us"] else 0.0
                print(
                    f"| {label} | {f['rps']:,.0f} | {f['cpu_us']:.1f} | {per_core:,.0f} | "
                    f"{f['h2']:.0%} | {f['errors']:.0f} |"
                )
            print(flush=True)
    keys: dict[str, float] = {}
    for label in rounds[0]:
        keys[f"{label}_rps"] = statistics.median(r[label]["rps"] for r in rounds)
        keys[f"{label}_cpu_us"] = statistics.median(r[label]["cpu_us"] for r in rounds)
    keys["h2_per_core_ratio"] = statistics.median(
        r["httpx_h2"]["cpu_us"] / r["fast_h2"]["cpu_us"] for r in rounds if r["fast_h2"]["cpu_us"]
    )
    keys["load1"] = os.getloadavg()[0]
    print(" ".join(f"{k}={v:.2f}" for k, v in keys.items()))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.cpus = sorted(os.sched_getaffinity(0))  # before pinning ourselves
    if args.cpu >= 0:
        try:
            os.sched_setaffinity(0, {args.cpu})
            print(f"pinned to cpu {args.cpu}", flush=True)
        except (OSError, AttributeError) as exc:
            print(f"could not pin to cpu {args.cpu}: {exc}", flush=True)
    if args.http2:
        return http2_side_by_side(args)
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
            args.http_version,
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
