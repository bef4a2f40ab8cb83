"""The stack for a whole test session: what to provide, opened and torn down as one.

:class:`StackRequest` says which provider and what it needs (the settings make one);
:func:`open_stack` provides it and tears it down on exit, whatever happened. The stack
lives for the whole session while each test runs its own event loop, so the local and
containers providers are driven from a blocking portal (an event loop in a thread of
its own) that outlives the tests.

The :class:`OpenStack` it yields also answers, for the caller's checks around each run:
:meth:`OpenStack.preflight` (is the stack usable at all: :mod:`.preflight`, once per
session), :meth:`OpenStack.dead_services` (has a local process or a container died) and
:meth:`OpenStack.copy_logs`. With ``logs_dir`` every service's log is kept there as the
stack is torn down. Imports no pytest.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anyio.from_thread import start_blocking_portal

from ..errors import ConfigError, PreflightError, TransportError
from ..redaction import redact_environment, redact_url
from .external import wait_for_certctl
from .info import StackInfo
from .preflight import preflight
from .probes import PROBE_TIMEOUT_NS, probe_http
from .processes import install_cleanup_hooks
from .protocols import StackProvider

__all__ = ["DOUBLE_LABEL", "OpenStack", "StackRequest", "describe_target", "open_stack"]

DOUBLE_LABEL = "certctl reference double"


@dataclass(frozen=True, repr=False)
class StackRequest:
    """Which stack a session asks for: a provider and what that provider needs.

    Its repr shows no token, no DSN and no password of the URL.
    """

    provider: str = "local"
    certctl_url: str | None = None
    certctl_token: str | None = field(default=None, repr=False)
    certctl_dsn: str | None = field(default=None, repr=False)
    #: a CA bundle path, ``"insecure"``, or None for the stack's own CA
    ca: str | None = None
    certctl_bin: Path | None = None
    certctl_migrations: Path | None = None
    targets: Mapping[str, str] = field(default_factory=dict)
    #: variables added to the environment of the certctl the local or containers
    #: provider starts (``--certctl-env``); the external provider starts none
    certctl_env: Mapping[str, str] = field(default_factory=dict)
    #: the containers provider's images by role, replacing its defaults (``.images``)
    images: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        url = redact_url(self.certctl_url) if self.certctl_url is not None else None
        return (
            f"StackRequest(provider={self.provider!r}, certctl_url={url!r}, ca={self.ca!r}, "
            f"certctl_bin={self.certctl_bin!r}, targets={dict(self.targets)!r}, "
            f"certctl_env={redact_environment(self.certctl_env)!r})"
        )


@dataclass
class OpenStack:
    """An open stack: the hand-over object, how reports name the target, and the checks
    a caller makes around each run."""

    info: StackInfo
    label: str
    details: dict[str, Any] = field(default_factory=dict)
    #: the provider that started the stack (None for an external stack)
    provider: StackProvider | None = field(default=None, repr=False)
    #: where service logs are kept (None: nowhere)
    logs_dir: Path | None = None
    _preflight_error: PreflightError | None = field(default=None, init=False, repr=False)
    _preflight_done: bool = field(default=False, init=False, repr=False)

    def preflight(self, *, timeout_ns: int = PROBE_TIMEOUT_NS) -> None:
        """Check the stack is usable before the first load (:func:`.preflight.preflight`):
        certctl's ``/ready``, one authenticated call, TLS and scheme of certctl and of
        every target. Runs once; later calls repeat the first verdict. Raises
        :class:`~pytest_certload.errors.PreflightError` listing every problem.

        Call it from a thread with no running event loop (it runs its own).
        """
        if not self._preflight_done:
            try:
                with start_blocking_portal(backend="asyncio") as portal:
                    portal.call(lambda: preflight(self.info, timeout_ns=timeout_ns))
            except PreflightError as exc:
                self._preflight_error = exc
            self._preflight_done = True
        if self._preflight_error is not None:
            raise self._preflight_error

    def dead_services(self) -> list[str]:
        """One line per service of the stack that has died (``"NAME exited with status N;
        last log lines: ..."``); empty while all run, and always for an external stack.
        Check it before and after each run. Never raises."""
        if self.provider is None:
            return []
        try:
            return self.provider.dead_services()
        except Exception as exc:  # a liveness check must not end the session
            return [f"the liveness check of the {self.info.provider} stack failed: {exc}"]

    def process_ids(self) -> dict[str, int]:
        """Service name -> pid of each service process on this host that telemetry can
        sample (empty for an external stack). Never raises."""
        if self.provider is None:
            return {}
        try:
            return self.provider.process_ids()
        except Exception:  # sampling is an extra: a provider that cannot tell gives none
            return {}

    def copy_logs(self) -> list[Path]:
        """Copy every service's log into :attr:`logs_dir` now (the stack copies them again
        as it is torn down); the files written. Never raises."""
        if self.provider is None or self.logs_dir is None:
            return []
        try:
            return self.provider.copy_logs(self.logs_dir)
        except Exception:  # keeping a log must never raise
            return []


def _external_info(request: StackRequest) -> StackInfo:
    if request.certctl_url is None:
        raise ConfigError(
            "the external provider needs certctl's URL; give --certctl-url URL (ini "
            "certload_certctl_url, env CERTLOAD_CERTCTL_URL)."
        )
    if not request.certctl_token:
        raise ConfigError(
            f"the external provider needs an API key for {redact_url(request.certctl_url)}; give "
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
    """A report header for the target: never calls the double "certctl"; certctl's version
    and commit as its ``GET /api/v1/version`` reported them (``version unknown`` when it
    did not answer). The URL is shown without any ``user:password@`` it holds;
    ``details["targets"]`` has the connector targets' URLs by type."""
    url = redact_url(info.certctl_url)
    details: dict[str, Any] = {"url": url, "provider": info.provider}
    # the connector tier's targets, by type: the header names those a run measured
    details["targets"] = {kind: redact_url(target) for kind, target in info.targets.items()}
    version = await _version(info) if info.certctl_url else {}
    details["version"] = version
    is_double = double or str(version.get("version", "")).startswith("double")
    name = DOUBLE_LABEL if is_double else "certctl"
    details["kind"] = "double" if is_double else "certctl"
    shown = str(version.get("version") or "version unknown")
    if is_double:
        shown = shown.removeprefix("double-")
    elif version.get("commit"):
        shown += f" (commit {str(version['commit'])[:12]})"
    return f"{name} {shown} at {url} ({info.provider} provider)", details


def _provider(
    request: StackRequest, work_dir: Path | None, logs_dir: Path | None
) -> tuple[StackProvider, bool]:
    """The provider to start, and whether it runs the reference double."""
    if request.provider == "containers":
        from .containers import ContainerStack

        return (
            ContainerStack(
                images=request.images, logs_dir=logs_dir, certctl_env=request.certctl_env
            ),
            False,
        )
    from .local import LocalStack

    binary = request.certctl_bin
    local = LocalStack(
        certctl="binary" if binary is not None else "double",
        certctl_binary=binary,
        certctl_migrations=request.certctl_migrations,
        certctl_env=request.certctl_env,
        base_dir=work_dir,
        logs_dir=logs_dir,
    )
    return local, binary is None


def _boot_seconds(provider: StackProvider) -> dict[str, float]:
    """Each service's start-to-ready time, where the provider measures it."""
    from .local import LocalStack

    return dict(provider.boot_seconds) if isinstance(provider, LocalStack) else {}


@contextlib.contextmanager
def open_stack(
    request: StackRequest, *, work_dir: Path | None = None, logs_dir: Path | None = None
) -> Iterator[OpenStack]:
    """Provide the stack ``request`` asks for; tear it down on exit, whatever happened.

    An external stack is not started, but waited for: certctl's ``/ready`` must answer
    200 within 30 s (:func:`.external.wait_for_certctl`).

    ``work_dir``: where the local provider makes its directories. ``logs_dir``: where
    every service's log is copied as the stack is torn down -- after a failed start, a
    failed session and an interrupt too (``postgres.log``, ``certctl.log``, ...; the
    containers' output as ``<name>.log``); copying never raises.
    """
    if request.provider == "external":
        info = _external_info(request)
        with start_blocking_portal(backend="asyncio") as portal:
            # a stack started just before the session (docker compose up) gets its time
            portal.call(lambda: wait_for_certctl(info))
            label, details = portal.call(lambda: describe_target(info, double=False))
        yield OpenStack(info, label, details, logs_dir=logs_dir)
        return
    provider, double = _provider(request, work_dir, logs_dir)
    # signal handlers can only be installed from the main thread, and the services
    # are started from the portal's thread: install them here first
    install_cleanup_hooks()
    with start_blocking_portal(backend="asyncio") as portal:
        try:
            info = portal.call(provider.start)
            label, details = portal.call(lambda: describe_target(info, double=double))
            details["boot_seconds"] = _boot_seconds(provider)
            if request.certctl_env:
                shown = redact_environment(request.certctl_env)
                details["certctl_env"] = shown
                label += " with " + ", ".join(f"{k}={v}" for k, v in shown.items())
            yield OpenStack(info, label, details, provider=provider, logs_dir=logs_dir)
        finally:
            portal.call(provider.stop)
