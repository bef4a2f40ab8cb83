"""open_stack: the session's stack with the reference double, checked and torn down."""

from __future__ import annotations

import importlib.util
import os
import signal
import time
from pathlib import Path

import pytest

from pytest_certload.stack.session import DOUBLE_LABEL, StackRequest, describe_target, open_stack

from .conftest import descendants

HAVE_DOUBLE = importlib.util.find_spec("pytest_certload.double.__main__") is not None
SERVICES = ("postgres", "certctl", "nginx", "apache", "haproxy", "f5")


@pytest.mark.skipif(not HAVE_DOUBLE, reason="the reference double is not in this checkout")
def test_local_session_stack_passes_preflight_watches_its_processes_and_keeps_logs(
    tmp_path: Path,
) -> None:
    before = descendants()
    logs = tmp_path / "logs"
    with open_stack(StackRequest(), work_dir=tmp_path / "work", logs_dir=logs) as opened:
        assert opened.label.startswith(DOUBLE_LABEL)
        assert opened.logs_dir == logs
        opened.preflight()  # /ready, the key, TLS and scheme of certctl and every target
        assert opened.dead_services() == []
        assert {p.name for p in opened.copy_logs()} == {f"{n}.log" for n in SERVICES}
        certctl = opened.provider.certctl  # type: ignore[union-attr]
        os.kill(certctl.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30  # generous: only the kernel's reaping is awaited
        while certctl.exit_status() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        dead = opened.dead_services()
        assert len(dead) == 1
        assert dead[0].startswith("certctl was killed by SIGKILL (status -9); ")
    assert not (descendants() - before)
    assert {p.name for p in logs.iterdir()} == {f"{n}.log" for n in SERVICES}
    assert "database system is shut down" in (logs / "postgres.log").read_text()


def test_report_header_never_shows_a_password_in_the_url() -> None:
    import anyio

    from pytest_certload.stack.helpers import free_port
    from pytest_certload.stack.info import StackInfo

    info = StackInfo(
        certctl_url=f"https://admin:url-secret-9@127.0.0.1:{free_port()}",
        token="t0ken-x",
        admin_token="t0ken-x",
        verify_tls=False,
    )
    label, details = anyio.run(lambda: describe_target(info, double=False))
    assert "url-secret-9" not in label
    assert "url-secret-9" not in repr(details)
    assert details["url"].startswith("https://127.0.0.1:")


def test_stack_request_repr_shows_no_secret() -> None:
    request = StackRequest(
        provider="external",
        certctl_url="https://admin:url-secret-9@certctl.example:8443",
        certctl_token="t0ken-secret",
        certctl_dsn="postgresql://certctl:dsn-secret@db/certctl",
    )
    shown = repr(request)
    assert "url-secret-9" not in shown
    assert "t0ken-secret" not in shown
    assert "dsn-secret" not in shown
    assert "https://certctl.example:8443" in shown
