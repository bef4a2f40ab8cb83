"""Local servers for the plugin's own tests and the benchmarks, each in its own process.

* :func:`latency_server` runs ``latency_server.py`` (controlled delay, stalls, failures;
  HTTP/2 too on request: resets, GOAWAY, held HEAD streams, large bodies).
* :func:`nginx_server` runs the system nginx in the foreground from a private prefix.

Both wait for readiness against a monotonic deadline and always kill their
process group on exit. Only :func:`nginx_server` touches pytest (to skip when
nginx is missing); :func:`start_nginx` is the pytest-free core used by ``bench/``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pytest_certload.stack.helpers import free_port

__all__ = [
    "LatencyServer",
    "NginxServer",
    "ServerStartError",
    "TLSFiles",
    "generate_tls",
    "latency_server",
    "nginx_server",
    "start_nginx",
]

LATENCY_SCRIPT = Path(__file__).with_name("latency_server.py")
START_TIMEOUT_S = 10.0


class ServerStartError(RuntimeError):
    """A test server did not become ready; the message carries its log tail."""


@dataclass(frozen=True)
class TLSFiles:
    """PEM paths: the server's certificate chain and key, and the CA that signed it."""

    cert: str
    key: str
    ca: str = ""


def generate_tls(
    directory: str | os.PathLike[str], *, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")
) -> TLSFiles:
    """A throw-away CA and an ECDSA P-256 server certificate (chain + key) for ``hosts``.

    The same material the stack makes (:func:`pytest_certload.stack.tls.make_tls_material`),
    with a key readable by nginx's unprivileged workers.
    """
    from pytest_certload.stack.tls import make_tls_material

    material = make_tls_material(
        Path(directory), server_names={"server": list(hosts)}, key_mode=0o644
    )
    cert, key = material.server_pair("server")
    return TLSFiles(str(cert), str(key), str(material.ca_cert))


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@dataclass
class LatencyServer:
    """Handle on a running latency server."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    tls: TLSFiles | None = None
    _stopped: bool = field(default=False, repr=False)

    def control(self, action: str, *, method: str | None = None, **params: Any) -> Any:
        """Call ``/_control/<action>?params``; returns the decoded JSON stats.

        ``method`` defaults to GET for ``stats`` and POST otherwise, e.g.
        ``control("delay", ms=50)``, ``control("stall", seconds=1)``,
        ``control("status", code=503, ratio=0.5)``, ``control("reset")``.
        """
        verb = method or ("GET" if action == "stats" else "POST")
        path = f"/_control/{action}" + (f"?{urlencode(params)}" if params else "")
        conn: http.client.HTTPConnection
        if self.tls is not None:
            ctx = ssl.create_default_context(cafile=self.tls.ca or None)
            if not self.tls.ca:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=5, context=ctx)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(verb, path)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise RuntimeError(f"{verb} {path} -> {resp.status}: {body!r}")
        return json.loads(body)

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("stats")
        return result

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            _kill_group(self.process)


def _read_listening(proc: subprocess.Popen[bytes], deadline: float) -> int | None:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return None  # process exited
        buf += chunk
        for line in buf.splitlines():
            if line.startswith(b"LISTENING "):
                return int(line.split()[1])


@contextlib.contextmanager
def latency_server(
    delay_ms: float = 0.0,
    tls: TLSFiles | None = None,
    *,
    workers: int = 0,
    http2: bool = False,
    host: str = "127.0.0.1",
    start_timeout_s: float = START_TIMEOUT_S,
) -> Iterator[LatencyServer]:
    """Run ``latency_server.py`` in its own process group; yield a :class:`LatencyServer`.
    ``http2``: speak HTTP/2 too (ALPN ``h2`` over TLS, prior knowledge in cleartext)."""
    log_dir = Path(tempfile.mkdtemp(prefix="certload-latency-"))
    log_path = log_dir / "stderr.log"
    cmd = [sys.executable, str(LATENCY_SCRIPT), "--host", host, "--port", "0"]
    cmd += ["--delay-ms", str(delay_ms), "--workers", str(workers)]
    if tls is not None:
        cmd += ["--tls-cert", tls.cert, "--tls-key", tls.key]
    if http2:
        cmd.append("--http2")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, process_group=0
        )
    handle: LatencyServer | None = None
    try:
        port = _read_listening(proc, time.monotonic() + start_timeout_s)
        if port is None:
            raise ServerStartError(
                f"latency server did not print 'LISTENING <port>' within {start_timeout_s:g}s "
                f"(exit code {proc.poll()}); command: {' '.join(cmd)}\n"
                f"stderr tail:\n{_tail(log_path)}"
            )
        scheme = "https" if tls is not None else "http"
        handle = LatencyServer(f"{scheme}://{host}:{port}", port, proc, log_path, tls)
        yield handle
    finally:
        if handle is not None:
            handle.stop()
        else:
            _kill_group(proc)
        if proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(log_dir, ignore_errors=True)


# -- nginx ----------------------------------------------------------------------------


@dataclass
class NginxServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    prefix: Path

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.prefix / "error.log", lines)


def _nginx_conf(prefix: Path, host: str, port: int, tls: TLSFiles | None, http2: bool) -> str:
    listen = f"{host}:{port}" + (" ssl" if tls else "") + (" http2" if http2 else "")
    tls_lines = ""
    if tls is not None:
        tls_lines = (
            f"        ssl_certificate {tls.cert};\n"
            f"        ssl_certificate_key {tls.key};\n"
            "        ssl_protocols TLSv1.2 TLSv1.3;\n"
            "        ssl_session_cache off;\n"
        )
    temp = "".join(
        f"    {name}_temp_path {prefix / name};\n"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""daemon off;
master_process on;
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
user root;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    default_type text/plain;
{temp}    server {{
        listen {listen};
        server_name localhost;
{tls_lines}        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


@contextlib.contextmanager
def start_nginx(
    *,
    tls: TLSFiles | None = None,
    http2: bool = False,
    host: str = "127.0.0.1",
    cpu: int | None = None,
    start_timeout_s: float = START_TIMEOUT_S,
) -> Iterator[NginxServer]:
    """Run nginx in the foreground from a private prefix; ``cpu`` pins it with taskset.

    Raises ``FileNotFoundError`` if nginx is not installed and
    :class:`ServerStartError` (with nginx's error log) if it does not answer.
    """
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if nginx is None:
        raise FileNotFoundError("nginx is not installed (looked on PATH and in /usr/sbin)")
    prefix = Path(tempfile.mkdtemp(prefix="certload-nginx-"))
    port = free_port(host)
    conf = prefix / "nginx.conf"
    conf.write_text(_nginx_conf(prefix, host, port, tls, http2))
    if os.geteuid() != 0:
        conf.write_text(conf.read_text().replace("user root;\n", ""))
    cmd = [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu), *cmd]
    with open(prefix / "stderr.log", "wb") as stderr:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            process_group=0,
        )
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if proc.poll() is not None:
                raise ServerStartError(
                    f"nginx exited with code {proc.returncode} before accepting connections on "
                    f"{host}:{port}; command: {' '.join(cmd)}\nerror log:\n"
                    f"{_tail(prefix / 'error.log')}\n{_tail(prefix / 'stderr.log')}"
                )
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise ServerStartError(
                        f"nginx did not accept connections on {host}:{port} within "
                        f"{start_timeout_s:g}s; error log:\n{_tail(prefix / 'error.log')}"
                    ) from None
                # readiness poll of a foreign process: nothing to wait on but the port
                time.sleep(0.01)
        scheme = "https" if tls else "http"
        yield NginxServer(f"{scheme}://{host}:{port}", port, proc, prefix)
    finally:
        _kill_group(proc)
        shutil.rmtree(prefix, ignore_errors=True)


@contextlib.contextmanager
def nginx_server(
    *, tls: TLSFiles | None = None, http2: bool = False, cpu: int | None = None
) -> Iterator[NginxServer]:
    """:func:`start_nginx` for tests: skips the test when nginx is not installed."""
    import pytest

    try:
        cm = start_nginx(tls=tls, http2=http2, cpu=cpu)
        server = cm.__enter__()
    except FileNotFoundError as exc:
        pytest.skip(f"{exc}; install it (apt-get install nginx) to run this test")
    try:
        yield server
    except BaseException:
        if not cm.__exit__(*sys.exc_info()):
            raise
    else:
        cm.__exit__(None, None, None)
