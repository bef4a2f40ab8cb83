"""Shared synthetic runs (virtual clock, deterministic) for the report tests."""

from __future__ import annotations

import pytest

from pytest_certload.engine import RunResult
from tests.report.synth import synthetic_run, windowed_run


@pytest.fixture(scope="session")
def run_a() -> RunResult:
    """Two scenarios, latencies around 20 ms (seed 1)."""
    return synthetic_run(seed=1)


@pytest.fixture(scope="session")
def run_b() -> RunResult:
    """The same load as ``run_a``, another sample of it (seed 2)."""
    return synthetic_run(seed=2)


@pytest.fixture(scope="session")
def run_slow() -> RunResult:
    """The same load with latencies around 30 ms: clearly slower."""
    return synthetic_run(seed=3, median_ms=30)


@pytest.fixture(scope="session")
def run_windowed() -> RunResult:
    """Windowed thresholds, a 2 s warm-up and a stall of the generator (see ``windowed_run``)."""
    return windowed_run()
