"""certctl's own metrics: ``GET /api/v1/metrics/prometheus``, read at a run's start and
end and parsed with prometheus_client's text parser.

certctl's handler (``internal/api/handler/metrics.go``) exposes counts of certificates,
agents and jobs and its issuance counters; it has no HTTP latency histograms. A counter
(and a histogram's or summary's ``_count``/``_sum``) is reported as its change over the
run, a gauge as its value at the end.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["METRICS_PATH", "MetricsRead", "read_metrics"]

METRICS_PATH = "/api/v1/metrics/prometheus"
_CUMULATIVE = ("counter", "histogram", "summary", "gaugehistogram")


@dataclass
class MetricsRead:
    """One read: sample name with labels -> value, split by kind; ``note`` when it failed."""

    counters: dict[str, float] = field(default_factory=dict)
    gauges: dict[str, float] = field(default_factory=dict)
    note: str = ""


def _key(name: str, labels: dict[str, str]) -> str:
    if not labels:
        return name
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def parse_metrics(text: str) -> MetricsRead:
    """Parse Prometheus text exposition; bucket and quantile series are left out (a
    histogram is kept as its ``_count`` and ``_sum``)."""
    out = MetricsRead()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith(("_bucket", "_created")) or "quantile" in sample.labels:
                continue
            key = _key(sample.name, dict(sample.labels))
            if family.type in _CUMULATIVE:
                out.counters[key] = float(sample.value)
            else:
                out.gauges[key] = float(sample.value)
    return out


def read_metrics(
    base_url: str, token: str, verify: ssl.SSLContext | bool, *, timeout_s: float = 5.0
) -> MetricsRead:
    """Read and parse certctl's metrics; never raises (a failure is the read's note,
    naming the answer or the error; never the token)."""
    url = base_url.rstrip("/") + METRICS_PATH
    try:
        with httpx.Client(verify=verify, timeout=timeout_s) as client:
            answer = client.get(url, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        return MetricsRead(note=f"certctl metrics not read: GET {url} failed: {exc}")
    if answer.status_code != 200:
        return MetricsRead(
            note=f"certctl metrics not read: GET {url} answered {answer.status_code}"
        )
    try:
        return parse_metrics(answer.text)
    except ValueError as exc:
        return MetricsRead(note=f"certctl metrics not read: {url} is not Prometheus text ({exc})")


def metric_changes(start: MetricsRead, end: MetricsRead) -> dict[str, dict[str, float]]:
    """``{"counters": {key: change}, "gauges": {key: value at the end}}``."""
    return {
        "counters": {k: v - start.counters.get(k, 0.0) for k, v in sorted(end.counters.items())},
        "gauges": dict(sorted(end.gauges.items())),
    }
