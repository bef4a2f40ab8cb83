"""The containers tests' engine support says exactly what is missing and how to fix it
(the tests skip with these words), and points every process at the same engine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support import engine as support
from tests.support.engine import EngineUnavailable, engine_environment, wanted_images


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(
        support, "find_docker_engine", lambda host=None: (None, "unix:///x.sock: nothing")
    )


@pytest.mark.usefixtures("no_engine")
def test_without_an_engine_or_podman_the_reason_names_the_packages(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(EngineUnavailable) as info, engine_environment(tmp_path):
        pass
    assert str(info.value) == (
        "no Docker-compatible engine answers and podman is not installed: "
        "`apt-get install podman runc netavark aardvark-dns` (or start Docker, or set "
        "DOCKER_HOST)"
    )


@pytest.mark.usefixtures("no_engine")
def test_podman_without_its_helpers_names_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(support, "helper_missing", lambda name: name != "runc")
    with pytest.raises(EngineUnavailable) as info, engine_environment(tmp_path):
        pass
    message = str(info.value)
    assert "podman is installed but netavark, aardvark-dns not" in message
    assert "`apt-get install netavark aardvark-dns`" in message
    assert "scripts/container-images/containers.conf" in message


def test_a_docker_host_that_does_not_answer_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    with pytest.raises(EngineUnavailable) as info, engine_environment(tmp_path):
        pass
    message = str(info.value)
    assert message.startswith(f"DOCKER_HOST=unix://{tmp_path}/none.sock does not answer (")
    assert "unset DOCKER_HOST to let the tests start podman's API service" in message


def test_an_engine_that_answers_is_used_with_the_reaper_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(support, "find_docker_engine", lambda host=None: ("unix:///d.sock", ""))
    with engine_environment(tmp_path) as found:
        assert found.service is None
        assert found.env == {
            "DOCKER_HOST": "unix:///d.sock",
            "TESTCONTAINERS_RYUK_DISABLED": "true",
        }


def test_the_images_come_from_the_environment_or_the_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CERTLOAD_IMAGES", "postgres=mine/pg:1")
    images, source = wanted_images()
    assert source == "CERTLOAD_IMAGES"
    assert images["postgres"] == "mine/pg:1"
    assert images["nginx"] == "nginx:1.27-alpine"  # not given: the public default
    monkeypatch.delenv("CERTLOAD_IMAGES")
    images, source = wanted_images()
    assert source == "scripts/container-images.sh --print"
    assert images["certctl"].startswith("localhost/certload/double:")
