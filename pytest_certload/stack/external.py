"""The provider for a stack someone else runs.

:class:`ExternalStack` wraps a :class:`~pytest_certload.stack.info.StackInfo` for a
stack that is already running (CI services, a staging deployment, ``docker compose up``)
and only checks it is ready. :func:`wait_for_certctl` is the wait for certctl's
``/ready`` that the plugin's external provider makes before the first run.
"""

from __future__ import annotations

from pathlib import Path

import anyio

from ..errors import ServiceError, TransportError
from ..http.tls import VerifyTypes
from ..redaction import redact_url
from ..units import NS_PER_S
from .info import StackInfo
from .probes import PROBE_TIMEOUT_NS, fetch, wait_for_http, wait_until

__all__ = ["READY_TIMEOUT_NS", "ExternalStack", "wait_for_certctl"]

#: how long an external stack's certctl may take to answer ``/ready`` with 200
READY_TIMEOUT_NS = 30 * NS_PER_S
#: answers of ``/ready`` worth waiting through: certctl's 503 while its database is not
#: up yet, a proxy's 502/504 while certctl starts behind it
_NOT_YET = (502, 503, 504)
_EXTERNAL_NOTE = (
    "this stack is external: check it is running and reachable from here, that the "
    "URL is right, and that the CA (or verify=False) matches its certificate."
)


class ExternalStack:
    """A stack that is already running; start() checks readiness and returns its info."""

    def __init__(self, info: StackInfo, *, ready_timeout_ns: int = READY_TIMEOUT_NS) -> None:
        self.info = info
        self.ready_timeout_ns = ready_timeout_ns

    async def start(self) -> StackInfo:
        urls = [self.info.certctl_url + "/ready"]
        urls += [
            url + ("/healthz" if kind == "f5" else "/") for kind, url in self.info.targets.items()
        ]
        try:
            async with anyio.create_task_group() as tg:
                for url in urls:
                    tg.start_soon(_wait, url, self.info.verify(), self.ready_timeout_ns)
        except BaseExceptionGroup as group:
            first = group.exceptions[0]
            if len(group.exceptions) == 1 and isinstance(first, Exception):
                raise first from None
            raise
        return self.info

    async def stop(self) -> None:
        """Nothing to stop: the stack belongs to someone else."""

    def dead_services(self) -> list[str]:
        """Nothing to watch: the stack's processes are someone else's."""
        return []

    def copy_logs(self, directory: Path) -> list[Path]:
        """No logs to keep: the stack's logs are someone else's."""
        return []

    def process_ids(self) -> dict[str, int]:
        """None to sample: the stack's processes are someone else's (maybe elsewhere)."""
        return {}

    async def __aenter__(self) -> StackInfo:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def _wait(url: str, verify: VerifyTypes, timeout_ns: int) -> None:
    try:
        await wait_for_http(url, verify=verify, timeout_ns=timeout_ns)
    except ServiceError as exc:
        exc.add_note(_EXTERNAL_NOTE)
        raise


async def wait_for_certctl(info: StackInfo, *, timeout_ns: int = READY_TIMEOUT_NS) -> None:
    """Wait until certctl's ``GET /ready`` answers 200, for at most ``timeout_ns``.

    A stack started just before the tests (``docker compose up`` in CI) is waited for:
    a refused or reset connection, no answer, and 502/503/504 are tried again (50 ms
    doubling to 250 ms). An answer that waiting cannot change -- a certificate that does
    not verify, ``http://`` at a TLS port, any other status -- ends the wait at once and
    the pre-flight check that follows names its cause and fix. Raises
    :class:`~pytest_certload.errors.ServiceTimeout` saying what was awaited, where (the
    URL without credentials), for how long and the last answer.
    """
    url = info.certctl_url + "/ready"
    verify = info.verify()
    per_try = min(PROBE_TIMEOUT_NS, timeout_ns)

    async def attempt() -> str | None:
        try:
            response = await fetch(url, verify=verify, timeout_ns=per_try)
        except TransportError as exc:
            if exc.kind in ("tls", "protocol"):
                return None  # waiting cannot fix it: the pre-flight check explains
            return f"{exc.kind}: {exc}"
        if response.status_code in _NOT_YET:
            return f"status {response.status_code}: {response.content[:120]!r}"
        return None  # 200, or a status the pre-flight check explains

    try:
        await wait_until(
            attempt,
            what="certctl answering GET with 200",
            where=redact_url(url),
            timeout_ns=timeout_ns,
        )
    except ServiceError as exc:
        exc.add_note(_EXTERNAL_NOTE)
        raise
