"""LocalProcess, the process registry and its cleanup hooks."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from pytest_certload.stack import processes
from pytest_certload.stack.helpers import free_port
from pytest_certload.stack.processes import LocalProcess
from pytest_certload.stack.protocols import Readiness

from .conftest import descendants, pid_alive

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests empty the registry: give each its own, so the session's PostgreSQL
    (tests/stack/conftest.py) and its directory survive whatever order tests run in."""
    monkeypatch.setattr(processes, "_registry", {})
    monkeypatch.setattr(processes, "_temp_dirs", set())


def test_local_process_satisfies_readiness(tmp_path: Path) -> None:
    proc = LocalProcess("x", ["true"], log_path=tmp_path / "x.log")
    assert isinstance(proc, Readiness)


async def test_stop_escalates_to_sigkill_and_reaps_the_group(tmp_path: Path) -> None:
    # a leader that ignores SIGTERM and a grandchild in the same process group
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        "print('up', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = LocalProcess("stubborn", [sys.executable, "-c", script], log_path=tmp_path / "s.log")
    proc.start()
    assert proc.pid is not None
    deadline = time.monotonic() + 5
    while "up" not in proc.log_tail() and time.monotonic() < deadline:
        time.sleep(0.02)
    family = descendants(proc.pid) | {proc.pid}
    assert len(family) == 2
    started = time.monotonic()
    status = await proc.stop(timeout_ns=300_000_000)
    assert status == -signal.SIGKILL
    assert time.monotonic() - started < 3
    time.sleep(0.1)
    assert not [pid for pid in family if pid_alive(pid)]
    assert proc.pid not in processes.live_processes()


def test_stop_all_processes_empties_the_registry(tmp_path: Path) -> None:
    procs = [
        LocalProcess(f"p{i}", ["sleep", "30"], log_path=tmp_path / f"p{i}.log") for i in range(2)
    ]
    for proc in procs:
        proc.start()
    pids = [p.pid for p in procs]
    assert set(pids) <= set(processes.live_processes())
    processes.stop_all_processes(grace_s=1.0)
    assert not set(pids) & set(processes.live_processes())
    assert not [pid for pid in pids if pid is not None and pid_alive(pid)]


def test_cleanup_hooks_installed_for_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processes, "_signals_installed", False)
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        LocalProcess("t", ["true"], log_path=tmp_path / "t.log").start()
        # nobody handled SIGTERM, so ours is installed
        assert signal.getsignal(signal.SIGTERM) is processes._on_fatal_signal
    finally:
        signal.signal(signal.SIGTERM, previous)
        processes.stop_all_processes()


def test_cleanup_hooks_leave_a_python_handler_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plugin's SIGTERM policy (stop the run, unwind, tear the stack down in order,
    keep the logs) must stay in charge: wrapping it would kill the stack first."""

    def policy(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(processes, "_signals_installed", False)
    previous = signal.signal(signal.SIGTERM, policy)
    try:
        LocalProcess("t", ["true"], log_path=tmp_path / "t.log").start()
        assert signal.getsignal(signal.SIGTERM) is policy
    finally:
        signal.signal(signal.SIGTERM, previous)
        processes.stop_all_processes()


def test_stop_all_processes_copies_kept_logs_before_removing_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processes, "_kept_logs", {})
    work = processes.make_temp_dir("certload-kept-", tmp_path)
    proc = LocalProcess(
        "talker",
        [
            sys.executable,
            "-c",
            "import time; print('the cause, in the log', flush=True); time.sleep(60)",
        ],
        log_path=work / "talker.log",
    )
    kept = tmp_path / "logs" / "talker.log"
    processes.keep_log(work / "talker.log", kept)
    proc.start()
    deadline = time.monotonic() + 30
    while "the cause" not in proc.log_tail() and time.monotonic() < deadline:
        time.sleep(0.02)
    processes.stop_all_processes(grace_s=5.0)
    assert not work.exists()
    assert kept.read_text() == "the cause, in the log\n"
    assert processes._kept_logs == {}


def test_copying_a_log_never_raises(tmp_path: Path) -> None:
    source = tmp_path / "x.log"
    assert processes.copy_quietly(source, tmp_path / "out" / "x.log") is False  # no source
    source.write_text("line\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert processes.copy_quietly(source, blocker / "x.log") is False  # cannot write there
    assert processes.copy_quietly(source, tmp_path / "out" / "x.log") is True
    assert (tmp_path / "out" / "x.log").read_text() == "line\n"


def test_describe_exit_names_the_status_or_the_signal_and_the_log() -> None:
    from pytest_certload.stack.helpers import describe_exit

    assert describe_exit("postgres", 1, "FATAL: no space left\n") == (
        "postgres exited with status 1; last log lines:\nFATAL: no space left"
    )
    assert describe_exit("nginx", -signal.SIGTERM, "") == (
        "nginx was killed by SIGTERM (status -15); it wrote no log output"
    )


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_install_cleanup_hooks_from_a_thread_defers_signals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    monkeypatch.setattr(processes, "_signals_installed", False)
    monkeypatch.setattr(processes, "_atexit_registered", True)
    previous = signal.getsignal(signal.SIGHUP)
    try:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        worker = threading.Thread(target=processes.install_cleanup_hooks)
        worker.start()
        worker.join()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
        assert processes._signals_installed is False
        processes.install_cleanup_hooks()  # main thread
        assert signal.getsignal(signal.SIGHUP) is processes._on_fatal_signal
    finally:
        signal.signal(signal.SIGHUP, previous)
