"""The containers provider on a real engine: boot to teardown, nothing left behind.

Runs when a Docker-compatible engine is reachable (``DOCKER_HOST``, a usual socket, or
podman's API service, which these tests start when podman is installed) and the images
exist: ``CERTLOAD_IMAGES`` when set, else the ones ``scripts/container-images.sh`` builds
from Debian packages (no registry). Otherwise each test is skipped saying what is missing
and the command that fixes it.

* The API and connector smoke scenarios of ``tests/load`` run through
  ``--certload-provider containers`` in a pytest subprocess; while its stack is up,
  ``containers_probe.py`` records what the engine holds of it. Every port is published
  on 127.0.0.1 only, and afterwards the engine holds none of its containers, networks or
  volumes.
* A container that dies while the stack boots ends the boot at once with its exit status
  and log, and the containers already started are removed.
* ``python -m pytest_certload.stack up --provider containers`` serves until SIGTERM and
  leaves nothing on the engine.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from pytest_certload.errors import ServiceError
from pytest_certload.stack.containers import STACK_LABEL, ContainerStack
from pytest_certload.stack.images import IMAGE_ROLES
from tests.support.engine import Engine, EngineUnavailable, engine_environment, wanted_images

from .conftest import REPO
from .containers_probe import engine_snapshot

pytestmark = pytest.mark.containers

SERVICES = {
    "postgres",
    "certctl-server",
    "nginx-target",
    "apache-target",
    "haproxy-target",
    "f5-mock-target",
}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with contextlib.ExitStack() as stack:
        try:
            found = stack.enter_context(engine_environment(tmp_path_factory.mktemp("engine")))
        except EngineUnavailable as exc:
            pytest.skip(str(exc))
        yield found


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[Any]:
    import docker

    engine_client = docker.DockerClient(base_url=engine.docker_host)
    try:
        yield engine_client
    finally:
        engine_client.close()


@pytest.fixture(scope="module")
def images(engine: Engine, client: Any) -> dict[str, str]:
    import docker.errors

    chosen, source = wanted_images()
    missing = []
    for image in sorted(set(chosen.values())):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            missing.append(image)
    if missing:
        pytest.skip(
            f"the images {', '.join(missing)} (from {source}) are not on the engine at "
            f"{engine.docker_host}: build them with `scripts/container-images.sh` (as root; "
            "from Debian packages, no registry; minutes the first time, seconds after a "
            "code change), or set CERTLOAD_IMAGES to images the engine has"
        )
    return chosen


@pytest.fixture
def engine_env(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The engine's environment, in this process too (ContainerStack reads DOCKER_HOST)."""
    from testcontainers.core.config import testcontainers_config

    for key, value in engine.env.items():
        monkeypatch.setenv(key, value)
    # testcontainers reads TESTCONTAINERS_RYUK_DISABLED once per process and keeps it
    monkeypatch.setattr(testcontainers_config, "ryuk_disabled", True)
    return {**os.environ, **engine.env}


def _left_on_engine(client: Any, ids: set[str], networks: set[str], volumes: set[str]) -> list[str]:
    """What of the given containers, networks and volumes the engine still holds."""
    left = [f"container {c.name}" for c in client.containers.list(all=True) if c.id in ids]
    left += [f"network {n.name}" for n in client.networks.list() if n.id in networks]
    left += [f"volume {v.name}" for v in client.volumes.list() if v.name in volumes]
    return left


def test_api_and_connector_smoke_through_the_containers_provider(
    engine_env: dict[str, str], client: Any, images: dict[str, str], tmp_path: Path
) -> None:
    before = engine_snapshot(client)
    record = tmp_path / "engine.json"
    junit = tmp_path / "junit.xml"
    value = ",".join(f"{role}={images[role]}" for role in IMAGE_ROLES)
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "tests/load",
        "-m",
        "api or connector",
        "--certload-provider",
        "containers",
        "--certload-images",
        value,
        "--certload-profile",
        "smoke",
        "--certload-output-dir",
        str(tmp_path / "results"),
        f"--junitxml={junit}",
        "-p",
        "tests.stack.containers_probe",
        "-p",
        "no:cacheprovider",
        "-q",
    ]
    started = time.perf_counter()
    result = subprocess.run(
        argv,
        cwd=REPO,
        env={**engine_env, "CERTLOAD_TEST_ENGINE_RECORD": str(record)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    elapsed = time.perf_counter() - started
    output = result.stdout[-6000:] + result.stderr[-3000:]
    assert result.returncode == 0, output

    cases = ET.parse(junit).getroot().iter("testcase")
    outcomes = {c.get("name"): [child.tag for child in c] for c in cases}
    assert set(outcomes) == {
        "test_issuance_acceptance",
        "test_list_certificates",
        "test_handshake[nginx_handshake]",
        "test_handshake[apache_handshake]",
        "test_handshake[haproxy_handshake]",
        "test_handshake[f5_handshake]",
    }, output
    assert all(not tags or tags == ["properties"] for tags in outcomes.values()), outcomes
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert summary["target"]["provider"] == "containers"
    assert summary["target"]["kind"] == "double"  # the double's image answered
    logs = {p.name for p in (tmp_path / "results" / "service-logs").iterdir()}
    assert logs >= {f"{name}.log" for name in SERVICES}

    # while it was up: one labelled container per service, from the images given, every
    # port published on 127.0.0.1 only
    seen = json.loads(record.read_text())
    before_ids = {c["id"] for c in before["containers"]}
    ours = [c for c in seen["containers"] if c["id"] not in before_ids]
    assert {c["service"] for c in ours} == SERVICES
    (stack_id,) = {c["stack"] for c in ours}
    by_service = {c["service"]: c for c in ours}
    assert by_service["postgres"]["image"] == images["postgres"]
    assert by_service["certctl-server"]["image"] == images["certctl"]
    assert by_service["f5-mock-target"]["image"] == images["f5"]
    for container in ours:
        assert container["status"] == "running", container
        bindings = [b for ports in container["ports"].values() for b in ports or []]
        assert bindings, f"{container['service']} published nothing"
        for binding in bindings:
            assert binding["HostIp"] == "127.0.0.1", (container["service"], binding)
    networks = {n["id"] for n in seen["networks"] if n["stack"] == stack_id}
    assert len(networks) == 1
    assert seen["certctl_url"].startswith("https://127.0.0.1:")
    assert all(url.startswith("https://127.0.0.1:") for url in seen["targets"].values())

    # after: nothing of it is left on the engine
    volumes = {v for c in ours for v in c["volumes"]}
    left = _left_on_engine(client, {c["id"] for c in ours}, networks, volumes)
    assert left == [], f"left on the engine after the session: {left}"
    assert engine_snapshot(client)["containers"] == before["containers"]
    print(f"containers smoke session: {elapsed:.1f} s (boot, 2 API + 4 connector, teardown)")


def test_a_container_that_dies_while_booting_ends_the_boot_and_nothing_is_left(
    engine_env: dict[str, str], client: Any, images: dict[str, str], tmp_path: Path
) -> None:
    # the haproxy target on the postgres image: its entrypoint refuses to start without
    # POSTGRES_PASSWORD, so the container exits at once
    stack = ContainerStack(
        images={**images, "haproxy": images["postgres"]},
        targets=("haproxy",),
        base_dir=tmp_path,
        logs_dir=tmp_path / "logs",
    )
    started = time.perf_counter()
    with pytest.raises(ServiceError) as info:
        anyio.run(stack.start)
    elapsed = time.perf_counter() - started
    text = str(info.value) + "\n".join(getattr(info.value, "__notes__", []))
    assert "container haproxy-target exited with status 1 while waiting for" in text
    assert "POSTGRES_PASSWORD is empty" in text  # its log tail says why
    # the wait ended when it died, not after the readiness timeout (120 s): generous bound
    assert elapsed < 100, elapsed
    labelled = {"label": f"{STACK_LABEL}={stack.stack_id}"}
    assert client.containers.list(all=True, filters=labelled) == []
    assert client.networks.list(filters=labelled) == []
    assert (tmp_path / "logs" / "haproxy-target.log").exists()
    assert [p for p in tmp_path.iterdir() if p.name != "logs"] == []


def test_stack_up_with_the_containers_provider(
    engine_env: dict[str, str], client: Any, images: dict[str, str], tmp_path: Path
) -> None:
    work = tmp_path / "stack"
    value = ",".join(f"{role}={images[role]}" for role in IMAGE_ROLES)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_certload.stack",
            "up",
            "--provider",
            "containers",
            "--images",
            value,
            "--targets",
            "nginx",
            "--dir",
            str(work),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env=engine_env,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # bounded by the boot's own readiness timeouts
            lines.append(line.rstrip("\n"))
            if "Ctrl-C or SIGTERM tears it down" in line:
                break
        else:
            raise AssertionError(f"the stack never came up: {lines}")
        described = json.loads((work / "stack.json").read_text())
        assert described["provider"] == "containers"
        assert set(described["targets"]) == {"nginx"}
        token = Path(described["token_file"]).read_text().strip()
        verify = ssl.create_default_context(cafile=described["ca"])
        answer = httpx.get(
            described["certctl_url"] + "/api/v1/certificates?per_page=1",
            headers={"Authorization": f"Bearer {token}"},
            verify=verify,
        )
        assert answer.status_code == 200
        assert httpx.get(described["targets"]["nginx"], verify=verify).status_code == 200
        running = client.containers.list(filters={"label": STACK_LABEL})
        ids = {c.id for c in running}
        assert len(ids) == 3  # postgres, certctl, nginx
        (stack_id,) = {c.labels[STACK_LABEL] for c in running}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert _left_on_engine(client, ids, set(), set()) == []
    assert client.networks.list(filters={"label": f"{STACK_LABEL}={stack_id}"}) == []
    assert not work.exists()
