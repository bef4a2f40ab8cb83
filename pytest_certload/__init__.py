"""pytest-certload: load-test certctl with pytest, latency contracts as assertions.

Everything here imports without pytest; ``pytest_certload.plugin`` (hooks) and
``pytest_certload.fixtures`` (fixtures and stash keys) are the pytest glue, loaded
through the ``pytest11`` entry point. The layers and the data flow of one run are
described in ``docs/dev/architecture.md``.
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
    executor_from_dict,
    run,
    run_sync,
    scenario_from_k6,
)
from .errors import (
    CertloadError,
    ConfigError,
    SeedError,
    ServiceError,
    ServiceTimeout,
    ThresholdBreach,
    ThresholdSyntaxError,
    TransportError,
    UntrustworthyRun,
)
from .loadtest import LoadTest
from .metrics import MetricStore, MetricType
from .settings import Settings
from .stack import StackInfo
from .thresholds import Threshold, ThresholdResult, evaluate, parse_thresholds

__all__ = [
    "VU",
    "CertloadError",
    "ConfigError",
    "ConstantArrivalRate",
    "ConstantVUs",
    "HTTPOptions",
    "HealthLimits",
    "LoadTest",
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
    "Settings",
    "StackInfo",
    "Stage",
    "Threshold",
    "ThresholdBreach",
    "ThresholdResult",
    "ThresholdSyntaxError",
    "TransportError",
    "UntrustworthyRun",
    "evaluate",
    "executor_from_dict",
    "parse_thresholds",
    "run",
    "run_sync",
    "scenario_from_k6",
]
