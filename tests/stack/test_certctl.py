"""The certctl launcher, driven by a tiny fake server (and the double when present)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_certload.errors import ConfigError, ServiceError
from pytest_certload.stack.certctl import CertctlServer, with_sslmode_disable
from pytest_certload.stack.probes import probe_http
from pytest_certload.stack.tls import TLSMaterial

from .conftest import FAKE_CERTCTL, PYTHON, TIMEOUT_NS, descendants

pytestmark = pytest.mark.anyio

DSN = "postgresql://certctl:certctl@127.0.0.1:5999/certctl"


def server(tls: TLSMaterial, **kwargs: object) -> CertctlServer:
    cert, key = tls.server_pair("certctl")
    options: dict[str, object] = {"command": [PYTHON, str(FAKE_CERTCTL)], "api_key": "k-123"}
    options.update(kwargs)
    return CertctlServer(db_dsn=DSN, cert=cert, key=key, ca=tls.ca_cert, **options)  # type: ignore[arg-type]


async def test_env_cwd_and_readiness(tls: TLSMaterial, tmp_path: Path) -> None:
    dump = tmp_path / "env.json"
    srv = server(
        tls,
        migrations_path=tmp_path,
        extra_env={"FAKE_CERTCTL_DUMP": str(dump), "CERTCTL_LOG_LEVEL": "error"},
    )
    await srv.start()
    try:
        await srv.wait_ready(TIMEOUT_NS)
        status, _body, version = await probe_http(srv.url() + "/ready", verify=tls.ca_cert)
        assert (status, version) == (200, "TLSv1.3")
        cwd = srv.directory
    finally:
        await srv.stop()
    seen = json.loads(dump.read_text())
    env = seen["env"]
    cert, key = tls.server_pair("certctl")
    assert env["CERTCTL_DATABASE_URL"] == DSN + "?sslmode=disable"
    assert env["CERTCTL_DATABASE_MIGRATIONS_PATH"] == str(tmp_path.resolve())
    assert env["CERTCTL_SERVER_HOST"] == "127.0.0.1"
    assert env["CERTCTL_SERVER_PORT"] == str(srv.port)
    assert env["CERTCTL_SERVER_TLS_CERT_PATH"] == str(cert)
    assert env["CERTCTL_SERVER_TLS_KEY_PATH"] == str(key)
    assert env["CERTCTL_AUTH_TYPE"] == "api-key"
    assert env["CERTCTL_AUTH_SECRET"] == "k-123"
    assert env["CERTCTL_API_KEYS_NAMED"] == "loadtest:k-123:admin"
    assert len(env["CERTCTL_CONFIG_ENCRYPTION_KEY"].encode()) >= 32
    assert env["CERTCTL_DEMO_SEED"] == "true"
    assert env["CERTCTL_RATE_LIMIT_ENABLED"] == "false"
    assert env["CERTCTL_KEYGEN_MODE"] == "agent"
    assert env["CERTCTL_LOG_LEVEL"] == "error"  # extra_env wins
    assert env["CERTCTL_ACME_SERVER_ENABLED"] == "true"
    assert env["CERTCTL_MAX_BODY_SIZE"] == "10485760"
    # a fresh cwd with no web/ directory, removed on stop
    assert seen["ls"] == ["certctl.log"]
    assert cwd is not None
    assert seen["cwd"] == str(cwd)
    assert not cwd.exists()


async def test_stray_certctl_env_of_the_caller_does_not_leak(
    tls: TLSMaterial, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERTCTL_AGENT_BOOTSTRAP_TOKEN", "leaky")
    dump = tmp_path / "env.json"
    srv = server(tls, extra_env={"FAKE_CERTCTL_DUMP": str(dump)})
    await srv.start()
    try:
        await srv.wait_ready(TIMEOUT_NS)
    finally:
        await srv.stop()
    env = json.loads(dump.read_text())["env"]
    assert "CERTCTL_AGENT_BOOTSTRAP_TOKEN" not in env
    assert "CERTCTL_DATABASE_MIGRATIONS_PATH" not in env  # the double needs none


async def test_process_that_exits_reports_status_and_log(tls: TLSMaterial) -> None:
    srv = server(tls, extra_env={"FAKE_CERTCTL_EXIT": "3"})
    await srv.start()
    try:
        with pytest.raises(ServiceError) as info:
            await srv.wait_ready(TIMEOUT_NS)
    finally:
        await srv.stop()
    assert "certctl exited with status 3 while waiting for GET answering 200" in str(info.value)
    assert "/ready" in str(info.value)
    assert "refusing to start on purpose" in "\n".join(info.value.__notes__)


async def test_binary_kind_needs_binary_and_migrations(tls: TLSMaterial, tmp_path: Path) -> None:
    cert, key = tls.server_pair("certctl")
    common = {"db_dsn": DSN, "cert": cert, "key": key, "ca": tls.ca_cert, "kind": "binary"}
    with pytest.raises(ServiceError, match="kind='binary' needs the path") as info:
        await CertctlServer(**common).start()  # type: ignore[arg-type]
    assert "go build -o bin/server ./cmd/server" in str(info.value)
    assert "kind='double'" in str(info.value)
    fake = tmp_path / "server"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    with pytest.raises(ServiceError, match="needs their directory") as info:
        await CertctlServer(binary_path=fake, **common).start()  # type: ignore[arg-type]
    assert "--certctl-migrations" in str(info.value)
    with pytest.raises(ServiceError, match="does not exist or is not executable"):
        await CertctlServer(binary_path=tmp_path / "nope", **common).start()  # type: ignore[arg-type]


def test_configuration_is_validated(tls: TLSMaterial) -> None:
    cert, key = tls.server_pair("certctl")
    with pytest.raises(ConfigError, match="'docker' is not a valid certctl kind"):
        CertctlServer(db_dsn=DSN, cert=cert, key=key, ca=tls.ca_cert, kind="docker")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        CertctlServer(db_dsn=DSN, cert=cert, key=key, ca=tls.ca_cert, encryption_key="short")
    with pytest.raises(ConfigError, match="not a valid certctl API key name"):
        CertctlServer(db_dsn=DSN, cert=cert, key=key, ca=tls.ca_cert, admin_key_name="a:b")


def test_sslmode_is_added_once() -> None:
    assert with_sslmode_disable("postgres://u@h/db") == "postgres://u@h/db?sslmode=disable"
    assert with_sslmode_disable("postgres://h/db?connect_timeout=3").endswith(
        "connect_timeout=3&sslmode=disable"
    )
    assert with_sslmode_disable("postgres://h/db?sslmode=require").endswith("sslmode=require")
    with pytest.raises(ConfigError, match="needs the URL form"):
        with_sslmode_disable("host=localhost dbname=x")


def test_a_dsn_in_the_url_error_never_shows_its_password() -> None:
    with pytest.raises(ConfigError) as info:
        with_sslmode_disable("host=localhost password=pg-secret-77 dbname=x")
    assert "pg-secret-77" not in str(info.value)
    assert "password=***" in str(info.value)


async def test_stop_leaves_no_child(tls: TLSMaterial) -> None:
    srv = server(tls)
    await srv.start()
    try:
        await srv.wait_ready(TIMEOUT_NS)
        pid = srv.pid
        assert pid in descendants()
    finally:
        await srv.stop()
    assert pid not in descendants()
