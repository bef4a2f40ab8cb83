"""A Docker-compatible engine for the containers tests: the one configured, or podman's
API service started for the test.

:func:`engine_environment` finds what the containers tests need and says exactly what is
missing otherwise; :func:`podman_service` runs ``podman system service`` on a socket in
a temporary directory with the settings in ``scripts/container-images/containers.conf``
(through ``CONTAINERS_CONF``: the machine's ``/etc/containers`` is left alone) and stops
it on exit. Imports no pytest.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pytest_certload.stack.containers import find_docker_engine
from pytest_certload.stack.images import parse_images, resolve_images

REPO = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = REPO / "scripts" / "container-images" / "containers.conf"
IMAGES_SCRIPT = REPO / "scripts" / "container-images.sh"
#: podman's helpers the local images need (containers.conf names runc and netavark)
PODMAN_HELPERS = ("runc", "netavark", "aardvark-dns")
APT_PACKAGES = "podman runc netavark aardvark-dns"


class EngineUnavailable(Exception):
    """No engine can be had; the message says what is missing and the command that fixes
    it (the tests skip with it)."""


@dataclass
class Engine:
    """Where the engine answers, and the environment a process needs to use it."""

    docker_host: str
    env: dict[str, str] = field(default_factory=dict)
    #: the podman service started for the tests (None: an engine somebody runs)
    service: subprocess.Popen[bytes] | None = None


def helper_missing(name: str) -> bool:
    places = (Path("/usr/lib/podman") / name, Path("/usr/libexec/podman") / name)
    return shutil.which(name) is None and not any(os.access(p, os.X_OK) for p in places)


@contextlib.contextmanager
def podman_service(directory: Path, *, timeout_s: float = 30.0) -> Iterator[Engine]:
    """``podman system service --time=0 unix://DIR/podman.sock`` until exit."""
    podman = shutil.which("podman")
    if podman is None:
        raise EngineUnavailable(
            "no Docker-compatible engine answers and podman is not installed: "
            f"`apt-get install {APT_PACKAGES}` (or start Docker, or set DOCKER_HOST)"
        )
    missing = [name for name in PODMAN_HELPERS if helper_missing(name)]
    if missing:
        raise EngineUnavailable(
            f"podman is installed but {', '.join(missing)} not (the local images run with "
            f"them; see {CONTAINERS_CONF.relative_to(REPO)}): `apt-get install {' '.join(missing)}`"
        )
    socket = directory / "podman.sock"
    address = f"unix://{socket}"
    env = {"CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF))}
    log = directory / "podman-service.log"
    with log.open("wb") as out:
        service = subprocess.Popen(
            [podman, "system", "service", "--time=0", address],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            address_found, problem = find_docker_engine(address)
            if address_found is not None:
                break
            if service.poll() is not None:
                raise EngineUnavailable(
                    f"podman system service exited with status {service.returncode}: "
                    f"{log.read_text(errors='replace')[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise EngineUnavailable(
                    f"podman system service did not answer at {address} within {timeout_s} s "
                    f"({problem}); its log: {log.read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.05)  # poll interval of the readiness check, not a wait for a race
        yield Engine(address, {"DOCKER_HOST": address, **env}, service)
    finally:
        service.terminate()
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()


@contextlib.contextmanager
def engine_environment(directory: Path) -> Iterator[Engine]:
    """The engine the containers tests use: ``DOCKER_HOST`` when it is set (it must
    answer), else an engine on one of the usual sockets, else podman's API service
    started in ``directory``. Raises :class:`EngineUnavailable` saying what is missing.

    testcontainers' reaper (Ryuk) is switched off in :attr:`Engine.env`: what the tests
    check is that the stack removes its own containers.
    """
    try:
        import testcontainers  # noqa: F401
    except ImportError:
        raise EngineUnavailable(
            "testcontainers is not installed: `.venv/bin/pip install -e '.[containers]'`"
        ) from None
    common = {"TESTCONTAINERS_RYUK_DISABLED": "true"}
    configured = os.environ.get("DOCKER_HOST")
    address, problem = find_docker_engine(configured)
    if configured:
        if address is None:
            raise EngineUnavailable(
                f"DOCKER_HOST={configured} does not answer ({problem}): start that engine, "
                "or unset DOCKER_HOST to let the tests start podman's API service"
            )
        yield Engine(address, {**common, "DOCKER_HOST": address})
        return
    if address is not None:
        yield Engine(address, {**common, "DOCKER_HOST": address})
        return
    with podman_service(directory) as engine:
        engine.env.update(common)
        yield engine


def wanted_images() -> tuple[dict[str, str], str]:
    """The images the containers tests run (every role), and where that choice came from:
    ``CERTLOAD_IMAGES`` when set (the roles it leaves out keep the public defaults), else
    what ``scripts/container-images.sh`` builds."""
    value = os.environ.get("CERTLOAD_IMAGES")
    if value:
        return resolve_images(parse_images(value)), "CERTLOAD_IMAGES"
    printed = subprocess.run(
        ["bash", str(IMAGES_SCRIPT), "--print"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return parse_images(printed.stdout.strip()), "scripts/container-images.sh --print"
