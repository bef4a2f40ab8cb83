"""What scenarios consume, whichever provider booted the stack -- and the provider for a
stack someone else runs.

:class:`StackInfo` is the frozen hand-over object: certctl's URL and API keys, the DSN
(when the harness may seed), how to verify TLS, and the connector targets by type.
:class:`ExternalStack` wraps a StackInfo for a stack that is already running (CI
services, a staging deployment, ``docker compose up``) and only checks it is ready.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import anyio

from ..errors import ConfigError, ServiceError
from .base import wait_for_http

__all__ = ["TARGET_TYPES", "ExternalStack", "StackInfo", "StackProvider"]

#: connector target types, as certctl's k6 script tags them (``target_type``)
TARGET_TYPES: tuple[str, ...] = ("nginx", "apache", "haproxy", "f5")
_NS_PER_S = 1_000_000_000


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class StackInfo:
    """Everything a scenario needs to reach the system under test."""

    certctl_url: str
    token: str = field(repr=False)
    admin_token: str = field(repr=False)
    dsn: str | None = field(default=None, repr=False)
    #: CA bundle that signed the server certificates; None with verify_tls=True means
    #: the system trust store
    ca: Path | None = None
    verify_tls: bool = True
    #: target type (nginx, apache, haproxy, f5) -> base URL
    targets: Mapping[str, str] = field(default_factory=dict)
    #: the f5 mock's plain-HTTP URL, when there is one
    f5_http_url: str | None = None
    provider: str = "external"

    def __post_init__(self) -> None:
        object.__setattr__(self, "certctl_url", self.certctl_url.rstrip("/"))
        object.__setattr__(self, "targets", _frozen(self.targets))
        unknown = sorted(set(self.targets) - set(TARGET_TYPES))
        if unknown:
            raise ConfigError(
                f"unknown target type(s) {', '.join(unknown)} in StackInfo.targets; "
                f"valid types are {', '.join(TARGET_TYPES)}."
            )

    def verify(self) -> ssl.SSLContext | bool:
        """What to pass as an HTTP client's ``verify``.

        A *new* SSL context trusting :attr:`ca` on every call (httpx with HTTP/2 modifies
        the context it is given, so clients must not share one), True for the system
        store, or False when verification is off.
        """
        if not self.verify_tls:
            return False
        if self.ca is None:
            return True
        return ssl.create_default_context(cafile=str(self.ca))

    def target(self, target_type: str) -> str:
        """The base URL of connector target ``target_type``."""
        try:
            return self.targets[target_type]
        except KeyError:
            have = ", ".join(self.targets) or "none"
            raise ConfigError(
                f"the {self.provider} stack has no {target_type!r} target (it has: {have}); "
                f"start it with that sidecar or give its URL to the external provider."
            ) from None


@runtime_checkable
class StackProvider(Protocol):
    """A way to obtain a running stack: local processes, containers or external."""

    async def start(self) -> StackInfo: ...

    async def stop(self) -> None: ...


class ExternalStack:
    """A stack that is already running; start() checks readiness and returns its info."""

    def __init__(self, info: StackInfo, *, ready_timeout_ns: int = 30 * _NS_PER_S) -> None:
        self.info = info
        self.ready_timeout_ns = ready_timeout_ns

    async def start(self) -> StackInfo:
        ca: Path | str | None = self.info.ca if self.info.verify_tls else None
        if self.info.verify_tls and self.info.ca is None:
            ca = _system_bundle()
        urls = [self.info.certctl_url + "/ready"]
        urls += [
            url + ("/healthz" if kind == "f5" else "/") for kind, url in self.info.targets.items()
        ]
        try:
            async with anyio.create_task_group() as tg:
                for url in urls:
                    tg.start_soon(_wait, url, ca, self.ready_timeout_ns)
        except BaseExceptionGroup as group:
            first = group.exceptions[0]
            if len(group.exceptions) == 1 and isinstance(first, Exception):
                raise first from None
            raise
        return self.info

    async def stop(self) -> None:
        """Nothing to stop: the stack belongs to someone else."""

    async def __aenter__(self) -> StackInfo:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def _wait(url: str, ca: Path | str | None, timeout_ns: int) -> None:
    try:
        await wait_for_http(url, ca=ca, timeout_ns=timeout_ns)
    except ServiceError as exc:
        exc.add_note(
            "this stack is external: check it is running and reachable from here, that the "
            "URL is right, and that the CA (or verify=False) matches its certificate."
        )
        raise


def _system_bundle() -> str | None:
    paths = ssl.get_default_verify_paths()
    return paths.cafile or paths.openssl_cafile
