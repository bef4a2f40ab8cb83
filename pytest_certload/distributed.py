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
    worker -> controller    ("progress", {...})                 optional, every progress tick
    worker -> controller    ("result", {json, late_ns})         ``RunResult.to_dict()``
    worker -> controller    ("error", {phase, message})         setup or run failed

Every worker fixes its ``t0`` at the same instant (its own wall clock, corrected by the
offset measured in the ``clock`` exchange), so the union of the workers' schedules is
exactly the single-process schedule. The controller merges the results with
:func:`~pytest_certload.engine.merge.merge_results` (exact HDR merge) and judges the
thresholds once. A worker that dies, fails or does not answer within the run's bound
(start + duration + graceful stop + teardown + margin) makes the run untrustworthy, by
name; the other workers' data is kept. Deadlines use monotonic time; gateways are always
terminated (killed if they do not exit) at the end.

Imports no pytest; execnet is imported only when a run starts.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import pickle
import queue
import re
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from .engine.clock import RealClock
from .engine.health import ScenarioHealth
from .engine.merge import merge_results, result_from_dict
from .engine.runner import Progress, RunOptions, RunResult, Scenario, ScenarioResult
from .errors import CertloadError, ConfigError, TxSyntaxError
from .metrics import MetricStore, declare_builtins
from .thresholds import Threshold, parse_thresholds
from .units import parse_duration_ns

if TYPE_CHECKING:
    import execnet

__all__ = [
    "TX_GRAMMAR",
    "DistributedRun",
    "TxSyntaxError",
    "WorkerReport",
    "parse_tx",
    "run_distributed",
    "serve_worker",
]

TX_GRAMMAR = (
    "comma-separated execnet gateway specs, each optionally prefixed by N* for N identical "
    "workers: 'popen', 'popen//python=python3', 'ssh=HOST//python=python3' or "
    "'socket=HOST:PORT', with '//'-separated options python=, chdir=, id=, nice=, "
    "env:NAME=, dont_write_bytecode, ssh_config=, via=, execmodel=; "
    "e.g. '2*popen' or '2*popen,ssh=loadgen1//python=python3'"
)
_TYPES = ("popen", "ssh", "socket", "vagrant_ssh")
_KEYS = frozenset(
    {*_TYPES, "python", "chdir", "id", "nice", "dont_write_bytecode", "ssh_config", "via"}
    | {"execmodel"}
)
_FLAGS = frozenset({"popen", "dont_write_bytecode"})
_COUNT_RE = re.compile(r"^\s*(\d+)\s*\*\s*(.*)$")
_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+$")

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
    from pytest_certload.distributed import serve_worker
except BaseException as exc:
    import socket
    channel.send(("error", {"phase": "setup", "message": (
        f"pytest_certload is not importable by {sys.executable} on {socket.gethostname()}: "
        f"{type(exc).__name__}: {exc}; install pytest-certload there (same version) or "
        "give python=PATH of an interpreter that has it in the spec"
    )}))
else:
    serve_worker(channel)
"""


def parse_tx(raw: str) -> tuple[str, ...]:
    """Expand ``"2*popen,ssh=h//python=python3"`` into one spec string per worker.

    Specs are separated by commas or newlines; ``N*`` repeats a spec. Raises
    :class:`TxSyntaxError` naming the offending spec and what is wrong with it.
    """
    specs: list[str] = []
    parts = [p.strip() for p in re.split(r"[,\n]", raw)]
    for part in filter(None, parts):
        count = 1
        match = _COUNT_RE.match(part)
        if match:
            count = int(match.group(1))
            if count < 1:
                raise TxSyntaxError(f"{part!r}: the count before '*' must be 1 or more")
            part = match.group(2).strip()
        keys = _check_spec(part)
        if count > 1 and "id" in keys:
            raise TxSyntaxError(f"{count}*{part!r}: an id= cannot be repeated; drop it or N*")
        specs += [part] * count
    if not specs:
        raise TxSyntaxError(f"{raw!r} names no gateway")
    ids = [_spec_keys(s).get("id") for s in specs]
    dupes = sorted({i for i in ids if i is not None and ids.count(i) > 1})
    if dupes:
        raise TxSyntaxError(f"gateway id(s) {', '.join(dupes)} given more than once")
    return tuple(specs)


def _spec_keys(spec: str) -> dict[str, str | None]:
    keys: dict[str, str | None] = {}
    for item in spec.split("//"):
        key, sep, value = item.partition("=")
        keys[key.strip()] = value if sep else None
    return keys


def _check_spec(spec: str) -> dict[str, str | None]:
    if not spec:
        raise TxSyntaxError("an empty spec (nothing after '*')")
    keys: dict[str, str | None] = {}
    for item in spec.split("//"):
        key, sep, value = item.partition("=")
        if not key:
            raise TxSyntaxError(f"{spec!r}: an empty option (two '//' in a row?)")
        if key in keys:
            raise TxSyntaxError(f"{spec!r}: {key!r} given twice")
        if key not in _KEYS and not (key.startswith("env:") and len(key) > 4):
            raise TxSyntaxError(f"{spec!r}: unknown option {key!r}")
        if key in _FLAGS and sep:
            raise TxSyntaxError(f"{spec!r}: {key!r} takes no value")
        if key not in _FLAGS and not key.startswith("env:") and not value:
            raise TxSyntaxError(f"{spec!r}: {key!r} needs a value ({key}=...)")
        keys[key] = value if sep else None
    types = [t for t in _TYPES if t in keys]
    if len(types) != 1:
        found = f"{' and '.join(types)}" if types else "none"
        raise TxSyntaxError(
            f"{spec!r}: a spec needs exactly one gateway type of popen, ssh=, socket= "
            f"(found {found})"
        )
    address = keys.get("socket")
    if address is not None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise TxSyntaxError(f"{spec!r}: socket= needs HOST:PORT, e.g. socket=10.0.0.5:8888")
    ident = keys.get("id")
    if ident is not None and not _ID_RE.match(ident):
        raise TxSyntaxError(f"{spec!r}: id= takes letters, digits, '_', '-' or '.'")
    return keys


# -- what comes back ----------------------------------------------------------------


@dataclass
class WorkerReport:
    """One worker of a distributed run: who it was and what it sent back."""

    name: str  # the gateway id: "tx0", "tx1", ... unless the spec gives id=
    spec: str
    shard: tuple[int, int]
    host: str = ""
    pid: int = 0
    python: str = ""
    clock_offset_ns: int = 0  # worker wall clock minus the controller's
    rtt_ns: int = 0  # round trip of the best clock exchange
    late_ns: int | None = None  # how long after the agreed instant its t0 was fixed
    result: RunResult | None = None  # its share, as received (thresholds unjudged)
    problem: str = ""  # why its share is missing or untrusted ("" if fine)

    @property
    def label(self) -> str:
        where = f" on {self.host}" if self.host else ""
        return f"{self.name} ({self.spec}{where})"


@dataclass
class DistributedRun:
    """The merged result (one verdict) and each worker's own share."""

    merged: RunResult
    workers: list[WorkerReport] = field(default_factory=list)


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
    if not scenarios:
        raise ConfigError("run_distributed() needs at least one scenario.")
    names = [sc.name for sc in scenarios]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"scenario names must be unique; repeated: {', '.join(dupes)}.")
    parsed = (
        parse_thresholds(thresholds, source=threshold_source)
        if isinstance(thresholds, Mapping)
        else list(thresholds or ())
    )
    payload = _payload(scenarios, options, parsed, threshold_source)
    margin_ns = parse_duration_ns(margin, what="margin", allow_zero=True)
    startup_ns = parse_duration_ns(startup_timeout, what="startup_timeout")
    teardown_ns = parse_duration_ns(options.teardown_timeout, allow_zero=True)
    run_ns = max(
        sc.start_time_ns + sc.executor.duration_ns + sc.graceful_stop_ns for sc in scenarios
    )
    bound_ns = run_ns + 2 * teardown_ns + margin_ns
    controller = _Controller(specs, payload, options, startup_ns, bound_ns)
    try:
        controller.start()
        controller.go()
        controller.collect()
    finally:
        controller.close()
    return DistributedRun(
        merged=_merge(controller.workers, scenarios, parsed, options),
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
    shipped_options = replace(options, progress=None, shard=None)
    abortable = [t for t in thresholds if t.abort_on_fail]
    return pickle.dumps((list(scenarios), shipped_options, abortable, source))


class _Worker:
    def __init__(self, report: WorkerReport, xspec: str) -> None:
        self.report = report
        self.xspec = xspec  # the spec with an id= (execnet's name for the gateway)
        self.gateway: execnet.Gateway | None = None
        self.channel: execnet.Channel | None = None
        self.state = "opening"  # opening, ready, running, done, failed
        self.progress: list[Progress] = []


_END = object()


class _Controller:
    def __init__(
        self,
        specs: Sequence[str],
        payload: bytes,
        options: RunOptions,
        startup_ns: int,
        bound_ns: int,
    ) -> None:
        self.specs = list(specs)
        self.payload = payload
        self.options = options
        self.startup_ns = startup_ns
        self.bound_ns = bound_ns
        self.events: queue.Queue[tuple[int, Any]] = queue.Queue()
        self.group: execnet.Group | None = None
        n = len(self.specs)
        self._workers: list[_Worker] = []
        for i, spec in enumerate(self.specs):
            name = _spec_keys(spec).get("id") or f"tx{i}"
            xspec = spec if "id" in _spec_keys(spec) else f"{spec}//id={name}"
            self._workers.append(_Worker(WorkerReport(name, spec, (i, n)), xspec))
        self._progress_seen = 0

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
            spec_keys = _spec_keys(w.report.spec)
            channel = w.gateway.remote_exec(_BOOTSTRAP)
            channel.setcallback(partial(self._put, i), endmarker=_END)
            w.channel = channel
            cwd = setup["cwd"] if "chdir" not in spec_keys else None
            self._send(w, ("setup", {**setup, "cwd": cwd}))
            self._send(w, ("run", {"payload": self.payload, "shard": list(w.report.shard)}))
        failures: list[str] = []
        while any(w.state == "opening" for w in self._workers):
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
            w = self._workers[i]
            if event is _END:
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
        lead_ns = max(300_000_000, 10 * worst_rtt)
        start_wall = time.time_ns() + lead_ns
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
        deadline = time.monotonic_ns() + self.bound_ns + 1_000_000_000
        while any(w.state == "running" for w in self._workers):
            item = self._next_event(deadline)
            if item is None:
                break
            i, event = item
            w = self._workers[i]
            if w.state != "running":
                continue
            if event is _END:
                w.state = "failed"
                w.report.problem = f"died during the run: {self._death(w)}"
                continue
            name, kwargs = event
            if name == "progress":
                self._on_progress(w, kwargs)
            elif name == "result":
                try:
                    w.report.result = result_from_dict(json.loads(kwargs["json"]))
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
                w.report.problem = (
                    f"sent no result within {self.bound_ns / 1e9:.1f} s (the run's start + "
                    "duration + graceful stop + teardown + margin); given up and killed"
                )
                self._kill(w)

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
        reason = "its connection closed without a result (the process exited or was killed)"
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
    def _exit_code(w: _Worker) -> int | None:
        popen = getattr(getattr(w.gateway, "_io", None), "popen", None)
        if popen is None:
            return None
        try:
            code: int | None = popen.wait(timeout=0.5)
        except Exception:
            return None
        return code

    @staticmethod
    def _kill(w: _Worker) -> None:
        io = getattr(w.gateway, "_io", None)
        kill: Callable[[], None] | None = getattr(io, "kill", None)
        if kill is not None:
            kill()

    def close(self) -> None:
        """Ask every gateway to exit; kill what is still there after two seconds."""
        if self.group is None:
            return
        for w in self._workers:
            if w.state in ("opening", "ready", "running"):
                self._kill(w)
        self.group.terminate(timeout=2.0)


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


# -- merging -----------------------------------------------------------------------------


def _merge(
    workers: Sequence[WorkerReport],
    scenarios: Sequence[Scenario],
    thresholds: Sequence[Threshold],
    options: RunOptions,
) -> RunResult:
    done = [w for w in workers if w.result is not None and not w.problem]
    limits = options.health
    if done:
        merged = merge_results(
            [w.result for w in done if w.result is not None],
            thresholds=thresholds,
            health=limits,
            min_tail_samples=options.min_tail_samples,
            worker_names=[w.name for w in done],
        )
    else:
        merged = _empty_result(scenarios, thresholds, options)
    problems = [f"{w.label} {w.problem}; its share is missing" for w in workers if w.problem]
    problems += [
        f"{w.label} fixed its start {w.late_ns / 1e6:.1f} ms after the agreed instant, so "
        "its share of the schedule ran late (a slow or overloaded host?)"
        for w in done
        if w.late_ns is not None and w.late_ns > limits.max_lag_p99_ns
    ]
    for sc in merged.scenarios.values():
        sc.health.problems += problems
    return merged


def _empty_result(
    scenarios: Sequence[Scenario], thresholds: Sequence[Threshold], options: RunOptions
) -> RunResult:
    """No worker returned anything: a result with no data whose health says so."""
    from .thresholds import evaluate

    store = MetricStore()
    declare_builtins(store)
    results: dict[str, ScenarioResult] = {}
    for sc in scenarios:
        health = ScenarioHealth(
            scenario=sc.name,
            open_model=sc.open_model,
            scheduled=0,
            started=0,
            dropped=0,
            interrupted=0,
            lag_p99_ns=None,
            iteration_errors=0,
            target_rate=None,
            achieved_rate=None,
        )
        results[sc.name] = ScenarioResult(
            name=sc.name,
            executor=sc.executor.describe(),
            tags={"scenario": sc.name, **sc.tags},
            start_offset_ns=sc.start_time_ns,
            elapsed_ns=0,
            health=health,
            timeline=[],
            error_samples={},
        )
    return RunResult(
        store=store,
        scenarios=results,
        thresholds=evaluate(thresholds, store, min_tail_samples=options.min_tail_samples),
        started_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        duration_ns=0,
        health_limits=options.health,
    )


# -- the worker -------------------------------------------------------------------------


_SPIN_NS = 1_000_000


class _StartGate(RealClock):
    """A real clock whose first reading waits for the agreed start instant.

    :func:`~pytest_certload.engine.runner.run` builds its VUs and HTTP clients, then reads
    the clock once to fix ``t0`` (nothing is scheduled on the event loop before that
    reading, so waiting there blocks nothing). Every worker's ``t0`` is therefore the same
    instant, however long its set-up took; ``late_ns`` records how far past the instant
    the reading came.
    """

    def __init__(self, start_perf_ns: int) -> None:
        self._start = start_perf_ns
        self.late_ns: int | None = None

    def now_ns(self) -> int:
        if self.late_ns is None:
            remaining = self._start - time.perf_counter_ns()
            if remaining > _SPIN_NS:
                time.sleep((remaining - _SPIN_NS) / 1e9)
            now = time.perf_counter_ns()
            while now < self._start:  # the last millisecond: sleep wake-ups are too coarse
                now = time.perf_counter_ns()
            self.late_ns = max(0, now - self._start)
            self.now_ns = time.perf_counter_ns  # type: ignore[method-assign]
            return now
        return time.perf_counter_ns()


def serve_worker(channel: Any) -> None:
    """The worker side (runs in the gateway's process): load, report ready, run, answer."""
    name, kwargs = channel.receive()
    if name != "run":
        return
    try:
        scenarios, options, thresholds, source = pickle.loads(kwargs["payload"])
    except Exception as exc:
        channel.send(("error", {"phase": "setup", "message": _load_hint(exc)}))
        return
    index, count = (int(x) for x in kwargs["shard"])

    def progress(p: Progress) -> None:
        try:
            channel.send(("progress", asdict(p)))
        except Exception:
            return

    options = replace(options, shard=(index, count), progress=progress)
    try:
        _prewarm(scenarios, options)
    except Exception as exc:
        channel.send(("error", {"phase": "setup", "message": f"{type(exc).__name__}: {exc}"}))
        return
    channel.send(
        (
            "ready",
            {"host": socket.gethostname(), "pid": os.getpid(), "python": sys.version.split()[0]},
        )
    )
    while True:
        name, kwargs = channel.receive()
        if name == "clock":
            channel.send(("clock", {"wall_ns": time.time_ns()}))
        elif name == "go":
            break
        else:
            return
    delay = int(kwargs["start_wall_ns"]) - time.time_ns()
    gate = _StartGate(time.perf_counter_ns() + delay)
    try:
        result = _run_gated(scenarios, thresholds, options, gate, source)
        text = json.dumps(result.to_dict())
    except Exception as exc:
        tb = traceback.format_exception(exc)
        channel.send(("error", {"phase": "run", "message": "".join(tb[-3:]).strip()}))
        return
    channel.send(("result", {"json": text, "late_ns": gate.late_ns}))


def _prewarm(scenarios: Sequence[Scenario], options: RunOptions) -> None:
    """Import what the run needs before reporting ready, so the start is not late."""
    import anyio  # noqa: F401

    from .engine import runner  # noqa: F401

    for http in {options.http, *(sc.http for sc in scenarios if sc.http is not None)}:
        http.factory()
    if options.uvloop:
        with contextlib.suppress(ImportError):
            import uvloop  # noqa: F401


def _run_gated(
    scenarios: list[Scenario],
    thresholds: list[Threshold],
    options: RunOptions,
    clock: _StartGate,
    source: str,
) -> RunResult:
    """:func:`~pytest_certload.engine.runner.run_sync`, with the start gate as clock."""
    from .engine.runner import run_sync

    return run_sync(
        scenarios, thresholds=thresholds, options=options, threshold_source=source, clock=clock
    )


def _load_hint(exc: BaseException) -> str:
    where = f"{sys.executable} on {socket.gethostname()} (cwd {os.getcwd()})"
    text = f"could not load the scenarios with {where}: {type(exc).__name__}: {exc}"
    if isinstance(exc, ImportError | AttributeError):
        text += (
            "; the worker imports every scenario's exec function by module and name, so "
            "that module must be importable there: run from the same checkout path (the "
            "controller's sys.path is added) or install it as a package; test modules "
            "collected with --import-mode=importlib are not importable by name"
        )
    return text
