"""Launch the system under test: the certctl reference double or a real certctl binary.

Both read the same environment (certctl's ``internal/config``), so one launcher serves
both. What it sets, and why:

=======================================  ===============================================
``CERTCTL_DATABASE_URL``                 the DSN with ``sslmode=disable`` (lib/pq defaults
                                         to ``require``)
``CERTCTL_DATABASE_MIGRATIONS_PATH``     required for the binary (it reads migrations
                                         from disk, default ``./migrations``)
``CERTCTL_SERVER_HOST`` / ``_PORT``      ``127.0.0.1`` and a free port
``CERTCTL_SERVER_TLS_CERT_PATH/_KEY``    TLS is mandatory (TLS 1.3 minimum)
``CERTCTL_AUTH_TYPE``                    ``api-key``
``CERTCTL_AUTH_SECRET``                  must be non-empty even with named keys
``CERTCTL_API_KEYS_NAMED``               ``<admin name>:<key>:admin`` (bulk revoke needs
                                         an admin key)
``CERTCTL_CONFIG_ENCRYPTION_KEY``        >= 32 bytes; required with the demo seed
``CERTCTL_DEMO_SEED``                    ``true``: the FK rows scenarios use
``CERTCTL_RATE_LIMIT_ENABLED``           ``false``: the limiter is per client IP
``CERTCTL_KEYGEN_MODE``                  ``agent``
``CERTCTL_LOG_LEVEL``                    ``warn`` (info logs every request)
``CERTCTL_ACME_SERVER_ENABLED``          ``true`` (runs the nonce GC)
``CERTCTL_MAX_BODY_SIZE``                10 MiB, as certctl's loadtest compose sets
=======================================  ===============================================

Further variables (``certctl_env=`` of the local and containers providers,
``--certctl-env KEY=VALUE``) are added to these and override them, except
:data:`HARNESS_VARIABLES`: those say where certctl listens, which database it uses and
which key the harness authenticates with, so the harness alone sets them.

The process runs from a fresh temporary directory with no ``web/`` in it: with a
dashboard present certctl answers ``/acme/*`` with the SPA's HTML. Readiness is
``GET /ready`` answering 200 over TLS verified by the test CA (certctl has no
``/healthz``; ``/ready`` pings the database).
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigError, ServiceError
from ..redaction import redact_dsn
from ..units import NS_PER_S
from .helpers import free_port, python_child_env
from .probes import wait_for_http
from .processes import LocalProcess
from .services import ProcessService

__all__ = [
    "DEFAULT_ENCRYPTION_KEY",
    "HARNESS_VARIABLES",
    "CertctlServer",
    "certctl_environment",
    "with_sslmode_disable",
]

DEFAULT_ENCRYPTION_KEY = "certload-config-key-at-least-32-bytes!"
#: what only the harness sets: where certctl listens, its database, its TLS pair and how
#: the harness's key authenticates (``--certctl-env`` refuses them)
HARNESS_VARIABLES = frozenset(
    {
        "CERTCTL_DATABASE_URL",
        "CERTCTL_DATABASE_MIGRATIONS_PATH",
        "CERTCTL_SERVER_HOST",
        "CERTCTL_SERVER_PORT",
        "CERTCTL_SERVER_TLS_CERT_PATH",
        "CERTCTL_SERVER_TLS_KEY_PATH",
        "CERTCTL_AUTH_TYPE",
        "CERTCTL_AUTH_SECRET",
        "CERTCTL_API_KEYS_NAMED",
    }
)
_KEY_NAME_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")

Kind = Literal["double", "binary"]


def with_sslmode_disable(dsn: str) -> str:
    """``dsn`` with ``sslmode=disable`` unless it already names an sslmode."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError(
            f"{redact_dsn(dsn)!r} is not a postgres:// or postgresql:// URL; certctl's "
            "CERTCTL_DATABASE_URL needs the URL form."
        )
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(k == "sslmode" for k, _ in query):
        query.append(("sslmode", "disable"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def certctl_environment(
    *,
    database_url: str,
    host: str,
    port: int,
    cert: str,
    key: str,
    api_key: str,
    admin_key_name: str = "loadtest",
    encryption_key: str = DEFAULT_ENCRYPTION_KEY,
    migrations_path: str | None = None,
) -> dict[str, str]:
    """The ``CERTCTL_*`` variables certctl runs with (this module's table), for the local and
    the containers provider alike."""
    env = {
        "CERTCTL_DATABASE_URL": database_url,
        "CERTCTL_SERVER_HOST": host,
        "CERTCTL_SERVER_PORT": str(port),
        "CERTCTL_SERVER_TLS_CERT_PATH": cert,
        "CERTCTL_SERVER_TLS_KEY_PATH": key,
        "CERTCTL_AUTH_TYPE": "api-key",
        "CERTCTL_AUTH_SECRET": api_key,
        "CERTCTL_API_KEYS_NAMED": f"{admin_key_name}:{api_key}:admin",
        "CERTCTL_CONFIG_ENCRYPTION_KEY": encryption_key,
        "CERTCTL_DEMO_SEED": "true",
        "CERTCTL_RATE_LIMIT_ENABLED": "false",
        "CERTCTL_KEYGEN_MODE": "agent",
        "CERTCTL_LOG_LEVEL": "warn",
        "CERTCTL_ACME_SERVER_ENABLED": "true",
        "CERTCTL_MAX_BODY_SIZE": str(10 * 1024 * 1024),
    }
    if migrations_path is not None:
        env["CERTCTL_DATABASE_MIGRATIONS_PATH"] = migrations_path
    return env


class CertctlServer(ProcessService):
    """certctl (double or binary) as a :class:`~pytest_certload.stack.protocols.Service`."""

    stop_timeout_ns = 10 * NS_PER_S

    name = "certctl"

    def __init__(
        self,
        *,
        db_dsn: str,
        cert: Path,
        key: Path,
        ca: Path,
        kind: Kind = "double",
        binary_path: Path | None = None,
        migrations_path: Path | None = None,
        port: int | None = None,
        api_key: str | None = None,
        admin_key_name: str = "loadtest",
        encryption_key: str = DEFAULT_ENCRYPTION_KEY,
        extra_env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
        base_dir: Path | None = None,
        python: str = sys.executable,
    ) -> None:
        if kind not in ("double", "binary"):
            raise ConfigError(
                f"{kind!r} is not a valid certctl kind; use 'double' (the reference double, "
                "python -m pytest_certload.double) or 'binary' (a real certctl server)."
            )
        if not admin_key_name or not set(admin_key_name) <= _KEY_NAME_CHARS:
            raise ConfigError(
                f"{admin_key_name!r} is not a valid certctl API key name; use letters, "
                "digits, '_' or '-'."
            )
        if len(encryption_key.encode()) < 32:
            raise ConfigError(
                "the certctl config encryption key must be at least 32 bytes "
                f"(got {len(encryption_key.encode())}); certctl refuses to start otherwise."
            )
        self.kind: Kind = kind
        self.db_dsn = with_sslmode_disable(db_dsn)
        self.cert, self.key, self.ca = cert, key, ca
        self.binary_path = binary_path
        self.migrations_path = migrations_path
        self._requested_port = port
        self.port = port or 0
        self.api_key = api_key or secrets.token_urlsafe(32)
        if ":" in self.api_key or "," in self.api_key:
            raise ConfigError("a certctl API key must not contain ':' or ','.")
        self.admin_key_name = admin_key_name
        self.encryption_key = encryption_key
        self.extra_env = dict(extra_env or {})
        self._command = list(command) if command is not None else None
        self._base_dir = base_dir
        self._python = python
        super().__init__()

    # -------------------------------------------------------------- configuration

    def url(self) -> str:
        if not self.port:
            raise ServiceError("certctl.url() needs a started server; call start() first.")
        return f"https://127.0.0.1:{self.port}"

    def certctl_env(self) -> dict[str, str]:
        """The CERTCTL_* variables the server gets (port must be chosen already)."""
        env = certctl_environment(
            database_url=self.db_dsn,
            host="127.0.0.1",
            port=self.port,
            cert=str(self.cert),
            key=str(self.key),
            api_key=self.api_key,
            admin_key_name=self.admin_key_name,
            encryption_key=self.encryption_key,
            migrations_path=(
                str(self.migrations_path.resolve()) if self.migrations_path is not None else None
            ),
        )
        env.update(self.extra_env)
        return env

    def _argv(self) -> list[str]:
        if self._command is not None:
            return list(self._command)
        if self.kind == "double":
            return [self._python, "-m", "pytest_certload.double"]
        fixes = (
            "  * build it from a certctl checkout: CGO_ENABLED=0 go build -o bin/server "
            "./cmd/server, then pass its path (binary_path=, --certctl-bin)\n"
            "  * or use the reference double (kind='double')\n"
            "  * or use the containers provider (image ghcr.io/certctl-io/certctl-server)"
        )
        if self.binary_path is None:
            raise ServiceError(f"kind='binary' needs the path of a certctl server binary.\n{fixes}")
        if not (self.binary_path.is_file() and os.access(self.binary_path, os.X_OK)):
            raise ServiceError(
                f"the certctl binary {self.binary_path} does not exist or is not executable."
                f"\n{fixes}"
            )
        if self.migrations_path is None or not self.migrations_path.is_dir():
            got = "not given" if self.migrations_path is None else f"{self.migrations_path}"
            raise ServiceError(
                "a real certctl binary reads its migrations from disk and needs their "
                f"directory (the repository's migrations/), which is {got}. Pass "
                "migrations_path= (--certctl-migrations) pointing at a certctl checkout's "
                "migrations/ directory."
            )
        return [str(self.binary_path)]

    # -------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self._proc is not None:
            raise ServiceError("certctl.start() was called twice.")
        argv = self._argv()
        # a fresh cwd with no web/ directory: certctl serves no dashboard then
        directory = self._open_workdir("certload-certctl-", "certctl.log", self._base_dir)
        self.port = self._requested_port or free_port()
        # the caller's own CERTCTL_* variables must not leak into the server
        inherited = python_child_env() if self.kind == "double" else dict(os.environ)
        env = {k: v for k, v in inherited.items() if not k.startswith("CERTCTL_")}
        env.update(self.certctl_env())
        await self._spawn(
            lambda: LocalProcess(
                "certctl", argv, log_path=directory / "certctl.log", env=env, cwd=directory
            )
        )

    async def wait_ready(self, timeout_ns: int) -> None:
        """Wait for ``GET /ready`` to answer 200 (TLS verified by the CA)."""
        if self._proc is None:
            raise ServiceError("certctl.wait_ready() needs start() first.")
        await wait_for_http(
            self.url() + "/ready", verify=self.ca, timeout_ns=timeout_ns, target=self._proc
        )
