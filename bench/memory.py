"""Memory of the recording path: RSS growth over N recorded requests.

    python bench/memory.py [--requests 1000000] [--statuses 3]

Pushes N requests through a VU's recording client (the same code a scenario uses) with
a stub HTTP backend that answers at once, so only the engine's bookkeeping is measured:
HDR histograms per series, counters, rates and the per-interval timeline. RSS is read
from /proc after a warm-up of 10,000 requests and again at the end. The last line is

    requests=<int> rss_growth_mb=<float> us_per_request=<float>

Prints figures only; never passes or fails on them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402

from pytest_certload.engine import VU, RealClock, Timeline  # noqa: E402
from pytest_certload.engine.vu import ScenarioContext  # noqa: E402
from pytest_certload.http import Headers, Response, Timings  # noqa: E402
from pytest_certload.metrics import MetricStore, declare_builtins  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class StubClient:
    """Answers every request at once with a canned response and plausible timings."""

    def __init__(self, statuses: int) -> None:
        self._n = 0
        self._statuses = [200, 201, 404, 429, 500][:statuses]
        self._headers = Headers([("content-type", "text/plain")])

    async def request(self, method: str, url: str, **_: Any) -> Response:
        self._n += 1
        n = self._n
        return Response(
            self._statuses[n % len(self._statuses)],
            self._headers,
            b"ok\n",
            url=url,
            method=method,
            timings=Timings(
                connecting=0,
                tls_handshaking=0,
                sending=2_000 + n % 89,
                waiting=50_000 + n % 997,
                receiving=1_000 + n % 31,
                duration=60_000 + n % 991,
            ),
        )

    async def aclose(self) -> None:
        return None


async def main_async(requests: int, statuses: int) -> tuple[float, float, float]:
    store = MetricStore()
    declare_builtins(store)
    ctx = ScenarioContext(
        name="memory",
        tags={"scenario": "memory"},
        store=store,
        client_factory=lambda: StubClient(statuses),
        open_model=True,
        clock=RealClock(),
    )
    ctx.timeline = Timeline()
    vu = VU(ctx, 1, 1)
    for _ in range(10_000):
        await vu.http.get("http://stub/item", name="/item")
    before = rss_mb()
    t0 = time.perf_counter()
    for i in range(requests):
        await vu.http.get("http://stub/item", name="/item")
        if i % 100_000 == 0:
            ctx.timeline.close_interval(i)
    elapsed = time.perf_counter() - t0
    return before, rss_mb(), elapsed * 1e6 / requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--statuses", type=int, default=3, choices=range(1, 6))
    args = parser.parse_args(argv)
    before, after, us = anyio.run(
        main_async, args.requests, args.statuses, backend_options={"use_uvloop": True}
    )
    print(f"rss before={before:.1f} MB after={after:.1f} MB")
    print(f"requests={args.requests} rss_growth_mb={after - before:.1f} us_per_request={us:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
