"""Per-interval figures of one scenario: what progress lines and the HTML report plot.

Memory is one HDR histogram per scenario plus one small row per interval, so it grows with
the run's duration, never with its request count. Interval percentiles use the same
nearest-rank definition as thresholds (``TrendSink.quantiles``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ..metrics import TrendSink

__all__ = ["Timeline", "TimelineRow"]


@dataclass(frozen=True)
class TimelineRow:
    """One interval: offsets in ns from the run start, latencies in ns."""

    start_ns: int
    end_ns: int
    iterations: int
    dropped: int
    requests: int
    failed: int
    p50_ns: int
    p95_ns: int
    p99_ns: int
    max_ns: int
    target_rate: float | None  # scheduled iterations per second (open model)
    vus: int

    def to_dict(self) -> dict[str, Any]:
        """Every field as is: offsets and latencies in integer ns."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TimelineRow:
        rate = data["target_rate"]
        return cls(
            start_ns=int(data["start_ns"]),
            end_ns=int(data["end_ns"]),
            iterations=int(data["iterations"]),
            dropped=int(data["dropped"]),
            requests=int(data["requests"]),
            failed=int(data["failed"]),
            p50_ns=int(data["p50_ns"]),
            p95_ns=int(data["p95_ns"]),
            p99_ns=int(data["p99_ns"]),
            max_ns=int(data["max_ns"]),
            target_rate=None if rate is None else float(rate),
            vus=int(data["vus"]),
        )


class Timeline:
    """Accumulates the current interval; :meth:`close_interval` appends a row."""

    def __init__(self) -> None:
        self.rows: list[TimelineRow] = []
        self._hist = TrendSink(time=True)
        self._start_ns = 0
        self.iterations = 0
        self.dropped = 0
        self.requests = 0
        self.failed = 0
        self.scheduled = 0
        self.vus = 0

    def begin(self, start_ns: int) -> None:
        self._start_ns = start_ns

    def record_request(self, latency_ns: int, failed: bool) -> None:
        self.requests += 1
        if failed:
            self.failed += 1
        self._hist.add(latency_ns)

    def close_interval(self, end_ns: int) -> TimelineRow:
        """Close the current interval (same quantile definition as thresholds)."""
        h = self._hist
        q = h.quantiles((50, 95, 99)) if h.count else {50: 0, 95: 0, 99: 0}
        span = max(end_ns - self._start_ns, 1)
        row = TimelineRow(
            self._start_ns,
            end_ns,
            self.iterations,
            self.dropped,
            self.requests,
            self.failed,
            q[50],
            q[95],
            q[99],
            h.max() if h.count else 0,
            self.scheduled * 1e9 / span if self.scheduled else None,
            self.vus,
        )
        self.rows.append(row)
        # a fresh histogram is a calloc; resetting 33,792 counters in Python takes ~10 ms
        self._hist = TrendSink(time=True)
        self.iterations = self.dropped = self.requests = self.failed = self.scheduled = 0
        self._start_ns = end_ns
        return row
