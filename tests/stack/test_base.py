"""Probes, LocalProcess and the process registry."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from pytest_certload.errors import ServiceError, ServiceTimeout
from pytest_certload.stack import base
from pytest_certload.stack.base import LocalProcess, Readiness, free_port, wait_for_port

from .conftest import descendants, pid_alive

pytestmark = pytest.mark.anyio


async def test_wait_for_port_timeout_says_what_where_how_long_with_log_tail(
    tmp_path: Path,
) -> None:
    port = free_port()
    proc = LocalProcess(
        "sleeper",
        [
            sys.executable,
            "-c",
            "print('booting the sleeper', flush=True); import time; time.sleep(30)",
        ],
        log_path=tmp_path / "sleeper.log",
    )
    proc.start()
    try:
        started = time.monotonic()
        with pytest.raises(ServiceTimeout) as info:
            await wait_for_port("127.0.0.1", port, timeout_ns=300_000_000, target=proc)
        assert time.monotonic() - started < 2
    finally:
        await proc.stop()
    message = str(info.value)
    assert f"a TCP connection at 127.0.0.1:{port}" in message
    assert "within 0.3 s" in message
    assert "sleeper" in message
    assert "ConnectionRefusedError" in message
    notes = "\n".join(info.value.__notes__)
    assert "last 40 log lines of sleeper" in notes
    assert "booting the sleeper" in notes


async def test_probe_fails_fast_when_the_process_exits(tmp_path: Path) -> None:
    proc = LocalProcess(
        "crasher",
        [sys.executable, "-c", "import sys; print('bad config on line 3'); sys.exit(4)"],
        log_path=tmp_path / "crasher.log",
    )
    proc.start()
    with pytest.raises(ServiceError) as info:
        await wait_for_port("127.0.0.1", free_port(), timeout_ns=10_000_000_000, target=proc)
    assert not isinstance(info.value, ServiceTimeout)
    assert "crasher exited with status 4" in str(info.value)
    assert "bad config on line 3" in "\n".join(info.value.__notes__)
    await proc.stop()


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
    assert proc.pid not in base.live_processes()


def test_stop_all_processes_empties_the_registry(tmp_path: Path) -> None:
    procs = [
        LocalProcess(f"p{i}", ["sleep", "30"], log_path=tmp_path / f"p{i}.log") for i in range(2)
    ]
    for proc in procs:
        proc.start()
    pids = [p.pid for p in procs]
    assert set(pids) <= set(base.live_processes())
    base.stop_all_processes(grace_s=1.0)
    assert not set(pids) & set(base.live_processes())
    assert not [pid for pid in pids if pid is not None and pid_alive(pid)]


def test_cleanup_hooks_installed_for_sigterm(tmp_path: Path) -> None:
    LocalProcess("t", ["true"], log_path=tmp_path / "t.log").start()
    handler = signal.getsignal(signal.SIGTERM)
    # pytest leaves SIGTERM at its default, so ours is installed
    assert handler is base._on_fatal_signal
    base.stop_all_processes()


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_install_cleanup_hooks_from_a_thread_defers_signals(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    monkeypatch.setattr(base, "_signals_installed", False)
    monkeypatch.setattr(base, "_atexit_registered", True)
    previous = signal.getsignal(signal.SIGHUP)
    try:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        worker = threading.Thread(target=base.install_cleanup_hooks)
        worker.start()
        worker.join()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
        assert base._signals_installed is False
        base.install_cleanup_hooks()  # main thread
        assert signal.getsignal(signal.SIGHUP) is base._on_fatal_signal
    finally:
        signal.signal(signal.SIGHUP, previous)
