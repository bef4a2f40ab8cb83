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
    stack = LocalStack(certctl_command=[PYTHON, str(FAKE_CERTCTL)], base_dir=tmp_path)
    async with stack as info:
        assert isinstance(info, StackInfo)
        assert info.provider == "local"
        assert set(info.targets) == {"nginx", "apache", "haproxy", "f5"}
        assert info.ca is not None
        assert info.ca.exists()
        assert info.dsn is not None
        assert info.dsn.startswith("postgresql://certctl:certctl@127.0.0.1:")
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


async def test_failed_boot_tears_down_what_started(tmp_path: Path, made_dirs: list[Path]) -> None:
    before = descendants()
    stack = LocalStack(
        certctl_command=[PYTHON, str(FAKE_CERTCTL)],
        certctl_env={"FAKE_CERTCTL_EXIT": "7"},
        base_dir=tmp_path,
    )
    with pytest.raises(ServiceError, match="certctl exited with status 7") as info:
        await stack.start()
    assert "refusing to start on purpose" in "\n".join(info.value.__notes__)
    assert not (descendants() - before)
    assert_all_removed(made_dirs)
    assert stack.services == {}


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
