"""The baseline model and its file: per-scenario HDR histograms and where they came from.

A baseline is one JSON file (``baselines/NAME.json``, :data:`BASELINE_FORMAT`) holding,
per scenario, the merged HDR histogram of every time trend the scenario recorded, its
request, failure and iteration counts, and where it came from: capture time,
pytest-certload's git commit, machine, target (with certctl's version and commit, as its
version endpoint answered), profile. A session run with ``--certload-capacity`` also
leaves, per test and scenario, the capacity search's answer (:class:`CapacityBaseline`),
under the optional key ``capacity``; the database's settings are under the optional key
``database`` and each scenario's row counts before its run under its optional ``rows``:
baselines saved before they existed load with none.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.capacity import CapacityResult
from ..errors import BaselineError
from ..metrics import BUILTIN_METRICS, TrendSink
from ..stack.database import DatabaseSettings, RowCounts

__all__ = [
    "BASELINE_FORMAT",
    "DEFAULT_DIR",
    "NAME_RE",
    "Baseline",
    "CapacityBaseline",
    "ScenarioBaseline",
    "load",
    "resolve_path",
    "save",
]

BASELINE_FORMAT = 1
DEFAULT_DIR = Path("baselines")
#: what a baseline name may be (letters, digits, ``_ - .``)
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass
class ScenarioBaseline:
    """One scenario's merged figures: every time trend's HDR histogram plus counts."""

    name: str
    latency_metric: str
    trends: dict[str, TrendSink]
    requests: int = 0
    failed: int = 0
    iterations: int = 0
    tests: list[str] = field(default_factory=list)
    #: the rows of the tables its test declared, before its (first) run
    rows: RowCounts | None = None

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.requests if self.requests else None

    @property
    def gated(self) -> list[str]:
        """Metrics a comparison judges: the latency metric, then custom time trends."""
        custom = sorted(m for m in self.trends if m not in BUILTIN_METRICS)
        return [self.latency_metric, *custom] if self.latency_metric in self.trends else custom

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "latency_metric": self.latency_metric,
            "requests": self.requests,
            "failed": self.failed,
            "iterations": self.iterations,
            "tests": self.tests,
            "trends": {name: sink.to_dict() for name, sink in self.trends.items()},
        }
        if self.rows is not None:  # optional: a test that declared no table has none
            data["rows"] = self.rows.to_dict()
        return data

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> ScenarioBaseline:
        return cls(
            name=name,
            latency_metric=str(data["latency_metric"]),
            trends={m: TrendSink.from_dict(t, time=True) for m, t in data["trends"].items()},
            requests=int(data["requests"]),
            failed=int(data["failed"]),
            iterations=int(data["iterations"]),
            tests=[str(t) for t in data.get("tests", [])],
            rows=RowCounts.from_dict(data["rows"]) if data.get("rows") is not None else None,
        )


def _rate(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class CapacityBaseline:
    """One test's capacity search of one scenario: the bracket it closed and what bounded
    it. Rates are offered iterations per second."""

    test: str
    scenario: str
    contract_rps: float
    #: the highest rate that passed (None: not even the contract rate did)
    capacity_rps: float | None
    #: the lowest rate the server failed at (None: no rate failed)
    first_fail_rps: float | None
    first_fail_reason: str = ""
    #: the rate at which the generator, not the server, gave out (None: it never did)
    generator_bound_rps: float | None = None
    generator_bound_reason: str = ""
    precision: float = 0.1
    max_rps: float = 0.0
    #: why the search ended before its bracket closed, if it did
    stopped: str = ""

    @classmethod
    def from_result(cls, test: str, found: CapacityResult) -> CapacityBaseline:
        fail = found.first_fail
        bound = found.generator_bound
        return cls(
            test=test,
            scenario=found.scenario,
            contract_rps=found.contract_rate,
            capacity_rps=found.capacity,
            first_fail_rps=None if fail is None else fail.rate,
            first_fail_reason="" if fail is None else fail.reason,
            generator_bound_rps=None if bound is None else bound.rate,
            generator_bound_reason="" if bound is None else bound.reason,
            precision=found.precision,
            max_rps=found.max_rate,
            stopped=found.stopped,
        )

    @property
    def generator_bound(self) -> bool:
        """Whether the answer is the generator's: it gave out below any failing rate (as
        :meth:`.CapacityResult.line` reads it)."""
        bound = self.generator_bound_rps
        return bound is not None and (self.first_fail_rps is None or bound < self.first_fail_rps)

    @property
    def width_rps(self) -> float:
        """The bracket's width, at least the precision the search was asked for:
        ``max(first fail - capacity, precision x capacity)`` (the latter alone when no
        rate failed)."""
        low = self.capacity_rps or 0.0
        resolution = self.precision * low
        if self.first_fail_rps is None:
            return resolution
        return max(self.first_fail_rps - low, resolution)

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "scenario": self.scenario,
            "contract_rps": self.contract_rps,
            "capacity_rps": self.capacity_rps,
            "first_fail_rps": self.first_fail_rps,
            "first_fail_reason": self.first_fail_reason,
            "generator_bound_rps": self.generator_bound_rps,
            "generator_bound_reason": self.generator_bound_reason,
            "precision": self.precision,
            "max_rps": self.max_rps,
            "stopped": self.stopped,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CapacityBaseline:
        return cls(
            test=str(data["test"]),
            scenario=str(data["scenario"]),
            contract_rps=float(data["contract_rps"]),
            capacity_rps=_rate(data["capacity_rps"]),
            first_fail_rps=_rate(data["first_fail_rps"]),
            first_fail_reason=str(data.get("first_fail_reason", "")),
            generator_bound_rps=_rate(data.get("generator_bound_rps")),
            generator_bound_reason=str(data.get("generator_bound_reason", "")),
            precision=float(data["precision"]),
            max_rps=float(data.get("max_rps", 0.0)),
            stopped=str(data.get("stopped", "")),
        )


@dataclass
class Baseline:
    """A captured run: per-scenario histograms and where, when and against what."""

    name: str
    captured_at: str
    commit: str
    machine: dict[str, Any]
    target: dict[str, Any]
    profile: str | None
    http_backend: str | None
    generator_version: str
    scenarios: dict[str, ScenarioBaseline]
    #: with --certload-capacity: each test's capacity search, one per test and scenario
    capacity: list[CapacityBaseline] = field(default_factory=list)
    #: certctl's database settings (None: not recorded)
    database: DatabaseSettings | None = None

    @property
    def target_kind(self) -> str:
        """``double`` (the reference double), ``certctl`` or ``unknown``."""
        return str(self.target.get("kind") or "unknown")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "baseline_format": BASELINE_FORMAT,
            "name": self.name,
            "captured_at": self.captured_at,
            "commit": self.commit,
            "machine": self.machine,
            "target": self.target,
            "profile": self.profile,
            "http_backend": self.http_backend,
            "generator_version": self.generator_version,
            "scenarios": {name: sc.to_dict() for name, sc in self.scenarios.items()},
        }
        if self.capacity:  # optional: a session without capacity searches writes none
            data["capacity"] = [c.to_dict() for c in self.capacity]
        if self.database is not None:  # optional: a session without a stack has none
            data["database"] = self.database.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "baseline") -> Baseline:
        version = data.get("baseline_format") if isinstance(data, Mapping) else None
        if version != BASELINE_FORMAT:
            raise BaselineError(
                f"{source} has baseline_format {version!r}; this version of pytest-certload "
                f"reads format {BASELINE_FORMAT}. Capture it again with "
                "'python -m pytest_certload.baseline save NAME'."
            )
        try:
            return cls(
                name=str(data["name"]),
                captured_at=str(data["captured_at"]),
                commit=str(data["commit"]),
                machine=dict(data["machine"]),
                target=dict(data["target"]),
                profile=data.get("profile"),
                http_backend=data.get("http_backend"),
                generator_version=str(data.get("generator_version", "")),
                scenarios={
                    name: ScenarioBaseline.from_dict(name, sc)
                    for name, sc in data["scenarios"].items()
                },
                # absent in baselines saved without (or before) capacity searches
                capacity=[CapacityBaseline.from_dict(c) for c in data.get("capacity", ())],
                # absent in baselines saved before it was recorded
                database=(
                    DatabaseSettings.from_dict(data["database"])
                    if data.get("database") is not None
                    else None
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BaselineError(
                f"{source} is not a valid baseline: {type(exc).__name__}: {exc}. "
                "Capture it again with 'python -m pytest_certload.baseline save NAME'."
            ) from exc


def resolve_path(name: str, directory: Path = DEFAULT_DIR) -> Path:
    """``directory/NAME.json`` for a bare name; a path ending in ``.json`` as given."""
    if name.endswith(".json") or os.sep in name or "/" in name:
        return Path(name)
    if not NAME_RE.match(name):
        raise BaselineError(
            f"{name!r} is not a valid baseline name; use letters, digits, '_', '-' or '.', "
            "e.g. 'ubuntu-latest-2026-11', or give a path ending in .json."
        )
    return directory / f"{name}.json"


def save(baseline: Baseline, path: Path) -> Path:
    """Write ``baseline`` to ``path`` (atomically) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(baseline.to_dict(), indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def load(path: Path) -> Baseline:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        known = sorted(p.stem for p in path.parent.glob("*.json")) if path.parent.is_dir() else []
        raise BaselineError(
            f"no baseline at {path}; saved baselines in {path.parent}: "
            f"{', '.join(known) or 'none'}. Save one with "
            "'python -m pytest_certload.baseline save NAME'."
        ) from None
    except (OSError, ValueError) as exc:
        raise BaselineError(f"cannot read baseline {path}: {exc}") from exc
    return Baseline.from_dict(data, source=str(path))
