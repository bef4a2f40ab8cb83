"""The protocols the stack is written against.

* :class:`Service` -- the lifecycle every provider's services satisfy.
* :class:`Readiness` -- what a readiness probe needs to know about the thing it waits
  for: a :class:`~pytest_certload.stack.processes.LocalProcess` satisfies it, so does
  anything with a name, a log and an optional exit status (a container wrapper, a fake
  in a test).
* :class:`StackProvider` -- a way to obtain a running stack (local processes,
  containers or external), handing over a :class:`~pytest_certload.stack.info.StackInfo`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from .info import StackInfo

__all__ = ["Readiness", "Service", "StackProvider"]


@runtime_checkable
class Service(Protocol):
    """A part of the system under test with a start/ready/stop lifecycle."""

    name: str

    def url(self) -> str: ...

    async def start(self) -> None: ...

    async def wait_ready(self, timeout_ns: int) -> None: ...

    async def stop(self) -> None: ...

    def log_tail(self, lines: int = 40) -> str: ...

    @property
    def log_path(self) -> Path | None:
        """The service's log file while it runs (None before start and after stop)."""
        ...

    def exit_status(self) -> int | None:
        """The exit status once the service's process has died, else None."""
        ...

    def keep_log(self, directory: Path) -> None:
        """Copy the service's log to ``directory/<name>.log`` when it stops (also when an
        interrupted run stops it), before its working directory is removed."""
        ...


@runtime_checkable
class Readiness(Protocol):
    """What a readiness probe needs to know about the thing it waits for."""

    name: str

    def log_tail(self, lines: int = 40) -> str: ...

    def exit_status(self) -> int | None:
        """The exit status once the thing has died, else None (never died or not a process)."""
        ...


@runtime_checkable
class StackProvider(Protocol):
    """A way to obtain a running stack: local processes, containers or external."""

    async def start(self) -> StackInfo: ...

    async def stop(self) -> None: ...

    def dead_services(self) -> list[str]:
        """One line per service that has died since it started (``"NAME exited with
        status N; last log lines: ..."``); empty when all run, or for a stack that is not
        ours to watch."""
        ...

    def copy_logs(self, directory: Path) -> list[Path]:
        """Copy every service's log into ``directory`` now; the files written. Never
        raises."""
        ...

    def process_ids(self) -> dict[str, int]:
        """Service name -> pid of its root process on this host, for the services whose
        processes can be sampled (telemetry); empty for a stack that is not ours. Never
        raises."""
        ...
