""":class:`ProcessService`: the plumbing every service run as one local process shares.

certctl (:mod:`.certctl`), the f5 mock (:mod:`.f5`) and the TLS sidecars
(:mod:`.sidecars`) are built on it; PostgreSQL (:mod:`.postgres`) manages its own
directories and process because it runs ``initdb`` first and may run as another user.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio

from ..units import NS_PER_S
from .helpers import tail_file
from .processes import LocalProcess, make_temp_dir, remove_temp_dir

__all__ = ["ProcessService"]


class ProcessService:
    """The plumbing every service run as one :class:`LocalProcess` shares.

    A private working directory (removed at :meth:`stop`), a log file in it, the process,
    and a start that cleans up after itself if spawning fails. Subclasses set
    ``stop_timeout_ns`` and call :meth:`_open_workdir` then :meth:`_spawn` from ``start``.
    """

    stop_timeout_ns = 5 * NS_PER_S

    def __init__(self) -> None:
        self.directory: Path | None = None
        self._proc: LocalProcess | None = None
        self._log_path: Path | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _open_workdir(self, prefix: str, log_name: str, parent: Path | None) -> Path:
        self.directory = make_temp_dir(prefix, parent)
        self._log_path = self.directory / log_name
        return self.directory

    async def _spawn(self, build: Callable[[], LocalProcess]) -> None:
        """Build and start the process; on any failure stop what exists and re-raise."""
        try:
            self._proc = build()
            self._proc.start()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.stop()
            raise

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            await proc.stop(timeout_ns=self.stop_timeout_ns)
        if self.directory is not None:
            await remove_temp_dir(self.directory)
            self.directory = None

    def log_tail(self, lines: int = 40) -> str:
        return tail_file(self._log_path, lines) if self._log_path is not None else ""
