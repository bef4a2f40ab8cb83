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
