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
from .processes import LocalProcess, keep_log, make_temp_dir, release_log, remove_temp_dir

__all__ = ["ProcessService"]


class ProcessService:
    """The plumbing every service run as one :class:`LocalProcess` shares.

    A private working directory (removed at :meth:`stop`), a log file in it, the process,
    and a start that cleans up after itself if spawning fails. Subclasses set
    ``stop_timeout_ns`` and call :meth:`_open_workdir` then :meth:`_spawn` from ``start``.
    After :meth:`keep_log` the log is copied out before the directory is removed.
    """

    name = "service"
    stop_timeout_ns = 5 * NS_PER_S

    def __init__(self) -> None:
        self.directory: Path | None = None
        self._proc: LocalProcess | None = None
        self._log_path: Path | None = None
        self._keep_log_in: Path | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path | None:
        """The service's log file while its working directory exists."""
        return self._log_path

    def exit_status(self) -> int | None:
        """The process's exit status once it has died (negative: killed by that signal);
        None while it runs or before it was started."""
        return self._proc.exit_status() if self._proc is not None else None

    def keep_log(self, directory: Path) -> None:
        """Copy the log to ``directory/<name>.log`` when the service stops, before its
        working directory is removed (an interrupted run does it at exit)."""
        self._keep_log_in = directory
        if self._log_path is not None:
            keep_log(self._log_path, directory / f"{self.name}.log")

    def _open_workdir(self, prefix: str, log_name: str, parent: Path | None) -> Path:
        self.directory = make_temp_dir(prefix, parent)
        self._log_path = self.directory / log_name
        if self._keep_log_in is not None:
            keep_log(self._log_path, self._keep_log_in / f"{self.name}.log")
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
        log, self._log_path = self._log_path, None
        await anyio.to_thread.run_sync(release_log, log)
        if self.directory is not None:
            await remove_temp_dir(self.directory)
            self.directory = None

    def log_tail(self, lines: int = 40) -> str:
        return tail_file(self._log_path, lines) if self._log_path is not None else ""
