"""One run's load from several processes or machines, over execnet, merged exactly.

The test process is the **controller**. For each run it opens one execnet gateway per
``--certload-tx`` spec (``2*popen``, ``ssh=host//python=python3``, ``socket=host:port``),
ships the scenarios to every **worker** (pickled: an iteration function travels by
reference, as ``module.name``) and lets worker ``i`` of ``n`` run its share of every
scenario (``RunOptions.shard = (i, n)``: open-model iteration ``k`` when
``k % n == i``, closed-model VU ``j`` when ``j % n == i``).

Protocol (plain ``(name, kwargs)`` events, like pytest-xdist's)::

    controller -> worker    ("setup", {sys_path, cwd})          bootstrap: sys.path, chdir
    controller -> worker    ("run", {payload, shard})           pickled scenarios + options
    worker -> controller    ("ready", {host, pid, python})      VUs can be built
    controller <-> worker   ("clock", {}) / ("clock", {wall_ns})  offset of its wall clock
    controller -> worker    ("go", {start_wall_ns})             the agreed start instant
    controller -> worker    ("stop", {reason})                  end the run now, keep its data
    worker -> controller    ("progress", {...})                 optional, every progress tick
    worker -> controller    ("result", {json, late_ns})         ``RunResult.to_dict()``
    worker -> controller    ("error", {phase, message})         setup or run failed

Every worker fixes its ``t0`` at the same instant (its own wall clock, corrected by the
offset measured in the ``clock`` exchange), so the union of the workers' schedules is
exactly the single-process schedule. The controller merges the results with
:func:`~pytest_certload.engine.merge_results` (exact HDR merge) and judges the
thresholds once. A worker that dies, fails or does not answer within the run's bound
(start + duration + graceful stop + teardown + margin) makes the run untrustworthy, by
name; the other workers' data is kept. Deadlines use monotonic time; gateways are always
terminated (killed if they do not exit) at the end.

Stopping: when ``RunOptions.stop`` is set (SIGTERM in the test process), the controller
sends ``stop`` to every worker, which ends its run as a local stop does and sends what it
measured; the merged result's ``aborted`` names the reason. A worker whose channel to the
controller closes (the controller was killed or crashed) stops its run the same way and
exits, so no load outlives its controller.

Imports no pytest; execnet is imported only when a run starts.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import pickle
import queue
import signal
import sys
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from ..engine import Progress, RunOptions, RunResult, Scenario
from ..engine.options import check_scenarios
from ..errors import CertloadError, ConfigError
from ..thresholds import Threshold, threshold_list
from ..units import NS_PER_S, parse_duration_ns
from .merge import DistributedRun, WorkerReport, merge_workers
from .tx import parse_tx, spec_keys

if TYPE_CHECKING:
    import execnet

__all__ = ["run_distributed"]

#: the first thing each worker runs: make the controller's modules importable, then serve
_BOOTSTRAP = """
import os, sys
name, kwargs = channel.receive()
for entry in reversed(kwargs["sys_path"]):
    if entry and entry not in sys.path:
        sys.path.insert(0, entry)
if kwargs["cwd"] and os.path.isdir(kwargs["cwd"]):
    os.chdir(kwargs["cwd"])
try:
    from pytest_certload.distributed.worker import serve_worker
except BaseException as exc:
    import socket
    fix = ("install pytest-certload there (same version) or give python=PATH of an "
           "interpreter that has it in the spec")
    shadow = getattr(sys.modules.get("socketserver"), "__file__", None) or ""
    if "execnet" in shadow:
        fix = (f"the standard library's socketserver module is shadowed by {shadow}: "
               "execnet's socket server was started as a script, which puts its directory "
               "first on sys.path; start it as a module instead: "
               "python -m execnet.script.socketserver HOST:PORT")
    channel.send(("error", {"phase": "setup", "message": (
        f"pytest_certload is not importable by {sys.executable} on {socket.gethostname()}: "
        f"{type(exc).__name__}: {exc}; {fix}"
    )}))
else:
    serve_worker(channel)
"""


# -- the controller ----------------------------------------------------------------


def run_distributed(
    scenarios: Sequence[Scenario],
    *,
    tx: Sequence[str],
    thresholds: Sequence[Threshold] | Mapping[str, Any] | None = None,
    options: RunOptions | None = None,
    threshold_source: str = "run_distributed()",
    margin: str | int = "10s",
    startup_timeout: str | int = "60s",
) -> DistributedRun:
    """Run ``scenarios`` split across one worker per spec of ``tx``; merge; judge once.

    ``tx`` holds execnet specs as :func:`parse_tx` returns them. ``startup_timeout``
    bounds opening the gateways and loading the scenarios there; ``margin`` is added to
    the run's own bound (latest start + duration + graceful stop, plus twice the teardown
    timeout) before a silent worker is given up. Raises :class:`CertloadError` when the
    run cannot start (a gateway does not open, a scenario cannot be shipped or loaded);
    once started, failures are data in the merged result.
    """
    options = options or RunOptions()
    specs = parse_tx(",".join(tx)) if tx else ()
    if not specs:
        raise ConfigError("run_distributed() needs at least one gateway spec in tx.")
    check_scenarios(scenarios, "run_distributed()")
    parsed = threshold_list(thresholds, source=threshold_source)
    payload = _payload(scenarios, options, parsed, threshold_source)
    margin_ns = parse_duration_ns(margin, what="margin", allow_zero=True)
    startup_ns = parse_duration_ns(startup_timeout, what="startup_timeout")
    teardown_ns = parse_duration_ns(options.teardown_timeout, allow_zero=True)
    interval_ns = parse_duration_ns(options.interval, what="timeline interval")
    run_ns = max(sc.end_ns for sc in scenarios)
    bound_ns = run_ns + 2 * teardown_ns + margin_ns
    # once stopped, a worker answers within an interval and its teardown
    stop_bound_ns = interval_ns + 2 * teardown_ns + margin_ns
    controller = _Controller(specs, payload, options, startup_ns, bound_ns, stop_bound_ns)
    stop = options.stop
    if stop is not None:
        stop.add_callback(controller.wake)
    try:
        controller.start()
        controller.go()
        controller.collect()
    finally:
        if stop is not None:
            stop.remove_callback(controller.wake)
        controller.close()
    return DistributedRun(
        merged=merge_workers(
            controller.workers, scenarios, parsed, options, stop_reason=controller.stop_reason
        ),
        workers=controller.workers,
    )


def _payload(
    scenarios: Sequence[Scenario],
    options: RunOptions,
    thresholds: list[Threshold],
    source: str,
) -> bytes:
    """Pickle what the workers need; refuse (clearly) what cannot travel by reference."""
    for sc in scenarios:
        fn: Any = sc.exec
        while isinstance(fn, partial):
            fn = fn.func
        qualname = str(getattr(fn, "__qualname__", type(fn).__qualname__))
        module = getattr(fn, "__module__", None)
        what = f"scenario {sc.name!r}: its exec {module}.{qualname}"
        if "<locals>" in qualname or "<lambda>" in qualname:
            kind = "a lambda" if "<lambda>" in qualname else "a closure (defined inside a function)"
            raise CertloadError(
                f"{what} is {kind}, which cannot be shipped to --certload-tx workers: they "
                "import the iteration function by module and name. Make it a module-level "
                "function (def at the top level of a test module or package); pass data it "
                "needs through module constants, Scenario.tags or functools.partial of a "
                "module-level function."
            )
        if module == "__main__":
            raise CertloadError(
                f"{what} is defined in __main__ (the script being run), which "
                "--certload-tx workers cannot import. Move it into an importable module "
                "(a test module or a package) and import it from there."
            )
        try:
            pickle.dumps(sc)
        except Exception as exc:
            raise CertloadError(
                f"scenario {sc.name!r} cannot be shipped to --certload-tx workers "
                f"({type(exc).__name__}: {exc}). Its exec must be a module-level function "
                "and its other fields plain data (executors, HTTPOptions, dicts)."
            ) from None
    shipped_options = replace(options, progress=None, shard=None, stop=None)
    abortable = [t for t in thresholds if t.abort_on_fail]
    return pickle.dumps((list(scenarios), shipped_options, abortable, source))


class _Worker:
    def __init__(self, report: WorkerReport, xspec: str) -> None:
        self.report = report
        self.xspec = xspec  # the spec with an id= (execnet's name for the gateway)
        self.gateway: execnet.Gateway | None = None
        self.channel: execnet.Channel | None = None
        self.state = "opening"  # opening, ready, running, done, failed, stopped
        self.progress: list[Progress] = []


_END = object()
#: the event that wakes the controller when ``RunOptions.stop`` is set
_STOP = object()


class _Controller:
    def __init__(
        self,
        specs: Sequence[str],
        payload: bytes,
        options: RunOptions,
        startup_ns: int,
        bound_ns: int,
        stop_bound_ns: int,
    ) -> None:
        self.specs = list(specs)
        self.payload = payload
        self.options = options
        self.startup_ns = startup_ns
        self.bound_ns = bound_ns
        self.stop_bound_ns = stop_bound_ns
        #: why the run was stopped ("" unless ``options.stop`` was set before it ended)
        self.stop_reason = ""
        # a SimpleQueue: put() is safe from a signal handler (see wake)
        self.events: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        self.group: execnet.Group | None = None
        n = len(self.specs)
        self._workers: list[_Worker] = []
        for i, spec in enumerate(self.specs):
            name = spec_keys(spec).get("id") or f"tx{i}"
            xspec = spec if "id" in spec_keys(spec) else f"{spec}//id={name}"
            self._workers.append(_Worker(WorkerReport(name, spec, (i, n)), xspec))
        self._progress_seen = 0
        #: the agreed start instant on this process's monotonic clock (set by go())
        self.start_ns: int | None = None

    @property
    def workers(self) -> list[WorkerReport]:
        return [w.report for w in self._workers]

    # -- start-up --------------------------------------------------------------
    def start(self) -> None:
        try:
            import execnet
        except ImportError:
            raise CertloadError(
                "--certload-tx needs execnet, which is not installed: pip install execnet "
                "(pytest-xdist also brings it)."
            ) from None
        self.group = execnet.Group()
        deadline = time.monotonic_ns() + self.startup_ns
        self._open_gateways(deadline)
        setup = {"sys_path": _project_paths(), "cwd": os.getcwd()}
        for i, w in enumerate(self._workers):
            assert w.gateway is not None
            options = spec_keys(w.report.spec)
            # held by the worker only (close() lets it go; see there)
            w.channel = w.gateway.remote_exec(_BOOTSTRAP)
            w.channel.setcallback(partial(self._put, i), endmarker=_END)
            cwd = setup["cwd"] if "chdir" not in options else None
            self._send(w, ("setup", {**setup, "cwd": cwd}))
            run = {"payload": self.payload, "shard": list(w.report.shard), "name": w.report.name}
            self._send(w, ("run", run))
        failures: list[str] = []
        while any(w.state == "opening" for w in self._workers):
            if self._stopped():
                for w in self._workers:
                    if w.state in ("opening", "ready"):
                        self._stop_worker(w)
                return
            item = self._next_event(deadline)
            if item is None:
                late = [w.report.label for w in self._workers if w.state == "opening"]
                raise CertloadError(
                    f"--certload-tx worker(s) {', '.join(late)} did not load the scenarios "
                    f"within {self.startup_ns / 1e9:g} s (startup timeout); check that the "
                    "host is reachable and that python there can import pytest_certload "
                    "and the test modules."
                )
            i, event = item
            if event is _STOP:
                continue
            w = self._workers[i]
            if event is _END:
                if w.state != "failed":  # not already named by its own error
                    w.state = "failed"
                    failures.append(f"{w.report.label}: {self._death(w)}")
                continue
            name, kwargs = event
            if name == "ready":
                w.state = "ready"
                w.report.host = str(kwargs.get("host", ""))
                w.report.pid = int(kwargs.get("pid", 0))
                w.report.python = str(kwargs.get("python", ""))
            elif name == "error":
                w.state = "failed"
                failures.append(f"{w.report.label}: {kwargs.get('message', '')}")
        if failures:
            raise CertloadError(
                "--certload-tx could not start the run:\n"
                + "\n".join(f"  - {line}" for line in failures)
            )

    def _open_gateways(self, deadline: int) -> None:
        """Open every gateway in parallel, each bounded by the start-up deadline."""
        assert self.group is not None
        group = self.group
        errors: dict[int, str] = {}

        def open_one(i: int, w: _Worker) -> None:
            try:
                w.gateway = group.makegateway(w.xspec)
            except BaseException as exc:
                errors[i] = f"{type(exc).__name__}: {exc}".rstrip(": ")

        threads = [
            threading.Thread(
                target=open_one, args=(i, w), name=f"certload-open-{w.report.name}", daemon=True
            )
            for i, w in enumerate(self._workers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(deadline - time.monotonic_ns(), 0) / 1e9)
        problems = [
            f"{w.report.label}: did not open within {self.startup_ns / 1e9:g} s"
            for w, t in zip(self._workers, threads, strict=True)
            if t.is_alive()
        ]
        problems += [f"{self._workers[i].report.label}: {msg}" for i, msg in errors.items()]
        if problems:
            raise CertloadError(
                "--certload-tx could not open its gateway(s):\n"
                + "\n".join(f"  - {p}" for p in problems)
                + "\nCheck the spec (python= must name an interpreter that has "
                "pytest-certload; ssh= needs key-based login; socket= needs a running "
                "execnet socketserver)."
            )

    def _put(self, index: int, item: Any) -> None:
        # execnet's receiver thread: hand everything to the controller's thread
        self.events.put((index, item))

    def wake(self, reason: str) -> None:
        """``RunOptions.stop`` was set (any thread, maybe a signal handler): wake the
        controller's thread, which tells the workers."""
        self.events.put((-1, _STOP))

    def _stopped(self) -> bool:
        """Whether the run is to stop; records the reason the first time."""
        stop = self.options.stop
        if stop is None or not stop.is_set():
            return False
        if not self.stop_reason:
            self.stop_reason = stop.reason or "stop requested"
        return True

    def _stop_worker(self, w: _Worker) -> None:
        """Tell one worker to stop: before the start it leaves at once (state
        ``stopped``); once running it ends its run and still sends its result."""
        self._send(w, ("stop", {"reason": self.stop_reason}))
        if w.state != "running":
            w.state = "stopped"

    def _next_event(self, deadline: int) -> tuple[int, Any] | None:
        remaining = deadline - time.monotonic_ns()
        if remaining <= 0:
            try:
                return self.events.get_nowait()
            except queue.Empty:
                return None
        try:
            return self.events.get(timeout=remaining / 1e9)
        except queue.Empty:
            return None

    def _send(self, w: _Worker, item: tuple[str, dict[str, Any]]) -> bool:
        if w.channel is None:
            return False
        try:
            w.channel.send(item)
        except (OSError, EOFError, ValueError):
            return False
        return True

    # -- the start instant --------------------------------------------------------
    def go(self) -> None:
        """Measure each worker's clock offset, then send one agreed start instant."""
        worst_rtt = 0
        for w in self._workers:
            self._sync_clock(w)
            worst_rtt = max(worst_rtt, w.report.rtt_ns)
        if self._stopped():
            for w in self._workers:
                if w.state == "ready":
                    self._stop_worker(w)
            return
        lead_ns = max(300_000_000, 10 * worst_rtt)
        start_wall = time.time_ns() + lead_ns
        self.start_ns = time.monotonic_ns() + lead_ns
        for w in self._workers:
            if w.state != "ready":
                continue
            if self._send(w, ("go", {"start_wall_ns": start_wall + w.report.clock_offset_ns})):
                w.state = "running"
            else:
                w.state = "failed"
                w.report.problem = "its connection closed before the start"

    def _sync_clock(self, w: _Worker, rounds: int = 5) -> None:
        """NTP-style: offset = worker time - midpoint of our send and receive."""
        best: tuple[int, int] | None = None
        deadline = time.monotonic_ns() + 10_000_000_000
        for _ in range(rounds):
            if w.state != "ready":
                return
            t1, m1 = time.time_ns(), time.monotonic_ns()
            if not self._send(w, ("clock", {})):
                return
            while True:
                item = self._next_event(deadline)
                if item is None:
                    w.state = "failed"
                    w.report.problem = "did not answer the clock exchange within 10 s"
                    return
                i, event = item
                if event is _STOP:
                    continue  # go() stops them all once the clocks are known
                other = self._workers[i]
                if event is _END:
                    other.state = "failed"
                    other.report.problem = f"died before the start: {self._death(other)}"
                    if other is w:
                        return
                    continue
                if other is w and event[0] == "clock":
                    break
            rtt = time.monotonic_ns() - m1
            t4 = t1 + rtt
            offset = int(event[1]["wall_ns"]) - (t1 + t4) // 2
            if best is None or rtt < best[0]:
                best = (rtt, offset)
        if best is not None:
            w.report.rtt_ns, w.report.clock_offset_ns = best

    # -- the run --------------------------------------------------------------------
    def collect(self) -> None:
        """Receive results, progress and deaths until every worker is done or the bound."""
        deadline = time.monotonic_ns() + self.bound_ns + NS_PER_S
        told = False
        while any(w.state == "running" for w in self._workers):
            if not told and self._stopped():
                told = True
                for w in self._workers:
                    if w.state == "running":
                        self._stop_worker(w)
                deadline = min(deadline, time.monotonic_ns() + self.stop_bound_ns)
            item = self._next_event(deadline)
            if item is None:
                break
            i, event = item
            if event is _STOP:
                continue
            w = self._workers[i]
            if w.state != "running":
                continue
            if event is _END:
                w.state = "failed"
                self._lost(w)
                w.report.problem = f"died during the run{self._lost_text(w)}: {self._death(w)}"
                continue
            name, kwargs = event
            if name == "progress":
                self._on_progress(w, kwargs)
            elif name == "result":
                try:
                    w.report.result = RunResult.from_dict(json.loads(kwargs["json"]))
                except (KeyError, TypeError, ValueError) as exc:
                    w.state = "failed"
                    w.report.problem = f"sent a result that cannot be read: {exc!r}"
                    continue
                late = kwargs.get("late_ns")
                w.report.late_ns = int(late) if late is not None else None
                w.state = "done"
            elif name == "error":
                w.state = "failed"
                w.report.problem = f"failed during the run: {kwargs.get('message', '')}"
        for w in self._workers:
            if w.state == "running":
                w.state = "failed"
                self._lost(w)
                # a remote worker cannot be killed from here: its connection is closed
                ended = "killed" if self._own_child(w) is not None else "its gateway closed"
                if told:
                    w.report.problem = (
                        f"sent no result within {self.stop_bound_ns / 1e9:.1f} s of being "
                        f"told to stop (an interval + teardown + margin); given up and {ended}"
                    )
                else:
                    w.report.problem = (
                        f"sent no result within {self.bound_ns / 1e9:.1f} s (the run's start "
                        f"+ duration + graceful stop + teardown + margin); given up and {ended}"
                    )
                self._kill(w)

    def _lost(self, w: _Worker) -> None:
        """Record when the run lost ``w``, from the agreed start."""
        if self.start_ns is not None:
            w.report.lost_ns = max(0, time.monotonic_ns() - self.start_ns)

    @staticmethod
    def _lost_text(w: _Worker) -> str:
        lost = w.report.lost_ns
        return "" if lost is None else f", {lost / 1e9:.1f} s after the start"

    def _on_progress(self, w: _Worker, kwargs: Mapping[str, Any]) -> None:
        if self.options.progress is None:
            return
        try:
            w.progress.append(Progress(**kwargs))
        except TypeError:
            return
        live = [x for x in self._workers if x.state in ("running", "done")]
        tick = self._progress_seen
        if not live or any(len(x.progress) <= tick for x in live):
            return
        parts = [x.progress[tick] for x in live]
        self._progress_seen += 1
        self.options.progress(
            Progress(
                elapsed_ns=max(p.elapsed_ns for p in parts),
                total_ns=max(p.total_ns for p in parts),
                iterations=sum(p.iterations for p in parts),
                rate_per_s=sum(p.rate_per_s for p in parts),
                requests=sum(p.requests for p in parts),
                failed=sum(p.failed for p in parts),
                dropped=sum(p.dropped for p in parts),
                vus=sum(p.vus for p in parts),
            )
        )

    def _death(self, w: _Worker) -> str:
        """Why a worker's channel closed: the remote traceback, or its exit."""
        reason = "its connection closed without a result (the process exited or was killed"
        if "popen" not in spec_keys(w.report.spec):
            # ssh= ends on its ServerAliveInterval; socket= only if the host answers
            reason += ", or the network to its host failed"
        reason += ")"
        if w.channel is not None:
            try:
                w.channel.waitclose(0.1)
            except EOFError:
                pass
            except Exception as exc:  # execnet.RemoteError: the remote traceback
                text = str(exc).strip().splitlines()
                reason = "raised: " + " | ".join(text[-3:])
        code = self._exit_code(w)
        if code is not None:
            reason += f"; exit code {code}"
        return reason

    @staticmethod
    def _own_child(w: _Worker) -> int | None:
        """The pid of a popen worker (a child of this process) once it said who it is."""
        if w.report.pid and "popen" in spec_keys(w.report.spec):
            return w.report.pid
        return None

    @classmethod
    def _exit_code(cls, w: _Worker, wait_s: float = 0.5) -> int | None:
        """A popen worker's exit status (negative: killed by that signal), without
        reaping it (execnet's teardown does), or None when unknown or still running."""
        pid = cls._own_child(w)
        if pid is None:
            return None
        deadline = time.monotonic() + wait_s
        while True:
            try:
                info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return None
            if info is not None:
                if info.si_code == os.CLD_EXITED:
                    return info.si_status
                return -info.si_status
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)

    @classmethod
    def _kill(cls, w: _Worker) -> None:
        """Stop a worker now: SIGKILL for our own popen child, else ask its gateway to
        exit (``Group.terminate`` at :meth:`close` kills what is left)."""
        pid = cls._own_child(w)
        if pid is not None:
            # not reaped before close(), so the pid cannot have been reused
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        if w.gateway is not None:
            try:
                w.gateway.exit()
            except Exception:
                return

    def close(self) -> None:
        """Ask every gateway to exit; kill what is still there after two seconds."""
        if self.group is None:
            return
        for w in self._workers:
            if w.state in ("opening", "ready", "running"):
                self._kill(w)
        self.group.terminate(timeout=2.0)
        if any("socket" in spec_keys(w.report.spec) for w in self._workers):
            # execnet's socket= gateways shut their socket down but never close it: let
            # them go here, where the socket's ResourceWarning is known and expected,
            # not at a later collection (an error under -W error / filterwarnings)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                for w in self._workers:
                    w.gateway = w.channel = None
                self.group = None
                gc.collect()


def _project_paths() -> list[str]:
    """The controller's sys.path minus the interpreter's own (stdlib, site-packages).

    Those entries make the test modules and scenario helpers importable on a worker; the
    worker keeps its own interpreter's library paths (it may be another installation).
    """
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    paths = []
    for entry in sys.path:
        if not entry or "site-packages" in entry or "dist-packages" in entry:
            continue
        real = os.path.realpath(entry)
        if any(real == p or real.startswith(p + os.sep) for p in prefixes):
            continue
        paths.append(entry)
    return paths
