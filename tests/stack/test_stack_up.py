"""``python -m pytest_certload.stack up``: started as a subprocess, its JSON is read, a
request to the double succeeds, SIGTERM ends it, and nothing is left behind (no process,
no temporary directory, no token file)."""

from __future__ import annotations

import json
import signal
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from pytest_certload.stack.up import main


def _read_until(proc: subprocess.Popen[str], marker: str) -> list[str]:
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:  # bounded by the test's timeout: the boot is a few seconds
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise AssertionError(f"{marker!r} never came; output: {lines}")


def test_stack_up_serves_until_sigterm_and_leaves_nothing(tmp_path: Path) -> None:
    work = tmp_path / "stack"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_certload.stack",
            "up",
            "--targets",
            "nginx",
            "--dir",
            str(work),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        lines = _read_until(proc, "Ctrl-C or SIGTERM tears it down")
        described = json.loads((work / "stack.json").read_text())
        assert set(described) >= {"certctl_url", "ca", "token_file", "dsn", "targets"}
        token_file = Path(described["token_file"])
        for path in (token_file, work / "stack.json"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        text = "\n".join(lines)
        assert token not in text  # the terminal never shows the token...
        password = described["dsn"].split(":")[2].split("@")[0]
        assert password not in text  # ...nor the DSN's password
        assert "certctl:***@" in text
        answer = httpx.get(
            described["certctl_url"] + "/api/v1/certificates?per_page=1",
            headers={"Authorization": f"Bearer {token}"},
            verify=ssl.create_default_context(cafile=described["ca"]),
        )
        assert answer.status_code == 200
        assert set(described["targets"]) == {"nginx"}
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children  # postgres, the double, nginx
        stack_dir = Path(described["ca"]).parents[1]
        assert stack_dir.is_dir()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:  # a failed check: still tear the stack down (SIGKILL would
            proc.send_signal(signal.SIGTERM)  # leave the services, in their own sessions)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
    assert proc.stdout is not None
    with proc.stdout:
        assert "the stack is torn down" in proc.stdout.read()
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [p.cmdline() for p in alive]
    assert not stack_dir.exists()
    assert not work.exists()  # token and JSON removed, and the empty directory


def test_binary_without_its_paths_is_refused_with_the_fix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["up", "--certctl", "binary"]) == 2
    err = capsys.readouterr().err
    assert "--certctl-bin PATH" in err
    assert "--certctl-migrations DIR" in err


def test_an_unknown_target_names_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["up", "--targets", "nginx,iis"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "'iis'" in err
    assert "nginx,apache,haproxy,f5" in err


def test_a_bad_image_list_names_the_role_and_the_valid_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["up", "--provider", "containers", "--images", "db=postgres:16"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "'db=postgres:16' is not a valid image list (unknown role 'db'" in err
    assert "ROLE one of postgres, certctl, nginx, apache, haproxy, f5" in err


def test_images_without_the_containers_provider_are_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CERTLOAD_IMAGES", raising=False)
    assert main(["up", "--images", "nginx=nginx:1.27-alpine"]) == 2
    err = capsys.readouterr().err
    assert "--images picks the containers provider's images; add --provider containers" in err


def test_a_bad_images_environment_variable_is_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERTLOAD_IMAGES", "nginx")
    assert main(["up", "--provider", "containers"]) == 2
    err = capsys.readouterr().err
    assert "'nginx', the value of the environment variable CERTLOAD_IMAGES, is not a valid" in err
    assert "('nginx' is not ROLE=IMAGE)" in err
