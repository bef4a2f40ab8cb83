"""Per-route throughput ceilings of the certctl reference double.

Starts a private PostgreSQL and the double (demo seed, rate limiting off), then
drives each route closed-loop with many concurrent connections for a fixed time
and prints requests/s and p50/p99 latency. It prints figures; it never passes or
fails on them. Everything runs on this machine, so the generator competes with the
double and PostgreSQL for the same cores: read the figures as lower bounds.

    PYTHONPATH=. .venv/bin/python bench/double_ceiling.py [--duration 10] \
        [--connections 32] [--client fast|fast-h2|httpx|httpx-h2] [--routes health,...] \
        [--server-args "--loop asyncio --runtime-threads 2"]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import math
import os
import shlex
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from pytest_certload.stack.certctl import CertctlServer
from pytest_certload.stack.postgres import LocalPostgres
from pytest_certload.stack.tls import make_tls_material

ROUTES = ("health", "list", "create", "heartbeat", "acme_directory", "acme_nonce")
ACME = "/acme/profile/prof-standard-tls"


_TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(c) for c in fh.read().split()]
    except OSError:
        pass
    return found


def tree_cpu_s(root: int | None) -> float:
    """User + system CPU seconds of ``root`` and all its descendants (Linux /proc)."""
    if root is None:
        return 0.0
    total = 0
    stack = [root]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
        stack += _children(pid)
    return total / _TICKS


def postmaster_pid(postgres: LocalPostgres) -> int | None:
    if postgres.directory is None:
        return None
    try:
        return int((postgres.directory / "data" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def nearest_rank(sorted_ns: list[int], q: float) -> float:
    """The project's quantile definition: nearest rank, in ms."""
    if not sorted_ns:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_ns)))
    return sorted_ns[rank - 1] / 1e6


class Sender:
    """One connection's worth of client: ``send(method, path, json) -> status``."""

    def __init__(self, kind: str, base_url: str, ca: Path, key: str) -> None:
        self.kind = kind
        self.headers = {"Authorization": f"Bearer {key}"}
        self.client: Any
        if kind in ("fast", "fast-h2"):
            from pytest_certload.http import make_client

            version = "2" if kind == "fast-h2" else "1.1"
            self.client = make_client(
                "fast", verify=str(ca), base_url=base_url, http_version=version
            )
        else:
            import ssl

            self.client = httpx.AsyncClient(
                base_url=base_url,
                http2=kind == "httpx-h2",
                verify=ssl.create_default_context(cafile=str(ca)),
                timeout=30.0,
            )

    async def send(self, method: str, path: str, body: Any = None) -> int:
        response = await self.client.request(method, path, headers=self.headers, json=body)
        status: int = response.status_code
        return status

    async def aclose(self) -> None:
        await self.client.aclose()


Request = Callable[[Sender], Awaitable[int]]


def make_request(route: str, agent_id: str) -> Request:
    counter = itertools.count()
    run = uuid.uuid4().hex[:8]

    async def health(s: Sender) -> int:
        return await s.send("GET", "/health")

    async def listing(s: Sender) -> int:
        return await s.send("GET", "/api/v1/certificates?per_page=50")

    async def create(s: Sender) -> int:
        cn = f"bench-{run}-{next(counter)}.example.test"
        body = {
            "name": cn,
            "common_name": cn,
            "owner_id": "o-alice",
            "team_id": "t-platform",
            "issuer_id": "iss-local",
            "renewal_policy_id": "rp-standard",
            "environment": "production",
            "sans": [cn],
            "expires_at": "2099-01-01T00:00:00Z",
        }
        return await s.send("POST", "/api/v1/certificates", body)

    async def heartbeat(s: Sender) -> int:
        body = {"version": "2.0.9", "hostname": "bench", "os": "linux"}
        return await s.send("POST", f"/api/v1/agents/{agent_id}/heartbeat", body)

    async def directory(s: Sender) -> int:
        return await s.send("GET", f"{ACME}/directory")

    async def nonce(s: Sender) -> int:
        return await s.send("HEAD", f"{ACME}/new-nonce")

    table: dict[str, Request] = {
        "health": health,
        "list": listing,
        "create": create,
        "heartbeat": heartbeat,
        "acme_directory": directory,
        "acme_nonce": nonce,
    }
    return table[route]


async def drive(
    senders: list[Sender], request: Request, duration_s: float
) -> tuple[int, int, list[int], float]:
    latencies: list[int] = []
    errors = 0
    ok = 0
    stop_at = time.monotonic() + duration_s

    async def loop(sender: Sender) -> None:
        nonlocal errors, ok
        while time.monotonic() < stop_at:
            start = time.perf_counter_ns()
            try:
                status = await request(sender)
            except Exception:
                errors += 1
                continue
            latencies.append(time.perf_counter_ns() - start)
            if status < 400:
                ok += 1
            else:
                errors += 1

    began = time.monotonic()
    await asyncio.gather(*(loop(s) for s in senders))
    return ok, errors, sorted(latencies), time.monotonic() - began


async def main(args: argparse.Namespace) -> None:
    routes = [r for r in args.routes.split(",") if r]
    for route in routes:
        if route not in ROUTES:
            sys.exit(f"unknown route {route!r}; use {', '.join(ROUTES)}")
    workdir = Path(tempfile.mkdtemp(prefix="certload-bench-"))
    postgres = LocalPostgres()
    server: CertctlServer | None = None
    try:
        await postgres.start()
        await postgres.wait_ready(30_000_000_000)
        tls = make_tls_material(workdir / "tls", server_names={"certctl": ["127.0.0.1"]})
        cert, key = tls.server_pair("certctl")
        command = [sys.executable, "-m", "pytest_certload.double", *shlex.split(args.server_args)]
        server = CertctlServer(
            db_dsn=postgres.dsn(),
            cert=cert,
            key=key,
            ca=tls.ca_cert,
            command=command,
            base_dir=workdir,
        )
        await server.start()
        await server.wait_ready(60_000_000_000)
        base = server.url()
        async with httpx.AsyncClient(
            base_url=base,
            verify=__import__("ssl").create_default_context(cafile=str(tls.ca_cert)),
            headers={"Authorization": f"Bearer {server.api_key}"},
        ) as setup:
            agent = await setup.post(
                "/api/v1/agents", json={"name": f"bench-{uuid.uuid4().hex[:8]}", "hostname": "b"}
            )
            agent_id = agent.json()["id"]
        print(
            f"# certctl double ceilings, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
            f"client={args.client}, connections={args.connections}, "
            f"duration={args.duration:g}s, server args={args.server_args!r}"
        )
        print(
            f"{'route':<16}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}"
            f"{'double CPU us/req':>19}{'pg CPU us/req':>15}"
        )
        pg_pid = postmaster_pid(postgres)
        for route in routes:
            senders = [
                Sender(args.client, base, tls.ca_cert, server.api_key)
                for _ in range(args.connections)
            ]
            try:
                request = make_request(route, agent_id)
                await drive(senders, request, min(1.0, args.duration))  # warm-up
                cpu_double, cpu_pg = tree_cpu_s(server.pid), tree_cpu_s(pg_pid)
                ok, errors, lat, elapsed = await drive(senders, request, args.duration)
                cpu_double = tree_cpu_s(server.pid) - cpu_double
                cpu_pg = tree_cpu_s(pg_pid) - cpu_pg
            finally:
                for sender in senders:
                    await sender.aclose()
            print(
                f"{route:<16}{ok / elapsed:>10.0f}{nearest_rank(lat, 50):>10.2f}"
                f"{nearest_rank(lat, 99):>10.2f}{errors:>8}"
                f"{cpu_double / max(ok, 1) * 1e6:>19.0f}{cpu_pg / max(ok, 1) * 1e6:>15.0f}",
                flush=True,
            )
    finally:
        if server is not None:
            await server.stop()
        await postgres.stop()
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per route (10)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (32)")
    parser.add_argument(
        "--client",
        choices=("fast", "fast-h2", "httpx", "httpx-h2"),
        default="fast",
        help="the fast backend over HTTP/1.1 (default) or HTTP/2 (fast-h2); httpx(-h2)",
    )
    parser.add_argument("--routes", default=",".join(ROUTES), help="comma-separated routes")
    parser.add_argument(
        "--server-args", default="", help="extra flags for python -m pytest_certload.double"
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    try:
        import uvloop

        uvloop.run(main(arguments))
    except ImportError:
        asyncio.run(main(arguments))
