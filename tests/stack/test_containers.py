"""The containers provider: specs as data (no Docker), engine detection, compose files."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import ClassVar

import pytest

from pytest_certload.errors import ServiceError
from pytest_certload.stack import containers
from pytest_certload.stack.containers import (
    ContainerStack,
    container_specs,
    docker_engine_problem,
    render_configs,
)
from pytest_certload.stack.tls import make_tls_material

from .conftest import REPO


def test_specs_cover_the_stack_with_the_contract_images() -> None:
    specs = {s.name: s for s in container_specs(api_key="k")}
    assert [s.name for s in container_specs(api_key="k")][:2] == ["postgres", "certctl-server"]
    assert specs["postgres"].image == "postgres:16-alpine"
    assert specs["certctl-server"].image == "ghcr.io/certctl-io/certctl-server:v2.1.0"
    assert specs["nginx-target"].image == "nginx:1.27-alpine"
    assert specs["apache-target"].image == "httpd:2.4-alpine"
    assert specs["haproxy-target"].image == "haproxy:2.9-alpine"
    assert specs["f5-mock-target"].image.startswith("python:3")
    assert {s.target for s in specs.values()} == {None, "nginx", "apache", "haproxy", "f5"}


def test_certctl_spec_env_follows_the_contract() -> None:
    certctl = next(s for s in container_specs(api_key="k9") if s.name == "certctl-server")
    env = certctl.env
    assert env["CERTCTL_DATABASE_URL"].endswith("@postgres:5432/certctl?sslmode=disable")
    assert env["CERTCTL_RATE_LIMIT_ENABLED"] == "false"
    assert env["CERTCTL_API_KEYS_NAMED"] == "loadtest:k9:admin"
    assert env["CERTCTL_AUTH_SECRET"] == "k9"
    assert env["CERTCTL_SERVER_HOST"] == "0.0.0.0"
    assert env["CERTCTL_SERVER_PORT"] == "8443"
    assert env["CERTCTL_DATABASE_MIGRATIONS_PATH"] == "/app/migrations"
    assert certctl.working_dir == "/tmp"  # no web/ in the cwd
    assert certctl.probe.path == "/ready"
    assert certctl.depends_on == ("postgres",)
    assert len(env["CERTCTL_CONFIG_ENCRYPTION_KEY"].encode()) >= 32


def test_every_https_probe_is_an_exposed_port() -> None:
    for spec in container_specs(api_key="k"):
        assert spec.probe.port in spec.ports, spec.name
        for mount in spec.mounts:
            assert not mount.source.startswith("/"), "mount sources are relative to the work dir"


def test_no_engine_error_says_how_to_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import anyio

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    with pytest.raises(ServiceError) as info:
        anyio.run(ContainerStack(base_dir=tmp_path).start)
    message = str(info.value)
    assert "no Docker-compatible engine was found" in message
    assert f"unix://{tmp_path}/docker.sock" in message
    assert "DOCKER_HOST=unix:///var/run/docker.sock" in message
    assert "podman system service" in message
    assert "use the local provider" in message
    assert list(tmp_path.iterdir()) == []


def test_engine_probe_reports_each_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(containers, "_ping", lambda address: "nothing there")
    problem = docker_engine_problem()
    assert problem is not None
    assert "unix:///var/run/docker.sock: nothing there" in problem


def test_compose_fixtures_match_the_rendered_configs() -> None:
    for name, text in render_configs().items():
        assert (REPO / "fixtures" / "compose" / name).read_text() == text, (
            f"fixtures/compose/{name} is stale: regenerate it with "
            "pytest_certload.stack.containers.write_compose_fixtures(Path('fixtures/compose'))"
        )


def test_compose_file_wires_the_same_stack() -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {
        "tls-init",
        "postgres",
        "certctl-server",
        "nginx-target",
        "apache-target",
        "haproxy-target",
        "f5-mock-target",
    }
    certctl = services["certctl-server"]
    assert certctl["environment"]["CERTCTL_RATE_LIMIT_ENABLED"] == "false"
    assert "/ready" in " ".join(certctl["healthcheck"]["test"])
    assert certctl["working_dir"] == "/tmp"
    assert services["postgres"]["healthcheck"]["test"][0] == "CMD-SHELL"
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    # the database password comes from the environment, the same in both places
    password = "${CERTLOAD_DB_PASSWORD:-certctl}"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == password
    database_url = certctl["environment"]["CERTCTL_DATABASE_URL"]
    assert database_url.startswith(f"postgres://certctl:{password}@postgres:5432/")
    spec_images = {s.name: s.image for s in container_specs(api_key="k")}
    for name, image in spec_images.items():
        if name == "certctl-server":
            assert image in certctl["image"]
        else:
            assert services[name]["image"] == image
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./fixtures") or source.startswith("./pytest_certload"):
                assert (REPO / source).exists(), source


@pytest.mark.parametrize("name", ["nginx.conf", "haproxy.cfg"])
def test_container_configs_are_valid_for_the_local_binaries(name: str, tmp_path: Path) -> None:
    binary = shutil.which("nginx" if name == "nginx.conf" else "haproxy") or (
        "/usr/sbin/nginx" if name == "nginx.conf" else "/usr/sbin/haproxy"
    )
    if not os.access(binary, os.X_OK):
        pytest.skip(f"{binary} is not installed")
    material = make_tls_material(tmp_path / "certs", server_names={"nginx": [], "haproxy": []})
    text = render_configs()[name].replace("/certs/", f"{material.directory}/")
    text = text.replace("/tmp/nginx.pid", str(tmp_path / "nginx.pid"))
    conf = tmp_path / name
    conf.write_text(text)
    if name == "nginx.conf":
        argv = [binary, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", "stderr"]
    else:
        argv = [binary, "-c", "-f", str(conf)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_tls_init_script_writes_the_same_file_names(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    script = REPO / "fixtures" / "compose" / "tls-init.sh"
    subprocess.run(["sh", str(script), str(tmp_path)], check=True, capture_output=True, timeout=60)
    names = sorted(p.name for p in tmp_path.iterdir())
    expected = sorted(
        ["ca.pem", "ca.key"]
        + [
            f"{n}{suffix}"
            for n in ("certctl", "nginx", "apache", "haproxy", "f5")
            for suffix in (".pem", ".key", ".combined.pem")
        ]
    )
    assert names == expected
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "nginx.pem")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr


class _FakeContainer:
    """Records the fluent testcontainers calls; the first start() fails."""

    started: ClassVar[list[str]] = []
    stopped: ClassVar[list[str]] = []
    made: ClassVar[list[_FakeContainer]] = []

    def __init__(self, image: str, docker_client_kw: dict[str, object] | None = None) -> None:
        self.image = image
        self.client_kw = docker_client_kw
        self.env: dict[str, str] = {}
        self.ports: dict[str, object] = {}
        self.exposed: tuple[int, ...] = ()
        self.volumes: list[tuple[str, str, str]] = []
        self.command: list[str] | None = None
        self.kwargs: dict[str, object] = {}
        self.aliases: tuple[str, ...] = ()
        self.network: object = None
        self.bindings: dict[int, object] = {}
        self.wrapped: _FakeWrapped | None = None
        _FakeContainer.made.append(self)

    def with_env(self, key: str, value: str) -> _FakeContainer:
        self.env[key] = value
        return self

    def with_exposed_ports(self, *ports: int) -> _FakeContainer:
        self.exposed = ports
        return self

    def with_bind_ports(self, container: int, host: object = None) -> _FakeContainer:
        self.bindings[container] = host
        return self

    def with_volume_mapping(self, host: str, container: str, mode: str = "ro") -> _FakeContainer:
        self.volumes.append((host, container, mode))
        return self

    def with_command(self, command: list[str]) -> _FakeContainer:
        self.command = command
        return self

    def with_kwargs(self, **kwargs: object) -> _FakeContainer:
        self.kwargs = kwargs  # as testcontainers: replaced, not merged
        return self

    def with_network(self, network: object) -> _FakeContainer:
        self.network = network
        return self

    def with_network_aliases(self, *aliases: str) -> _FakeContainer:
        self.aliases = aliases
        return self

    def start(self) -> _FakeContainer:
        _FakeContainer.started.append(self.image)
        if self.image.startswith("ghcr.io/"):
            raise RuntimeError("pull access denied (fake)")
        return self

    def stop(self, force: bool = True, delete_volume: bool = True) -> None:
        # removed at once, with its anonymous volumes
        assert force
        assert delete_volume
        _FakeContainer.stopped.append(self.image)

    def get_container_host_ip(self) -> str:
        return "127.0.0.1"

    def get_exposed_port(self, port: int) -> int:
        return 5432

    def get_logs(self) -> tuple[bytes, bytes]:
        return f"{self.image} says hello\n".encode(), b"and goodbye\n"

    def get_wrapped_container(self) -> _FakeWrapped | None:
        return self.wrapped


class _FakeWrapped:
    """What docker-py's Container shows of a container's state."""

    def __init__(self, status: str, exit_code: int) -> None:
        self.status = status
        self.attrs = {"State": {"ExitCode": exit_code}}
        self.reloads = 0

    def reload(self) -> None:
        self.reloads += 1


class _FakeNetwork:
    removed = False
    made: ClassVar[list[_FakeNetwork]] = []

    def __init__(
        self,
        docker_client_kw: dict[str, object] | None = None,
        docker_network_kw: dict[str, object] | None = None,
    ) -> None:
        self.name = "fake-network"
        self.client_kw = docker_client_kw
        self.network_kw = docker_network_kw or {}
        _FakeNetwork.made.append(self)

    def create(self) -> _FakeNetwork:
        return self

    def remove(self) -> None:
        _FakeNetwork.removed = True


@pytest.fixture
def fake_testcontainers(monkeypatch: pytest.MonkeyPatch) -> None:
    """testcontainers and the engine replaced by the recording fakes above."""
    import sys
    import types

    async def fake_wait_postgres(*args: object) -> None:
        return None

    tc = types.ModuleType("testcontainers")
    core = types.ModuleType("testcontainers.core")
    container_mod = types.ModuleType("testcontainers.core.container")
    network_mod = types.ModuleType("testcontainers.core.network")
    container_mod.DockerContainer = _FakeContainer  # type: ignore[attr-defined]
    network_mod.Network = _FakeNetwork  # type: ignore[attr-defined]
    for name, module in {
        "testcontainers": tc,
        "testcontainers.core": core,
        "testcontainers.core.container": container_mod,
        "testcontainers.core.network": network_mod,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setattr(containers, "find_docker_engine", lambda: ("unix:///fake.sock", ""))
    monkeypatch.setattr(ContainerStack, "check_images", lambda self: None)
    monkeypatch.setattr(containers, "published_port", lambda container, port, name: 5432)
    monkeypatch.setattr(containers, "_wait_postgres", fake_wait_postgres)
    _FakeContainer.started, _FakeContainer.stopped, _FakeContainer.made = [], [], []
    _FakeNetwork.made, _FakeNetwork.removed = [], False


@pytest.mark.anyio
@pytest.mark.usefixtures("fake_testcontainers")
async def test_container_wiring_and_cleanup_after_a_failed_start(tmp_path: Path) -> None:
    stack = ContainerStack(api_key="k1", base_dir=tmp_path)
    with pytest.raises(RuntimeError, match="pull access denied"):
        await stack.start()

    pg, certctl = _FakeContainer.made
    assert pg.image == "postgres:16-alpine"
    assert pg.aliases == ("postgres",)
    assert pg.env["POSTGRES_DB"] == "certctl"
    labels = {"io.pytest-certload.stack": stack.stack_id}
    assert certctl.kwargs == {
        "working_dir": "/tmp",
        "labels": {**labels, "io.pytest-certload.service": "certctl-server"},
    }
    assert pg.kwargs["labels"] == {**labels, "io.pytest-certload.service": "postgres"}
    (network,) = _FakeNetwork.made
    assert network.network_kw == {"labels": labels}
    # DOCKER_HOST unset: the engine found is the one every client talks to
    for client_kw in (pg.client_kw, certctl.client_kw, network.client_kw):
        assert client_kw is not None
        assert client_kw["environment"]["DOCKER_HOST"] == "unix:///fake.sock"
    assert certctl.env["CERTCTL_API_KEYS_NAMED"] == "loadtest:k1:admin"
    host_tls, target, mode = certctl.volumes[0]
    assert (target, mode) == ("/certs", "ro")
    assert host_tls.endswith("/tls")
    # everything that started was stopped, the network removed, the work dir deleted
    assert _FakeContainer.stopped == [
        "ghcr.io/certctl-io/certctl-server:v2.1.0",
        "postgres:16-alpine",
    ]
    assert _FakeNetwork.removed
    assert list(tmp_path.iterdir()) == []


@pytest.mark.anyio
@pytest.mark.usefixtures("fake_testcontainers")
async def test_ports_are_published_on_loopback_only(tmp_path: Path) -> None:
    stack = ContainerStack(api_key="k1", base_dir=tmp_path)
    with pytest.raises(RuntimeError, match="pull access denied"):
        await stack.start()
    pg, certctl = _FakeContainer.made
    # with_exposed_ports() would publish on every interface (docker's HostIp ""), and
    # with_bind_ports() takes no address: docker-py's (address, port) form goes to create()
    assert pg.exposed == ()
    assert certctl.exposed == ()
    assert pg.bindings == {}
    assert pg.ports == {"5432/tcp": ("127.0.0.1", None)}
    assert certctl.ports == {"8443/tcp": ("127.0.0.1", None)}


@pytest.mark.anyio
@pytest.mark.usefixtures("fake_testcontainers")
async def test_database_password_is_random_per_stack(tmp_path: Path) -> None:
    stacks = [ContainerStack(api_key="k1", base_dir=tmp_path) for _ in range(2)]
    passwords = []
    for stack in stacks:
        _FakeContainer.made = []
        with pytest.raises(RuntimeError, match="pull access denied"):
            await stack.start()
        pg, certctl = _FakeContainer.made
        password = pg.env["POSTGRES_PASSWORD"]
        assert len(password) >= 24
        assert f"certctl:{password}@postgres:5432" in certctl.env["CERTCTL_DATABASE_URL"]
        assert password not in repr(stack)
        assert password not in repr(stack.specs())
        passwords.append(password)
    assert passwords[0] != passwords[1]
    assert "certctl" not in passwords
    specs = {s.name: s for s in container_specs(api_key="k")}
    assert specs["postgres"].env["POSTGRES_PASSWORD"] != "certctl"


@pytest.mark.anyio
@pytest.mark.usefixtures("fake_testcontainers")
async def test_container_logs_are_kept_when_the_stack_stops(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    stack = ContainerStack(api_key="k1", base_dir=tmp_path / "work", logs_dir=logs)
    with pytest.raises(RuntimeError, match="pull access denied"):
        await stack.start()
    assert sorted(p.name for p in logs.iterdir()) == ["certctl-server.log", "postgres.log"]
    text = (logs / "certctl-server.log").read_text()
    assert text == "ghcr.io/certctl-io/certctl-server:v2.1.0 says hello\nand goodbye\n"


def test_dead_containers_are_named_with_their_exit_code_and_log(tmp_path: Path) -> None:
    stack = ContainerStack(api_key="k1")
    running, exited, unreadable = (_FakeContainer(i) for i in ("nginx", "haproxy", "httpd"))
    running.wrapped = _FakeWrapped("running", 0)
    exited.wrapped = _FakeWrapped("exited", 137)
    stack._containers = {"nginx-target": running, "haproxy-target": exited, "apache": unreadable}
    dead = stack.dead_services()
    assert dead == [
        "container haproxy-target exited with status 137; last log lines:\n"
        "haproxy says hello\nand goodbye"
    ]
    assert exited.wrapped.reloads == 1  # the state is read afresh
    copied = stack.copy_logs(tmp_path / "logs")
    assert sorted(p.name for p in copied) == [
        "apache.log",
        "haproxy-target.log",
        "nginx-target.log",
    ]
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert stack.copy_logs(blocker / "logs") == []  # cannot write there: nothing, no error


class _FakeImages:
    """docker-py's ``client.images``: has ``present``; pulling anything else fails."""

    def __init__(self, present: set[str]) -> None:
        self.present = present
        self.pulled: list[str] = []

    def get(self, image: str) -> object:
        import docker.errors

        if image not in self.present:
            raise docker.errors.ImageNotFound(f"No such image: {image}")
        return object()

    def pull(self, image: str) -> object:
        import docker.errors

        self.pulled.append(image)
        raise docker.errors.APIError("pull access denied")


def test_missing_images_are_named_with_their_roles_before_any_container_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("testcontainers")
    from testcontainers.core import docker_client
    from testcontainers.core.config import testcontainers_config

    images = _FakeImages({"postgres:16-alpine", "nginx:1.27-alpine"})

    class FakeClient:
        def __init__(self, **kwargs: object) -> None:
            self.client = self
            self.images = images

        def close(self) -> None:
            pass

    monkeypatch.setattr(docker_client, "DockerClient", FakeClient)
    monkeypatch.setattr(testcontainers_config, "ryuk_disabled", False)
    stack = ContainerStack(
        images={"certctl": "localhost/certload/double:x", "f5": "localhost/certload/double:x"},
        targets=("nginx", "f5"),
    )
    with pytest.raises(ServiceError) as info:
        stack.check_images()
    message = str(info.value)
    assert "has not got these images and could not pull them:" in message
    assert (
        "  - localhost/certload/double:x for certctl, f5: not on the engine, and pulling it "
        "failed (pull access denied)"
    ) in message
    assert f"{testcontainers_config.ryuk_image} for ryuk (testcontainers' reaper)" in message
    assert "postgres:16-alpine for" not in message  # present: not named
    assert "scripts/container-images.sh" in message
    assert "--certload-images ROLE=IMAGE" in message
    assert "TESTCONTAINERS_RYUK_DISABLED=true" in message
    assert images.pulled == ["localhost/certload/double:x", testcontainers_config.ryuk_image]
