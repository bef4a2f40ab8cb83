"""The stack for a whole test session: what to provide, opened and torn down as one.

:class:`StackRequest` says which provider and what it needs (the settings make one);
:func:`open_stack` provides it and tears it down on exit, whatever happened. The stack
lives for the whole session while each test runs its own event loop, so the local and
containers providers are driven from a blocking portal (an event loop in a thread of
its own) that outlives the tests. Imports no pytest.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anyio.from_thread import start_blocking_portal

from ..errors import ConfigError, TransportError
from .info import StackInfo
from .probes import probe_http
from .processes import install_cleanup_hooks
from .protocols import StackProvider

__all__ = ["DOUBLE_LABEL", "OpenStack", "StackRequest", "describe_target", "open_stack"]

DOUBLE_LABEL = "certctl reference double"


@dataclass(frozen=True)
class StackRequest:
    """Which stack a session asks for: a provider and what that provider needs."""

    provider: str = "local"
    certctl_url: str | None = None
    certctl_token: str | None = field(default=None, repr=False)
    certctl_dsn: str | None = field(default=None, repr=False)
    #: a CA bundle path, ``"insecure"``, or None for the stack's own CA
    ca: str | None = None
    certctl_bin: Path | None = None
    certctl_migrations: Path | None = None
    targets: Mapping[str, str] = field(default_factory=dict)


@dataclass
class OpenStack:
    """An open stack: the hand-over object and how reports name the target."""

    info: StackInfo
    label: str
    details: dict[str, Any] = field(default_factory=dict)


def _external_info(request: StackRequest) -> StackInfo:
    if request.certctl_url is None:
        raise ConfigError(
            "the external provider needs certctl's URL; give --certctl-url URL (ini "
            "certload_certctl_url, env CERTLOAD_CERTCTL_URL)."
        )
    if not request.certctl_token:
        raise ConfigError(
            f"the external provider needs an API key for {request.certctl_url}; give "
            "--certctl-token TOKEN (ini certload_certctl_token, env CERTLOAD_CERTCTL_TOKEN)."
        )
    insecure = request.ca == "insecure"
    return StackInfo(
        certctl_url=request.certctl_url,
        token=request.certctl_token,
        admin_token=request.certctl_token,
        dsn=request.certctl_dsn,
        ca=None if insecure or not request.ca else Path(request.ca),
        verify_tls=not insecure,
        targets=dict(request.targets),
        provider="external",
    )


async def _version(info: StackInfo) -> dict[str, Any]:
    """certctl's ``GET /api/v1/version`` answer, or ``{}`` when it gives none."""
    try:
        status, body, _ = await probe_http(
            info.certctl_url + "/api/v1/version", verify=info.verify()
        )
    except (TransportError, OSError):
        return {}
    if status != 200:
        return {}
    with contextlib.suppress(ValueError):
        data = json.loads(body)
        if isinstance(data, dict):
            return data
    return {}


async def describe_target(info: StackInfo, *, double: bool) -> tuple[str, dict[str, Any]]:
    """A report header for the target: never calls the double "certctl"."""
    details: dict[str, Any] = {"url": info.certctl_url, "provider": info.provider}
    version = await _version(info) if info.certctl_url else {}
    details["version"] = version
    is_double = double or str(version.get("version", "")).startswith("double")
    name = DOUBLE_LABEL if is_double else "certctl"
    details["kind"] = "double" if is_double else "certctl"
    shown = str(version.get("version") or "version unknown")
    if is_double:
        shown = shown.removeprefix("double-")
    return f"{name} {shown} at {info.certctl_url} ({info.provider} provider)", details


def _provider(request: StackRequest, work_dir: Path | None) -> tuple[StackProvider, bool]:
    """The provider to start, and whether it runs the reference double."""
    if request.provider == "containers":
        from .containers import ContainerStack

        return ContainerStack(), False
    from .local import LocalStack

    binary = request.certctl_bin
    local = LocalStack(
        certctl="binary" if binary is not None else "double",
        certctl_binary=binary,
        certctl_migrations=request.certctl_migrations,
        base_dir=work_dir,
    )
    return local, binary is None


def _boot_seconds(provider: StackProvider) -> dict[str, float]:
    """Each service's start-to-ready time, where the provider measures it."""
    from .local import LocalStack

    return dict(provider.boot_seconds) if isinstance(provider, LocalStack) else {}


@contextlib.contextmanager
def open_stack(request: StackRequest, *, work_dir: Path | None = None) -> Iterator[OpenStack]:
    """Provide the stack ``request`` asks for; tear it down on exit, whatever happened."""
    if request.provider == "external":
        info = _external_info(request)
        with start_blocking_portal(backend="asyncio") as portal:
            label, details = portal.call(lambda: describe_target(info, double=False))
        yield OpenStack(info, label, details)
        return
    provider, double = _provider(request, work_dir)
    # signal handlers can only be installed from the main thread, and the services
    # are started from the portal's thread: install them here first
    install_cleanup_hooks()
    with start_blocking_portal(backend="asyncio") as portal:
        try:
            info = portal.call(provider.start)
            label, details = portal.call(lambda: describe_target(info, double=double))
            details["boot_seconds"] = _boot_seconds(provider)
            yield OpenStack(info, label, details)
        finally:
            portal.call(provider.stop)
