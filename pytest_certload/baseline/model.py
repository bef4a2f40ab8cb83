"""The baseline model and its file: per-scenario HDR histograms and where they came from.

A baseline is one JSON file (``baselines/NAME.json``, :data:`BASELINE_FORMAT`) holding,
per scenario, the merged HDR histogram of every time trend the scenario recorded, its
request, failure and iteration counts, and where it came from: capture time, git
commit, machine, target, profile.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BaselineError
from ..metrics import BUILTIN_METRICS, TrendSink

__all__ = [
    "BASELINE_FORMAT",
    "DEFAULT_DIR",
    "NAME_RE",
    "Baseline",
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

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.requests if self.requests else None

    @property
    def gated(self) -> list[str]:
        """Metrics a comparison judges: the latency metric, then custom time trends."""
        custom = sorted(m for m in self.trends if m not in BUILTIN_METRICS)
        return [self.latency_metric, *custom] if self.latency_metric in self.trends else custom

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency_metric": self.latency_metric,
            "requests": self.requests,
            "failed": self.failed,
            "iterations": self.iterations,
            "tests": self.tests,
            "trends": {name: sink.to_dict() for name, sink in self.trends.items()},
        }

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

    @property
    def target_kind(self) -> str:
        """``double`` (the reference double), ``certctl`` or ``unknown``."""
        return str(self.target.get("kind") or "unknown")

    def to_dict(self) -> dict[str, Any]:
        return {
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
