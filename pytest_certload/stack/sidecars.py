"""TLS "deployment target" sidecars run as child processes from private configs.

The equivalents of certctl's loadtest fixtures (``fixtures/nginx.conf``, ``httpd.conf``,
``haproxy.cfg``): each listens on ``127.0.0.1:<free port>`` with TLS 1.2 and 1.3 and
answers ``GET /`` with 200. Each one gets its own temporary directory for its config,
pid file, runtime and temp paths, so nothing under /etc, /var or /run is touched and
several can run at once. Readiness is a TLS handshake plus ``GET /`` answering 200,
verified against the test CA.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import anyio

from ..errors import ServiceError
from ..units import NS_PER_S
from .helpers import blocking_ancestor, free_port
from .probes import wait_for_http, wait_for_tls
from .processes import LocalProcess
from .services import ProcessService

__all__ = [
    "ApacheSidecar",
    "HAProxySidecar",
    "NginxSidecar",
    "Sidecar",
    "find_binary",
]

_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin", "/opt/homebrew/bin", "/usr/local/bin")


def find_binary(
    names: tuple[str, ...],
    *,
    service: str,
    explicit: Path | None,
    install_hints: tuple[str, ...],
) -> Path:
    """Find the first of ``names`` on PATH or in the usual sbin directories.

    Raises ServiceError listing every place checked and every way to fix it.
    """
    checked: list[str] = []
    if explicit is not None:
        if os.access(explicit, os.X_OK) and explicit.is_file():
            return explicit
        checked.append(str(explicit))
    else:
        path_dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
        for name in names:
            found = shutil.which(name)
            if found:
                return Path(found)
            for directory in _SBIN_DIRS:
                candidate = Path(directory) / name
                if os.access(candidate, os.X_OK) and candidate.is_file():
                    return candidate
        checked.append(f"PATH ({os.pathsep.join(path_dirs) or 'empty'})")
        checked += [f"{d}/{{{','.join(names)}}}" for d in _SBIN_DIRS]
    where = "\n".join(f"  - {c}" for c in checked)
    fixes = "\n".join(f"  * {h}" for h in install_hints)
    raise ServiceError(
        f"the {service} binary ({' or '.join(names)}) was not found. Checked:\n{where}\n"
        f"To fix, do one of:\n{fixes}"
    )


def _common_hints(service: str, cls: str) -> tuple[str, ...]:
    return (
        f"pass the binary's path: {cls}(..., binary=Path('/path/to/it'))",
        "use the containers provider (needs a Docker-compatible engine)",
        f"or run {service} yourself and hand its URL to the external provider",
    )


class Sidecar(ProcessService):
    """Base of the TLS sidecars: temp dir, config file, one LocalProcess, readiness."""

    name = "sidecar"
    _binary_names: tuple[str, ...] = ()
    _install_hints: tuple[str, ...] = ()

    def __init__(
        self,
        cert: Path,
        key: Path,
        *,
        ca: Path,
        port: int | None = None,
        base_dir: Path | None = None,
        binary: Path | None = None,
    ) -> None:
        self.cert = cert
        self.key = key
        self.ca = ca
        self.port = port or 0
        self._requested_port = port
        self._base_dir = base_dir
        self._binary_arg = binary
        super().__init__()

    # subclasses fill these in
    def _render(self, directory: Path, binary: Path) -> list[str]:
        raise NotImplementedError

    def url(self) -> str:
        if not self.port:
            raise ServiceError(f"{self.name}.url() needs a started sidecar; call start() first.")
        return f"https://127.0.0.1:{self.port}"

    def binary(self) -> Path:
        return find_binary(
            self._binary_names,
            service=self.name,
            explicit=self._binary_arg,
            install_hints=self._install_hints,
        )

    async def start(self) -> None:
        if self._proc is not None:
            raise ServiceError(f"{self.name}.start() was called twice.")
        binary = self.binary()
        log = f"{self.name}.log"
        directory = self._open_workdir(f"certload-{self.name}-", log, self._base_dir)
        self.port = self._requested_port or free_port()
        await self._spawn(
            lambda: LocalProcess(
                self.name,
                self._render(directory, binary),
                log_path=directory / log,
                cwd=directory,
            )
        )

    async def wait_ready(self, timeout_ns: int) -> None:
        if self._proc is None:
            raise ServiceError(f"{self.name}.wait_ready() needs start() first.")
        started = anyio.current_time()
        await wait_for_tls(
            "127.0.0.1", self.port, verify=self.ca, timeout_ns=timeout_ns, target=self._proc
        )
        spent = int((anyio.current_time() - started) * NS_PER_S)
        await wait_for_http(
            self.url() + "/",
            expect_status=200,
            verify=self.ca,
            timeout_ns=max(timeout_ns - spent, NS_PER_S // 2),
            target=self._proc,
        )


class NginxSidecar(Sidecar):
    """nginx: one worker, TLS 1.2+1.3, ``location /`` returns 200 "ok\\n", no access log."""

    name = "nginx"
    _binary_names = ("nginx",)
    _install_hints = (
        "install nginx: Debian/Ubuntu `apt-get install nginx` (or nginx-light), "
        "Fedora `dnf install nginx`, Alpine `apk add nginx`, macOS `brew install nginx`",
        *_common_hints("nginx", "NginxSidecar"),
    )

    def _render(self, directory: Path, binary: Path) -> list[str]:
        tmp = directory / "tmp"
        tmp.mkdir()
        conf = directory / "nginx.conf"
        temp_paths = "\n".join(
            f"    {kind}_temp_path {tmp / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        conf.write_text(
            f"""# generated by pytest-certload
daemon off;
master_process on;
worker_processes 1;
pid {directory / "nginx.pid"};
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    default_type text/plain;
{temp_paths}
    server {{
        listen 127.0.0.1:{self.port} ssl;
        server_name localhost;
        ssl_certificate {self.cert};
        ssl_certificate_key {self.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""
        )
        return [str(binary), "-p", str(directory), "-c", str(conf), "-e", "stderr"]


class HAProxySidecar(Sidecar):
    """haproxy: ``bind ssl crt`` on a combined PEM, minimum TLS 1.2, returns 200 "ok\\n"."""

    name = "haproxy"
    _binary_names = ("haproxy",)
    _install_hints = (
        "install haproxy: Debian/Ubuntu `apt-get install haproxy`, Fedora `dnf install "
        "haproxy`, Alpine `apk add haproxy`, macOS `brew install haproxy`",
        *_common_hints("haproxy", "HAProxySidecar"),
    )

    def _render(self, directory: Path, binary: Path) -> list[str]:
        combined = directory / "server.pem"
        fd = os.open(combined, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(self.cert.read_bytes().rstrip(b"\n") + b"\n" + self.key.read_bytes())
        conf = directory / "haproxy.cfg"
        conf.write_text(
            f"""# generated by pytest-certload
global
    maxconn 4096
    log stderr format raw local0 warning
defaults
    mode http
    log global
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend target
    bind 127.0.0.1:{self.port} ssl crt {combined} ssl-min-ver TLSv1.2 alpn http/1.1
    http-request return status 200 content-type text/plain string "ok\\n"
"""
        )
        return [str(binary), "-db", "-f", str(conf)]


class ApacheSidecar(Sidecar):
    """apache httpd with mod_ssl from a private ServerRoot; serves a tiny index with 200."""

    name = "apache"
    _binary_names = ("apache2", "httpd")
    _install_hints = (
        "install apache: Debian/Ubuntu `apt-get install apache2`, Fedora `dnf install "
        "httpd mod_ssl`, Alpine `apk add apache2 apache2-ssl`, macOS `brew install httpd`",
        *_common_hints("apache", "ApacheSidecar"),
    )
    _module_dirs = (
        "/usr/lib/apache2/modules",
        "/usr/lib64/httpd/modules",
        "/usr/lib/httpd/modules",
        "/usr/lib/apache2",
        "/usr/libexec/apache2",
        "/opt/homebrew/lib/httpd/modules",
        "/usr/local/lib/httpd/modules",
    )
    _modules = (
        ("mpm_event_module", "mod_mpm_event.so"),
        ("unixd_module", "mod_unixd.so"),
        ("authz_core_module", "mod_authz_core.so"),
        ("dir_module", "mod_dir.so"),
        ("mime_module", "mod_mime.so"),
        ("log_config_module", "mod_log_config.so"),
        ("socache_shmcb_module", "mod_socache_shmcb.so"),
        ("ssl_module", "mod_ssl.so"),
    )

    def _module_dir(self) -> Path:
        for candidate in self._module_dirs:
            if (Path(candidate) / "mod_ssl.so").is_file():
                return Path(candidate)
        raise ServiceError(
            "apache was found but mod_ssl.so was not, in any of: "
            f"{', '.join(self._module_dirs)}. Install mod_ssl (Debian's apache2 package "
            "includes it; Fedora `dnf install mod_ssl`; Alpine `apk add apache2-ssl`), use "
            "the containers provider, or hand an apache URL to the external provider."
        )

    def _render(self, directory: Path, binary: Path) -> list[str]:
        builtin = subprocess.run(
            [str(binary), "-l"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        modules = self._module_dir()
        loads = []
        for module, filename in self._modules:
            source = filename.removeprefix("mod_").removesuffix(".so")
            if f"mod_{source}.c" in builtin:
                continue
            loads.append(f"LoadModule {module} {modules / filename}")
        htdocs = directory / "htdocs"
        htdocs.mkdir()
        (htdocs / "index.html").write_text("ok\n")
        run_as = ""
        if os.geteuid() == 0:
            # workers drop root; they must be able to reach the document root
            os.chmod(directory, 0o755)
            os.chmod(htdocs, 0o755)
            os.chmod(htdocs / "index.html", 0o644)
            for candidate in ("www-data", "apache", "daemon", "nobody"):
                try:
                    entry = pwd.getpwnam(candidate)
                except KeyError:
                    continue
                run_as = f"User {candidate}\nGroup #{entry.pw_gid}\n"
                blocked = blocking_ancestor(htdocs / "index.html", entry.pw_uid, entry.pw_gid)
                if blocked is not None:
                    raise ServiceError(
                        f"apache's workers run as {candidate!r} and cannot reach {htdocs}: "
                        f"{blocked} is not searchable by that user. To fix, do one of:\n"
                        f"  * make it searchable: chmod o+x {blocked}\n"
                        "  * leave base_dir unset (a fresh directory in the system temp dir)\n"
                        "  * run the tests as a non-root user"
                    )
                break
        conf = directory / "httpd.conf"
        conf.write_text(
            "# generated by pytest-certload\n"
            + "\n".join(loads)
            + f"""
ServerRoot "{directory}"
ServerName localhost
{run_as}Listen 127.0.0.1:{self.port}
PidFile "{directory / "httpd.pid"}"
DefaultRuntimeDir "{directory}"
Mutex file:{directory} default
ErrorLog /dev/stderr
LogLevel warn
StartServers 1
ServerLimit 2
ThreadsPerChild 25
MinSpareThreads 5
MaxSpareThreads 50
MaxRequestWorkers 50
DocumentRoot "{htdocs}"
DirectoryIndex index.html
TypesConfig /dev/null
AddType text/html .html
<Directory />
    Require all denied
    AllowOverride None
</Directory>
<Directory "{htdocs}">
    Require all granted
</Directory>
SSLSessionCache "shmcb:{directory / "ssl_scache"}(512000)"
SSLEngine on
SSLCertificateFile "{self.cert}"
SSLCertificateKeyFile "{self.key}"
SSLProtocol all -SSLv3 -TLSv1 -TLSv1.1
SSLCipherSuite HIGH:!aNULL:!MD5
"""
        )
        return [str(binary), "-d", str(directory), "-f", str(conf), "-DFOREGROUND"]
