"""Start-up validation: invalid configuration exits non-zero with a clear message."""

from __future__ import annotations

import subprocess
import sys

import pytest
from double_support import REPO, Stack, double_env, free_port

from pytest_certload.double import load_config
from pytest_certload.double._config import parse_go_duration_ns
from pytest_certload.errors import ConfigError


def run_double(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_certload.double"],
        env=env,
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"CERTCTL_SERVER_TLS_CERT_PATH": ""}, "CERTCTL_SERVER_TLS_CERT_PATH and"),
        ({"CERTCTL_SERVER_TLS_KEY_PATH": "/nonexistent/key.pem"}, "/nonexistent/key.pem"),
        ({"CERTCTL_AUTH_TYPE": "jwt"}, "CERTCTL_AUTH_TYPE=jwt is not supported"),
        ({"CERTCTL_AUTH_SECRET": ""}, "CERTCTL_AUTH_SECRET is empty"),
        ({"CERTCTL_API_KEYS_NAMED": "bad name:k"}, "name 'bad name' is invalid"),
        ({"CERTCTL_CONFIG_ENCRYPTION_KEY": "short"}, "at least 32 bytes"),
        ({"CERTCTL_SERVER_PORT": "80a"}, "CERTCTL_SERVER_PORT='80a' is not an integer"),
        ({"CERTCTL_KEYGEN_MODE": "cloud"}, "CERTCTL_KEYGEN_MODE='cloud' is not valid"),
        ({"CERTCTL_ACME_SERVER_NONCE_TTL": "5 minutes"}, "is not a Go duration"),
        ({"CERTLOAD_DOUBLE_FAULTS": "{"}, "CERTLOAD_DOUBLE_FAULTS is not valid JSON"),
        ({"CERTCTL_CA_KEY_PATH": ""}, "Set both CERTCTL_CA_CERT_PATH"),
    ],
)
def test_invalid_config_exits_2(stack: Stack, overrides: dict[str, str], message: str) -> None:
    env = double_env("postgresql://unused/x", stack.tls, free_port(), overrides)
    result = run_double(env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


def test_demo_seed_without_encryption_key_refuses_to_start(stack: Stack) -> None:
    dsn = stack.new_database()
    env = double_env(dsn, stack.tls, free_port(), {"CERTCTL_CONFIG_ENCRYPTION_KEY": ""})
    result = run_double(env)
    assert result.returncode == 2
    assert "CERTCTL_CONFIG_ENCRYPTION_KEY is not set" in result.stderr


def test_unreachable_database_exits_2(stack: Stack) -> None:
    port = free_port()
    dsn = f"postgresql://certctl:pg-secret-42@127.0.0.1:{port}/certctl"
    result = run_double(double_env(dsn, stack.tls, free_port()))
    assert result.returncode == 2
    # its log is kept with the session's reports: the DSN is shown without its password
    assert (
        f"cannot connect to CERTCTL_DATABASE_URL='postgresql://certctl:***@127.0.0.1:{port}"
        in result.stderr
    )
    assert "pg-secret-42" not in result.stderr


def test_without_demo_seed_env_issuers_and_rp_default_exist(stack: Stack) -> None:
    double = stack.start_double({"CERTCTL_DEMO_SEED": "false", "CERTCTL_CONFIG_ENCRYPTION_KEY": ""})
    try:
        issuers = double.scalar("SELECT array_agg(id ORDER BY id) FROM issuers")
        assert issuers == ["iss-acme-prod", "iss-acme-staging", "iss-local"]
        assert double.scalar("SELECT count(*) FROM renewal_policies") == 1
        assert double.scalar("SELECT count(*) FROM teams") == 0
    finally:
        double.stop()


def test_defaults_and_named_keys() -> None:
    config = load_config(
        {"CERTCTL_AUTH_SECRET": "a,b", "CERTCTL_DEMO_SEED": "yes"}, check_files=False
    )
    assert (config.host, config.port, config.rate_limit_enabled) == ("127.0.0.1", 8080, True)
    assert (config.rate_limit_rps, config.rate_limit_burst) == (50.0, 100)
    assert [(k.name, k.admin) for k in config.api_keys] == [
        ("legacy-key-0", False),
        ("legacy-key-1", False),
    ]
    assert config.demo_seed
    named = load_config(
        {"CERTCTL_AUTH_SECRET": "a", "CERTCTL_API_KEYS_NAMED": "ops:k1:admin,ro:k2"},
        check_files=False,
    )
    assert [(k.name, k.key, k.admin) for k in named.api_keys] == [
        ("ops", "k1", True),
        ("ro", "k2", False),
    ]


@pytest.mark.parametrize(
    ("text", "ns"), [("5m", 300_000_000_000), ("1h30m", 5_400_000_000_000), ("250ms", 250_000_000)]
)
def test_go_durations(text: str, ns: int) -> None:
    assert parse_go_duration_ns(text, var="X") == ns


def test_bad_go_duration_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="CERTCTL_ACME_SERVER_NONCE_TTL='1x'"):
        parse_go_duration_ns("1x", var="CERTCTL_ACME_SERVER_NONCE_TTL")


def test_auth_type_none(stack: Stack) -> None:
    double = stack.start_double({"CERTCTL_AUTH_TYPE": "none", "CERTCTL_AUTH_SECRET": ""})
    try:
        with double.client(None) as client:
            assert client.get("/api/v1/auth/info").json() == {
                "auth_type": "none",
                "required": False,
            }
            assert client.get("/api/v1/certificates").status_code == 200
            revoke = client.post(
                "/api/v1/certificates/bulk-revoke",
                json={"reason": "superseded", "certificate_ids": ["mc-api-prod"]},
            )
            assert revoke.status_code == 403  # no admin context without keys
            assert client.get("/api/v1/_double/faults").status_code == 200
    finally:
        double.stop()
