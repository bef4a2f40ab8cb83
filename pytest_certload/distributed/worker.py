"""The worker side of a distributed run: load the scenarios, wait for the agreed start
instant, run this worker's share, send the result back.

Runs in the gateway's process (:func:`serve_worker` is what the controller's bootstrap
calls); imports no pytest and no execnet (it talks through the channel it is given).
Once running, it listens on the channel from execnet's receiver thread: a ``stop``
event, or the channel closing (the controller exited, crashed or was killed), ends its
run through a :class:`~pytest_certload.engine.StopRequest`, so a worker never sends load
for a controller that is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import socket
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

from ..engine import Progress, RunOptions, RunResult, Scenario, StopRequest, run_sync
from ..engine.clock import RealClock
from ..thresholds import Threshold

__all__ = ["serve_worker"]

_SPIN_NS = 1_000_000
#: what the channel hands its callback when it closes
_CLOSED = object()
#: the stop reason when the controller's channel closes under a running worker
_CONTROLLER_GONE = "the connection to the controller closed (it exited or was killed)"


class _StartGate(RealClock):
    """A real clock whose first reading waits for the agreed start instant.

    :func:`~pytest_certload.engine.run` builds its VUs and HTTP clients, then reads the
    clock once to fix ``t0`` (nothing is scheduled on the event loop before that reading,
    so waiting there blocks nothing). Every worker's ``t0`` is therefore the same instant,
    however long its set-up took; ``late_ns`` records how far past the instant the
    reading came.
    """

    def __init__(self, start_perf_ns: int) -> None:
        self._start = start_perf_ns
        self.late_ns: int | None = None

    def now_ns(self) -> int:
        if self.late_ns is not None:
            return time.perf_counter_ns()
        remaining = self._start - time.perf_counter_ns()
        if remaining > _SPIN_NS:
            time.sleep((remaining - _SPIN_NS) / 1e9)
        now = time.perf_counter_ns()
        while now < self._start:  # the last millisecond: sleep wake-ups are too coarse
            now = time.perf_counter_ns()
        self.late_ns = max(0, now - self._start)
        return now


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
    label = str(kwargs.get("name") or f"worker {index}")

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
    stop = _listen_for_stop(channel)
    options = replace(options, stop=stop)
    try:
        result = _run_gated(scenarios, thresholds, options, gate, source)
        text = json.dumps(result.to_dict())
    except Exception as exc:
        tb = traceback.format_exception(exc)
        _send(channel, ("error", {"phase": "run", "message": "".join(tb[-3:]).strip()}))
        return
    if stop.reason == _CONTROLLER_GONE:
        # nobody is left to receive the result: say why the load ended where it can be seen
        with contextlib.suppress(OSError):
            print(
                f"certload worker {label} (pid {os.getpid()}): {_CONTROLLER_GONE}; its run "
                f"was stopped after {result.duration_ns / 1e9:.1f} s and the worker exits",
                file=sys.stderr,
                flush=True,
            )
        return
    _send(channel, ("result", {"json": text, "late_ns": gate.late_ns}))


def _listen_for_stop(channel: Any) -> StopRequest:
    """A stop request set by a ``("stop", {reason})`` event or by the channel closing.

    The channel's callback runs in execnet's receiver thread, which also reports the
    channel's end (its endmarker) when the controller goes away; nothing else may be
    received on ``channel`` afterwards.
    """
    stop = StopRequest()

    def on_item(item: Any) -> None:
        if item is _CLOSED:
            stop.set(_CONTROLLER_GONE)
        elif isinstance(item, tuple) and item and item[0] == "stop":
            kwargs = item[1] if len(item) > 1 and isinstance(item[1], dict) else {}
            stop.set(str(kwargs.get("reason") or "the controller asked"))

    channel.setcallback(on_item, endmarker=_CLOSED)
    return stop


def _send(channel: Any, item: tuple[str, dict[str, Any]]) -> None:
    """Send to the controller unless it is gone (then there is no one to tell)."""
    with contextlib.suppress(OSError, EOFError, ValueError):
        channel.send(item)


def _prewarm(scenarios: Sequence[Scenario], options: RunOptions) -> None:
    """Import what the run needs before reporting ready, so the start is not late."""
    import anyio  # noqa: F401

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
    """:func:`~pytest_certload.engine.run_sync`, with the start gate as clock."""
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
