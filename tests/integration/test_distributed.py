"""One run's load split across execnet gateways (``--certload-tx``) and merged exactly.

Every test starts real worker processes (``popen`` gateways) against a latency server in
its own process. Scenario functions are module-level: the workers import them by name
(this module is importable there because the controller's sys.path is shipped).
Workers are told to misbehave through the spec's ``env:`` option.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from pytest_certload.distributed import parse_tx, run_distributed
from pytest_certload.engine import (
    VU,
    ConstantArrivalRate,
    HTTPOptions,
    Progress,
    RunOptions,
    RunResult,
    Scenario,
    StopRequest,
)
from pytest_certload.engine.health import HealthLimits
from pytest_certload.errors import CertloadError, ConfigError
from pytest_certload.metrics import CounterSink, MetricStore, TrendSink
from tests.support.servers import LatencyServer, latency_server

MS = 1_000_000
OPTIONS = RunOptions(
    http=HTTPOptions(backend="fast"),
    health=HealthLimits(max_lag_p99_ns=200 * MS, max_delay_p99_ns=200 * MS),
    teardown_timeout="1s",
)
EXIT_AFTER = "CERTLOAD_TEST_EXIT_AFTER"
HANG = "CERTLOAD_TEST_HANG"
STARTS = "CERTLOAD_TEST_STARTS"
PIDS = "CERTLOAD_TEST_PIDS"
_started = [0]


async def hit(url: str, vu: VU) -> None:
    """One GET; a worker whose environment says so logs, exits or hangs (tests below)."""
    _started[0] += 1
    pids = os.environ.get(PIDS)
    if pids is not None and _started[0] == 1:
        with open(pids, "a") as f:  # who sends the load: one line per worker process
            f.write(f"{os.getpid()}\n")
    log = os.environ.get(STARTS)
    if log is not None:
        with open(log, "a") as f:  # perf_counter is one system-wide clock on Linux
            f.write(f"{vu.intended_start_ns}\n")
    exit_after = os.environ.get(EXIT_AFTER)
    if exit_after is not None and _started[0] > int(exit_after):
        os._exit(3)
    if os.environ.get(HANG):
        threading.Event().wait()  # blocks the worker's event loop for good
    await vu.http.get(url + "/item", name="/item")


@pytest.fixture(scope="module")
def server() -> Iterator[LatencyServer]:
    with latency_server(delay_ms=5) as srv:
        yield srv


def _scenario(
    server: LatencyServer, rate: int = 100, duration: str = "2s", graceful_stop: str = "2s"
) -> Scenario:
    executor = ConstantArrivalRate(rate, duration, pre_allocated_vus=5, max_vus=20)
    return Scenario("spread", partial(hit, server.url), executor, graceful_stop=graceful_stop)


def _trend(store: MetricStore, name: str) -> TrendSink:
    sink = store.select(name, {"scenario": "spread"})
    assert isinstance(sink, TrendSink)
    return sink


def _count(result: RunResult, name: str) -> float:
    sink = result.store.select(name, {"scenario": "spread"})
    return sink.count if isinstance(sink, CounterSink) else 0


def test_two_gateways_split_the_schedule_and_merge_exactly(
    server: LatencyServer, tmp_path: Path
) -> None:
    server.control("reset")
    ticks: list[Progress] = []
    starts = tmp_path / "starts.txt"
    run = run_distributed(
        [_scenario(server)],
        tx=[f"2*popen//env:{STARTS}={starts}"],
        thresholds={"http_req_duration": ["p(95)<1000"]},
        options=replace(OPTIONS, progress=ticks.append, progress_every="500ms"),
    )
    merged = run.merged
    assert merged.ok, (merged.untrustworthy, merged.breaches)
    assert [w.name for w in run.workers] == ["tx0", "tx1"]
    assert [w.shard for w in run.workers] == [(0, 2), (1, 2)]
    pids = {w.pid for w in run.workers}
    assert len(pids) == 2
    assert os.getpid() not in pids
    # each worker ran exactly its half of the 200 scheduled iterations
    shares = [w.result for w in run.workers]
    assert all(s is not None for s in shares)
    assert [_count(s, "iterations") for s in shares if s is not None] == [100, 100]
    # the merged histograms are the union of what the workers sent, bucket by bucket
    union = MetricStore()
    for s in shares:
        assert s is not None
        union.merge(s.store)
    for metric in ("http_req_duration", "http_req_service_time", "schedule_lag"):
        assert _trend(merged.store, metric).counts() == _trend(union, metric).counts()
        assert _trend(merged.store, metric).count == 200
    assert _count(merged, "iterations") == 200
    assert server.stats()["requests"] == 200  # and that union is what the server saw
    health = merged.scenarios["spread"].health
    assert (health.scheduled, health.started, health.dropped) == (200, 200, 0)
    assert health.target_rate == pytest.approx(100.0)
    assert health.achieved_rate == pytest.approx(100.0)
    # one verdict on the merged store
    ((verdict,),) = [merged.thresholds]
    assert verdict.ok
    assert verdict.count == 200
    # both workers fixed their t0 at the agreed instant, so the union of their intended
    # starts is the single-process schedule: iteration k at t0 + k * 10 ms. A worker
    # that got no CPU in time (a busy machine) says how late it was; beyond the
    # schedule-lag limit that would have made the run untrustworthy
    late = [w.late_ns for w in run.workers]
    assert all(x is not None and x < OPTIONS.health.max_lag_p99_ns for x in late), late
    intended = sorted(int(line) for line in starts.read_text().split())
    assert len(intended) == 200
    misalignment = max(abs(t - intended[0] - k * 10 * MS) for k, t in enumerate(intended))
    assert misalignment < max(x or 0 for x in late) + 5 * MS, (misalignment, late)
    # progress lines summed over the workers
    assert ticks
    assert all(t.vus >= 2 for t in ticks)
    # each worker's own CPU time (what telemetry reports as the generator's, per process)
    assert set(merged.cpu_ns) == {"tx0", "tx1"}
    assert all(ns > 0 for ns in merged.cpu_ns.values())
    assert merged.t0_ns == min(s.t0_ns for s in shares if s is not None)


def test_a_worker_that_dies_mid_run_is_named_and_the_other_share_kept(
    server: LatencyServer,
) -> None:
    started = time.monotonic()
    run = run_distributed(
        [_scenario(server, rate=50)],
        tx=["popen", f"popen//id=victim//env:{EXIT_AFTER}=10"],
        options=OPTIONS,
    )
    assert time.monotonic() - started < 20
    merged = run.merged
    assert not merged.trustworthy
    (line,) = [line for line in merged.untrustworthy if "victim" in line]
    assert "victim (popen//id=victim//env:" in line
    # when, from the agreed start: 10 iterations at 25/s make it about 0.4 s
    assert re.search(r" died during the run, \d+\.\d s after the start: its connection", line)
    assert "(the process exited or was killed); exit code 3" in line
    assert line.endswith("its share is missing")
    assert not any("tx0" in line for line in merged.untrustworthy)
    survivor, victim = run.workers
    assert (survivor.problem, survivor.result is not None) == ("", True)
    assert victim.result is None
    assert survivor.lost_ns is None
    assert victim.lost_ns is not None
    assert 0 < victim.lost_ns < 20_000 * MS
    assert _count(merged, "iterations") == 50  # the survivor's whole share
    assert _trend(merged.store, "http_req_duration").count == 50


def test_a_worker_that_never_answers_is_given_up_at_the_bound(server: LatencyServer) -> None:
    started = time.monotonic()
    run = run_distributed(
        [_scenario(server, rate=20, duration="1s", graceful_stop="0s")],
        tx=[f"popen//env:{HANG}=1", "popen"],
        options=OPTIONS,
        margin="1s",
    )
    elapsed = time.monotonic() - started
    # bound: 1 s run + 0 graceful stop + 2 x 1 s teardown + 1 s margin, then killed
    assert 4 < elapsed < 15
    merged = run.merged
    (line,) = merged.untrustworthy
    assert line.startswith("spread: tx0 (popen//env:")
    assert "sent no result within 4.0 s" in line
    assert line.endswith("given up and killed; its share is missing")
    assert run.workers[0].lost_ns is not None
    assert _count(merged, "iterations") == 10
    assert run.workers[1].result is not None


# -- stopping: the controller's stop request, and a controller that is gone --------------

ROOT = Path(__file__).resolve().parents[2]
#: a controller in its own process, running 2*popen workers for two minutes
CONTROLLER = """
import sys
from functools import partial

sys.path.insert(0, {root!r})
from pytest_certload.distributed import run_distributed
from pytest_certload.engine import ConstantArrivalRate, HTTPOptions, RunOptions, Scenario
from tests.integration.test_distributed import hit

executor = ConstantArrivalRate(50, "120s", pre_allocated_vus=5, max_vus=20)
scenario = Scenario("spread", partial(hit, {url!r}), executor)
run_distributed([scenario], tx=["2*popen"], options=RunOptions(http=HTTPOptions(backend="fast")))
"""


def _wait_for(what: str, check: Callable[[], bool], bound_s: float) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``bound_s`` (generous)."""
    deadline = time.monotonic() + bound_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {bound_s:g} s")
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped yet has exited: not alive)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_workers_stop_when_their_controller_is_killed(
    server: LatencyServer, tmp_path: Path
) -> None:
    server.control("reset")
    pids_file = tmp_path / "pids.txt"
    log = tmp_path / "controller.stderr"
    script = CONTROLLER.format(root=str(ROOT), url=server.url)
    with open(log, "wb") as stderr:
        controller = subprocess.Popen(
            [sys.executable, "-c", script],
            env={**os.environ, PIDS: str(pids_file)},
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            process_group=0,  # its popen workers join the group: the finally kills them all
        )
    try:
        _wait_for(
            "both workers sending load",
            lambda: len(_pids(pids_file)) == 2 and server.stats()["requests"] >= 50,
            60,
        )
        workers = _pids(pids_file)
        os.kill(controller.pid, signal.SIGKILL)
        controller.wait()
        _wait_for("the workers to exit", lambda: not any(map(_alive, workers)), 30)
        # nothing in flight, and the count stays where it is
        _wait_for("the server to go quiet", lambda: server.stats()["in_flight"] == 0, 10)
        seen = server.stats()["requests"]
        time.sleep(1.0)
        assert server.stats()["requests"] == seen
        # each worker stopped its run because the channel closed, and said so
        text = log.read_text()
        said = re.findall(
            r"certload worker (tx[01]) \(pid (\d+)\): the connection to the controller "
            r"closed \(it exited or was killed\); its run was stopped after",
            text,
        )
        assert sorted(name for name, _ in said) == ["tx0", "tx1"], text
        assert sorted(int(pid) for _, pid in said) == sorted(workers), text
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(controller.pid, signal.SIGKILL)
        controller.wait()


def test_a_stop_request_returns_the_merged_data_collected_so_far(server: LatencyServer) -> None:
    server.control("reset")
    stop = StopRequest()

    def progress(p: Progress) -> None:  # the controller's thread, as a signal handler's
        if p.iterations >= 40:
            stop.set("SIGTERM")

    run = run_distributed(
        [_scenario(server, rate=50, duration="120s")],
        tx=["2*popen"],
        options=replace(OPTIONS, progress=progress, progress_every="500ms", stop=stop),
    )
    merged = run.merged
    assert merged.aborted == "stopped: SIGTERM"
    for w in run.workers:
        assert w.problem == ""
        assert w.result is not None
        assert w.result.aborted == "stopped: SIGTERM"
    shares = [w.result for w in run.workers if w.result is not None]
    iterations = _count(merged, "iterations")
    assert 40 <= iterations < 50 * 120  # stopped long before its 6,000 iterations
    assert iterations == sum(_count(s, "iterations") for s in shares)
    recorded = _trend(merged.store, "http_req_duration").count
    assert recorded == sum(_trend(s.store, "http_req_duration").count for s in shares)
    interrupted = merged.scenarios["spread"].health.interrupted
    assert 0 <= server.stats()["requests"] - recorded <= interrupted


def test_ctrl_c_in_the_controller_still_ends_every_worker(
    server: LatencyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.control("reset")
    pids_file = tmp_path / "pids.txt"
    monkeypatch.setenv(PIDS, str(pids_file))

    def interrupt(p: Progress) -> None:
        if p.iterations >= 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_distributed(
            [_scenario(server, rate=50, duration="120s")],
            tx=["2*popen"],
            options=replace(OPTIONS, progress=interrupt, progress_every="500ms"),
        )
    workers = _pids(pids_file)
    assert len(workers) == 2
    _wait_for("the workers to exit", lambda: not any(map(_alive, workers)), 30)


def test_a_stop_before_the_start_sends_no_load(server: LatencyServer) -> None:
    server.control("reset")
    stop = StopRequest()
    stop.set("SIGTERM")
    run = run_distributed([_scenario(server)], tx=["2*popen"], options=replace(OPTIONS, stop=stop))
    assert run.merged.aborted == "stopped: SIGTERM"
    assert [(w.result, w.problem) for w in run.workers] == [(None, ""), (None, "")]
    assert server.stats()["requests"] == 0


def test_certload_tx_resolves_from_cli_ini_and_env() -> None:
    from pytest_certload.settings import resolve

    assert resolve({}, {}, environ={}).tx is None
    ini = resolve({}, {"certload_tx": "2*popen\nssh=h1//python=python3"}, environ={})
    assert ini.tx == ("popen", "popen", "ssh=h1//python=python3")
    assert ini.sources["certload_tx"] == "the ini file"
    env = resolve({}, {}, environ={"CERTLOAD_TX": "popen"})
    assert (env.tx, env.sources["certload_tx"]) == (("popen",), "environment variable CERTLOAD_TX")
    cli = resolve({"certload_tx": ("popen",)}, {"certload_tx": "3*popen"}, environ={})
    assert cli.tx == ("popen",)
    with pytest.raises(ConfigError) as exc:
        resolve({}, {"certload_tx": "popen//chdir"}, ini_source="pytest.ini", environ={})
    assert str(exc.value).startswith(
        "'popen//chdir' is not a valid gateway spec list ('popen//chdir': 'chdir' needs a "
        "value (chdir=...)) for certload_tx (from pytest.ini); use 'auto' (one local worker "
        "per usable core), or comma-separated execnet"
    )


def test_closures_and_lambdas_are_refused_with_the_fix() -> None:
    async def local(vu: VU) -> None:
        return None

    executor = ConstantArrivalRate(1, "1s")
    cases = ((local, "a closure"), (lambda vu: None, "a lambda"), (partial(local), "a closure"))
    for fn, kind in cases:
        with pytest.raises(CertloadError, match=rf"scenario 's': its exec .* is {kind}") as exc:
            run_distributed([Scenario("s", fn, executor)], tx=["popen"])
        assert "Make it a module-level function" in str(exc.value)


def test_a_module_the_worker_cannot_import_fails_the_start_with_a_hint(
    server: LatencyServer,
) -> None:
    scenario = _scenario(server)
    with pytest.raises(CertloadError, match="could not start the run") as exc:
        run_distributed([scenario], tx=["popen//python=" + _python_without_project()])
    text = str(exc.value)
    assert "tx0 (popen//python=" in text
    assert "pytest_certload is not importable" in text or "could not load the scenarios" in text


def test_a_module_only_the_controller_has_fails_the_start_with_a_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pickled by reference, the function's module must be importable on the worker."""
    module = types.ModuleType("certload_made_up_module")
    exec("async def hit(vu):\n    return None\n", module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    scenario = Scenario("s", module.hit, ConstantArrivalRate(1, "1s"))
    with pytest.raises(CertloadError, match="could not start the run") as exc:
        run_distributed([scenario], tx=["popen//id=lonely"])
    text = str(exc.value)
    assert "lonely (popen//id=lonely): could not load the scenarios" in text
    assert "could not load the scenarios with " in text
    assert "No module named 'certload_made_up_module'" in text
    assert "that module must be importable there" in text


def _python_without_project() -> str:
    """An interpreter that cannot import this checkout: the system one, in isolated mode."""
    import shutil
    import sys

    python = shutil.which("python3", path="/usr/bin:/usr/local/bin") or sys.executable
    return f"{python} -I"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2*popen", ("popen", "popen")),
        ("popen//python=python3, ssh=h1//python=python3", None),
        ("socket=10.0.0.5:8888\n2 * popen//env:X=1", None),
    ],
)
def test_tx_specs_expand(raw: str, expected: tuple[str, ...] | None) -> None:
    specs = parse_tx(raw)
    if expected is not None:
        assert specs == expected
    assert all("*" not in s and "," not in s for s in specs)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "names no gateway"),
        ("0*popen", "the count before '*' must be 1 or more"),
        ("sshh=host", "unknown option 'sshh'"),
        ("python=python3", "exactly one gateway type"),
        ("popen//ssh=h", "exactly one gateway type"),
        ("socket=host", "socket= needs HOST:PORT"),
        (
            "socket=h:8888//python=python3",
            "'socket=h:8888//python=python3': socket= takes no python= (execnet does not "
            "support it): the worker runs in the interpreter that runs the socket server "
            "there; drop it",
        ),
        ("2*popen//id=a", "an id= cannot be repeated"),
        ("popen//id=a,popen//id=a", "gateway id(s) a given more than once"),
        ("ssh=", "'ssh' needs a value"),
    ],
)
def test_bad_tx_specs_say_what_is_wrong(raw: str, problem: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_tx(raw)
    assert problem in str(exc.value)


# -- the pytest face -----------------------------------------------------------------

PYTESTER_MODULE = """
import pytest
from pytest_certload.engine import ConstantArrivalRate, Scenario

URL = "{url}"


async def hit(vu):
    await vu.http.get(URL + "/item", name="/item")


def scenario(name):
    executor = ConstantArrivalRate(40, "2s", pre_allocated_vus=5, max_vus=20)
    return Scenario(name, hit, executor)


@pytest.mark.certload(health="lag_p99=1s")
def test_within(certload):
    result = certload.run(scenario("within"),
                          thresholds={{"http_req_duration": ["p(95)<2000"]}})
    assert result.scenarios["within"].health.started == 80


@pytest.mark.certload(health="lag_p99=1s")
def test_breach(certload):
    certload.run(scenario("breach"), thresholds={{"http_req_duration": ["p(95)<1"]}})
"""


def test_certload_tx_gives_one_verdict_per_test_with_merged_figures(
    pytester: pytest.Pytester, server: LatencyServer
) -> None:
    pytester.makepyfile(test_load=PYTESTER_MODULE.format(url=server.url))
    result = pytester.runpytest_subprocess(
        "--certload-tx", "2*popen", "--certload-progress", "off", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1, failed=1)
    # the breach is judged once, on all 80 samples of both workers
    result.stdout.fnmatch_lines(
        [
            "E * 1 threshold(s) breached:",
            "E * http_req_duration p(95)<1: observed * ms over 80 samples (limit 1 ms)*",
        ]
    )
    # one summary row per test, with the merged request count
    result.stdout.fnmatch_lines(["  within * 80 *", "  breach * 80 *"])
    # the generator's CPU of each worker, in the telemetry of each test
    summary = json.loads((pytester.path / "certload-results" / "summary.json").read_text())
    for entry in summary["tests"]:
        generator = entry["server"]["generator"]
        assert set(generator["processes"]) == {"tx0", "tx1"}
        assert generator["cpu_s"] == pytest.approx(sum(generator["processes"].values()), abs=0.01)


def test_a_bad_tx_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_x():\n    pass\n")
    result = pytester.runpytest_subprocess("--certload-tx", "3*sshh=h")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*argument --certload-tx: '3[*]sshh=h' is not a valid gateway spec list "
            "('sshh=h': unknown option 'sshh'); use 'auto' (one local worker per usable "
            "core), or comma-separated execnet gateway specs*"
        ]
    )


def test_alongside_xdist_each_test_splits_its_own_load(
    pytester: pytest.Pytester, server: LatencyServer
) -> None:
    """-n spreads the tests over processes; --certload-tx splits each test's load."""
    pytest.importorskip("xdist")
    pytester.makepyfile(test_load=PYTESTER_MODULE.format(url=server.url))
    result = pytester.runpytest_subprocess(
        "-n", "2", "--certload-tx", "2*popen", "--certload-progress", "off"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["E * observed * ms over 80 samples (limit 1 ms)*"])


def test_auto_is_one_local_worker_per_usable_core(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_certload.distributed import tx

    monkeypatch.setattr(tx.os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert parse_tx("auto") == ("popen", "popen", "popen")
    assert parse_tx(" AUTO ") == ("popen", "popen", "popen")
    from pytest_certload.settings import resolve

    settings = resolve({}, {}, environ={"CERTLOAD_TX": "auto"})
    assert settings.tx == ("popen",) * 3
