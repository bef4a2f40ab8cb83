"""pytest-certload: load-test certctl with pytest, latency contracts as assertions.

The engine, metrics, thresholds, HTTP clients, stack and certctl client import without
pytest; ``pytest_certload.plugin`` is the pytest glue, loaded through the ``pytest11``
entry point.
"""

from .engine import (
    VU,
    ConstantArrivalRate,
    ConstantVUs,
    HealthLimits,
    HTTPOptions,
    RampingArrivalRate,
    RampingVUs,
    RunOptions,
    RunResult,
    Scenario,
    Stage,
    run,
    run_sync,
)
from .errors import (
    CertloadError,
    ConfigError,
    SeedError,
    ServiceError,
    ServiceTimeout,
    ThresholdSyntaxError,
    TransportError,
)
from .metrics import MetricStore, MetricType
from .thresholds import Threshold, ThresholdResult, evaluate, parse_thresholds

__all__ = [
    "VU",
    "CertloadError",
    "ConfigError",
    "ConstantArrivalRate",
    "ConstantVUs",
    "HTTPOptions",
    "HealthLimits",
    "MetricStore",
    "MetricType",
    "RampingArrivalRate",
    "RampingVUs",
    "RunOptions",
    "RunResult",
    "Scenario",
    "SeedError",
    "ServiceError",
    "ServiceTimeout",
    "Stage",
    "Threshold",
    "ThresholdResult",
    "ThresholdSyntaxError",
    "TransportError",
    "evaluate",
    "parse_thresholds",
    "run",
    "run_sync",
]
