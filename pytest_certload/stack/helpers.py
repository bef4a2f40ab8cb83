"""Small facts about the host the stack runs on: a free port, a log's tail, whether
another user can reach a path, the environment of a Python child, how a process died.

Nothing here starts, stops or waits for anything.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Mapping
from pathlib import Path

__all__ = ["blocking_ancestor", "describe_exit", "free_port", "python_child_env", "tail_file"]


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


def describe_exit(name: str, status: int, log_tail: str) -> str:
    """``"NAME exited with status N; last log lines:\n..."`` (``"was killed by SIGKILL"``
    for a negative status), as liveness checks report a dead service."""
    if status < 0:
        try:
            how = f"was killed by {signal.Signals(-status).name} (status {status})"
        except ValueError:
            how = f"was killed by signal {-status}"
    else:
        how = f"exited with status {status}"
    tail = log_tail.strip()
    shown = f"last log lines:\n{tail}" if tail else "it wrote no log output"
    return f"{name} {how}; {shown}"
