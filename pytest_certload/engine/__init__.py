"""The load engine: executors, virtual users, the run loop, results and health verdict.

Imports no pytest; ``anyio.run(run, scenarios)`` or :func:`run_sync` drive it from a script.
"""

from .causes import RequestErrors, TransportSample
from .clock import Clock, RealClock, VirtualClock
from .executors import (
    ConstantArrivalRate,
    ConstantVUs,
    Executor,
    RampingArrivalRate,
    RampingVUs,
    Stage,
    arrival_offsets_ns,
    executor_from_dict,
    vu_steps,
)
from .health import HealthLimits, ScenarioHealth
from .judging import judge_run
from .merge import merge_results
from .options import HTTPOptions, RunOptions, Scenario, StopRequest, scenario_from_k6
from .results import Progress, RunResult, ScenarioResult
from .runner import run, run_sync
from .timeline import Timeline, TimelineRow
from .vu import VU, FailedResponse, RecordingClient

__all__ = [
    "VU",
    "Clock",
    "ConstantArrivalRate",
    "ConstantVUs",
    "Executor",
    "FailedResponse",
    "HTTPOptions",
    "HealthLimits",
    "Progress",
    "RampingArrivalRate",
    "RampingVUs",
    "RealClock",
    "RecordingClient",
    "RequestErrors",
    "RunOptions",
    "RunResult",
    "Scenario",
    "ScenarioHealth",
    "ScenarioResult",
    "Stage",
    "StopRequest",
    "Timeline",
    "TimelineRow",
    "TransportSample",
    "VirtualClock",
    "arrival_offsets_ns",
    "executor_from_dict",
    "judge_run",
    "merge_results",
    "run",
    "run_sync",
    "scenario_from_k6",
    "vu_steps",
]
