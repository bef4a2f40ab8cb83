"""Latency baselines: save a run's full HDR histograms, compare a later run against them.

A baseline is one JSON file (``baselines/NAME.json``) holding, per scenario, the merged HDR
histogram of every time trend the scenario recorded (``http_req_duration``, custom trends
such as ``acme_directory_duration``, ``schedule_lag`` ...), its request, failure and
iteration counts, and where it came from: capture time, git commit, machine, target
(the certctl reference double or a real certctl, with its version), profile.

Comparison rule (:class:`Rule`), per scenario, per *gated* metric (the scenario's latency
metric plus its custom time trends) and per quantile (p50, p95, p99): a regression needs
**both**

* a practical effect: ``current - baseline > max(10 % of baseline, 1 ms)``; and
* statistical evidence: the distribution-free ``confidence`` interval of the current
  quantile lies entirely above the baseline's. The intervals are order-statistic
  (binomial) intervals computed exactly from the histograms: with ``n`` samples the
  number below the true q-quantile is Binomial(n, q), so a pair of ranks brackets it with
  known coverage, whatever the latency distribution.

A quantile is *not judged* when either run has too few samples for its interval (at 95 %:
a p99 needs 368, a p95 72); that is reported, never silently passed as a verdict.

Command line::

    python -m pytest_certload.baseline save NAME [--results DIR] [--dir baselines]
    python -m pytest_certload.baseline compare NAME [--results DIR] [--dir baselines]
    python -m pytest_certload.baseline table [NAME ...] [--results DIR] [--markdown]

Imports no pytest.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path
from statistics import NormalDist
from typing import Any

from hdrh.histogram import HdrHistogram

from .engine import RunResult
from .errors import BaselineError
from .metrics import (
    BUILTIN_METRICS,
    CounterSink,
    MetricStore,
    RateSink,
    TrendSink,
    nearest_rank,
)

__all__ = [
    "BASELINE_FORMAT",
    "DEFAULT_DIR",
    "Baseline",
    "BaselineError",
    "Comparison",
    "Finding",
    "Rule",
    "ScenarioBaseline",
    "baseline_from_recorder",
    "baseline_from_results",
    "baseline_from_runs",
    "compare",
    "format_ms",
    "load",
    "main",
    "markdown_table",
    "min_samples",
    "quantile_interval",
    "resolve_path",
    "save",
]

BASELINE_FORMAT = 1
DEFAULT_DIR = Path("baselines")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_EXACT_BINOMIAL_MAX_N = 20_000


# -- data --------------------------------------------------------------------------------


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


# -- building baselines ------------------------------------------------------------------


def _scenario_baseline(store: MetricStore, name: str, tests: list[str]) -> ScenarioBaseline:
    where = {"scenario": name}
    trends: dict[str, TrendSink] = {}
    for metric in store.names():
        if not store.is_time(metric):
            continue
        sink = store.select(metric, where)
        if isinstance(sink, TrendSink) and sink.count:
            trends[metric] = sink
    latency = "http_req_duration" if "http_req_duration" in trends else "iteration_duration"
    reqs = store.select("http_reqs", where)
    failed = store.select("http_req_failed", where)
    iterations = store.select("iterations", where)
    return ScenarioBaseline(
        name=name,
        latency_metric=latency,
        trends=trends,
        requests=int(reqs.count) if isinstance(reqs, CounterSink) else 0,
        failed=failed.trues if isinstance(failed, RateSink) else 0,
        iterations=int(iterations.count) if isinstance(iterations, CounterSink) else 0,
        tests=tests,
    )


def baseline_from_runs(
    runs: Sequence[tuple[str, RunResult]],
    *,
    name: str,
    metadata: Mapping[str, Any],
) -> Baseline:
    """A baseline from ``(nodeid, result)`` pairs; runs of one scenario name are merged.

    ``metadata`` may give ``captured_at``, ``commit``, ``machine``, ``target``, ``profile``,
    ``http_backend`` and ``generator_version``; missing ones are filled from here.
    """
    if not runs:
        raise BaselineError(
            f"baseline {name!r} would be empty: no load test recorded a run. Run the load "
            "tests first (e.g. pytest tests/load --certload-profile smoke)."
        )
    store = MetricStore()
    tests: dict[str, list[str]] = {}
    for nodeid, result in runs:
        store.merge(result.store)
        for scenario in result.scenarios:
            tests.setdefault(scenario, [])
            if nodeid not in tests[scenario]:
                tests[scenario].append(nodeid)
    from .report.summary import _version, machine

    return Baseline(
        name=name,
        captured_at=str(metadata.get("captured_at") or _now()),
        commit=str(metadata.get("commit") or git_commit()),
        machine=_with_runner(dict(metadata.get("machine") or machine())),
        target=dict(metadata.get("target") or {}),
        profile=metadata.get("profile"),
        http_backend=metadata.get("http_backend"),
        generator_version=str(metadata.get("generator_version") or _version()),
        scenarios={sc: _scenario_baseline(store, sc, ids) for sc, ids in tests.items()},
    )


def baseline_from_recorder(recorder: Any, settings: Any, *, name: str = "current") -> Baseline:
    """A baseline of this session (a :class:`~pytest_certload._session.SessionRecorder`)."""
    return baseline_from_runs(
        [(r.nodeid, r.result) for r in recorder.records],
        name=name,
        metadata={
            "target": {"label": recorder.target or "", **recorder.target_details},
            "profile": getattr(settings, "profile", None),
            "http_backend": getattr(settings, "http_backend", None),
        },
    )


def baseline_from_results(results_dir: Path, *, name: str = "current") -> Baseline:
    """A baseline of the session whose ``summary.json`` and ``runs/`` are in ``results_dir``.

    The summary lists that session's run files, so stale files of earlier sessions left
    in ``runs/`` are ignored.
    """
    from .engine.merge import result_from_dict

    summary_path = results_dir / "summary.json"
    try:
        summary = json.loads(summary_path.read_text())
    except FileNotFoundError:
        raise BaselineError(
            f"no {summary_path}: point --results at the --certload-output-dir of a finished "
            "pytest-certload session (default certload-results)."
        ) from None
    except (OSError, ValueError) as exc:
        raise BaselineError(f"cannot read {summary_path}: {exc}") from exc
    runs: list[tuple[str, RunResult]] = []
    for test in summary.get("tests", []):
        recorded = test.get("run_file")
        candidates = []
        if recorded:
            candidates += [Path(recorded), results_dir / "runs" / Path(recorded).name]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise BaselineError(
                f"the run file of {test.get('nodeid')!r} is missing (looked for "
                f"{', '.join(map(str, candidates)) or 'a run_file entry in ' + str(summary_path)}"
                f"); keep {results_dir / 'runs'} beside summary.json."
            )
        try:
            payload = json.loads(path.read_text())
            runs.append((str(payload["nodeid"]), result_from_dict(payload["result"])))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BaselineError(f"cannot read run file {path}: {exc}") from exc
    return baseline_from_runs(
        runs,
        name=name,
        metadata={
            "captured_at": summary.get("finished_at"),
            "machine": summary.get("machine"),
            "target": summary.get("target"),
            "profile": summary.get("profile"),
            "http_backend": summary.get("http_backend"),
            "generator_version": summary.get("generator", {}).get("version"),
        },
    )


def _with_runner(machine: dict[str, Any]) -> dict[str, Any]:
    runner = _runner()
    if runner and not machine.get("runner"):
        machine["runner"] = runner
    return machine


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def git_commit(cwd: Path | None = None) -> str:
    """The checked-out commit (``GITHUB_SHA`` in GitHub Actions); ``""`` when unknown."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        out = None
    if out is not None and out.returncode == 0 and out.stdout.strip():
        return out.stdout.strip()
    return os.environ.get("GITHUB_SHA", "")


# -- files --------------------------------------------------------------------------------


def resolve_path(name: str, directory: Path = DEFAULT_DIR) -> Path:
    """``directory/NAME.json`` for a bare name; a path ending in ``.json`` as given."""
    if name.endswith(".json") or os.sep in name or "/" in name:
        return Path(name)
    if not _NAME_RE.match(name):
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


# -- statistics -----------------------------------------------------------------------------


class _Ranked:
    """Value at any 1-based rank of a trend (bucket highest-equivalent values)."""

    def __init__(self, sink: TrendSink) -> None:
        hist = HdrHistogram.decode(sink.to_dict()["hdr"])
        self.values: list[int] = []
        counts: list[int] = []
        for item in hist.get_recorded_iterator():
            self.values.append(int(item.value_iterated_to))
            counts.append(int(item.count_added_in_this_iter_step))
        self.cumulative = list(accumulate(counts))
        self.n = self.cumulative[-1] if self.cumulative else 0

    def at_rank(self, rank: int) -> int:
        return self.values[bisect_left(self.cumulative, rank)]


def _binom_ppf(n: int, p: float, prob: float) -> int:
    """Smallest k with P(Binomial(n, p) <= k) >= prob (exact for small n, else normal)."""
    if p <= 0:
        return 0
    if p >= 1:
        return n
    if n > _EXACT_BINOMIAL_MAX_N:
        z = NormalDist().inv_cdf(prob)
        k = math.ceil(n * p + z * math.sqrt(n * p * (1 - p)) - 0.5)
        return min(max(k, 0), n)
    log_p, log_q, log_n = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    total = 0.0
    for k in range(n + 1):
        log_pmf = log_n - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        total += math.exp(log_pmf + k * log_p + (n - k) * log_q)
        if total >= prob - 1e-12:
            return k
    return n


def quantile_interval(n: int, q: float, confidence: float) -> tuple[int, int]:
    """1-based ranks ``(lo, hi)`` whose order statistics bracket the q-quantile (q in 0..100).

    ``lo`` is 0 when no order statistic is a lower bound at this confidence, and
    ``hi > n`` when none is an upper bound (too few samples beyond the quantile).
    """
    alpha = 1 - confidence
    p = q / 100
    lo = _binom_ppf(n, p, alpha / 2)
    # the largest k with F(k) <= alpha/2 is lo - 1 when F(lo) > alpha/2 (the usual case)
    hi = _binom_ppf(n, p, 1 - alpha / 2) + 1
    return lo, hi


def min_samples(q: float, confidence: float) -> int:
    """Fewest samples for which the q-quantile's interval has an upper bound.

    That needs ``P(all n samples below the quantile) = (q/100)**n <= (1 - confidence)/2``.
    """
    p = q / 100
    if p <= 0:
        return 1
    if p >= 1:
        return sys.maxsize  # never: no order statistic bounds the maximum from above
    return max(1, math.ceil(math.log((1 - confidence) / 2) / math.log(p)))


def format_ms(ns: float | None) -> str:
    """``2.12 ms``, ``843 ms``, ``1.25 s``: three significant digits."""
    if ns is None:
        return "—"
    ms = ns / 1e6
    if ms >= 1000:
        return f"{ms / 1000:.3g} s"
    if ms >= 100:
        return f"{ms:.0f} ms"
    return f"{ms:.3g} ms"


# -- comparison ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """When a difference is a regression (see the module docstring)."""

    min_relative: float = 0.10
    min_absolute_ns: int = 1_000_000
    confidence: float = 0.95
    quantiles: tuple[float, ...] = (50.0, 95.0, 99.0)

    def __post_init__(self) -> None:
        if not 0 < self.confidence < 1:
            raise BaselineError(f"confidence {self.confidence!r} is outside (0, 1); use e.g. 0.95.")
        if self.min_relative < 0 or self.min_absolute_ns < 0:
            raise BaselineError("minimum effects must be >= 0, e.g. 10 % and 1 ms.")

    def describe(self) -> str:
        return (
            f"regression = increase > {self.min_relative:.0%} and > "
            f"{format_ms(self.min_absolute_ns)}, with the {self.confidence:.0%} intervals "
            "of the two quantiles apart"
        )


@dataclass(frozen=True)
class Finding:
    """One scenario/metric/quantile compared."""

    scenario: str
    metric: str
    quantile: float
    verdict: str  # "regression", "improvement", "same", "not judged"
    baseline_ns: int | None = None
    current_ns: int | None = None
    baseline_ci: tuple[int, int] | None = None
    current_ci: tuple[int, int] | None = None
    reason: str = ""

    @property
    def selector(self) -> str:
        return f"{self.metric}{{scenario:{self.scenario}}}"

    def message(self) -> str:
        head = f"{self.selector} p({self.quantile:g})"
        if self.baseline_ns is None or self.current_ns is None:
            return f"{head}: {self.verdict}: {self.reason}"
        delta = self.current_ns - self.baseline_ns
        rel = delta / self.baseline_ns if self.baseline_ns else math.inf
        sign = "+" if delta >= 0 else "-"
        text = (
            f"{head}: {self.verdict}: {format_ms(self.baseline_ns)} -> "
            f"{format_ms(self.current_ns)} ({sign}{abs(rel):.1%}, {sign}{format_ms(abs(delta))})"
        )
        if self.baseline_ci and self.current_ci:
            text += (
                f"; intervals [{format_ms(self.baseline_ci[0])}, {format_ms(self.baseline_ci[1])}]"
                f" vs [{format_ms(self.current_ci[0])}, {format_ms(self.current_ci[1])}]"
            )
        return text + (f"; {self.reason}" if self.reason else "")


@dataclass
class Comparison:
    baseline: Baseline
    current: Baseline
    rule: Rule
    findings: list[Finding]
    missing: list[str]

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == "regression"]

    @property
    def ok(self) -> bool:
        return not self.regressions

    def lines(self, *, verbose: bool = True) -> list[str]:
        """The comparison as text; ``verbose=False`` leaves out the unchanged quantiles."""
        base = self.baseline
        out = [
            f"baseline {base.name!r}: captured {base.captured_at} at {_short(base.commit)} "
            f"on {_machine_text(base.machine)}, target {_target_text(base.target)}",
            f"rule: {self.rule.describe()}",
        ]
        kinds = {base.target_kind, self.current.target_kind}
        if len(kinds) > 1 and "unknown" not in kinds:
            out.append(
                f"! the baseline measured {_target_text(base.target)} but this run measured "
                f"{_target_text(self.current.target)}: the comparison mixes targets"
            )
        shown = [f for f in self.findings if verbose or f.verdict != "same"]
        out += [f"  {'✗' if f.verdict == 'regression' else '·'} {f.message()}" for f in shown]
        if len(shown) < len(self.findings):
            out.append(
                f"  · {len(self.findings) - len(shown)} more quantile(s) unchanged "
                "(within the noise or below the minimum effect; -v lists them)"
            )
        out += [f"  ! {m}" for m in self.missing]
        verdict = (
            f"{len(self.regressions)} regression(s) against baseline {base.name!r}"
            if self.regressions
            else f"no regression against baseline {base.name!r}"
        )
        out.append(verdict)
        return out


def _judge(
    scenario: str, metric: str, q: float, base: _Ranked, cur: _Ranked, rule: Rule
) -> Finding:
    b_lo, b_hi = quantile_interval(base.n, q, rule.confidence)
    c_lo, c_hi = quantile_interval(cur.n, q, rule.confidence)
    b_q = base.at_rank(nearest_rank(q, base.n))
    c_q = cur.at_rank(nearest_rank(q, cur.n))
    common: dict[str, Any] = {"baseline_ns": b_q, "current_ns": c_q}
    if b_hi > base.n or c_hi > cur.n:
        return Finding(
            scenario,
            metric,
            q,
            "not judged",
            **common,
            reason=f"too few samples for a {rule.confidence:.0%} interval of p({q:g}): it "
            f"needs {min_samples(q, rule.confidence):,} in each run (baseline {base.n:,}, "
            f"current {cur.n:,})",
        )
    b_ci = (base.at_rank(b_lo) if b_lo else 0, base.at_rank(b_hi))
    c_ci = (cur.at_rank(c_lo) if c_lo else 0, cur.at_rank(c_hi))
    floor = max(rule.min_relative * b_q, rule.min_absolute_ns)
    delta = c_q - b_q
    kwargs: dict[str, Any] = {**common, "baseline_ci": b_ci, "current_ci": c_ci}
    if delta > floor and c_ci[0] > b_ci[1]:
        return Finding(scenario, metric, q, "regression", **kwargs)
    if -delta > floor and c_ci[1] < b_ci[0]:
        return Finding(scenario, metric, q, "improvement", **kwargs)
    if delta > floor:
        kwargs["reason"] = "larger than the minimum effect but within the noise"
    elif delta > 0 and c_ci[0] > b_ci[1]:
        kwargs["reason"] = f"significant but below the minimum effect ({format_ms(floor)})"
    return Finding(scenario, metric, q, "same", **kwargs)


def compare(baseline: Baseline, current: Baseline, rule: Rule | None = None) -> Comparison:
    """Judge every gated metric of every scenario the two runs share."""
    rule = rule or Rule()
    findings: list[Finding] = []
    missing: list[str] = []
    for name, base_sc in baseline.scenarios.items():
        cur_sc = current.scenarios.get(name)
        if cur_sc is None:
            missing.append(f"scenario {name!r} of the baseline did not run this time")
            continue
        for metric in base_sc.gated:
            cur_sink = cur_sc.trends.get(metric)
            if cur_sink is None:
                missing.append(f"{metric}{{scenario:{name}}} was not recorded this time")
                continue
            base_r, cur_r = _Ranked(base_sc.trends[metric]), _Ranked(cur_sink)
            for q in rule.quantiles:
                findings.append(_judge(name, metric, q, base_r, cur_r, rule))
    for name in current.scenarios:
        if name not in baseline.scenarios:
            missing.append(f"scenario {name!r} has no baseline in {baseline.name!r}")
    return Comparison(baseline, current, rule, findings, missing)


# -- rendering -------------------------------------------------------------------------------


def _short(commit: str) -> str:
    return commit[:10] if commit else "unknown commit"


def _machine_text(machine: Mapping[str, Any]) -> str:
    parts = [str(machine.get("runner") or machine.get("hostname") or "unknown host")]
    if machine.get("cpus"):
        parts.append(f"{machine['cpus']} CPUs")
    platform = str(machine.get("platform") or "")
    if platform:
        parts.append("-".join(platform.split("-")[:2]))  # e.g. Linux-6.8.0
    return ", ".join(parts)


def _runner() -> str:
    """``GitHub-hosted ubuntu24`` inside GitHub Actions, else ``""``."""
    if os.environ.get("GITHUB_ACTIONS") != "true":
        return ""
    image = os.environ.get("ImageOS", "")  # noqa: SIM112 - GitHub spells it so
    kind = os.environ.get("RUNNER_ENVIRONMENT", "github-hosted").replace("-", " ")
    return f"{kind} {image}".strip()


def _target_text(target: Mapping[str, Any]) -> str:
    kind = target.get("kind")
    version = target.get("version")
    shown = version.get("version") if isinstance(version, Mapping) else version
    if kind == "double":
        return f"the certctl reference double {str(shown or '').removeprefix('double-')}".rstrip()
    if kind == "certctl":
        return f"certctl {shown or 'version unknown'}"
    return str(target.get("label") or "an unrecorded target")


def _captured(b: Baseline) -> str:
    date = b.captured_at[:10] or "unknown date"
    text = f"{date}, `{_short(b.commit)}`, {_machine_text(b.machine)}"
    if b.target_kind != "certctl":
        text += f"; against {_target_text(b.target)}"
    return text


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.2%}"


def markdown_table(baselines: Iterable[Baseline], *, markdown: bool = True) -> str:
    """The operator page's "measured baseline" table: one row per scenario and metric."""
    header = ["Scenario", "Metric", "p50", "p95", "p99", "Error rate", "Iterations", "Captured"]
    rows: list[list[str]] = []
    for b in baselines:
        for name, sc in b.scenarios.items():
            for metric in sc.gated:
                sink = sc.trends[metric]
                q = sink.quantiles((50, 95, 99))
                is_latency = metric == sc.latency_metric
                rows.append(
                    [
                        f"`{name}`",
                        f"`{metric}`",
                        format_ms(q[50]),
                        format_ms(q[95]),
                        format_ms(q[99]),
                        _pct(sc.error_rate) if is_latency else "—",
                        f"{sc.iterations:,}" if is_latency else "—",
                        _captured(b),
                    ]
                )
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    plain = [[c.replace("`", "") for c in r] for r in [header, *rows]]
    widths = [max(len(r[i]) for r in plain) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in plain
    )


# -- command line -------------------------------------------------------------------------------


def _fraction(raw: str) -> float:
    text = raw.strip()
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not a valid fraction; use e.g. '10%' or '0.1'."
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is negative; use e.g. '10%'.")
    return value


def _confidence(raw: str) -> float:
    value = _fraction(raw)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not in (0, 1); use e.g. '95%' or '0.95'.")
    return value


def _ms(raw: str) -> int:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not a number of milliseconds; use e.g. '1' or '0.5'."
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is negative; use e.g. '1'.")
    return round(value * 1e6)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_certload.baseline",
        description="Save, compare and tabulate pytest-certload latency baselines.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dir",
        type=Path,
        default=DEFAULT_DIR,
        help="directory of saved baselines. Default: baselines",
    )
    results = argparse.ArgumentParser(add_help=False)
    results.add_argument(
        "--results",
        type=Path,
        default=Path("certload-results"),
        help="--certload-output-dir of the session to read. Default: certload-results",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_save = sub.add_parser(
        "save", parents=[common, results], help="save the last session as baseline NAME"
    )
    p_save.add_argument("name", metavar="NAME")
    p_save.add_argument("--force", action="store_true", help="overwrite an existing baseline")
    p_cmp = sub.add_parser(
        "compare",
        parents=[common, results],
        help="compare the last session with baseline NAME; exit 1 on a regression",
    )
    p_cmp.add_argument("name", metavar="NAME")
    p_cmp.add_argument(
        "--min-relative",
        type=_fraction,
        default=Rule.min_relative,
        metavar="FRACTION",
        help="smallest relative increase that counts, e.g. '10%%'. Default: 10%%",
    )
    p_cmp.add_argument(
        "--min-ms",
        type=_ms,
        default=Rule.min_absolute_ns,
        metavar="MS",
        help="smallest absolute increase that counts, in ms. Default: 1",
    )
    p_cmp.add_argument(
        "--confidence",
        type=_confidence,
        default=Rule.confidence,
        metavar="LEVEL",
        help="confidence of each quantile's interval, e.g. '95%%'. Default: 95%%",
    )
    p_cmp.add_argument("--markdown", action="store_true", help="print a markdown list")
    p_tab = sub.add_parser(
        "table",
        parents=[common],
        help="render the measured-baseline table of saved baselines (or of --results)",
    )
    p_tab.add_argument("names", metavar="NAME", nargs="*", help="default: every saved baseline")
    p_tab.add_argument(
        "--results", type=Path, default=None, help="tabulate this results directory instead"
    )
    p_tab.add_argument("--markdown", action="store_true", help="markdown (default: plain text)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "save":
            path = resolve_path(args.name, args.dir)
            if path.exists() and not args.force:
                raise BaselineError(f"{path} exists; pass --force to replace it.")
            baseline = baseline_from_results(args.results, name=path.stem)
            save(baseline, path)
            scenarios = ", ".join(baseline.scenarios)
            print(f"saved baseline {path.stem!r} ({scenarios}) to {path}")
            return 0
        if args.command == "compare":
            rule = Rule(
                min_relative=args.min_relative,
                min_absolute_ns=args.min_ms,
                confidence=args.confidence,
            )
            result = compare(
                load(resolve_path(args.name, args.dir)),
                baseline_from_results(args.results),
                rule,
            )
            for line in result.lines():
                print(f"- {line}" if args.markdown else line)
            return 0 if result.ok else 1
        if args.results is not None:
            chosen = [baseline_from_results(args.results)]
        else:
            names = args.names or sorted(p.stem for p in args.dir.glob("*.json"))
            if not names:
                raise BaselineError(
                    f"no saved baseline in {args.dir}; save one with "
                    "'python -m pytest_certload.baseline save NAME' or give --results DIR."
                )
            chosen = [load(resolve_path(n, args.dir)) for n in names]
        print(markdown_table(chosen, markdown=args.markdown))
        return 0
    except BaselineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
