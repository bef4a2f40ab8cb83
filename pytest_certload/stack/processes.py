"""Child processes that cannot outlive the run: :class:`LocalProcess` and the registry.

A :class:`LocalProcess` is a child in its own session (process group) with its output in
a log file, stopped with terminate-then-kill under a deadline. Every one, and every
directory :func:`make_temp_dir` makes, is recorded in a module-level registry that an
``atexit`` hook and SIGTERM/SIGHUP handlers empty (:func:`install_cleanup_hooks`), so an
interrupted run leaves nothing behind. A log file registered with :func:`keep_log` is
copied to where it is kept before its directory is removed, there too.

Nothing here imports pytest.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

import anyio

from ..errors import ServiceError
from ..units import NS_PER_S
from .helpers import tail_file

__all__ = [
    "LocalProcess",
    "copy_kept_logs",
    "copy_quietly",
    "install_cleanup_hooks",
    "keep_log",
    "live_processes",
    "make_temp_dir",
    "release_log",
    "remove_temp_dir",
    "stop_all_processes",
]

_registry_lock = threading.RLock()  # re-entrant: the signal handler may interrupt a holder
#: pid -> (process, stop signal, whether the signal goes to the whole group)
_registry: dict[int, tuple[subprocess.Popen[bytes], int, bool]] = {}
_temp_dirs: set[Path] = set()
#: log file -> where it is kept (copied before the directory holding it is removed)
_kept_logs: dict[Path, Path] = {}
_atexit_registered = False
_signals_installed = False
_previous_handlers: dict[int, object] = {}


def live_processes() -> list[int]:
    """Pids of the processes LocalProcess started and has not reaped yet."""
    with _registry_lock:
        return [pid for pid, (proc, _, _) in _registry.items() if proc.poll() is None]


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    # The child leads its own session, so its pgid is its pid; signalling the group
    # reaches workers it forked (nginx, apache, postgres backends).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


# --------------------------------------------------------------------------- temp dirs


def make_temp_dir(prefix: str, parent: Path | None = None) -> Path:
    """A fresh private directory, removed by :func:`remove_temp_dir` or at exit."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    install_cleanup_hooks()
    with _registry_lock:
        _temp_dirs.add(path)
    return path


async def remove_temp_dir(path: Path | None) -> None:
    """Remove a directory made by :func:`make_temp_dir` (in a worker thread)."""
    if path is None:
        return
    await anyio.to_thread.run_sync(_remove_dir, path)


def _remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    with _registry_lock:
        _temp_dirs.discard(path)


# --------------------------------------------------------------------------- kept logs


def copy_quietly(source: Path, destination: Path) -> bool:
    """Copy ``source`` to ``destination`` (making its directory); never raises.

    False, and ``destination`` untouched, when ``source`` does not exist or the copy
    fails: keeping a log must never hide the error that made it interesting.
    """
    try:
        if not source.is_file():
            return False
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
    except Exception:  # a log we cannot keep is not worth an error
        return False
    return True


def keep_log(source: Path, destination: Path) -> None:
    """Copy the log ``source`` to ``destination`` before its directory is removed: by
    :func:`release_log` when its service stops, or by :func:`stop_all_processes` when an
    interrupted run empties the registry."""
    with _registry_lock:
        _kept_logs[source] = destination


def release_log(source: Path | None, *, copy: bool = True) -> bool:
    """Copy a log registered with :func:`keep_log` (unless ``copy`` is False) and forget
    it; True when it was copied."""
    if source is None:
        return False
    with _registry_lock:
        destination = _kept_logs.pop(source, None)
    return destination is not None and copy and copy_quietly(source, destination)


def copy_kept_logs(into: Path | None = None) -> list[Path]:
    """Copy every kept log now (only those kept in directory ``into``, if given); the
    copies made. Never raises."""
    with _registry_lock:
        entries = list(_kept_logs.items())
    return [
        destination
        for source, destination in entries
        if (into is None or destination.parent == into) and copy_quietly(source, destination)
    ]


# --------------------------------------------------------------------------- cleanup


def stop_all_processes(grace_s: float = 3.0) -> None:
    """Terminate every registered process group, then kill what is left after ``grace_s``;
    then copy the logs :func:`keep_log` registered and remove the directories
    :func:`make_temp_dir` made.

    Synchronous and safe to call from atexit or a signal handler.
    """
    with _registry_lock:
        entries = list(_registry.values())
    for proc, sig, group in entries:
        if proc.poll() is None:
            if group:
                _kill_group(proc, sig)
            else:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
    procs = [proc for proc, _, _ in entries]
    deadline = time.monotonic() + grace_s
    for proc in procs:
        remaining = deadline - time.monotonic()
        try:
            proc.wait(timeout=max(remaining, 0.01))
        except subprocess.TimeoutExpired:
            _kill_group(proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)
        # a group leader that exited may leave workers behind
        _kill_group(proc, signal.SIGKILL)
    with _registry_lock:
        for proc in procs:
            _registry.pop(proc.pid, None)
        directories = list(_temp_dirs)
    copy_kept_logs()  # the processes have written their last lines; their dirs go next
    with _registry_lock:
        _kept_logs.clear()
    for directory in directories:
        _remove_dir(directory)


def _on_fatal_signal(signum: int, frame: FrameType | None) -> None:
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):  # pragma: no cover - install_cleanup_hooks leaves those alone
        previous(signum, frame)
        return
    stop_all_processes(grace_s=2.0)
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def install_cleanup_hooks() -> None:
    """Register the atexit hook and the SIGTERM/SIGHUP handlers (idempotent).

    Called on the first spawn. Signal handlers can only be set from the main thread: a
    caller that starts services from another thread (e.g. an anyio blocking portal)
    should call this once from the main thread first.
    """
    global _atexit_registered, _signals_installed
    if not _atexit_registered:
        _atexit_registered = True
        atexit.register(stop_all_processes)
    if _signals_installed:
        return
    # SIGINT already becomes KeyboardInterrupt, which unwinds through every `finally`
    # and then atexit. SIGTERM and SIGHUP would kill us without either: when nobody
    # handles them, clean up and then die of the signal. A Python handler that is there
    # already (the plugin's SIGTERM policy stops the run and unwinds, tearing the stack
    # down through every `finally`) is left alone: its owner decides, atexit cleans up.
    if threading.current_thread() is not threading.main_thread():
        return  # try again on a later call from the main thread
    _signals_installed = True
    for signum in (signal.SIGTERM, signal.SIGHUP):
        current = signal.getsignal(signum)
        if current is signal.SIG_IGN or current is _on_fatal_signal or callable(current):
            continue
        _previous_handlers[signum] = current
        signal.signal(signum, _on_fatal_signal)


# --------------------------------------------------------------------------- processes


class LocalProcess:
    """A child process for one service: own session, log file, deadline-bound stop.

    Satisfies :class:`~pytest_certload.stack.protocols.Readiness`.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | int | None = None,
        stop_signal: int = signal.SIGTERM,
        signal_group: bool = True,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        #: send the stop signal to the whole process group (True) or only to the leader
        #: (False, for servers such as postgres that shut their workers down themselves)
        self.signal_group = signal_group
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def exit_status(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def log_tail(self, lines: int = 40) -> str:
        return tail_file(self.log_path, lines)

    def start(self) -> None:
        """Spawn the process (synchronous: fork+exec takes about a millisecond)."""
        if self._proc is not None:
            raise ServiceError(f"{self.name} was already started (pid {self._proc.pid}).")
        install_cleanup_hooks()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            try:
                proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    user=self.user,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise ServiceError(
                    f"cannot start {self.name}: {exc} (command: {' '.join(self.argv)})"
                ) from exc
        with _registry_lock:
            _registry[proc.pid] = (proc, self.stop_signal, self.signal_group)
        self._proc = proc

    async def stop(self, timeout_ns: int = 5 * NS_PER_S) -> int | None:
        """Send the stop signal to the group, wait up to ``timeout_ns``, then SIGKILL.

        Returns the exit status (None if the process was never started).
        """
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            if self.signal_group:
                _kill_group(proc, self.stop_signal)
            else:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(self.stop_signal)
            deadline = time.monotonic_ns() + timeout_ns
            while proc.poll() is None and time.monotonic_ns() < deadline:
                await anyio.sleep(0.01)
            if proc.poll() is None:
                _kill_group(proc, signal.SIGKILL)
                await anyio.to_thread.run_sync(proc.wait)
        # reap workers the leader left behind (same process group)
        _kill_group(proc, signal.SIGKILL)
        with _registry_lock:
            _registry.pop(proc.pid, None)
        return proc.returncode
