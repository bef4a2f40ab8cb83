"""Load from workers with their own network stacks: ``socket=`` and ``ssh=`` gateways.

The module builds a lab of Linux network namespaces on this machine
(:mod:`tests.support.netlab`, root only): certctl (the reference double) in ``srv``, an
execnet socket server in ``w1`` and an sshd with throwaway keys in ``w2``, each
namespace with its own address on a bridge; this process is the controller, on the
bridge through a veth of its own. Every run drives the shipped ``list_certificates``
scenario of ``tests/load/k6.py`` (its function and inputs as ``k6_scenarios`` builds
them; a short constant-arrival-rate executor instead of the 5-minute one) through both
workers with :func:`run_distributed`, the engine of ``--certload-tx``.

What only separate network stacks show: each worker in its own namespace with its own
address at the server; clock offsets and the agreed start measured over a real link;
a worker whose link is cut mid-run (``ip link set ... down``, from a progress tick)
named as lost while the other's share is kept; one verdict on the merged HDR histograms
(its sibling flips it with the double's fault injection); and a teardown that leaves no
namespace, process or key behind. Skipped, with the reason, where namespaces cannot be
made (not root, no ``ip netns``, no sshd).
"""

from __future__ import annotations

import contextlib
import gc
import os
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import execnet
import httpx
import pytest

from pytest_certload.certctl import bearer
from pytest_certload.distributed import DistributedRun, WorkerReport, run_distributed
from pytest_certload.engine import (
    ConstantArrivalRate,
    HTTPOptions,
    Progress,
    RunOptions,
    RunResult,
    Scenario,
)
from pytest_certload.engine.health import HealthLimits
from pytest_certload.errors import CertloadError
from pytest_certload.metrics import CounterSink, MetricStore, TrendSink
from tests.load import k6
from tests.support import netlab
from tests.support.lab_certctl import CERTCTL_PORT, LabCertctl, certctl_in_lab
from tests.support.netlab import Lab, LabError, network_lab, remove_leftovers, unavailable

MS = 1_000_000
SCENARIO = "list_certificates"
SELECTOR = f"http_req_duration{{scenario:{SCENARIO}}}"
#: the shipped test's thresholds (tests/load/test_api.py::test_list_certificates)
THRESHOLDS = {SELECTOR: ["p(95)<800", "p(99)<2000"], "http_req_failed": ["rate<0.01"]}
FAULTS = "/api/v1/_double/faults"


@dataclass(frozen=True)
class Hosts:
    lab: Lab
    certctl: LabCertctl
    tx: tuple[str, str]  # the socket= worker (w1), the ssh= worker (w2)


def _skip_unless_possible() -> None:
    reason = unavailable()
    if reason is not None:
        pytest.skip(f"no network-namespace lab here: {reason}")


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    _skip_unless_possible()
    with network_lab(("w1", "w2")) as lab:
        socket_spec = lab.start_socketserver("w1")
        ssh_spec = lab.start_sshd("w2")
        with certctl_in_lab(lab) as certctl:
            yield Hosts(lab, certctl, (socket_spec, ssh_spec))


def _listing(hosts: Hosts, rate: int = 40, duration: str = "3s") -> Scenario:
    """The shipped scenario, ``rate`` per second for ``duration`` from the start."""
    shipped = k6.k6_scenarios(hosts.certctl.url, bearer(hosts.certctl.token), {}, HTTPOptions())
    executor = ConstantArrivalRate(rate, duration, pre_allocated_vus=10, max_vus=2 * rate)
    return replace(shipped[SCENARIO], executor=executor, start_time=0, graceful_stop="2s")


def _options(hosts: Hosts, **changes: Any) -> RunOptions:
    options = RunOptions(
        http=HTTPOptions(backend="fast", verify=str(hosts.certctl.ca)),
        # verdicts, not the generator, are under test: tolerate a busy shared machine
        health=HealthLimits(max_lag_p99_ns=300 * MS, max_delay_p99_ns=300 * MS),
        teardown_timeout="1s",
        progress_every="250ms",
    )
    return replace(options, **changes)


def _run(hosts: Hosts, scenario: Scenario, **changes: Any) -> DistributedRun:
    try:
        return run_distributed(
            [scenario],
            tx=list(hosts.tx),
            thresholds=THRESHOLDS,
            options=_options(hosts, **changes),
            margin="2s",
            startup_timeout="60s",
        )
    except Exception as exc:  # a gateway that did not open: what its host logged
        for proc in hosts.lab.processes:
            exc.add_note(f"{proc.name} log:\n{proc.tail()}")
        raise


def _trend(store: MetricStore, name: str = "http_req_duration") -> TrendSink:
    sink = store.select(name, {"scenario": SCENARIO})
    assert isinstance(sink, TrendSink)
    return sink


def _count(result: RunResult, name: str = "iterations") -> float:
    sink = result.store.select(name, {"scenario": SCENARIO})
    return sink.count if isinstance(sink, CounterSink) else 0


def _shares(run: DistributedRun) -> list[RunResult]:
    return [w.result for w in run.workers if w.result is not None]


def _peers(pid: int, port: int) -> set[str]:
    """Remote IPv4 addresses of the established TCP connections to ``port`` in the network
    namespace of ``pid`` (its own ``/proc/PID/net/tcp``)."""
    peers = set()
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if state == "01" and int(local.split(":")[1], 16) == port:
            raw = bytes.fromhex(remote.split(":")[0])[::-1]  # little-endian u32
            peers.add(".".join(str(b) for b in raw))
    return peers


def _at_iterations(n: int, action: Callable[[Progress], None]) -> Callable[[Progress], None]:
    """A progress callback that runs ``action`` once, at the first tick with ``n``
    iterations started (summed over the workers)."""
    done: list[Progress] = []

    def tick(p: Progress) -> None:
        if not done and p.iterations >= n:
            done.append(p)
            action(p)

    return tick


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for(what: str, check: Callable[[], bool], bound_s: float) -> None:
    deadline = time.monotonic() + bound_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {bound_s:g} s")
        time.sleep(0.1)


# -- one run through both workers ------------------------------------------------------


def test_a_shipped_scenario_runs_through_socket_and_ssh_workers_as_one_run(
    hosts: Hosts,
) -> None:
    lab = hosts.lab
    seen: dict[str, Any] = {}

    def look(p: Progress) -> None:  # mid-run: who holds connections to certctl, who runs
        seen["peers"] = _peers(hosts.certctl.pid, CERTCTL_PORT)
        seen["pids"] = {role: lab.pids(role) for role in ("srv", "w1", "w2")}

    run = _run(hosts, _listing(hosts), progress=_at_iterations(40, look))
    merged = run.merged
    assert merged.ok, (merged.untrustworthy, merged.breaches)
    w1, w2 = run.workers
    assert [(w.name, w.shard) for w in run.workers] == [("w1", (0, 2)), ("w2", (1, 2))]
    # each worker ran in its own namespace (the socket server is the w1 worker itself)
    assert w1.pid in seen["pids"]["w1"], (seen, w1)
    assert w2.pid in seen["pids"]["w2"], (seen, w2)
    assert lab.role_of(os.getpid()) is None
    # certctl saw the load arrive from both workers' addresses, none from the controller
    assert seen["peers"] == {lab.address("w1"), lab.address("w2")}, seen
    # one kernel clock behind every namespace: the true offset is 0, so the NTP-style
    # estimate over the link must lie within half its round trip
    for w in run.workers:
        assert 0 < w.rtt_ns < 1_000 * MS, w
        assert abs(w.clock_offset_ns) <= w.rtt_ns // 2 + MS, w
    # the agreed start instant, on the one monotonic clock both workers read (t0 is
    # perf_counter_ns): each fixed t0 late_ns after it; the two instants agree within
    # the offsets' uncertainty (plus a few ms: a busy machine may preempt a worker
    # between its wall-clock and monotonic readings)
    a, b = (_agreed(w) for w in run.workers)
    assert abs(a - b) <= (w1.rtt_ns + w2.rtt_ns) // 2 + 5 * MS, (a, b, w1, w2)
    assert all(w.late_ns is not None and w.late_ns < 300 * MS for w in run.workers)
    assert merged.t0_ns == min(s.t0_ns for s in _shares(run))
    # the merged HDR histograms are the union of the shares, bucket by bucket
    shares = _shares(run)
    assert [_count(s) for s in shares] == [60, 60]
    union = MetricStore()
    for share in shares:
        union.merge(share.store)
    for metric in ("http_req_duration", "http_req_service_time", "schedule_lag"):
        assert _trend(merged.store, metric).counts() == _trend(union, metric).counts()
        assert _trend(merged.store, metric).count == 120
    health = merged.scenarios[SCENARIO].health
    assert (health.scheduled, health.started, health.dropped) == (120, 120, 0)
    # one verdict, judged once on the merged store: the shipped test's thresholds
    verdicts = {t.threshold.expression: t for t in merged.thresholds}
    assert set(verdicts) == {"p(95)<800", "p(99)<2000", "rate<0.01"}
    assert all(t.ok for t in verdicts.values())
    assert verdicts["p(99)<2000"].count == 120
    assert set(merged.cpu_ns) == {"w1", "w2"}
    # execnet's socket= gateway shuts its socket down but never closes it; the run let it
    # go already, so no ResourceWarning is left for a later collection (an error here)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [w.message for w in caught if issubclass(w.category, ResourceWarning)] == []


def _agreed(w: WorkerReport) -> int:
    assert w.result is not None
    assert w.late_ns is not None
    return w.result.t0_ns - w.late_ns


@pytest.fixture
def faults(hosts: Hosts) -> Iterator[Callable[..., None]]:
    """``faults(rule, ...)`` puts rules in force on the double; cleared after the test."""
    client = httpx.Client(
        base_url=hosts.certctl.url,
        verify=ssl.create_default_context(cafile=hosts.certctl.ca),
        headers=dict(bearer(hosts.certctl.token)),
        timeout=10,
    )

    def apply(*rules: dict[str, Any]) -> None:
        response = client.post(FAULTS, json={"rules": list(rules)})
        assert response.status_code == 200, response.text

    try:
        yield apply
    finally:
        client.delete(FAULTS)
        client.close()


def test_the_merged_verdict_flips_when_certctl_slows(
    hosts: Hosts, faults: Callable[..., None]
) -> None:
    faults({"method": "GET", "path": "/api/v1/certificates", "latency": 900})
    run = _run(hosts, _listing(hosts))
    merged = run.merged
    assert merged.trustworthy, merged.untrustworthy
    # both shares are in the verdict, and it breaches exactly the p(95) limit
    assert [_count(s) for s in _shares(run)] == [60, 60]
    ((breach,),) = [merged.breaches]
    assert (breach.threshold.selector, breach.threshold.expression) == (SELECTOR, "p(95)<800")
    assert breach.count == 120
    assert breach.observed is not None
    assert breach.observed >= 900
    assert _trend(merged.store).count == 120


# -- a worker cut off mid-run ---------------------------------------------------------


def test_a_worker_cut_off_mid_run_is_named_lost_and_the_other_share_kept(hosts: Hosts) -> None:
    lab = hosts.lab
    cut: list[int] = []  # elapsed ns of the tick the link went down at

    def pull_the_cable(p: Progress) -> None:
        lab.cut("w2")
        cut.append(p.elapsed_ns)

    try:
        run = _run(
            hosts, _listing(hosts, duration="6s"), progress=_at_iterations(40, pull_the_cable)
        )
        # the cut-off worker ends by itself, its link still down: sshd drops the session
        # of the client it cannot reach (ClientAliveInterval), the worker sees its
        # channel close and stops its run
        _wait_for("the cut-off worker to exit", lambda: not _alive(run.workers[1].pid), 30)
    finally:
        lab.mend("w2")
    merged = run.merged
    w1, w2 = run.workers
    # the ssh= worker is named, with why and when; its share is missing
    assert not merged.trustworthy
    (line,) = merged.untrustworthy
    assert line.startswith(f"{SCENARIO}: w2 ({hosts.tx[1]} on ")
    assert "died during the run, " in line
    assert line.endswith(
        "its connection closed without a result (the process exited or was killed, or the "
        "network to its host failed); its share is missing"
    )
    assert w2.result is None
    # found gone after the cut because its connection closed (ssh's ServerAliveInterval),
    # not given up at the run's bound ("sent no result within ...")
    assert cut
    assert w2.lost_ns is not None
    assert cut[0] < w2.lost_ns, (cut, w2.lost_ns)
    # the socket= worker's whole share is kept and is the merged result
    assert (w1.problem, w1.lost_ns) == ("", None)
    assert w1.result is not None
    assert _count(merged) == _count(w1.result) == 120
    assert _trend(merged.store).counts() == _trend(w1.result.store).counts()
    assert "Timeout, client not responding" in lab.process("sshd-w2").tail(50)


# -- teardown ---------------------------------------------------------------------------


def test_teardown_leaves_no_namespace_process_or_key_behind() -> None:
    _skip_unless_possible()
    group = execnet.Group()
    seen: dict[str, Any] = {}
    remote: list[execnet.Gateway] = []

    def body_that_fails() -> None:
        with network_lab(("w1", "w2")) as lab:
            tx = [lab.start_socketserver("w1"), lab.start_sshd("w2")]
            remote.extend(group.makegateway(spec) for spec in tx)  # live workers
            pids = [g.remote_exec("import os; channel.send(os.getpid())").receive() for g in remote]
            assert [lab.role_of(pid) for pid in pids] == ["w1", "w2"]
            seen.update(
                lab=lab,
                pids=lab.pids("w1") + lab.pids("w2") + lab.pids("srv"),
                keys=sorted((lab.directory / "ssh").iterdir()),
            )
            raise RuntimeError("the test body failed")

    try:
        with pytest.raises(RuntimeError, match="the test body failed"):
            body_that_fails()
    finally:
        group.terminate(timeout=5)
        # execnet's socket= gateway shuts its socket down but never closes it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            remote.clear()  # the group lets its gateways go at terminate()
            gc.collect()
    lab = seen["lab"]
    assert lab.leftovers() == []
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert lab.name not in listed
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert f" {lab.uplink}@" not in links
    # sshd, its session, the ssh worker, the socket server (the socket worker itself)
    assert len(seen["pids"]) >= 4, seen
    assert [pid for pid in seen["pids"] if _alive(pid)] == []
    assert [key for key in seen["keys"] if key.exists()] == []
    assert any(key.name == "client" for key in seen["keys"])
    assert not lab.directory.exists()


def test_leftovers_of_a_dead_run_are_removed_and_a_live_runs_kept() -> None:
    _skip_unless_possible()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid names a run that crashed
    dead, live = f"clmh{gone.pid}x1-srv", f"clmh{os.getpid()}x999-srv"
    directory = Path(os.environ.get("TMPDIR", "/tmp")) / f"clmh{gone.pid}x1-left"
    try:
        for ns in (dead, live):
            subprocess.run(["ip", "netns", "add", ns], check=True)
        directory.mkdir()
        removed = remove_leftovers()
        assert f"namespace {dead}" in removed
        assert f"directory {directory}" in removed
        assert not any(live in item for item in removed)
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert dead not in listed
        assert live in listed
        assert not directory.exists()
    finally:
        for ns in (dead, live):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        with contextlib.suppress(OSError):
            directory.rmdir()


def test_a_socket_server_started_as_a_script_is_named_with_the_fix() -> None:
    """``python .../execnet/script/socketserver.py`` (the script's first mode of operation) puts
    the script's directory first on ``sys.path``, where its ``socketserver.py`` shadows
    the standard library's module that ``http.server`` (via prometheus_client) needs."""
    _skip_unless_possible()
    scenario = k6.k6_scenarios("https://192.0.2.1", bearer("unused"), {}, HTTPOptions())
    with network_lab(("w1",)) as lab:
        spec = lab.start_socketserver("w1", as_script=True)
        with pytest.raises(CertloadError) as exc:
            run_distributed([scenario[SCENARIO]], tx=[spec], startup_timeout="30s")
    (line,) = [x for x in str(exc.value).splitlines() if x.startswith("  - w1 ")]
    assert line.startswith(f"  - w1 ({spec}): pytest_certload is not importable by ")
    assert line.endswith(
        "execnet's socket server was started as a script, which puts its directory first "
        "on sys.path; start it as a module instead: python -m execnet.script.socketserver "
        "HOST:PORT"
    )
    assert "the standard library's socketserver module is shadowed by " in line


@pytest.fixture
def fresh_unavailable() -> Iterator[Callable[[], str | None]]:
    unavailable.cache_clear()
    yield unavailable
    unavailable.cache_clear()


def test_without_root_the_skip_reason_says_so(
    fresh_unavailable: Callable[[], str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(netlab.os, "geteuid", lambda: 1000)
    assert fresh_unavailable() == (
        "building network namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); this "
        "process runs as uid 1000"
    )


def test_without_sshd_the_skip_reason_says_what_to_install(
    fresh_unavailable: Callable[[], str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(netlab.os, "geteuid", lambda: 0)
    monkeypatch.setattr(netlab, "SSHD", "/nonexistent/sshd")
    assert fresh_unavailable() == (
        "/nonexistent/sshd is not installed, so no ssh= gateway can be started; apt-get "
        "install openssh-server (scripts/setup.sh does)"
    )


def test_a_lab_names_an_unknown_role() -> None:
    _skip_unless_possible()
    with network_lab(("w1",)) as lab, pytest.raises(LabError) as exc:
        lab.namespace("w9")
    assert str(exc.value) == f"'w9' is not a role of lab {lab.name} (srv, w1)"
