"""The pieces every service of the stack is built from.

* :class:`Service` -- the lifecycle protocol every provider's services satisfy.
* :class:`Readiness` -- the small protocol readiness probes are written against; a
  :class:`LocalProcess` satisfies it, so does anything with a name, a log and an
  optional exit status (a container wrapper, a fake in a test).
* :func:`wait_for_port`, :func:`wait_for_tls`, :func:`wait_for_http` -- probes with
  monotonic deadlines; on timeout they raise :class:`~pytest_certload.errors.ServiceTimeout`
  saying what was awaited, where and for how long, with the target's log tail attached
  as a note.
* :class:`LocalProcess` -- a child process in its own session (process group) with its
  output in a log file, stopped with terminate-then-kill under a deadline, and recorded in
  a module-level registry that an ``atexit`` hook and SIGTERM/SIGHUP handlers empty, so
  an interrupted run leaves nothing behind.

Nothing here imports pytest.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

import anyio
from anyio.streams.tls import TLSAttribute

from ..errors import ServiceError, ServiceTimeout

__all__ = [
    "LocalProcess",
    "ProcessService",
    "Readiness",
    "Service",
    "blocking_ancestor",
    "free_port",
    "install_cleanup_hooks",
    "live_processes",
    "make_client_context",
    "make_temp_dir",
    "probe_http",
    "probe_tls",
    "python_child_env",
    "remove_temp_dir",
    "stop_all_processes",
    "tail_file",
    "wait_for_http",
    "wait_for_port",
    "wait_for_tls",
]

_NS_PER_S = 1_000_000_000
_POLL_NS = 50_000_000  # first retry after 50 ms, backing off to 250 ms
_MAX_POLL_NS = 250_000_000


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


# --------------------------------------------------------------------------- helpers


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (the kernel picks it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def tail_file(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ('' when it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def blocking_ancestor(path: Path, uid: int, gid: int) -> Path | None:
    """The first directory above ``path`` that user ``uid``/``gid`` cannot search, if any.

    Servers that drop root (postgres, apache workers) must reach their files.
    """
    for parent in reversed(path.parents):
        try:
            st = parent.stat()
        except OSError:
            return parent
        if st.st_uid == uid:
            ok = bool(st.st_mode & 0o100)
        elif st.st_gid == gid:
            ok = bool(st.st_mode & 0o010)
        else:
            ok = bool(st.st_mode & 0o001)
        if not ok:
            return parent
    return None


def python_child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment for a Python child that must import this package.

    The package may be used from a checkout without being installed, so its parent
    directory is put first on PYTHONPATH. ``extra`` entries override.
    """
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    existing = env.get("PYTHONPATH", "")
    if root not in existing.split(os.pathsep):
        env["PYTHONPATH"] = root + (os.pathsep + existing if existing else "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def make_client_context(
    ca: Path | str | None,
    *,
    tls_version: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    """A client SSL context that trusts ``ca`` (or verifies nothing when ``ca`` is None).

    ``tls_version`` pins both the minimum and maximum protocol version.
    """
    if ca is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=str(ca))
    if tls_version is not None:
        ctx.minimum_version = tls_version
        ctx.maximum_version = tls_version
    return ctx


def _with_log_note(exc: BaseException, target: Readiness | None, lines: int = 40) -> None:
    if target is None:
        return
    tail = target.log_tail(lines)
    exc.add_note(
        f"last {lines} log lines of {target.name}:\n{tail}"
        if tail
        else f"{target.name} has written no log output"
    )


def _describe(exc: BaseException) -> str:
    """``Type: message`` of the innermost cause (anyio wraps refused connects in OSError)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[-1])
    return f"{type(exc).__name__}: {exc}"


def _format_seconds(ns: int) -> str:
    return f"{ns / _NS_PER_S:.1f} s"


async def _poll(
    attempt: _Attempt,
    *,
    what: str,
    where: str,
    timeout_ns: int,
    target: Readiness | None,
) -> str:
    """Call ``attempt`` until it returns None (ready) or the deadline passes.

    ``attempt`` returns None when ready, or a short reason string. Returns the last
    successful attempt's detail ('' here, kept for symmetry). Raises ServiceTimeout /
    ServiceError (when the target's process exited).
    """
    started = time.monotonic_ns()
    deadline = started + timeout_ns
    delay = _POLL_NS
    last_reason = "no attempt finished"
    attempts = 0
    while True:
        if target is not None:
            status = target.exit_status()
            if status is not None:
                exc: ServiceError = ServiceError(
                    f"{target.name} exited with status {status} while waiting for {what} "
                    f"at {where}; see its log below."
                )
                _with_log_note(exc, target)
                raise exc
        remaining = deadline - time.monotonic_ns()
        attempts += 1
        with anyio.move_on_after(max(remaining, 1) / _NS_PER_S):
            reason = await attempt()
            if reason is None:
                return ""
            last_reason = reason
        now = time.monotonic_ns()
        if now >= deadline:
            name = target.name if target is not None else "service"
            exc = ServiceTimeout(
                f"{name}: {what} at {where} did not succeed within "
                f"{_format_seconds(timeout_ns)} ({attempts} attempts; last: {last_reason})."
            )
            _with_log_note(exc, target)
            raise exc
        await anyio.sleep(min(delay, max(deadline - now, 0)) / _NS_PER_S)
        delay = min(delay * 2, _MAX_POLL_NS)


class _Attempt(Protocol):
    async def __call__(self) -> str | None: ...


# --------------------------------------------------------------------------- probes


async def wait_for_port(
    host: str,
    port: int,
    *,
    timeout_ns: int,
    target: Readiness | None = None,
) -> None:
    """Wait until a TCP connection to ``host:port`` succeeds."""

    async def attempt() -> str | None:
        try:
            stream = await anyio.connect_tcp(host, port)
        except OSError as exc:
            return _describe(exc)
        await stream.aclose()
        return None

    await _poll(
        attempt,
        what="a TCP connection",
        where=f"{host}:{port}",
        timeout_ns=timeout_ns,
        target=target,
    )


async def probe_tls(
    host: str,
    port: int,
    *,
    ca: Path | str | None,
    server_hostname: str | None = None,
    tls_version: ssl.TLSVersion | None = None,
) -> str:
    """One TLS handshake; returns the negotiated protocol (e.g. 'TLSv1.3').

    Raises OSError / ssl.SSLError on failure.
    """
    ctx = make_client_context(ca, tls_version=tls_version)
    stream = await anyio.connect_tcp(
        host,
        port,
        ssl_context=ctx,
        tls_hostname=server_hostname or host,
        tls_standard_compatible=False,
    )
    try:
        version: str = stream.extra(TLSAttribute.tls_version)
    finally:
        await stream.aclose()
    return version


async def wait_for_tls(
    host: str,
    port: int,
    *,
    ca: Path | str | None,
    timeout_ns: int,
    server_hostname: str | None = None,
    tls_version: ssl.TLSVersion | None = None,
    target: Readiness | None = None,
) -> None:
    """Wait until a TLS handshake with ``host:port``, verified against ``ca``, succeeds."""

    async def attempt() -> str | None:
        try:
            await probe_tls(
                host, port, ca=ca, server_hostname=server_hostname, tls_version=tls_version
            )
        except (OSError, ssl.SSLError) as exc:
            return _describe(exc)
        return None

    await _poll(
        attempt,
        what="a TLS handshake" + (" verified by " + str(ca) if ca else " (unverified)"),
        where=f"{host}:{port}",
        timeout_ns=timeout_ns,
        target=target,
    )


async def probe_http(
    url: str,
    *,
    ca: Path | str | None = None,
    tls_version: ssl.TLSVersion | None = None,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 5.0,
) -> tuple[int, bytes, str]:
    """One HTTP/1.1 request on a fresh connection: ``(status, body, tls_version or '')``.

    Deliberately tiny (no redirects, no chunked decoding beyond what probes need): it
    is what readiness checks use, so it must not depend on a client library's pool.
    """
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    host = parts.hostname
    port = parts.port or (443 if secure else 80)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    host_header = f"[{host}]" if ":" in host else host
    if parts.port:
        host_header = f"{host_header}:{parts.port}"
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with anyio.fail_after(timeout_s):
        if secure:
            ctx = make_client_context(ca, tls_version=tls_version)
            stream = await anyio.connect_tcp(
                host, port, ssl_context=ctx, tls_hostname=host, tls_standard_compatible=False
            )
            version = str(stream.extra(TLSAttribute.tls_version))
        else:
            stream = await anyio.connect_tcp(host, port)  # type: ignore[assignment]
            version = ""
        try:
            await stream.send(request)
            chunks: list[bytes] = []
            while True:
                try:
                    chunk = await stream.receive(65536)
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    break
                chunks.append(chunk)
        finally:
            await stream.aclose()
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    fields = status_line.split(" ", 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
        raise OSError(f"not an HTTP response: {status_line[:80]!r}")
    if b"transfer-encoding: chunked" in head.lower():
        body = _dechunk(body)
    return int(fields[1]), body, version


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


async def wait_for_http(
    url: str,
    *,
    expect_status: int | Sequence[int] = 200,
    ca: Path | str | None = None,
    timeout_ns: int,
    target: Readiness | None = None,
) -> None:
    """Wait until ``GET url`` answers with ``expect_status`` (TLS verified against ``ca``)."""
    wanted = (expect_status,) if isinstance(expect_status, int) else tuple(expect_status)

    async def attempt() -> str | None:
        try:
            status, body, _ = await probe_http(url, ca=ca)
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            return _describe(exc)
        if status in wanted:
            return None
        return f"status {status}: {body[:120]!r}"

    await _poll(
        attempt,
        what=f"GET answering {' or '.join(map(str, wanted))}",
        where=url,
        timeout_ns=timeout_ns,
        target=target,
    )


# --------------------------------------------------------------------------- processes

_registry_lock = threading.RLock()  # re-entrant: the signal handler may interrupt a holder
#: pid -> (process, stop signal, whether the signal goes to the whole group)
_registry: dict[int, tuple[subprocess.Popen[bytes], int, bool]] = {}
_atexit_registered = False
_signals_installed = False
_previous_handlers: dict[int, object] = {}


def live_processes() -> list[int]:
    """Pids of the processes LocalProcess started and has not reaped yet."""
    with _registry_lock:
        return [pid for pid, (proc, _, _) in _registry.items() if proc.poll() is None]


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    # The child leads its own session, so its pgid is its pid; signalling the group
    # reaches workers it forked (nginx, apache, postgres backends).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


_temp_dirs: set[Path] = set()


def make_temp_dir(prefix: str, parent: Path | None = None) -> Path:
    """A fresh private directory, removed by :func:`remove_temp_dir` or at exit."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    install_cleanup_hooks()
    with _registry_lock:
        _temp_dirs.add(path)
    return path


async def remove_temp_dir(path: Path | None) -> None:
    """Remove a directory made by :func:`make_temp_dir` (in a worker thread)."""
    if path is None:
        return
    await anyio.to_thread.run_sync(_remove_dir, path)


def _remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    with _registry_lock:
        _temp_dirs.discard(path)


def stop_all_processes(grace_s: float = 3.0) -> None:
    """Terminate every registered process group, then kill what is left after ``grace_s``;
    then remove the directories :func:`make_temp_dir` made.

    Synchronous and safe to call from atexit or a signal handler.
    """
    with _registry_lock:
        entries = list(_registry.values())
    for proc, sig, group in entries:
        if proc.poll() is None:
            if group:
                _kill_group(proc, sig)
            else:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
    procs = [proc for proc, _, _ in entries]
    deadline = time.monotonic() + grace_s
    for proc in procs:
        remaining = deadline - time.monotonic()
        try:
            proc.wait(timeout=max(remaining, 0.01))
        except subprocess.TimeoutExpired:
            _kill_group(proc, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)
        # a group leader that exited may leave workers behind
        _kill_group(proc, signal.SIGKILL)
    with _registry_lock:
        for proc in procs:
            _registry.pop(proc.pid, None)
        directories = list(_temp_dirs)
    for directory in directories:
        _remove_dir(directory)


def _on_fatal_signal(signum: int, frame: FrameType | None) -> None:
    stop_all_processes(grace_s=2.0)
    previous = _previous_handlers.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def install_cleanup_hooks() -> None:
    """Register the atexit hook and the SIGTERM/SIGHUP handlers (idempotent).

    Called on the first spawn. Signal handlers can only be set from the main thread: a
    caller that starts services from another thread (e.g. an anyio blocking portal)
    should call this once from the main thread first.
    """
    global _atexit_registered, _signals_installed
    if not _atexit_registered:
        _atexit_registered = True
        atexit.register(stop_all_processes)
    if _signals_installed:
        return
    # SIGINT already becomes KeyboardInterrupt, which unwinds through every `finally`
    # and then atexit. SIGTERM and SIGHUP would kill us without either: clean up first,
    # then hand the signal to whatever handled it before (the default: die of it).
    if threading.current_thread() is not threading.main_thread():
        return  # try again on a later call from the main thread
    _signals_installed = True
    for signum in (signal.SIGTERM, signal.SIGHUP):
        current = signal.getsignal(signum)
        if current is signal.SIG_IGN or current is _on_fatal_signal:
            continue
        _previous_handlers[signum] = current
        signal.signal(signum, _on_fatal_signal)


class LocalProcess:
    """A child process for one service: own session, log file, deadline-bound stop.

    Satisfies :class:`Readiness`.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | int | None = None,
        stop_signal: int = signal.SIGTERM,
        signal_group: bool = True,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        #: send the stop signal to the whole process group (True) or only to the leader
        #: (False, for servers such as postgres that shut their workers down themselves)
        self.signal_group = signal_group
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def exit_status(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def log_tail(self, lines: int = 40) -> str:
        return tail_file(self.log_path, lines)

    def start(self) -> None:
        """Spawn the process (synchronous: fork+exec takes about a millisecond)."""
        if self._proc is not None:
            raise ServiceError(f"{self.name} was already started (pid {self._proc.pid}).")
        install_cleanup_hooks()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            try:
                proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    cwd=self.cwd,
                    user=self.user,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise ServiceError(
                    f"cannot start {self.name}: {exc} (command: {' '.join(self.argv)})"
                ) from exc
        with _registry_lock:
            _registry[proc.pid] = (proc, self.stop_signal, self.signal_group)
        self._proc = proc

    async def stop(self, timeout_ns: int = 5 * _NS_PER_S) -> int | None:
        """Send the stop signal to the group, wait up to ``timeout_ns``, then SIGKILL.

        Returns the exit status (None if the process was never started).
        """
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            if self.signal_group:
                _kill_group(proc, self.stop_signal)
            else:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(self.stop_signal)
            deadline = time.monotonic_ns() + timeout_ns
            while proc.poll() is None and time.monotonic_ns() < deadline:
                await anyio.sleep(0.01)
            if proc.poll() is None:
                _kill_group(proc, signal.SIGKILL)
                await anyio.to_thread.run_sync(proc.wait)
        # reap workers the leader left behind (same process group)
        _kill_group(proc, signal.SIGKILL)
        with _registry_lock:
            _registry.pop(proc.pid, None)
        return proc.returncode


class ProcessService:
    """The plumbing every service run as one :class:`LocalProcess` shares.

    A private working directory (removed at :meth:`stop`), a log file in it, the process,
    and a start that cleans up after itself if spawning fails. Subclasses set
    ``stop_timeout_ns`` and call :meth:`_open_workdir` then :meth:`_spawn` from ``start``.
    """

    stop_timeout_ns = 5 * _NS_PER_S

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
