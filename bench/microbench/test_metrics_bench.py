"""Hot paths of the metrics layer: recording a sample, merging, judging thresholds."""

from __future__ import annotations

import random
from typing import Any

import pytest

from pytest_certload.metrics import MetricStore, declare_builtins, tagset
from pytest_certload.thresholds import evaluate, parse_thresholds

TAGS = tagset({"scenario": "list_certificates", "name": "/api/v1/certificates", "status": "200"})


def _store(samples: int, seed: int) -> MetricStore:
    rng = random.Random(seed)
    store = MetricStore()
    declare_builtins(store)
    for _ in range(samples):
        latency = int(rng.lognormvariate(16.8, 0.5))  # ~20 ms median, in ns
        store.add_trend("http_req_duration", latency, TAGS)
        store.add_rate("http_req_failed", rng.random() < 0.01, TAGS)
        store.add_counter("http_reqs", 1, TAGS)
    return store


def test_record_one_latency_sample(benchmark: Any) -> None:
    """MetricStore.add_trend on an existing series: the per-request recording cost."""
    store = _store(1, seed=0)
    benchmark(store.add_trend, "http_req_duration", 12_345_678, TAGS)


def test_record_one_request(benchmark: Any) -> None:
    """What the HTTP client records per request: counter, trend, rate."""
    store = _store(1, seed=0)

    def record() -> None:
        store.add_counter("http_reqs", 1, TAGS)
        store.add_trend("http_req_duration", 12_345_678, TAGS)
        store.add_trend("http_req_service_time", 12_000_000, TAGS)
        store.add_rate("http_req_failed", False, TAGS)

    benchmark(record)


@pytest.mark.parametrize("samples", [1_000, 100_000])
def test_merge_two_worker_stores(benchmark: Any, samples: int) -> None:
    """MetricStore.merge of two workers' stores into a fresh one (HDR bucket by bucket)."""
    a, b = _store(samples, seed=1), _store(samples, seed=2)

    def merge() -> MetricStore:
        merged = MetricStore()
        merged.merge(a)
        merged.merge(b)
        return merged

    merged = benchmark(merge)
    assert merged.select("http_reqs") is not None


def test_evaluate_the_api_tier_thresholds(benchmark: Any) -> None:
    """thresholds.evaluate over a store of 20,000 requests (percentiles walk the buckets)."""
    store = _store(20_000, seed=3)
    thresholds = parse_thresholds(
        {
            "http_req_duration{scenario:list_certificates}": ["p(95)<800", "p(99)<2000"],
            "http_req_duration": ["p(50)<500", "avg<600", "max<10000"],
            "http_req_failed": ["rate<0.01"],
            "http_reqs": ["count>100"],
        },
        source="bench",
    )
    results = benchmark(evaluate, thresholds, store)
    assert len(results) == 7
