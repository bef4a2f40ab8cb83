"""Per-interval figures of one scenario: what progress lines and the HTML report plot.

Memory is one HDR histogram per scenario plus one small row per interval, so it grows with
the run's duration, never with its request count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram

__all__ = ["Timeline", "TimelineRow"]

_HIGHEST = 3_600_000_000_000


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
        return {
            "t_s": self.start_ns / 1e9,
            "interval_s": (self.end_ns - self.start_ns) / 1e9,
            "iterations": self.iterations,
            "dropped": self.dropped,
            "requests": self.requests,
            "failed": self.failed,
            "p50_ms": self.p50_ns / 1e6,
            "p95_ms": self.p95_ns / 1e6,
            "p99_ms": self.p99_ns / 1e6,
            "max_ms": self.max_ns / 1e6,
            "target_rate": self.target_rate,
            "vus": self.vus,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TimelineRow:
        start = round(d["t_s"] * 1e9)
        return cls(
            start,
            start + round(d["interval_s"] * 1e9),
            d["iterations"],
            d["dropped"],
            d["requests"],
            d["failed"],
            round(d["p50_ms"] * 1e6),
            round(d["p95_ms"] * 1e6),
            round(d["p99_ms"] * 1e6),
            round(d["max_ms"] * 1e6),
            d["target_rate"],
            d["vus"],
        )


class Timeline:
    """Accumulates the current interval; :meth:`close_interval` appends a row."""

    def __init__(self) -> None:
        self.rows: list[TimelineRow] = []
        self._hist = HdrHistogram(1, _HIGHEST, 3)
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
        self._hist.record_value(min(max(latency_ns, 1), _HIGHEST))

    def close_interval(self, end_ns: int) -> TimelineRow:
        h = self._hist
        has = h.get_total_count() > 0
        span = max(end_ns - self._start_ns, 1)
        row = TimelineRow(
            self._start_ns,
            end_ns,
            self.iterations,
            self.dropped,
            self.requests,
            self.failed,
            h.get_value_at_percentile(50) if has else 0,
            h.get_value_at_percentile(95) if has else 0,
            h.get_value_at_percentile(99) if has else 0,
            h.get_max_value() if has else 0,
            self.scheduled * 1e9 / span if self.scheduled else None,
            self.vus,
        )
        self.rows.append(row)
        h.reset()
        self.iterations = self.dropped = self.requests = self.failed = self.scheduled = 0
        self._start_ns = end_ns
        return row
