"""Metric sinks in k6's model: Trend (HDR histogram), Rate, Counter and Gauge.

A :class:`MetricStore` holds one sink per *series*, a series being a metric name plus a
:data:`TagSet`. :meth:`MetricStore.select` merges every series whose tags include a
filter, which is what k6 calls a sub-metric (``http_req_duration{scenario:issuance}``).
Stores merge exactly (controller + workers) and serialise to JSON-safe dicts.

Units: time trends (``declare(..., time=True)``) record integer nanoseconds and are
reported in milliseconds; other trends record plain non-negative integers.

Quantiles, one definition everywhere
------------------------------------
``p(q)`` is the **nearest-rank** quantile: sort the ``n`` samples and take the one at
rank ``max(1, ceil(q / 100 * n))``; ``q`` is read as the decimal the user wrote, so
``p(99.9)`` of 1,000 samples is rank 999, not 1,000. The median (``med``) is ``p(50)``.
The sample found is reported as the *highest equivalent value* of its HDR bucket, so a
reported quantile is never lower than the sample it stands for and at most 0.1 % higher
(3 significant digits). ``min`` is the lowest and ``max`` the highest equivalent value of
their buckets, so ``min <= p(q) <= max`` and ``p(100) == max``. ``avg`` is exact (the sum
is kept beside the histogram).

``hdrh``'s own ``get_value_at_percentile`` is *not* used: it rounds the rank half-up
(``int(q * n / 100 + 0.5)``), which for 1..10 gives ``p(94) == 9`` where nearest rank
gives 10, i.e. one rank low. We walk the bucket counts ourselves.

Memory is bounded by the number of series (one HDR histogram of about 270 KB per trend
series), never by the number of samples. Series per metric are capped
(``max_series_per_metric``) to catch tags with unbounded values.
"""

from __future__ import annotations

import binascii
import re
import struct
import time as _time
import zlib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from fractions import Fraction
from itertools import accumulate
from math import ceil
from typing import Any, TypeVar

from hdrh.histogram import HdrHistogram

from .errors import ConfigError
from .units import NS_PER_S

__all__ = [
    "BUILTIN_METRICS",
    "CHECKS",
    "DATA_RECEIVED",
    "DATA_SENT",
    "DROPPED_ITERATIONS",
    "FORMAT_VERSION",
    "GENERATOR_HICCUP",
    "HDR_HIGHEST",
    "HDR_LOWEST",
    "HDR_SIGNIFICANT_FIGURES",
    "HTTP_REQS",
    "HTTP_REQ_BLOCKED",
    "HTTP_REQ_CONNECTING",
    "HTTP_REQ_DURATION",
    "HTTP_REQ_FAILED",
    "HTTP_REQ_GENERATOR_DELAY",
    "HTTP_REQ_RECEIVING",
    "HTTP_REQ_SENDING",
    "HTTP_REQ_SERVER_TIME",
    "HTTP_REQ_SERVICE_TIME",
    "HTTP_REQ_TLS_HANDSHAKING",
    "HTTP_REQ_WAITING",
    "ITERATIONS",
    "ITERATION_DURATION",
    "K6_HTTP_REQ_DURATION",
    "METRIC_NAME_RE",
    "PROCESS_METRICS",
    "SCHEDULE_LAG",
    "VUS",
    "VUS_MAX",
    "CounterSink",
    "GaugeSink",
    "MetricStore",
    "MetricType",
    "RateSink",
    "Sink",
    "TagSet",
    "TrendSink",
    "declare_builtins",
    "nearest_rank",
    "summary",
    "tagset",
]

TagSet = tuple[tuple[str, str], ...]
"""Sorted ``(key, value)`` pairs; hashable, so it keys a series. Build it with :func:`tagset`."""

HDR_LOWEST = 1
HDR_HIGHEST = 3_600_000_000_000  # one hour in ns
HDR_SIGNIFICANT_FIGURES = 3
# The layout above has unit magnitude 0 and 2,048 sub-buckets (2**11, half 2**10): the
# counts index of value v is (b << 10) + (v >> b) with b = bit_length(v | 2047) - 11.
_SUB_BUCKET_BITS = 11
_SUB_BUCKET_HALF_BITS = _SUB_BUCKET_BITS - 1
_SUB_BUCKET_MASK = (1 << _SUB_BUCKET_BITS) - 1
FORMAT_VERSION = 1
"""Version of the :meth:`MetricStore.to_dict` layout; bump it on any incompatible change."""

_NS_PER_MS = 1_000_000
METRIC_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
"""What a metric name may be: letters, digits, ``_ . -``, starting with a letter or ``_``."""


class MetricType(StrEnum):
    TREND = "trend"
    RATE = "rate"
    COUNTER = "counter"
    GAUGE = "gauge"


# Built-in metric names (k6's, plus service time and schedule lag for the open model, and
# the server's time and the generator's delay from the kernel's receive timestamps).
HTTP_REQS = "http_reqs"
HTTP_REQ_FAILED = "http_req_failed"
HTTP_REQ_DURATION = "http_req_duration"
HTTP_REQ_SERVICE_TIME = "http_req_service_time"
HTTP_REQ_SERVER_TIME = "http_req_server_time"
HTTP_REQ_GENERATOR_DELAY = "http_req_generator_delay"
HTTP_REQ_BLOCKED = "http_req_blocked"
HTTP_REQ_CONNECTING = "http_req_connecting"
HTTP_REQ_TLS_HANDSHAKING = "http_req_tls_handshaking"
HTTP_REQ_SENDING = "http_req_sending"
HTTP_REQ_WAITING = "http_req_waiting"
HTTP_REQ_RECEIVING = "http_req_receiving"
ITERATIONS = "iterations"
ITERATION_DURATION = "iteration_duration"
DROPPED_ITERATIONS = "dropped_iterations"
SCHEDULE_LAG = "schedule_lag"
CHECKS = "checks"
VUS = "vus"
VUS_MAX = "vus_max"
DATA_SENT = "data_sent"
DATA_RECEIVED = "data_received"
GENERATOR_HICCUP = "generator_hiccup"
K6_HTTP_REQ_DURATION = "k6_http_req_duration"

BUILTIN_METRICS: Mapping[str, tuple[MetricType, bool]] = {
    HTTP_REQS: (MetricType.COUNTER, False),
    HTTP_REQ_FAILED: (MetricType.RATE, False),
    HTTP_REQ_DURATION: (MetricType.TREND, True),
    HTTP_REQ_SERVICE_TIME: (MetricType.TREND, True),
    HTTP_REQ_SERVER_TIME: (MetricType.TREND, True),
    HTTP_REQ_GENERATOR_DELAY: (MetricType.TREND, True),
    HTTP_REQ_BLOCKED: (MetricType.TREND, True),
    HTTP_REQ_CONNECTING: (MetricType.TREND, True),
    HTTP_REQ_TLS_HANDSHAKING: (MetricType.TREND, True),
    HTTP_REQ_SENDING: (MetricType.TREND, True),
    HTTP_REQ_WAITING: (MetricType.TREND, True),
    HTTP_REQ_RECEIVING: (MetricType.TREND, True),
    ITERATIONS: (MetricType.COUNTER, False),
    ITERATION_DURATION: (MetricType.TREND, True),
    DROPPED_ITERATIONS: (MetricType.COUNTER, False),
    SCHEDULE_LAG: (MetricType.TREND, True),
    CHECKS: (MetricType.RATE, False),
    VUS: (MetricType.GAUGE, False),
    VUS_MAX: (MetricType.GAUGE, False),
    DATA_SENT: (MetricType.COUNTER, False),
    DATA_RECEIVED: (MetricType.COUNTER, False),
    GENERATOR_HICCUP: (MetricType.TREND, True),
    K6_HTTP_REQ_DURATION: (MetricType.TREND, True),
}
"""Every built-in metric: name -> (type, time)."""

PROCESS_METRICS = frozenset({GENERATOR_HICCUP})
"""Metrics of the generator process, not of a scenario: recorded without tags, and kept
by :meth:`MetricStore.subset` whatever its filter (every scenario ran in that process)."""


def tagset(mapping: Mapping[str, str]) -> TagSet:
    """The :data:`TagSet` of ``mapping``: its items sorted by key."""
    return tuple(sorted(mapping.items()))


def nearest_rank(q: float, n: int) -> int:
    """The 1-based nearest rank of quantile ``q`` (0..100) among ``n`` samples.

    ``q`` is taken as the decimal it prints as (``99.9`` is 999/10, not the binary float
    just above it), so ranks land where a person computing by hand puts them.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"quantile {q!r} is outside 0..100")
    return max(1, ceil(Fraction(repr(float(q))) * n / 100))


def _new_histogram() -> HdrHistogram:
    return HdrHistogram(HDR_LOWEST, HDR_HIGHEST, HDR_SIGNIFICANT_FIGURES)


class TrendSink:
    """Non-negative integer samples in one HDR histogram, plus their exact sum.

    Values above :data:`HDR_HIGHEST` are recorded as :data:`HDR_HIGHEST` and counted in
    ``clamped``. See the module docstring for the quantile definition.
    """

    __slots__ = ("_hist", "_sum", "clamped", "time")

    def __init__(self, *, time: bool = False) -> None:
        self.time = time
        self.clamped = 0
        self._sum = 0
        self._hist = _new_histogram()

    @property
    def count(self) -> int:
        return int(self._hist.total_count)

    @property
    def samples(self) -> int:
        return self.count

    @property
    def sum(self) -> int:
        return self._sum

    def add(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"trend values must be >= 0, got {value!r}")
        if value > HDR_HIGHEST:
            value = HDR_HIGHEST
            self.clamped += 1
        self._sum += value
        # HdrHistogram.record_value() inlined for this layout (3x faster; the bucket
        # arithmetic is checked against hdrh's own in the tests).
        hist = self._hist
        bucket = (value | _SUB_BUCKET_MASK).bit_length() - _SUB_BUCKET_BITS
        hist.counts[(bucket << _SUB_BUCKET_HALF_BITS) + (value >> bucket)] += 1
        hist.total_count += 1
        if value < hist.min_value:
            hist.min_value = value
        if value > hist.max_value:
            hist.max_value = value

    def mean(self) -> float:
        """Exact mean of the recorded (clamped) values; 0.0 when empty."""
        return self._sum / self.count if self.count else 0.0

    def min(self) -> int:
        """Lowest equivalent value of the smallest sample's bucket (0 when empty)."""
        return int(self._hist.get_min_value()) if self.count else 0

    def max(self) -> int:
        """Highest equivalent value of the largest sample's bucket (0 when empty)."""
        return int(self._hist.get_max_value())

    def quantile(self, q: float) -> int:
        """Nearest-rank quantile ``q`` in 0..100, reported high (see module docstring)."""
        return self.quantiles((q,))[q]

    def quantiles(self, qs: Iterable[float]) -> dict[float, int]:
        """Several quantiles for the price of one walk over the bucket counts."""
        n = self.count
        if n == 0:
            raise ValueError("no samples: a quantile of an empty trend is undefined")
        ranks = {q: nearest_rank(q, n) for q in qs}
        values = self.at_ranks(ranks.values())
        return {q: values[rank] for q, rank in ranks.items()}

    def at_ranks(self, ranks: Iterable[int]) -> dict[int, int]:
        """The sample at each 1-based rank (of ``1..count``), reported high as every
        quantile is: the highest equivalent value of its bucket."""
        n = self.count
        hist = self._hist
        last = hist.get_counts_array_index(hist.max_value)
        cumulative = list(accumulate(hist.counts[: last + 1]))
        result: dict[int, int] = {}
        for rank in ranks:
            if not 1 <= rank <= n:
                raise ValueError(f"rank {rank!r} is outside 1..{n}")
            index = bisect_left(cumulative, rank)
            result[rank] = int(hist.get_highest_equivalent_value(hist.get_value_from_index(index)))
        return result

    def counts(self) -> dict[int, int]:
        """Non-zero bucket counts keyed by the bucket's lowest value (for tests and reports)."""
        hist = self._hist
        if not self.count:
            return {}
        last = hist.get_counts_array_index(hist.max_value)
        return {
            int(hist.get_value_from_index(i)): int(c)
            for i, c in enumerate(hist.counts[: last + 1])
            if c
        }

    def merge(self, other: TrendSink) -> None:
        if not other.count:
            return
        # HdrHistogram.add() takes the min as 0 when either side is empty; keep our own.
        lowest = min(self._hist.min_value, other._hist.min_value)
        self._hist.add(other._hist)
        self._hist.min_value = lowest
        self._sum += other._sum
        self.clamped += other.clamped

    def copy(self) -> TrendSink:
        new = TrendSink(time=self.time)
        new.merge(self)
        return new

    def shifted(self, by: int) -> TrendSink:
        """A new sink with every sample lowered by ``by`` (floored at 0), each taken at
        its bucket's lowest value: a lower bound of what was recorded, e.g. a latency
        with a known stall of the generator credited back."""
        new = TrendSink(time=self.time)
        hist = new._hist
        for value, count in self.counts().items():
            lowered = max(value - by, 0)
            hist.record_value(lowered, count)
            new._sum += lowered * count
        return new

    def to_dict(self) -> dict[str, Any]:
        return {
            "hdr": self._hist.encode().decode("ascii"),
            "sum": self._sum,
            "clamped": self.clamped,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, time: bool = False) -> TrendSink:
        try:
            hist = HdrHistogram.decode(data["hdr"])
        except (zlib.error, binascii.Error, struct.error, TypeError, ValueError) as exc:
            # a damaged or truncated encoding: say so as ValueError, as every reader expects
            raise ValueError(f"damaged HDR histogram ({type(exc).__name__}: {exc})") from exc
        layout = (hist.lowest_trackable_value, hist.highest_trackable_value)
        if (
            layout != (HDR_LOWEST, HDR_HIGHEST)
            or hist.significant_figures != HDR_SIGNIFICANT_FIGURES
        ):
            raise ValueError(
                f"histogram layout {layout} with {hist.significant_figures} significant "
                f"figures; expected ({HDR_LOWEST}, {HDR_HIGHEST}) with {HDR_SIGNIFICANT_FIGURES}"
            )
        sink = cls(time=time)
        sink._hist = hist
        sink._sum = int(data["sum"])
        sink.clamped = int(data["clamped"])
        return sink


class RateSink:
    """The share of true samples: ``trues / total``."""

    __slots__ = ("total", "trues")

    def __init__(self) -> None:
        self.trues = 0
        self.total = 0

    @property
    def samples(self) -> int:
        return self.total

    def add(self, ok: bool) -> None:
        self.total += 1
        if ok:
            self.trues += 1

    def rate(self) -> float:
        return self.trues / self.total if self.total else 0.0

    def merge(self, other: RateSink) -> None:
        self.trues += other.trues
        self.total += other.total

    def copy(self) -> RateSink:
        new = RateSink()
        new.merge(self)
        return new

    def to_dict(self) -> dict[str, Any]:
        return {"trues": self.trues, "total": self.total}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RateSink:
        sink = cls()
        sink.trues = int(data["trues"])
        sink.total = int(data["total"])
        return sink


class CounterSink:
    """A running sum, with the monotonic times of its first and last addition."""

    __slots__ = ("count", "first_ns", "last_ns", "samples")

    def __init__(self) -> None:
        self.count: float = 0
        self.samples = 0
        self.first_ns: int | None = None
        self.last_ns: int | None = None

    def add(self, value: float, at_ns: int) -> None:
        self.count += value
        self.samples += 1
        if self.first_ns is None:
            self.first_ns = at_ns
        self.last_ns = at_ns

    def rate(self, duration_ns: int | None = None) -> float | None:
        """Count per second over ``duration_ns`` (the run), else over first..last addition.

        ``None`` when there is no time span to divide by.
        """
        if duration_ns is None and self.first_ns is not None and self.last_ns is not None:
            duration_ns = self.last_ns - self.first_ns
        if not duration_ns:
            return None
        return self.count * NS_PER_S / duration_ns

    def merge(self, other: CounterSink) -> None:
        self.count += other.count
        self.samples += other.samples
        if other.first_ns is not None and (self.first_ns is None or other.first_ns < self.first_ns):
            self.first_ns = other.first_ns
        if other.last_ns is not None and (self.last_ns is None or other.last_ns > self.last_ns):
            self.last_ns = other.last_ns

    def copy(self) -> CounterSink:
        new = CounterSink()
        new.merge(self)
        return new

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "samples": self.samples,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CounterSink:
        sink = cls()
        sink.count = data["count"]
        sink.samples = int(data["samples"])
        sink.first_ns = data["first_ns"]
        sink.last_ns = data["last_ns"]
        return sink


class GaugeSink:
    """The last value set, with the minimum and maximum ever set.

    Merging keeps the value set last (by monotonic time), so merged series report the
    most recent value of any of them.
    """

    __slots__ = ("last_ns", "max", "min", "samples", "value")

    def __init__(self, value: float, at_ns: int) -> None:
        self.value = value
        self.min = value
        self.max = value
        self.last_ns = at_ns
        self.samples = 1

    def set(self, value: float, at_ns: int) -> None:
        self.value = value
        self.last_ns = at_ns
        self.samples += 1
        if value < self.min:
            self.min = value
        elif value > self.max:
            self.max = value

    def merge(self, other: GaugeSink) -> None:
        if other.last_ns >= self.last_ns:
            self.value = other.value
            self.last_ns = other.last_ns
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.samples += other.samples

    def copy(self) -> GaugeSink:
        return GaugeSink.from_dict(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "min": self.min,
            "max": self.max,
            "last_ns": self.last_ns,
            "samples": self.samples,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GaugeSink:
        sink = cls(data["value"], int(data["last_ns"]))
        sink.min = data["min"]
        sink.max = data["max"]
        sink.samples = int(data["samples"])
        return sink


Sink = TrendSink | RateSink | CounterSink | GaugeSink
_S = TypeVar("_S", TrendSink, RateSink, CounterSink, GaugeSink)


class MetricStore:
    """Declared metrics and their tagged series.

    Recording (``add_trend``, ``add_rate``, ``add_counter``, ``set_gauge``) costs two dict
    lookups once a series exists; the first sample of a series checks the declaration,
    the tag set and the series cap. ``clock`` stamps counters and gauges (monotonic ns).
    """

    def __init__(
        self,
        *,
        max_series_per_metric: int = 10_000,
        clock: Callable[[], int] = _time.monotonic_ns,
    ) -> None:
        self.max_series_per_metric = max_series_per_metric
        self._clock = clock
        self._types: dict[str, MetricType] = {}
        self._time: dict[str, bool] = {}
        self._trends: dict[str, dict[TagSet, TrendSink]] = {}
        self._rates: dict[str, dict[TagSet, RateSink]] = {}
        self._counters: dict[str, dict[TagSet, CounterSink]] = {}
        self._gauges: dict[str, dict[TagSet, GaugeSink]] = {}
        # every tag set a metric has had since the store was made, across rotate(): the
        # series cap counts these, so a store merged from the rotated parts fits it too
        self._seen: dict[str, set[TagSet]] = {}

    # -- declaration -------------------------------------------------------------------

    def declare(self, name: str, type: MetricType, *, time: bool = False) -> None:
        """Declare metric ``name``; idempotent, ConfigError if it conflicts.

        ``time=True`` marks a trend of nanoseconds, reported in milliseconds.
        """
        type = MetricType(type)
        if not isinstance(name, str) or not METRIC_NAME_RE.match(name):
            raise ConfigError(
                f"{name!r} is not a valid metric name; use letters, digits, '_', '.' and "
                f"'-', starting with a letter or '_', e.g. 'cert_issue_duration'."
            )
        if time and type is not MetricType.TREND:
            raise ConfigError(
                f"metric {name!r} cannot be declared with time=True: only trends hold times."
            )
        known = self._types.get(name)
        if known is not None:
            if known is not type or self._time[name] != time:
                raise ConfigError(
                    f"metric {name!r} is already declared as {self._describe(name)}; "
                    f"it cannot be redeclared as {_describe(type, time)}. "
                    f"Pick another name for the new metric."
                )
            return
        self._types[name] = type
        self._time[name] = time
        self._table(type)[name] = {}
        self._seen[name] = set()

    def _table(self, type: MetricType) -> dict[str, Any]:
        tables: dict[MetricType, dict[str, Any]] = {
            MetricType.TREND: self._trends,
            MetricType.RATE: self._rates,
            MetricType.COUNTER: self._counters,
            MetricType.GAUGE: self._gauges,
        }
        return tables[type]

    def _describe(self, name: str) -> str:
        return _describe(self._types[name], self._time[name])

    # -- recording (hot path) ----------------------------------------------------------

    def add_trend(self, name: str, value: int, tags: TagSet = ()) -> None:
        """Record ``value`` (ns for a time trend) in series ``(name, tags)``."""
        try:
            sink = self._trends[name][tags]
        except KeyError:
            sink = self._admit(self._trends, name, tags, MetricType.TREND, "add_trend")
        sink.add(value)

    def add_rate(self, name: str, ok: bool, tags: TagSet = ()) -> None:
        try:
            sink = self._rates[name][tags]
        except KeyError:
            sink = self._admit(self._rates, name, tags, MetricType.RATE, "add_rate")
        sink.add(ok)

    def add_counter(self, name: str, value: float = 1, tags: TagSet = ()) -> None:
        try:
            sink = self._counters[name][tags]
        except KeyError:
            sink = self._admit(self._counters, name, tags, MetricType.COUNTER, "add_counter")
        sink.add(value, self._clock())

    def set_gauge(self, name: str, value: float, tags: TagSet = ()) -> None:
        try:
            sink = self._gauges[name][tags]
        except KeyError:
            self._admit(self._gauges, name, tags, MetricType.GAUGE, "set_gauge", value)
            return
        sink.set(value, self._clock())

    def _admit(
        self,
        table: dict[str, dict[TagSet, _S]],
        name: str,
        tags: TagSet,
        type: MetricType,
        method: str,
        gauge_value: float = 0,
    ) -> _S:
        """First sample of a series: check everything, then create its sink."""
        series = table.get(name)
        if series is None:
            known = self._types.get(name)
            if known is None:
                raise ConfigError(
                    f"metric {name!r} is not declared; declare it first with "
                    f"store.declare({name!r}, MetricType.{type.name}) (built-ins: "
                    f"declare_builtins(store))."
                )
            raise ConfigError(
                f"metric {name!r} is {self._describe(name)}; {method}() records "
                f"{type.value}s. Use the method for its type or another name."
            )
        _check_tagset(tags)
        seen = self._seen[name]
        if tags not in seen:
            self._check_cap(name, seen, tags)
            seen.add(tags)
        sink: Sink
        if type is MetricType.TREND:
            sink = TrendSink(time=self._time[name])
        elif type is MetricType.RATE:
            sink = RateSink()
        elif type is MetricType.COUNTER:
            sink = CounterSink()
        else:
            sink = GaugeSink(gauge_value, self._clock())
        series[tags] = sink  # type: ignore[assignment]  # sink's class matches `type`
        return series[tags]

    def _check_cap(
        self, name: str, series: Iterable[TagSet] | Mapping[TagSet, Sink], tags: TagSet
    ) -> None:
        known_sets = list(series)
        if len(known_sets) < self.max_series_per_metric:
            return
        values: dict[str, set[str]] = {}
        for known in known_sets:
            for key, value in known:
                values.setdefault(key, set()).add(value)
        worst = max(values, key=lambda key: len(values[key]), default="")
        culprit = (
            f"tag {worst!r} has {len(values[worst]):,} distinct values"
            if worst
            else "a tag has unbounded values"
        )
        raise ConfigError(
            f"metric {name!r} has reached {self.max_series_per_metric:,} distinct tag sets "
            f"(new one: {dict(tags)}): {culprit}. A tag with unbounded values, such as a raw "
            f"URL in 'name', makes a series per request; pass a URL template as the request "
            f"name (e.g. name='/api/v1/certificates/{{id}}') or drop the tag."
        )

    # -- reading -----------------------------------------------------------------------

    def names(self) -> list[str]:
        """Declared metric names in declaration order."""
        return list(self._types)

    def type_of(self, name: str) -> MetricType | None:
        return self._types.get(name)

    def is_time(self, name: str) -> bool:
        """True for a trend declared with ``time=True`` (ns, reported in ms)."""
        return self._time.get(name, False)

    def series(self, name: str) -> dict[TagSet, Sink]:
        """The live sinks of ``name`` by tag set (a new dict; empty if undeclared)."""
        type = self._types.get(name)
        if type is None:
            return {}
        return dict(self._table(type)[name])

    def select(self, name: str, tag_filter: Mapping[str, str] | None = None) -> Sink | None:
        """A new sink merging every series of ``name`` whose tags include ``tag_filter``.

        This is k6's sub-metric; ``None`` when no series matches. The result is a copy
        computed now: later samples do not change it.
        """
        wanted = set((tag_filter or {}).items())
        merged: Sink | None = None
        for tags, sink in self.series(name).items():
            if not wanted.issubset(tags):
                continue
            if merged is None:
                merged = sink.copy()
            else:
                merged.merge(sink)  # type: ignore[arg-type]  # one metric, one sink class
        return merged

    # -- merge and serialisation -------------------------------------------------------

    def merge(
        self, other: MetricStore, *, only: Callable[[str, TagSet], bool] | None = None
    ) -> None:
        """Add every series of ``other`` into this store, exactly; with ``only``, the
        series ``(name, tags)`` for which it is true (every metric is still declared)."""
        if other is self:
            raise ValueError("a MetricStore cannot be merged into itself")
        for name, type in other._types.items():
            self.declare(name, type, time=other._time[name])
            mine = self._table(type)[name]
            seen = self._seen[name]
            for tags, sink in other._table(type)[name].items():
                if only is not None and not only(name, tags):
                    continue
                target = mine.get(tags)
                if target is None:
                    if tags not in seen:
                        self._check_cap(name, seen, tags)
                        seen.add(tags)
                    mine[tags] = sink.copy()
                else:
                    target.merge(sink)

    def subset(self, tag_filter: Mapping[str, str]) -> MetricStore:
        """A new store holding copies of the series whose tags include ``tag_filter``
        (every metric stays declared, :data:`PROCESS_METRICS` are kept whole): one
        scenario's share of a shared run."""
        wanted = set(tag_filter.items())
        out = MetricStore(max_series_per_metric=self.max_series_per_metric, clock=self._clock)
        out.merge(self, only=lambda name, tags: name in PROCESS_METRICS or wanted.issubset(tags))
        return out

    def rotate(self) -> MetricStore:
        """Hand over every sample recorded so far as a new store and start empty again.

        Declarations stay, and so does the series cap's count (a tag set seen before the
        rotation still counts), so the rotated parts merge back into one store that fits
        the cap. The engine rotates its live store once per timeline interval: that is how
        a run keeps its samples interval by interval without recording anything twice.
        """
        out = MetricStore(max_series_per_metric=self.max_series_per_metric, clock=self._clock)
        out._types = dict(self._types)
        out._time = dict(self._time)
        out._seen = {name: set(tags) for name, tags in self._seen.items()}
        out._trends, self._trends = self._trends, {n: {} for n in self._trends}
        out._rates, self._rates = self._rates, {n: {} for n in self._rates}
        out._counters, self._counters = self._counters, {n: {} for n in self._counters}
        out._gauges, self._gauges = self._gauges, {n: {} for n in self._gauges}
        return out

    def empty(self) -> bool:
        """True when no series holds a sample."""
        return not any(
            table[name]
            for table in (self._trends, self._rates, self._counters, self._gauges)
            for name in table
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (histograms HDR-encoded); :meth:`from_dict` restores it exactly."""
        metrics = {name: self.metric_dict(name) for name in self._types}
        return {"format": FORMAT_VERSION, "metrics": metrics}

    def metric_dict(self, name: str) -> dict[str, Any]:
        """One declared metric as :meth:`to_dict` holds it (its type and every series)."""
        type = self._types[name]
        return {
            "type": type.value,
            "time": self._time[name],
            "series": [
                {"tags": dict(tags), **sink.to_dict()}
                for tags, sink in self._table(type)[name].items()
            ],
        }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        max_series_per_metric: int = 10_000,
        clock: Callable[[], int] = _time.monotonic_ns,
    ) -> MetricStore:
        version = data.get("format") if isinstance(data, Mapping) else None
        if version != FORMAT_VERSION:
            raise ConfigError(
                f"metrics data has format {version!r}; this version of pytest-certload "
                f"reads format {FORMAT_VERSION}. Re-record it with this version."
            )
        store = cls(max_series_per_metric=max_series_per_metric, clock=clock)
        try:
            for name, metric in data["metrics"].items():
                kind = MetricType(metric["type"])
                time = bool(metric["time"])
                store.declare(name, kind, time=time)
                table = store._table(kind)[name]
                for entry in metric["series"]:
                    tags = tagset(entry["tags"])
                    _check_tagset(tags)
                    table[tags] = _sink_from_dict(kind, entry, time)
                    store._seen[name].add(tags)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(
                f"metrics data is not a valid format {FORMAT_VERSION} dump: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        return store


def _sink_from_dict(type: MetricType, data: Mapping[str, Any], time: bool) -> Sink:
    if type is MetricType.TREND:
        return TrendSink.from_dict(data, time=time)
    if type is MetricType.RATE:
        return RateSink.from_dict(data)
    if type is MetricType.COUNTER:
        return CounterSink.from_dict(data)
    return GaugeSink.from_dict(data)


def _describe(type: MetricType, time: bool) -> str:
    return "a time trend" if time else f"a {type.value}"


def _check_tagset(tags: TagSet) -> None:
    """Reject tag sets not built by :func:`tagset` (checked once per series)."""
    ok = isinstance(tags, tuple) and all(
        isinstance(pair, tuple)
        and len(pair) == 2
        and isinstance(pair[0], str)
        and isinstance(pair[1], str)
        for pair in tags
    )
    if not ok or list(tags) != sorted(tags) or len({key for key, _ in tags}) != len(tags):
        raise ValueError(
            f"tags must be a TagSet of sorted (str, str) pairs with unique keys, "
            f"built with tagset(mapping); got {tags!r}"
        )


def declare_builtins(store: MetricStore) -> None:
    """Declare every metric of :data:`BUILTIN_METRICS` in ``store``."""
    for name, (type, time) in BUILTIN_METRICS.items():
        store.declare(name, type, time=time)


def summary(sink: Sink, *, duration_ns: int | None = None) -> dict[str, float | int | None]:
    """k6-style statistics of one sink, JSON-safe.

    * trend: ``avg min med max p(90) p(95) p(99)`` (ms for time trends) and ``count``;
      the statistics are ``None`` when the trend is empty;
    * rate: ``rate`` (``None`` when empty), ``passes``, ``fails``;
    * counter: ``count`` and ``rate`` per second over ``duration_ns`` (see
      :meth:`CounterSink.rate`);
    * gauge: ``value``, ``min``, ``max``.
    """
    if isinstance(sink, TrendSink):
        keys = ("avg", "min", "med", "max", "p(90)", "p(95)", "p(99)")
        if not sink.count:
            return {**dict.fromkeys(keys), "count": 0}
        scale = _NS_PER_MS if sink.time else 1
        q = sink.quantiles((50, 90, 95, 99))
        stats = (sink.mean(), sink.min(), q[50], sink.max(), q[90], q[95], q[99])
        return {**{k: v / scale for k, v in zip(keys, stats, strict=True)}, "count": sink.count}
    if isinstance(sink, RateSink):
        return {
            "rate": sink.rate() if sink.total else None,
            "passes": sink.trues,
            "fails": sink.total - sink.trues,
        }
    if isinstance(sink, CounterSink):
        return {"count": sink.count, "rate": sink.rate(duration_ns)}
    return {"value": sink.value, "min": sink.min, "max": sink.max}
