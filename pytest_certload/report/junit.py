"""The junit view of a run: ``certload.*`` properties of the test that ran it.

pytest writes a test's ``user_properties`` into junit XML (``<property>`` elements,
both junit families); CI systems show them beside the test case.
"""

from __future__ import annotations

from ..engine import RunResult
from .stats import scenario_stats

__all__ = ["STAT_KEYS", "run_properties"]

#: the per-scenario figures published, as ``certload.<scenario>.<key>``
STAT_KEYS = (
    "requests",
    "rps",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "error_rate",
    "lag_p99_ms",
)


def run_properties(result: RunResult) -> list[tuple[str, str]]:
    """Per-scenario figures, every threshold's verdict and the run's verdict."""
    props: list[tuple[str, str]] = []
    for name in result.scenarios:
        stats = scenario_stats(result, name)
        for key in STAT_KEYS:
            value = stats.get(key)
            if value is not None:
                props.append((f"certload.{name}.{key}", _text(value)))
    for r in result.thresholds:
        verdict = "ok" if r.ok else "breached"
        props.append(
            (
                f"certload.threshold.{r.threshold.selector}.{r.threshold.expression}",
                f"{verdict}: {r.message()}",
            )
        )
    props.append(("certload.verdict", result.verdict))
    return props


def _text(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
