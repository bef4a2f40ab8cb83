"""Metric sinks: quantiles against known data, merge, (de)serialisation, tagged series."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from decimal import Decimal
from math import ceil
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram

from pytest_certload.errors import ConfigError
from pytest_certload.metrics import (
    BUILTIN_METRICS,
    FORMAT_VERSION,
    HDR_HIGHEST,
    HTTP_REQ_DURATION,
    CounterSink,
    GaugeSink,
    MetricStore,
    MetricType,
    RateSink,
    TrendSink,
    declare_builtins,
    nearest_rank,
    summary,
    tagset,
)

QUANTILES = (0, 1, 10, 25, 50, 75, 90, 94, 95, 99, 99.9, 100)


def brute_nearest_rank(samples: list[int], q: float) -> int:
    """Nearest rank over the raw samples, computed independently with Decimal."""
    ordered = sorted(samples)
    rank = max(1, ceil(Decimal(repr(q)) * len(ordered) / 100))
    return ordered[rank - 1]


def fake_clock(step: int = 1_000) -> Callable[[], int]:
    ticks: Iterator[int] = iter(range(0, 10**15, step))
    return lambda: next(ticks)


def skewed(n: int, seed: int) -> list[int]:
    """Latency-like ns values: a lognormal body around 2 ms and a heavy tail."""
    rng = random.Random(seed)
    return [
        int(rng.lognormvariate(14.5, 0.8)) + (10**9 if rng.random() < 0.01 else 0) for _ in range(n)
    ]


DATASETS = {
    "1..100": list(range(1, 101)),
    "1..1000": list(range(1, 1001)),
    "single": [42],
    "single-large": [123_456_789],
    "with-zero": [0, 0, 5, 9_999, 10_000_000],
    "skewed": skewed(5_000, seed=1),
    "ns-range": [v * 1_000_003 for v in range(1, 2_001)],
}


def trend_of(samples: list[int]) -> TrendSink:
    sink = TrendSink(time=True)
    for value in samples:
        sink.add(value)
    return sink


# -- quantiles -------------------------------------------------------------------------


@pytest.mark.parametrize("name", DATASETS)
def test_quantiles_match_brute_force_nearest_rank_within_hdr_upward_error(name: str) -> None:
    samples = DATASETS[name]
    sink = trend_of(samples)
    for q in QUANTILES:
        expected = brute_nearest_rank(samples, q)
        got = sink.quantile(q)
        assert expected <= got <= expected * 1.001 + 1e-9, (q, expected, got)
        if expected < 2048:  # HDR is exact below 2 * 10**3 with 3 significant figures
            assert got == expected


def test_quantiles_of_1_to_100_are_exact_ranks() -> None:
    sink = trend_of(list(range(1, 101)))
    assert {q: sink.quantile(q) for q in (0, 1, 50, 90, 95, 99, 99.5, 100)} == {
        0: 1,
        1: 1,
        50: 50,
        90: 90,
        95: 95,
        99: 99,
        99.5: 100,
        100: 100,
    }


def test_decimal_percentile_is_read_as_written() -> None:
    # 99.9 as a binary float is just above 99.9; 999/1000 must stay rank 999.
    assert nearest_rank(99.9, 1000) == 999
    assert trend_of(list(range(1, 1001))).quantile(99.9) == 999


def test_quantile_is_never_a_rank_low_unlike_hdrh_rounding() -> None:
    samples = list(range(1, 11))
    hist = HdrHistogram(1, HDR_HIGHEST, 3)
    for value in samples:
        hist.record_value(value)
    assert hist.get_value_at_percentile(94) == 9  # hdrh rounds the rank 9.4 half-up
    assert trend_of(samples).quantile(94) == 10  # nearest rank: ceil(9.4) = 10


def test_median_is_p50_everywhere() -> None:
    for samples in DATASETS.values():
        sink = trend_of(samples)
        stats = summary(sink)
        assert stats["med"] == sink.quantile(50) / 1e6
        assert sink.quantiles((50,))[50] == sink.quantile(50)


def test_min_quantiles_max_are_ordered_and_p100_is_max() -> None:
    sink = trend_of(DATASETS["skewed"])
    values = [sink.quantile(q) for q in QUANTILES]
    assert sink.min() <= values[0]
    assert values == sorted(values)
    assert values[-1] == sink.max()


def test_mean_is_exact() -> None:
    samples = DATASETS["skewed"]
    assert trend_of(samples).mean() == sum(samples) / len(samples)


def test_quantile_of_empty_trend_and_out_of_range_q_raise() -> None:
    with pytest.raises(ValueError, match="no samples"):
        TrendSink().quantile(50)
    with pytest.raises(ValueError, match=r"quantile 101 is outside 0\.\.100"):
        trend_of([1]).quantile(101)


def test_inlined_recording_matches_hdrh_record_value() -> None:
    rng = random.Random(7)
    values = [0, 1, 2047, 2048, 2049, 4095, 4096, HDR_HIGHEST] + [
        rng.randrange(0, HDR_HIGHEST) >> rng.randrange(0, 40) for _ in range(20_000)
    ]
    reference = HdrHistogram(1, HDR_HIGHEST, 3)
    for value in values:
        reference.record_value(value)
    sink = trend_of(values)
    assert list(sink._hist.counts) == list(reference.counts)
    assert sink.count == reference.total_count
    assert sink.min() == reference.get_min_value()
    assert sink.max() == reference.get_max_value()


def test_values_above_range_are_clamped_and_counted() -> None:
    sink = trend_of([5, HDR_HIGHEST + 1, 10 * HDR_HIGHEST])
    assert sink.clamped == 2
    assert sink.count == 3
    assert sink.sum == 5 + 2 * HDR_HIGHEST
    assert HDR_HIGHEST <= sink.max() <= HDR_HIGHEST * 1.001


def test_negative_trend_value_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="trend values must be >= 0, got -1"):
        TrendSink().add(-1)


# -- summaries -------------------------------------------------------------------------


def test_summary_of_time_trend_is_in_ms() -> None:
    sink = trend_of([1_000_000, 2_000_000, 3_000_000, 4_000_000])  # 1..4 ms
    stats = summary(sink)
    assert set(stats) == {"avg", "min", "med", "max", "p(90)", "p(95)", "p(99)", "count"}
    assert stats["count"] == 4
    assert stats["avg"] == 2.5
    for key, expected_ms in (("min", 1), ("med", 2), ("p(90)", 4), ("max", 4)):
        value = stats[key]
        assert isinstance(value, float)
        assert abs(value - expected_ms) <= expected_ms * 0.001, key


def test_summary_of_plain_trend_rate_counter_gauge() -> None:
    plain = TrendSink()
    for value in (1, 2, 3):
        plain.add(value)
    assert summary(plain) == {
        "avg": 2.0,
        "min": 1.0,
        "med": 2.0,
        "max": 3.0,
        "p(90)": 3.0,
        "p(95)": 3.0,
        "p(99)": 3.0,
        "count": 3,
    }
    rate = RateSink()
    for ok in (True, True, False, True):
        rate.add(ok)
    assert summary(rate) == {"rate": 0.75, "passes": 3, "fails": 1}
    counter = CounterSink()
    for at in (0, 1_000_000_000, 2_000_000_000):
        counter.add(10, at)
    assert summary(counter, duration_ns=6_000_000_000) == {"count": 30, "rate": 5.0}
    assert summary(counter) == {"count": 30, "rate": 15.0}  # over first..last addition
    gauge = GaugeSink(5, 0)
    gauge.set(9, 1)
    gauge.set(2, 2)
    assert summary(gauge) == {"value": 2, "min": 2, "max": 9}


def test_summary_of_empty_sinks_has_no_statistics() -> None:
    assert summary(TrendSink())["p(95)"] is None
    assert summary(TrendSink())["count"] == 0
    assert summary(RateSink()) == {"rate": None, "passes": 0, "fails": 0}
    assert CounterSink().rate() is None


# -- store: declaration, recording, series ---------------------------------------------


def test_declare_builtins_declares_k6_metrics_with_types() -> None:
    store = MetricStore()
    declare_builtins(store)
    assert store.names() == list(BUILTIN_METRICS)
    assert store.type_of("http_req_failed") is MetricType.RATE
    assert store.type_of("vus") is MetricType.GAUGE
    assert store.is_time("schedule_lag")
    assert not store.is_time("http_reqs")
    declare_builtins(store)  # idempotent


def test_declare_conflicts_and_bad_names() -> None:
    store = MetricStore()
    store.declare("cert_issue", MetricType.TREND, time=True)
    with pytest.raises(ConfigError) as info:
        store.declare("cert_issue", MetricType.COUNTER)
    assert str(info.value) == (
        "metric 'cert_issue' is already declared as a time trend; it cannot be redeclared "
        "as a counter. Pick another name for the new metric."
    )
    with pytest.raises(ConfigError, match="cannot be declared with time=True: only trends"):
        store.declare("x", MetricType.RATE, time=True)
    with pytest.raises(ConfigError, match=r"^'cert issue' is not a valid metric name; use"):
        store.declare("cert issue", MetricType.TREND)


def test_recording_checks_declaration_and_method() -> None:
    store = MetricStore()
    store.declare("hits", MetricType.COUNTER)
    with pytest.raises(ConfigError) as info:
        store.add_trend("nope", 1)
    assert str(info.value) == (
        "metric 'nope' is not declared; declare it first with "
        "store.declare('nope', MetricType.TREND) (built-ins: declare_builtins(store))."
    )
    with pytest.raises(ConfigError) as info:
        store.add_trend("hits", 1)
    assert str(info.value) == (
        "metric 'hits' is a counter; add_trend() records trends. "
        "Use the method for its type or another name."
    )


def test_tags_must_be_a_sorted_tagset() -> None:
    store = MetricStore()
    declare_builtins(store)
    with pytest.raises(ValueError, match="built with tagset"):
        store.add_trend(HTTP_REQ_DURATION, 1, (("z", "1"), ("a", "2")))
    with pytest.raises(ValueError, match="built with tagset"):
        store.add_trend(HTTP_REQ_DURATION, 1, (("status", 200),))  # type: ignore[arg-type]
    assert tagset({"z": "1", "a": "2"}) == (("a", "2"), ("z", "1"))


def test_series_cap_names_the_unbounded_tag() -> None:
    store = MetricStore(max_series_per_metric=3)
    declare_builtins(store)
    for i in range(3):
        store.add_counter("http_reqs", 1, tagset({"scenario": "list", "name": f"/certs/{i}"}))
    with pytest.raises(ConfigError) as info:
        store.add_counter("http_reqs", 1, tagset({"scenario": "list", "name": "/certs/3"}))
    assert str(info.value) == (
        "metric 'http_reqs' has reached 3 distinct tag sets (new one: {'name': '/certs/3', "
        "'scenario': 'list'}): tag 'name' has 3 distinct values. A tag with unbounded values, "
        "such as a raw URL in 'name', makes a series per request; pass a URL template as the "
        "request name (e.g. name='/api/v1/certificates/{id}') or drop the tag."
    )
    store.add_counter("http_reqs", 1, tagset({"scenario": "list", "name": "/certs/0"}))  # known


def test_select_merges_series_whose_tags_include_the_filter() -> None:
    store = MetricStore()
    declare_builtins(store)
    a = tagset({"scenario": "issue", "status": "201"})
    b = tagset({"scenario": "issue", "status": "500"})
    c = tagset({"scenario": "list", "status": "200"})
    for value, tags in ((1, a), (2, a), (3, b), (4, c)):
        store.add_trend(HTTP_REQ_DURATION, value, tags)
        store.add_rate("http_req_failed", value == 3, tags)
    everything = store.select(HTTP_REQ_DURATION)
    issue = store.select(HTTP_REQ_DURATION, {"scenario": "issue"})
    failed = store.select(HTTP_REQ_DURATION, {"scenario": "issue", "status": "500"})
    assert isinstance(everything, TrendSink)
    assert isinstance(issue, TrendSink)
    assert isinstance(failed, TrendSink)
    assert (everything.count, issue.count, failed.count) == (4, 3, 1)
    assert issue.counts() == {1: 1, 2: 1, 3: 1}
    assert issue.time
    rate = store.select("http_req_failed", {"scenario": "issue"})
    assert isinstance(rate, RateSink)
    assert (rate.trues, rate.total) == (1, 3)
    assert store.select(HTTP_REQ_DURATION, {"scenario": "nope"}) is None
    assert store.select(HTTP_REQ_DURATION, {"method": "GET"}) is None
    assert store.select("undeclared") is None
    assert store.select("http_reqs") is None  # declared, never recorded


def test_select_is_a_snapshot_not_a_stale_cache() -> None:
    store = MetricStore()
    declare_builtins(store)
    tags = tagset({"scenario": "x"})
    store.add_trend(HTTP_REQ_DURATION, 1, tags)
    first = store.select(HTTP_REQ_DURATION, {"scenario": "x"})
    store.add_trend(HTTP_REQ_DURATION, 2, tags)
    second = store.select(HTTP_REQ_DURATION, {"scenario": "x"})
    assert isinstance(first, TrendSink)
    assert isinstance(second, TrendSink)
    assert (first.count, second.count) == (1, 2)
    second.add(3)  # a selection never writes through to the store
    assert store.series(HTTP_REQ_DURATION)[tags].count == 2


# -- merge and serialisation -----------------------------------------------------------


def snapshot(store: MetricStore) -> dict[str, Any]:
    """Everything observable, order-independent."""
    out: dict[str, Any] = {}
    for name in store.names():
        for tags, sink in store.series(name).items():
            state: Any
            if isinstance(sink, TrendSink):
                state = (sink.counts(), sink.count, sink.sum, sink.clamped, sink.min(), sink.max())
            else:
                state = sink.to_dict()
            out[f"{name}{tags}"] = (store.type_of(name), store.is_time(name), state)
    return out


def record(store: MetricStore, rng: random.Random, n: int) -> None:
    for _ in range(n):
        tags = tagset({"scenario": rng.choice("ab"), "status": rng.choice(("200", "500"))})
        store.add_trend(HTTP_REQ_DURATION, int(rng.lognormvariate(15, 1)), tags)
        store.add_trend("cert_size", rng.randrange(0, 5000), tags)
        store.add_rate("http_req_failed", rng.random() < 0.1, tags)
        store.add_counter("http_reqs", 1, tags)
        store.add_counter("data_sent", rng.randrange(100, 2000), tags)
        store.set_gauge("vus", rng.randrange(1, 50), tags)
    store.add_trend(HTTP_REQ_DURATION, 2 * HDR_HIGHEST, ())  # clamped


def new_store(clock: Callable[[], int]) -> MetricStore:
    store = MetricStore(clock=clock)
    declare_builtins(store)
    store.declare("cert_size", MetricType.TREND)
    return store


def test_merge_of_two_stores_equals_one_store_of_all_samples() -> None:
    # The halves share a clock, so counters and gauges see the ticks the whole store sees.
    shared = fake_clock()
    part1, part2, whole = new_store(shared), new_store(shared), new_store(fake_clock())
    record(part1, random.Random(1), 300)
    record(part2, random.Random(2), 300)
    record(whole, random.Random(1), 300)
    record(whole, random.Random(2), 300)
    part1.merge(part2)
    assert snapshot(part1) == snapshot(whole)
    assert len(snapshot(whole)) > 6 * 4  # every metric has several tag series


def test_merge_into_empty_store_and_of_empty_store_keep_min() -> None:
    source = new_store(fake_clock())
    source.add_trend(HTTP_REQ_DURATION, 5_000, ())
    empty = MetricStore()
    empty.merge(source)
    empty.merge(MetricStore())
    sink = empty.series(HTTP_REQ_DURATION)[()]
    assert isinstance(sink, TrendSink)
    assert sink.min() == source.series(HTTP_REQ_DURATION)[()].min() >= 4_990  # type: ignore[union-attr]
    merged = TrendSink()
    merged.merge(TrendSink())
    merged.merge(trend_of([7]))
    merged.merge(TrendSink())
    assert merged.min() == 7


def test_merge_conflicting_declarations_and_self_merge() -> None:
    a, b = MetricStore(), MetricStore()
    a.declare("x", MetricType.TREND)
    b.declare("x", MetricType.RATE)
    with pytest.raises(ConfigError, match="'x' is already declared as a trend"):
        a.merge(b)
    with pytest.raises(ValueError, match="cannot be merged into itself"):
        a.merge(a)


def test_gauge_merge_keeps_the_latest_value() -> None:
    early, late = GaugeSink(10, 100), GaugeSink(3, 200)
    late.merge(early)
    assert (late.value, late.min, late.max, late.samples) == (3, 3, 10, 2)
    early.merge(GaugeSink(3, 200))
    assert early.value == 3


def test_serialisation_round_trip_is_exact_and_json_safe() -> None:
    store = new_store(fake_clock())
    record(store, random.Random(3), 500)
    data = json.loads(json.dumps(store.to_dict(), allow_nan=False))
    assert data["format"] == FORMAT_VERSION
    restored = MetricStore.from_dict(data)
    assert snapshot(restored) == snapshot(store)
    # A restored store keeps recording like the original.
    for target in (restored, store):
        for value in (0, 17, 2_500, 912_345_678):
            target.add_trend(HTTP_REQ_DURATION, value, tagset({"scenario": "a", "status": "200"}))
            target.add_rate("http_req_failed", value > 1_000, ())
    assert snapshot(restored) == snapshot(store)


def test_round_trip_of_empty_store_and_empty_trend() -> None:
    store = new_store(fake_clock())
    assert snapshot(MetricStore.from_dict(store.to_dict())) == snapshot(store)
    sink = TrendSink.from_dict(TrendSink().to_dict())
    assert sink.count == 0
    sink.add(3)
    assert sink.quantile(50) == 3


def test_from_dict_rejects_other_formats_and_garbage() -> None:
    with pytest.raises(ConfigError) as info:
        MetricStore.from_dict({"format": 99, "metrics": {}})
    assert str(info.value) == (
        "metrics data has format 99; this version of pytest-certload reads format 1. "
        "Re-record it with this version."
    )
    with pytest.raises(ConfigError, match="metrics data is not a valid format 1 dump: KeyError"):
        MetricStore.from_dict({"format": 1, "metrics": {"x": {"type": "trend"}}})


def test_memory_does_not_grow_with_samples() -> None:
    sink = TrendSink(time=True)
    size = len(sink._hist.counts)
    for value in range(0, 50_000_000_000, 1_000_003):
        sink.add(value)
    assert len(sink._hist.counts) == size
    assert not hasattr(sink, "__dict__")  # slots only: no per-sample storage anywhere
