"""SIGTERM during a session: stop the load, keep what it measured, write every report.

CI runners and ``timeout`` end a job with SIGTERM, whose default action kills the process
before pytest can write junit, the JSON summary or the HTML report. :class:`Interrupts`
handles it the way pytest handles Ctrl-C:

* the first SIGTERM asks the run in progress to stop (a
  :class:`~pytest_certload.engine.StopRequest`: the run ends within one interval, keeps
  and records what it measured, and ``--certload-tx`` workers are told to stop); once
  the run has been recorded — or at once, when no run is in progress — the session is
  interrupted with ``KeyboardInterrupt``, so pytest tears the stack down (the session's
  fixtures) and writes every report;
* a second SIGTERM stops the stack's processes and dies of it (exit status 143).

Install it from the main thread; it restores the previous handler on :meth:`uninstall`.
Imports no pytest.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from .engine import StopRequest

__all__ = ["Interrupts"]

REASON = "SIGTERM received; the session is being interrupted"


class Interrupts:
    """The SIGTERM policy of one session (see the module docstring)."""

    def __init__(self) -> None:
        self.stop = StopRequest()
        self.received = 0
        self._running = 0
        self._previous: Any = None
        self._installed = False

    def install(self) -> bool:
        """Handle SIGTERM from now on; False (and nothing done) off the main thread."""
        if self._installed or threading.current_thread() is not threading.main_thread():
            return False
        self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        self._installed = True
        return True

    def uninstall(self) -> None:
        """Give SIGTERM back to whoever had it, if the handler is still ours."""
        if not self._installed:
            return
        self._installed = False
        if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
            previous = self._previous if self._previous is not None else signal.SIG_DFL
            signal.signal(signal.SIGTERM, previous)

    @contextlib.contextmanager
    def run_in_progress(self) -> Iterator[StopRequest]:
        """Mark a run as in progress: SIGTERM then stops the run instead of raising.

        On leaving, a SIGTERM that arrived meanwhile interrupts the session.
        """
        self.interrupt_if_requested()
        self._running += 1
        try:
            yield self.stop
        finally:
            self._running -= 1

    def interrupt_if_requested(self) -> None:
        """Raise ``KeyboardInterrupt`` if a SIGTERM asked to end the session."""
        if self.stop.is_set():
            raise KeyboardInterrupt(REASON)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self.received += 1
        if self.received > 1:
            self._die(signum)
            return
        self.stop.set(REASON)
        if not self._running:
            raise KeyboardInterrupt(REASON)

    def _die(self, signum: int) -> None:
        from .stack.processes import stop_all_processes

        stop_all_processes(grace_s=2.0)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
