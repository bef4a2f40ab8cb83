"""The whole stack as local child processes: the default provider on a machine without
Docker.

Boot order: TLS material first (everything needs it), then -- all at once in one task
group -- the chain ``postgres -> certctl`` beside the nginx, apache and haproxy sidecars
and the f5 mock. Each service is started and waited for; the first failure cancels the
rest and :meth:`LocalStack.stop` tears down whatever had started, so a failed boot leaves
no process and no directory behind.

With ``logs_dir`` every service's log (``postgres.log``, ``certctl.log``, ``nginx.log``,
``apache.log``, ``haproxy.log``, ``f5.log``) is copied there as the service stops, before
its directory is removed -- after a failed boot and an interrupted run too -- so the log
that shows why a run went wrong outlives the stack. :meth:`LocalStack.dead_services` says
which service has died since it started.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import anyio

from ..errors import ConfigError, ServiceError
from ..units import NS_PER_S
from .certctl import CertctlServer
from .f5 import F5Mock
from .helpers import blocking_ancestor, describe_exit
from .info import TARGET_TYPES, StackInfo
from .postgres import LocalPostgres
from .processes import copy_quietly, make_temp_dir, remove_temp_dir
from .protocols import Service
from .sidecars import ApacheSidecar, HAProxySidecar, NginxSidecar
from .tls import TLSMaterial, make_tls_material

__all__ = ["CERT_NAMES", "LocalStack"]

#: service name -> extra SANs of its certificate (localhost/127.0.0.1/::1 are added)
CERT_NAMES: Mapping[str, Sequence[str]] = {
    "certctl": ("certctl-server",),
    "nginx": ("nginx-target",),
    "apache": ("apache-target",),
    "haproxy": ("haproxy-target",),
    "f5": ("f5-mock-icontrol", "f5-mock-target"),
}

CertctlKind = Literal["double", "binary", "none"]


class LocalStack:
    """Boot TLS material, postgres, certctl and the connector targets as child processes.

    ``certctl="none"`` boots everything but certctl (``StackInfo.certctl_url`` is then
    empty). ``targets`` picks the sidecars (default: all of nginx, apache, haproxy, f5).
    ``boot_seconds`` holds each service's start-to-ready time after :meth:`start`.
    ``logs_dir``: where each service's log is copied as it stops (see the module doc).
    """

    def __init__(
        self,
        *,
        certctl: CertctlKind = "double",
        certctl_binary: Path | None = None,
        certctl_migrations: Path | None = None,
        certctl_command: Sequence[str] | None = None,
        certctl_env: Mapping[str, str] | None = None,
        api_key: str | None = None,
        targets: Sequence[str] = TARGET_TYPES,
        base_dir: Path | None = None,
        pg_bin_dir: Path | None = None,
        ready_timeout_ns: int = 30 * NS_PER_S,
        logs_dir: Path | None = None,
    ) -> None:
        if certctl not in ("double", "binary", "none"):
            raise ConfigError(
                f"{certctl!r} is not a valid certctl mode for the local stack; use 'double', "
                "'binary' or 'none'."
            )
        unknown = sorted(set(targets) - set(TARGET_TYPES))
        if unknown:
            raise ConfigError(
                f"unknown target(s) {', '.join(unknown)} for the local stack; valid targets "
                f"are {', '.join(TARGET_TYPES)}."
            )
        self.certctl_mode: CertctlKind = certctl
        self._certctl_binary = certctl_binary
        self._certctl_migrations = certctl_migrations
        self._certctl_command = certctl_command
        self._certctl_env = dict(certctl_env or {})
        self._api_key = api_key
        self.target_types = tuple(dict.fromkeys(targets))
        self._base_dir = base_dir
        self._pg_bin_dir = pg_bin_dir
        self.ready_timeout_ns = ready_timeout_ns
        self.logs_dir = logs_dir
        self.directory: Path | None = None
        self.tls: TLSMaterial | None = None
        self.postgres: LocalPostgres | None = None
        self.certctl: CertctlServer | None = None
        self.services: dict[str, Service] = {}
        self.boot_seconds: dict[str, float] = {}
        self.info: StackInfo | None = None

    async def _boot(self, service: Service) -> None:
        started = time.perf_counter()
        self.services[service.name] = service
        if self.logs_dir is not None:
            service.keep_log(self.logs_dir)
        await service.start()
        await service.wait_ready(self.ready_timeout_ns)
        self.boot_seconds[service.name] = time.perf_counter() - started

    async def _boot_database_chain(self, tls: TLSMaterial, work: Path) -> None:
        pg = LocalPostgres(base_dir=self._dir_for_dropped_root(work), bin_dir=self._pg_bin_dir)
        self.postgres = pg
        await self._boot(pg)
        if self.certctl_mode == "none":
            return
        cert, key = tls.server_pair("certctl")
        server = CertctlServer(
            db_dsn=pg.dsn(),
            cert=cert,
            key=key,
            ca=tls.ca_cert,
            kind=self.certctl_mode,
            binary_path=self._certctl_binary,
            migrations_path=self._certctl_migrations,
            api_key=self._api_key,
            extra_env=self._certctl_env,
            command=self._certctl_command,
            base_dir=work,
        )
        self.certctl = server
        await self._boot(server)

    def _target(self, kind: str, tls: TLSMaterial, work: Path) -> Service:
        cert, key = tls.server_pair(kind)
        if kind == "nginx":
            return NginxSidecar(cert, key, ca=tls.ca_cert, base_dir=work)
        if kind == "apache":
            return ApacheSidecar(
                cert, key, ca=tls.ca_cert, base_dir=self._dir_for_dropped_root(work)
            )
        if kind == "haproxy":
            return HAProxySidecar(cert, key, ca=tls.ca_cert, base_dir=work)
        return F5Mock(cert, key, ca=tls.ca_cert, base_dir=work)

    @staticmethod
    def _dir_for_dropped_root(work: Path) -> Path | None:
        """``work``, or None (the system temp dir) when a server that drops root to an
        unprivileged user (postgres, apache's workers) could not reach it."""
        if os.geteuid() != 0 or blocking_ancestor(work / "x", 65534, 65534) is None:
            return work
        return None

    async def start(self) -> StackInfo:
        """Boot everything; on any failure stop what started and re-raise."""
        if self.directory is not None:
            raise ConfigError("LocalStack.start() was called twice; stop() it first.")
        started = time.perf_counter()
        self.directory = make_temp_dir("certload-stack-", self._base_dir)
        # apache's workers drop root and must traverse to their document root
        self.directory.chmod(0o755)
        try:
            t0 = time.perf_counter()
            tls = make_tls_material(self.directory / "tls", server_names=CERT_NAMES)
            self.tls = tls
            self.boot_seconds["tls"] = time.perf_counter() - t0
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._boot_database_chain, tls, self.directory)
                    for kind in self.target_types:
                        tg.start_soon(self._boot, self._target(kind, tls, self.directory))
            except BaseExceptionGroup as group:
                first = group.exceptions[0]
                if len(group.exceptions) == 1 and isinstance(first, Exception):
                    raise first from None
                raise
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.stop()
            raise
        self.boot_seconds["total"] = time.perf_counter() - started
        assert self.postgres is not None
        targets = {kind: self.services[kind].url() for kind in self.target_types}
        f5 = self.services.get("f5")
        token = self.certctl.api_key if self.certctl is not None else ""
        self.info = StackInfo(
            certctl_url=self.certctl.url() if self.certctl is not None else "",
            token=token,
            admin_token=token,
            dsn=self.postgres.dsn(),
            ca=tls.ca_cert,
            verify_tls=True,
            targets=targets,
            f5_http_url=f5.http_url() if isinstance(f5, F5Mock) else None,
            provider="local",
        )
        return self.info

    async def stop(self) -> None:
        """Stop every service that was started (certctl before postgres), remove the dir."""
        services, self.services = self.services, {}
        pg = services.pop("postgres", None)
        failures: list[tuple[str, Exception]] = []

        async def stop_one(service: Service) -> None:
            try:
                await service.stop()
            except Exception as exc:  # keep stopping the others
                failures.append((service.name, exc))

        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                for service in services.values():
                    tg.start_soon(stop_one, service)
            if pg is not None:
                await stop_one(pg)
            if self.directory is not None:
                await remove_temp_dir(self.directory)
        self.directory = None
        self.postgres = None
        self.certctl = None
        self.info = None
        if failures:
            detail = "; ".join(f"{name}: {exc}" for name, exc in failures)
            raise ServiceError(f"stopping the local stack failed for {detail}")

    def dead_services(self) -> list[str]:
        """One line per service whose process has exited since it started, with the
        tail of its log; empty while everything runs."""
        dead = []
        for name, service in list(self.services.items()):
            status = service.exit_status()
            if status is not None:
                dead.append(describe_exit(name, status, service.log_tail(20)))
        return dead

    def copy_logs(self, directory: Path) -> list[Path]:
        """Copy every running service's log into ``directory`` now (``<name>.log``); the
        files written. Never raises."""
        copied = []
        for name, service in list(self.services.items()):
            source = service.log_path
            if source is not None and copy_quietly(source, directory / f"{name}.log"):
                copied.append(directory / f"{name}.log")
        return copied

    def process_ids(self) -> dict[str, int]:
        """Service name -> pid of each running service's process (postgres: the
        postmaster, whose backends are its children)."""
        out = {}
        for name, service in list(self.services.items()):
            pid = getattr(service, "pid", None)
            if isinstance(pid, int) and service.exit_status() is None:
                out[name] = pid
        return out

    async def __aenter__(self) -> StackInfo:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
