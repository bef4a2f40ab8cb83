"""Configuration of the double, read from the same environment variables as certctl.

certctl silently falls back to a default when a number or duration does not parse;
the double refuses to start instead (a typo in a load-test stack should be loud).
"""

from __future__ import annotations

import json
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..units import NS_PER_S, NS_PER_UNIT

__all__ = ["LOG_LEVELS", "ApiKey", "DoubleConfig", "load_config", "parse_go_duration_ns"]

_TRUE = frozenset({"true", "1", "yes"})
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_KEY_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
#: certctl's CERTCTL_LOG_LEVEL values -> the Python (and granian) logging level names
LOG_LEVELS = {"debug": "debug", "info": "info", "warn": "warning", "error": "error"}


@dataclass(frozen=True)
class ApiKey:
    """One API key: its name (the audit actor), the key itself and the admin flag."""

    name: str
    key: str
    admin: bool


@dataclass(frozen=True)
class DoubleConfig:
    """Every setting the double honours, validated once at start."""

    database_url: str = "postgres://localhost/certctl"
    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert_path: str = ""
    tls_key_path: str = ""
    auth_type: str = "api-key"
    api_keys: tuple[ApiKey, ...] = ()
    demo_seed: bool = False
    config_encryption_key: str = ""
    keygen_mode: str = "agent"
    rate_limit_enabled: bool = True
    rate_limit_rps: float = 50.0
    rate_limit_burst: int = 100
    max_body_size: int = 1_048_576
    log_level: str = "info"
    acme_enabled: bool = False
    acme_orders_per_hour: int = 100
    acme_concurrent_orders: int = 5
    acme_nonce_ttl_ns: int = 5 * 60 * NS_PER_S
    acme_order_ttl_ns: int = 24 * 3600 * NS_PER_S
    acme_authz_ttl_ns: int = 24 * 3600 * NS_PER_S
    acme_ari_enabled: bool = True
    acme_ari_poll_interval_ns: int = 6 * 3600 * NS_PER_S
    acme_default_profile_id: str = ""
    acme_gc_interval_ns: int = 60 * NS_PER_S
    ca_cert_path: str = ""
    ca_key_path: str = ""
    workers: int = 1
    faults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def auth_required(self) -> bool:
        return self.auth_type == "api-key"


def parse_go_duration_ns(text: str, *, var: str) -> int:
    """Parse a Go ``time.ParseDuration`` string (``"5m"``, ``"1h30m"``, ``"250ms"``)."""
    value = text.strip()
    if value in ("0", "-0", "+0"):
        return 0
    pos = 0
    total = 0.0
    for match in _GO_DURATION_PART.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * NS_PER_UNIT[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(value):
        raise ConfigError(
            f"{var}={text!r} is not a Go duration; use a number with ns, us, ms, s, m or h, "
            f"e.g. '5m' or '1h30m'."
        )
    return round(total)


def _bool(env: Mapping[str, str], var: str, default: bool) -> bool:
    raw = env.get(var)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in _TRUE


def _int(env: Mapping[str, str], var: str, default: int, *, minimum: int) -> int:
    raw = env.get(var)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{var}={raw!r} is not an integer; set a whole number.") from None
    if value < minimum:
        raise ConfigError(f"{var}={raw!r} is too small; it must be at least {minimum}.")
    return value


def _port(env: Mapping[str, str]) -> int:
    port = _int(env, "CERTCTL_SERVER_PORT", 8080, minimum=1)
    if port > 65535:
        raise ConfigError(f"CERTCTL_SERVER_PORT={port} is not a TCP port; use 1-65535.")
    return port


def _float(env: Mapping[str, str], var: str, default: float) -> float:
    raw = env.get(var)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{var}={raw!r} is not a number; set e.g. 50 or 12.5.") from None
    if not value > 0:
        raise ConfigError(f"{var}={raw!r} must be greater than 0.")
    return value


def _duration(env: Mapping[str, str], var: str, default_ns: int) -> int:
    raw = env.get(var)
    if raw is None or raw.strip() == "":
        return default_ns
    return parse_go_duration_ns(raw, var=var)


def _choice(env: Mapping[str, str], var: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(var, "").strip() or default
    if value not in allowed:
        raise ConfigError(f"{var}={value!r} is not valid; use one of {', '.join(allowed)}.")
    return value


def _api_keys(env: Mapping[str, str], auth_type: str) -> tuple[ApiKey, ...]:
    secret = env.get("CERTCTL_AUTH_SECRET", "")
    named = env.get("CERTCTL_API_KEYS_NAMED", "").strip()
    if auth_type != "api-key":
        return ()
    if not secret:
        raise ConfigError(
            "CERTCTL_AUTH_SECRET is empty but CERTCTL_AUTH_TYPE is 'api-key'; certctl needs it "
            "even when CERTCTL_API_KEYS_NAMED is set. Set a secret, or CERTCTL_AUTH_TYPE=none."
        )
    keys: list[ApiKey] = []
    if named:
        for entry in named.split(","):
            parts = entry.strip().split(":")
            if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
                raise ConfigError(
                    f"CERTCTL_API_KEYS_NAMED entry {entry.strip()!r} is invalid; use name:key "
                    f"or name:key:admin, comma-separated."
                )
            if not _KEY_NAME.match(parts[0]):
                raise ConfigError(
                    f"CERTCTL_API_KEYS_NAMED name {parts[0]!r} is invalid; names may use "
                    f"letters, digits, '_' and '-'."
                )
            if len(parts) == 3 and parts[2] != "admin":
                raise ConfigError(
                    f"CERTCTL_API_KEYS_NAMED entry {entry.strip()!r}: the third field must be "
                    f"'admin' (got {parts[2]!r})."
                )
            keys.append(ApiKey(parts[0], parts[1], len(parts) == 3))
        return tuple(keys)
    secrets = [s.strip() for s in secret.split(",") if s.strip()]
    return tuple(ApiKey(f"legacy-key-{i}", s, False) for i, s in enumerate(secrets))


def _check_tls(cert: str, key: str) -> None:
    if not cert or not key:
        raise ConfigError(
            "CERTCTL_SERVER_TLS_CERT_PATH and CERTCTL_SERVER_TLS_KEY_PATH are required: certctl "
            "serves HTTPS only. Point both at a PEM certificate and its private key."
        )
    for var, path in (("CERTCTL_SERVER_TLS_CERT_PATH", cert), ("CERTCTL_SERVER_TLS_KEY_PATH", key)):
        if not os.access(path, os.R_OK):
            raise ConfigError(f"{var}={path!r} is not a readable file.")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"CERTCTL_SERVER_TLS_CERT_PATH={cert!r} and CERTCTL_SERVER_TLS_KEY_PATH={key!r} "
            f"do not load as a matching PEM pair: {exc}."
        ) from None


def _faults(env: Mapping[str, str]) -> Mapping[str, Any]:
    raw = env.get("CERTLOAD_DOUBLE_FAULTS", "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"CERTLOAD_DOUBLE_FAULTS is not valid JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise ConfigError('CERTLOAD_DOUBLE_FAULTS must be a JSON object like {"rules": [...]}.')
    # Validated by the fault engine itself; imported late to keep this module light.
    from ._faults import parse_faults

    parse_faults(value)
    return value


def load_config(env: Mapping[str, str], *, check_files: bool = True) -> DoubleConfig:
    """Build a :class:`DoubleConfig` from ``env``; raise ConfigError naming the variable."""
    auth_type = env.get("CERTCTL_AUTH_TYPE", "").strip() or "api-key"
    if auth_type == "jwt":
        raise ConfigError(
            "CERTCTL_AUTH_TYPE=jwt is not supported (certctl rejects it too); use 'api-key' "
            "or 'none'."
        )
    if auth_type not in ("api-key", "none"):
        raise ConfigError(f"CERTCTL_AUTH_TYPE={auth_type!r} is not valid; use api-key or none.")
    encryption_key = env.get("CERTCTL_CONFIG_ENCRYPTION_KEY", "")
    if encryption_key and len(encryption_key.encode()) < 32:
        raise ConfigError(
            f"CERTCTL_CONFIG_ENCRYPTION_KEY is {len(encryption_key.encode())} bytes; it must be "
            f"at least 32 bytes when set."
        )
    cert = env.get("CERTCTL_SERVER_TLS_CERT_PATH", "")
    key = env.get("CERTCTL_SERVER_TLS_KEY_PATH", "")
    if check_files:
        _check_tls(cert, key)
    ca_cert = env.get("CERTCTL_CA_CERT_PATH", "")
    ca_key = env.get("CERTCTL_CA_KEY_PATH", "")
    if bool(ca_cert) != bool(ca_key):
        raise ConfigError(
            "Set both CERTCTL_CA_CERT_PATH and CERTCTL_CA_KEY_PATH, or neither (the double "
            "then makes an ephemeral local CA)."
        )
    return DoubleConfig(
        database_url=env.get("CERTCTL_DATABASE_URL", "").strip() or "postgres://localhost/certctl",
        host=env.get("CERTCTL_SERVER_HOST", "").strip() or "127.0.0.1",
        port=_port(env),
        tls_cert_path=cert,
        tls_key_path=key,
        auth_type=auth_type,
        api_keys=_api_keys(env, auth_type),
        demo_seed=_bool(env, "CERTCTL_DEMO_SEED", False),
        config_encryption_key=encryption_key,
        keygen_mode=_choice(env, "CERTCTL_KEYGEN_MODE", "agent", ("agent", "server")),
        rate_limit_enabled=_bool(env, "CERTCTL_RATE_LIMIT_ENABLED", True),
        rate_limit_rps=_float(env, "CERTCTL_RATE_LIMIT_RPS", 50.0),
        rate_limit_burst=_int(env, "CERTCTL_RATE_LIMIT_BURST", 100, minimum=1),
        max_body_size=_int(env, "CERTCTL_MAX_BODY_SIZE", 1_048_576, minimum=1),
        log_level=_choice(env, "CERTCTL_LOG_LEVEL", "info", tuple(LOG_LEVELS)),
        acme_enabled=_bool(env, "CERTCTL_ACME_SERVER_ENABLED", False),
        acme_orders_per_hour=_int(
            env, "CERTCTL_ACME_SERVER_RATE_LIMIT_ORDERS_PER_HOUR", 100, minimum=0
        ),
        acme_concurrent_orders=_int(
            env, "CERTCTL_ACME_SERVER_RATE_LIMIT_CONCURRENT_ORDERS", 5, minimum=0
        ),
        acme_nonce_ttl_ns=_duration(env, "CERTCTL_ACME_SERVER_NONCE_TTL", 300_000_000_000),
        acme_order_ttl_ns=_duration(env, "CERTCTL_ACME_SERVER_ORDER_TTL", 86_400_000_000_000),
        acme_authz_ttl_ns=_duration(env, "CERTCTL_ACME_SERVER_AUTHZ_TTL", 86_400_000_000_000),
        acme_ari_enabled=_bool(env, "CERTCTL_ACME_SERVER_ARI_ENABLED", True),
        acme_ari_poll_interval_ns=_duration(
            env, "CERTCTL_ACME_SERVER_ARI_POLL_INTERVAL", 21_600_000_000_000
        ),
        acme_default_profile_id=env.get("CERTCTL_ACME_SERVER_DEFAULT_PROFILE_ID", "").strip(),
        acme_gc_interval_ns=_duration(env, "CERTCTL_ACME_SERVER_GC_INTERVAL", 60_000_000_000),
        ca_cert_path=ca_cert,
        ca_key_path=ca_key,
        workers=_int(env, "CERTLOAD_DOUBLE_WORKERS", 1, minimum=1),
        faults=_faults(env),
    )
