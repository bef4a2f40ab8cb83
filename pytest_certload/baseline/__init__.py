"""Latency baselines: save a session's full HDR histograms, compare a later one with them.

:mod:`.model` (the baseline and its file), :mod:`.build` (from a session, a results
directory or runs), :mod:`.intervals` (order-statistic confidence intervals),
:mod:`.compare` (the regression rules: latency quantiles, and capacity brackets),
:mod:`.render` (lines and the measured-baseline table) and :mod:`.cli`, the command
line ``python -m pytest_certload.baseline``::

    python -m pytest_certload.baseline save NAME [--results DIR] [--dir baselines]
    python -m pytest_certload.baseline compare NAME [--results DIR] [--dir baselines]
    python -m pytest_certload.baseline table [NAME ...] [--results DIR] [--markdown]

Imports no pytest.
"""

from .build import baseline_from_results, baseline_from_runs, baseline_from_session, git_commit
from .cli import main
from .compare import (
    CapacityFinding,
    Comparison,
    Finding,
    Rule,
    compare,
    compare_capacity,
    database_flags,
    profile_mismatch,
)
from .intervals import min_samples, quantile_interval
from .model import (
    BASELINE_FORMAT,
    DEFAULT_DIR,
    Baseline,
    CapacityBaseline,
    ScenarioBaseline,
    load,
    resolve_path,
    save,
)
from .render import (
    CAPACITY_RULE,
    ReportLine,
    capacity_finding_text,
    comparison_lines,
    finding_text,
    markdown_table,
    rule_text,
)

__all__ = [
    "BASELINE_FORMAT",
    "CAPACITY_RULE",
    "DEFAULT_DIR",
    "Baseline",
    "CapacityBaseline",
    "CapacityFinding",
    "Comparison",
    "Finding",
    "ReportLine",
    "Rule",
    "ScenarioBaseline",
    "baseline_from_results",
    "baseline_from_runs",
    "baseline_from_session",
    "capacity_finding_text",
    "compare",
    "compare_capacity",
    "comparison_lines",
    "database_flags",
    "finding_text",
    "git_commit",
    "load",
    "main",
    "markdown_table",
    "min_samples",
    "profile_mismatch",
    "quantile_interval",
    "resolve_path",
    "rule_text",
    "save",
]
