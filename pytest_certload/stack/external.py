"""The provider for a stack someone else runs.

:class:`ExternalStack` wraps a :class:`~pytest_certload.stack.info.StackInfo` for a
stack that is already running (CI services, a staging deployment, ``docker compose up``)
and only checks it is ready.
"""

from __future__ import annotations

from pathlib import Path

import anyio

from ..errors import ServiceError
from ..http.tls import VerifyTypes
from ..units import NS_PER_S
from .info import StackInfo
from .probes import wait_for_http

__all__ = ["ExternalStack"]


class ExternalStack:
    """A stack that is already running; start() checks readiness and returns its info."""

    def __init__(self, info: StackInfo, *, ready_timeout_ns: int = 30 * NS_PER_S) -> None:
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
        exc.add_note(
            "this stack is external: check it is running and reachable from here, that the "
            "URL is right, and that the CA (or verify=False) matches its certificate."
        )
        raise
