"""Readiness probes: what a timeout says, and failing fast when the process exits."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from pytest_certload.errors import ServiceError, ServiceTimeout
from pytest_certload.stack.helpers import free_port
from pytest_certload.stack.probes import wait_for_port
from pytest_certload.stack.processes import LocalProcess

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
