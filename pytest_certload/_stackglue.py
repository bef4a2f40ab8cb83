"""Opening the system under test for a pytest session, without pytest.

The stack lives for the whole session while each test runs its own event loop, so the
local and containers providers are driven from a blocking portal (an event loop in a
thread of its own) that outlives the tests.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anyio.from_thread import start_blocking_portal

from ._settings import Settings
from .errors import ConfigError
from .stack.external import StackInfo

__all__ = ["OpenStack", "describe_target", "open_stack"]

DOUBLE_LABEL = "certctl reference double"


@dataclass
class OpenStack:
    info: StackInfo
    label: str
    details: dict[str, Any] = field(default_factory=dict)


def _external_info(settings: Settings) -> StackInfo:
    assert settings.certctl_url is not None
    if not settings.certctl_token:
        raise ConfigError(
            f"the external provider needs an API key for {settings.certctl_url}; give "
            "--certctl-token TOKEN (ini certload_certctl_token, env CERTLOAD_CERTCTL_TOKEN)."
        )
    insecure = settings.ca == "insecure"
    return StackInfo(
        certctl_url=settings.certctl_url,
        token=settings.certctl_token,
        admin_token=settings.certctl_token,
        dsn=settings.certctl_dsn,
        ca=None if insecure or not settings.ca else Path(settings.ca),
        verify_tls=not insecure,
        targets=dict(settings.targets or {}),
        provider="external",
    )


def describe_target(info: StackInfo, *, double: bool) -> tuple[str, dict[str, Any]]:
    """A report header for the target: never calls the double "certctl"."""
    details: dict[str, Any] = {"url": info.certctl_url, "provider": info.provider}
    version: dict[str, Any] = {}
    if info.certctl_url:
        context: ssl.SSLContext
        verify = info.verify()
        if verify is False:
            context = ssl._create_unverified_context()
        elif verify is True:
            context = ssl.create_default_context()
        else:
            context = verify
        with (
            contextlib.suppress(OSError, ValueError),
            urllib.request.urlopen(
                info.certctl_url + "/api/v1/version", context=context, timeout=5
            ) as response,
        ):
            version = json.loads(response.read())
    details["version"] = version
    is_double = double or str(version.get("version", "")).startswith("double")
    name = DOUBLE_LABEL if is_double else "certctl"
    details["kind"] = "double" if is_double else "certctl"
    shown = str(version.get("version") or "version unknown")
    if is_double:
        shown = shown.removeprefix("double-")
    return f"{name} {shown} at {info.certctl_url} ({info.provider} provider)", details


@contextlib.contextmanager
def open_stack(settings: Settings, *, work_dir: Path | None = None) -> Iterator[OpenStack]:
    """Provide the stack the settings ask for; tear it down on exit, whatever happened."""
    if settings.provider == "external":
        info = _external_info(settings)
        label, details = describe_target(info, double=False)
        yield OpenStack(info, label, details)
        return
    if settings.provider == "containers":
        from .stack.containers import ContainerStack

        provider: Any = ContainerStack()
        double = False
    else:
        from .stack.local import LocalStack

        binary = settings.certctl_bin
        provider = LocalStack(
            certctl="binary" if binary is not None else "double",
            certctl_binary=binary,
            certctl_migrations=settings.certctl_migrations,
            base_dir=work_dir,
        )
        double = binary is None
    from .stack.base import install_cleanup_hooks

    # signal handlers can only be installed from the main thread, and the services
    # are started from the portal's thread: install them here first
    install_cleanup_hooks()
    with start_blocking_portal(backend="asyncio") as portal:
        try:
            info = portal.call(provider.start)
            label, details = describe_target(info, double=double)
            details["boot_seconds"] = dict(getattr(provider, "boot_seconds", {}))
            yield OpenStack(info, label, details)
        finally:
            portal.call(provider.stop)
