"""LocalStack: full boot (with the reference double), StackInfo, teardown guarantees."""

from __future__ import annotations

import importlib.util
import ssl
from pathlib import Path

import httpx
import pytest

from pytest_certload.errors import ConfigError, ServiceError
from pytest_certload.seed import apply_seed
from pytest_certload.stack import processes
from pytest_certload.stack.info import StackInfo
from pytest_certload.stack.local import LocalStack
from pytest_certload.stack.probes import probe_http
from pytest_certload.stack.processes import live_processes

from .conftest import FAKE_CERTCTL, PYTHON, REPO, descendants

pytestmark = pytest.mark.anyio

HAVE_DOUBLE = importlib.util.find_spec("pytest_certload.double.__main__") is not None


class _Recording(set[Path]):
    """Stands in for the registry of temp dirs and remembers every one ever added."""

    def __init__(self, made: list[Path]) -> None:
        super().__init__()
        self.made = made

    def add(self, path: Path) -> None:
        self.made.append(path)
        super().add(path)


@pytest.fixture
def made_dirs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every directory the stack code creates during the test (other jobs on the machine
    may be creating certload-* directories at the same time, so no global scan)."""
    made: list[Path] = []
    monkeypatch.setattr(processes, "_temp_dirs", _Recording(made))
    return made


def assert_all_removed(made: list[Path]) -> None:
    assert made, "the stack made no directories?"
    left = [p for p in made if p.exists()]
    assert left == [], f"directories survived stop(): {left}"


async def test_full_stack_with_fake_certctl_boots_and_tears_down(
    tmp_path: Path, made_dirs: list[Path]
) -> None:
    before = descendants()
    # session fixtures of other test directories (their PostgreSQL) may be registered too
    registered_before = set(live_processes())
    logs = tmp_path / "logs"
    stack = LocalStack(
        certctl_command=[PYTHON, str(FAKE_CERTCTL)], base_dir=tmp_path / "work", logs_dir=logs
    )
    async with stack as info:
        assert isinstance(info, StackInfo)
        assert info.provider == "local"
        assert set(info.targets) == {"nginx", "apache", "haproxy", "f5"}
        assert info.ca is not None
        assert info.ca.exists()
        assert info.dsn is not None
        # a random password for every cluster, never the well-known one
        assert stack.postgres is not None
        password = stack.postgres.password
        assert info.dsn.startswith(f"postgresql://certctl:{password}@127.0.0.1:")
        assert password != "certctl"
        assert password not in repr(info)
        assert stack.dead_services() == []
        assert info.token == info.admin_token
        assert info.token not in repr(info)
        for kind, url in info.targets.items():
            path = "/healthz" if kind == "f5" else "/"
            status, _, version = await probe_http(url + path, verify=info.ca)
            assert (kind, status) == (kind, 200)
            assert version == "TLSv1.3"
        status, _, _ = await probe_http(info.certctl_url + "/ready", verify=info.ca)
        assert status == 200
        assert info.f5_http_url is not None
        assert set(stack.boot_seconds) >= {"postgres", "certctl", "nginx", "total"}
        running = descendants() - before
        assert len(running) >= 8  # postgres (+ its workers), certctl, 3 sidecars, f5
    assert not (descendants() - before), "child processes survived stop()"
    assert not set(live_processes()) - registered_before
    assert_all_removed(made_dirs)
    # every service's log outlived its directory
    kept = {p.name for p in logs.iterdir()}
    assert kept == {f"{n}.log" for n in ("postgres", "certctl", "nginx", "apache", "haproxy", "f5")}
    assert "fake certctl: serving" in (logs / "certctl.log").read_text()
    assert "database system is shut down" in (logs / "postgres.log").read_text()


async def test_failed_boot_tears_down_what_started(tmp_path: Path, made_dirs: list[Path]) -> None:
    before = descendants()
    stack = LocalStack(
        certctl_command=[PYTHON, str(FAKE_CERTCTL)],
        certctl_env={"FAKE_CERTCTL_EXIT": "7"},
        base_dir=tmp_path / "work",
        logs_dir=tmp_path / "logs",
    )
    with pytest.raises(ServiceError, match="certctl exited with status 7") as info:
        await stack.start()
    assert "refusing to start on purpose" in "\n".join(info.value.__notes__)
    assert not (descendants() - before)
    assert_all_removed(made_dirs)
    assert stack.services == {}
    # the log that shows why is kept although the boot failed
    assert "refusing to start on purpose" in (tmp_path / "logs" / "certctl.log").read_text()


async def test_a_dead_service_is_named_with_its_status_and_log(
    tmp_path: Path, made_dirs: list[Path]
) -> None:
    import os
    import signal

    import anyio

    stack = LocalStack(
        certctl_command=[PYTHON, str(FAKE_CERTCTL)], targets=["nginx"], base_dir=tmp_path
    )
    async with stack:
        assert stack.dead_services() == []
        certctl = stack.certctl
        assert certctl is not None
        assert certctl.pid is not None
        os.kill(certctl.pid, signal.SIGKILL)  # dies under the load, as a crash would
        with anyio.fail_after(30):  # generous: only the kernel's reaping is awaited
            while certctl.exit_status() is None:
                await anyio.sleep(0.02)
        assert stack.dead_services() == [
            "certctl was killed by SIGKILL (status -9); last log lines:\nfake certctl: serving"
        ]
    assert_all_removed(made_dirs)


async def test_logs_that_cannot_be_kept_never_break_the_teardown(
    tmp_path: Path, made_dirs: list[Path]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    stack = LocalStack(
        certctl_command=[PYTHON, str(FAKE_CERTCTL)],
        targets=["nginx"],
        base_dir=tmp_path / "work",
        logs_dir=blocker / "logs",  # a directory cannot be made under a file
    )
    async with stack:
        assert stack.copy_logs(blocker / "logs") == []
        copied = stack.copy_logs(tmp_path / "now")
        assert {p.name for p in copied} == {"postgres.log", "certctl.log", "nginx.log"}
    assert_all_removed(made_dirs)


async def test_cancelled_boot_leaves_nothing(tmp_path: Path, made_dirs: list[Path]) -> None:
    import anyio

    before = descendants()
    stack = LocalStack(certctl_command=[PYTHON, str(FAKE_CERTCTL)], base_dir=tmp_path)
    with anyio.move_on_after(0.3):
        await stack.start()
    assert not (descendants() - before)
    assert_all_removed(made_dirs)


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown target.*lighttpd.*valid targets are nginx, apache"
    ):
        LocalStack(targets=["nginx", "lighttpd"])
    with pytest.raises(ConfigError, match="'podman' is not a valid certctl mode"):
        LocalStack(certctl="podman")  # type: ignore[arg-type]


@pytest.mark.skipif(not HAVE_DOUBLE, reason="the reference double is not in this checkout yet")
async def test_with_the_reference_double_and_the_scale_seed(
    tmp_path: Path, made_dirs: list[Path]
) -> None:
    before = descendants()
    stack = LocalStack(targets=["nginx"], base_dir=tmp_path)
    async with stack as info:
        assert info.dsn is not None
        report = apply_seed(info.dsn, REPO / "fixtures" / "sql")
        assert report.rows == 15_000
        ctx = ssl.create_default_context(cafile=str(info.ca))
        headers = {"Authorization": f"Bearer {info.token}"}
        async with httpx.AsyncClient(base_url=info.certctl_url, verify=ctx) as client:
            check = await client.get("/api/v1/auth/check", headers=headers)
            assert check.json() == {"status": "authenticated", "user": "loadtest", "admin": True}
            page = await client.get("/api/v1/certificates", params={"per_page": 1}, headers=headers)
            assert page.status_code == 200
            assert page.json()["total"] >= 10_000
    assert not (descendants() - before)
    assert_all_removed(made_dirs)
