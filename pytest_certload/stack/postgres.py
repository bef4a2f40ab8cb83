"""A throw-away PostgreSQL server run as a child process (no Docker).

``start()`` runs ``initdb`` into a fresh temporary directory, starts the ``postgres``
server in the foreground on ``127.0.0.1:<free port>`` (tuned for tests: no fsync, no
synchronous commit, no full-page writes), and creates the login role and database
``certctl`` with a random password (:mod:`secrets`, new for every server) unless one is
given. ``stop()`` asks for a fast shutdown, kills after a deadline and removes the
directory (after copying the log out, when :meth:`LocalPostgres.keep_log` asked for it).

PostgreSQL refuses to run as root. When this process is root, ``initdb`` and the server
run as the ``postgres`` OS user (``os_user=``), which must own the data directory; the
temporary directory is created and handed over accordingly.

The server is run directly rather than through ``pg_ctl start``: ``pg_ctl`` detaches the
server from us, and a child we spawned ourselves can be reaped by the process registry
when a run is interrupted. ``pg_ctl stop -m fast`` is SIGINT to the postmaster, which is
what :meth:`LocalPostgres.stop` sends.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import anyio
import psycopg
from psycopg import sql

from ..errors import ConfigError, ServiceError
from ..redaction import redact_dsn
from ..units import NS_PER_S
from .helpers import blocking_ancestor, free_port, tail_file
from .probes import wait_until
from .processes import LocalProcess, keep_log, make_temp_dir, release_log, remove_temp_dir

__all__ = ["LocalPostgres", "find_postgres_bin_dir"]

_START_TIMEOUT_NS = 30 * NS_PER_S
_IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_NEEDED = ("initdb", "postgres")

_INSTALL_HINTS = (
    "install the PostgreSQL server binaries: Debian/Ubuntu `apt-get install postgresql-15` "
    "(any version >= 13 works; binaries land in /usr/lib/postgresql/<version>/bin), "
    "Fedora/RHEL `dnf install postgresql-server`, Alpine `apk add postgresql15`, "
    "macOS `brew install postgresql@15`",
    "point at an existing installation with LocalPostgres(bin_dir=...) (the directory that "
    "holds initdb and postgres; `pg_config --bindir` prints it)",
    "use the containers provider (needs a Docker-compatible engine) or an external "
    "database via the external provider",
)


def _candidate_dirs() -> list[Path]:
    dirs: list[Path] = []
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry:
            dirs.append(Path(entry))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=5, check=True
            ).stdout.strip()
            if out:
                dirs.append(Path(out))

    def version_key(p: Path) -> tuple[int, str]:
        name = p.parent.name
        return (int(name) if name.isdigit() else -1, name)

    for root in (Path("/usr/lib/postgresql"), Path("/usr/local/lib/postgresql")):
        if root.is_dir():
            dirs.extend(sorted(root.glob("*/bin"), key=version_key, reverse=True))
    dirs += [
        Path("/usr/local/pgsql/bin"),
        Path("/opt/homebrew/opt/postgresql@15/bin"),
        Path("/usr/local/opt/postgresql@15/bin"),
    ]
    seen: set[Path] = set()
    unique = []
    for d in dirs:
        if d not in seen:
            seen.add(d)
            unique.append(d)
    return unique


def _has_binaries(directory: Path) -> bool:
    return all(os.access(directory / b, os.X_OK) for b in _NEEDED)


def find_postgres_bin_dir(bin_dir: Path | None = None) -> Path:
    """The directory holding ``initdb`` and ``postgres``.

    With ``bin_dir`` only that directory is checked. Otherwise PATH, ``pg_config
    --bindir`` and the usual distribution locations are searched, newest version first.
    Raises ServiceError listing every place checked and every way to fix it.
    """
    checked = [bin_dir] if bin_dir is not None else _candidate_dirs()
    for directory in checked:
        if _has_binaries(directory):
            return directory
    where = "\n".join(f"  - {d}" for d in checked) or "  (nothing: PATH is empty)"
    fixes = "\n".join(f"  * {hint}" for hint in _INSTALL_HINTS)
    origin = "the bin_dir given" if bin_dir is not None else "PATH and the usual locations"
    raise ServiceError(
        f"PostgreSQL server binaries ({', '.join(_NEEDED)}) not found in {origin}. "
        f"Checked:\n{where}\nTo fix, do one of:\n{fixes}"
    )


class LocalPostgres:
    """A PostgreSQL server in a temporary directory; a :class:`~.protocols.Service`."""

    name = "postgres"

    def __init__(
        self,
        *,
        base_dir: Path | None = None,
        port: int | None = None,
        bin_dir: Path | None = None,
        user: str = "certctl",
        password: str | None = None,
        os_user: str | None = None,
        settings: Sequence[tuple[str, str]] = (),
    ) -> None:
        for what, value in (("user", user),):
            if not _IDENT_RE.match(value):
                raise ConfigError(
                    f"{value!r} is not a valid PostgreSQL {what} for LocalPostgres; use "
                    "lower-case letters, digits and '_', starting with a letter or '_'."
                )
        self._base_dir = base_dir
        self._requested_port = port
        self._bin_dir_arg = bin_dir
        self.user = user
        #: the login role's password: random per server unless given
        self.password = password if password is not None else secrets.token_urlsafe(24)
        self._os_user_arg = os_user
        self._settings = list(settings)
        #: seconds spent in each start-up phase: initdb, start (to accepting), bootstrap
        self.phase_seconds: dict[str, float] = {}
        self.port: int = port or 0
        self.host = "127.0.0.1"
        self.directory: Path | None = None
        self._socket_dir: Path | None = None
        self._own_socket_dir = False
        self._proc: LocalProcess | None = None
        self._log_path: Path | None = None
        self._keep_log_in: Path | None = None

    def __repr__(self) -> str:
        return f"<LocalPostgres {self.user}@{self.host}:{self.port}>"

    # -------------------------------------------------------------- addresses

    def dsn(self, dbname: str = "certctl") -> str:
        """``postgresql://user:password@127.0.0.1:PORT/dbname``."""
        self._require_started("dsn()")
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{quote(dbname, safe='')}"
        )

    def url(self) -> str:
        """Where the server listens, for messages: the DSN with its password as ``***``
        (:meth:`dsn` is the one to connect with)."""
        return redact_dsn(self.dsn())

    def _admin_conninfo(self, dbname: str = "postgres") -> str:
        assert self._socket_dir is not None
        return psycopg.conninfo.make_conninfo(
            host=str(self._socket_dir), port=self.port, user="postgres", dbname=dbname
        )

    def _require_started(self, what: str) -> None:
        if self._proc is None or not self.port:
            raise ServiceError(f"LocalPostgres.{what} needs a started server; call start() first.")

    # -------------------------------------------------------------- lifecycle

    def _os_user(self) -> str | None:
        if self._os_user_arg is not None:
            return self._os_user_arg
        return "postgres" if os.geteuid() == 0 else None

    def _prepare_dirs(self, os_user: str | None) -> tuple[Path, Path]:
        directory = make_temp_dir("certload-pg-", self._base_dir)
        self.directory = directory
        data = directory / "data"
        sockets = directory / "run"
        # unix socket paths are limited to 107 bytes
        if len(str(sockets)) > 80:
            sockets = make_temp_dir("certload-pgs-")
            self._own_socket_dir = True
        data.mkdir(mode=0o700)
        sockets.mkdir(mode=0o700, exist_ok=True)
        self._socket_dir = sockets
        if os_user is not None:
            try:
                entry = pwd.getpwnam(os_user)
            except KeyError as exc:
                raise ServiceError(
                    f"PostgreSQL refuses to run as root and the OS user {os_user!r} to run it "
                    "as does not exist. Create it (`useradd --system postgres`; the "
                    "postgresql packages do), pass LocalPostgres(os_user=...) naming "
                    "another unprivileged user, or run the tests as a non-root user."
                ) from exc
            for path in (directory, data, sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            for path in (data, sockets):
                blocked = blocking_ancestor(path, entry.pw_uid, entry.pw_gid)
                if blocked is not None:
                    raise ServiceError(
                        f"the OS user {os_user!r} that runs PostgreSQL cannot reach {path}: "
                        f"{blocked} is not searchable by it (mode "
                        f"{blocked.stat().st_mode & 0o777:o}). To fix, do one of:\n"
                        f"  * make it searchable: chmod o+x {blocked}\n"
                        "  * leave base_dir unset (a fresh directory in the system temp dir)\n"
                        "  * run the tests as a non-root user (PostgreSQL then runs as you)"
                    )
        return data, sockets

    async def start(self) -> None:
        """initdb, start the server, wait until it accepts connections, create role + db."""
        if self._proc is not None:
            raise ServiceError("LocalPostgres.start() was called twice.")
        bin_dir = find_postgres_bin_dir(self._bin_dir_arg)
        os_user = self._os_user()
        try:
            data, sockets = self._prepare_dirs(os_user)
            assert self.directory is not None
            self._log_path = self.directory / "postgres.log"
            if self._keep_log_in is not None:
                keep_log(self._log_path, self._keep_log_in / f"{self.name}.log")
            mark = time.perf_counter()
            await self._initdb(bin_dir, data, os_user)
            self.phase_seconds["initdb"] = time.perf_counter() - mark
            self.port = self._requested_port or free_port(self.host)
            argv = [
                str(bin_dir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-c",
                f"listen_addresses={self.host}",
                "-c",
                f"unix_socket_directories={sockets}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
                "-c",
                "log_min_messages=warning",
                "-c",
                "logging_collector=off",
                # statement statistics for the telemetry's top statements; utility
                # statements (CREATE ROLE ... PASSWORD) are not tracked, so no literal of
                # theirs is ever kept
                "-c",
                "shared_preload_libraries=pg_stat_statements",
                "-c",
                "pg_stat_statements.track_utility=off",
            ]
            for key, value in self._settings:
                argv += ["-c", f"{key}={value}"]
            self._proc = LocalProcess(
                "postgres",
                argv,
                log_path=self._log_path,
                user=os_user,
                cwd=self.directory,
                env=_clean_env(),
                stop_signal=signal.SIGINT,  # fast shutdown
                signal_group=False,
            )
            mark = time.perf_counter()
            self._proc.start()
            await self._wait_accepting(_START_TIMEOUT_NS)
            self.phase_seconds["start"] = time.perf_counter() - mark
            mark = time.perf_counter()
            await self._bootstrap()
            self.phase_seconds["bootstrap"] = time.perf_counter() - mark
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.stop()
            raise

    async def _initdb(self, bin_dir: Path, data: Path, os_user: str | None) -> None:
        assert self._log_path is not None
        argv = [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "--no-instructions",
        ]

        def run() -> subprocess.CompletedProcess[bytes]:
            return subprocess.run(
                argv,
                capture_output=True,
                user=os_user,
                cwd=data.parent,
                env=_clean_env(),
                timeout=120,
                check=False,
            )

        result = await anyio.to_thread.run_sync(run)
        self._log_path.write_bytes(result.stdout + result.stderr)
        if result.returncode != 0:
            exc = ServiceError(
                f"initdb failed with status {result.returncode} in {data} "
                f"(as OS user {os_user or 'current'}). If the directory is not reachable by "
                "that user, pass a base_dir it can traverse (default: the system temp dir)."
            )
            exc.add_note(f"initdb output:\n{tail_file(self._log_path, 40)}")
            raise exc

    async def _try_connect(self, conninfo: str) -> str | None:
        try:
            conn = await psycopg.AsyncConnection.connect(conninfo, connect_timeout=2)
        except psycopg.OperationalError as exc:
            return str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        await conn.close()
        return None

    async def _wait_accepting(self, timeout_ns: int, conninfo: str | None = None) -> None:
        proc = self._proc
        assert proc is not None
        conninfo = conninfo or self._admin_conninfo()
        if conninfo.startswith("postgresql://"):  # never show the password
            where = f"{self.host}:{self.port} (as {self.user}, over TCP)"
        else:
            where = f"{self._socket_dir} port {self.port} (as postgres, over the socket)"

        async def attempt() -> str | None:
            return await self._try_connect(conninfo)

        try:
            await wait_until(
                attempt, what="a login", where=where, timeout_ns=timeout_ns, target=proc
            )
        except ServiceError as exc:
            if proc.exit_status() is not None:
                exc.add_note(
                    f"data directory {self.directory}; a port taken by another process "
                    "shows up in the log as 'could not bind'."
                )
            raise

    async def _bootstrap(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self._admin_conninfo(), autocommit=True
        ) as conn:
            await conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.Identifier(self.user), sql.Literal(self.password)
                )
            )
            await conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier("certctl"), sql.Identifier(self.user)
                )
            )
            # the login role reads every session's activity and statement (telemetry)
            await conn.execute(
                sql.SQL("GRANT pg_read_all_stats TO {}").format(sql.Identifier(self.user))
            )
        async with await psycopg.AsyncConnection.connect(
            self._admin_conninfo("certctl"), autocommit=True
        ) as conn:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while the server runs."""
        return self._proc.pid if self._proc is not None else None

    async def wait_ready(self, timeout_ns: int) -> None:
        """Wait until the ``certctl`` database accepts a password login over TCP."""
        self._require_started("wait_ready()")
        await self._wait_accepting(timeout_ns, conninfo=self.dsn())

    async def stop(self) -> None:
        """Fast shutdown (SIGINT), SIGKILL after 10 s, then remove the directory."""
        proc, self._proc = self._proc, None
        if proc is not None:
            await proc.stop(timeout_ns=10 * NS_PER_S)
        log, self._log_path = self._log_path, None
        await anyio.to_thread.run_sync(release_log, log)
        for path, own in ((self.directory, True), (self._socket_dir, self._own_socket_dir)):
            if path is not None and own:
                await remove_temp_dir(path)
        self.directory = None
        self._socket_dir = None

    def log_tail(self, lines: int = 40) -> str:
        return tail_file(self._log_path, lines) if self._log_path is not None else ""

    @property
    def log_path(self) -> Path | None:
        """The server's log file (initdb's output first) while its directory exists."""
        return self._log_path

    def exit_status(self) -> int | None:
        """The server's exit status once it has died (negative: killed by that signal);
        None while it runs or before it was started."""
        return self._proc.exit_status() if self._proc is not None else None

    def keep_log(self, directory: Path) -> None:
        """Copy the log to ``directory/postgres.log`` when the server stops, before its
        directory is removed (an interrupted run does it at exit)."""
        self._keep_log_in = directory
        if self._log_path is not None:
            keep_log(self._log_path, directory / f"{self.name}.log")

    # -------------------------------------------------------------- databases

    def _check_dbname(self, name: str) -> None:
        if not _IDENT_RE.match(name):
            raise ConfigError(
                f"{name!r} is not a valid database name for LocalPostgres; use lower-case "
                "letters, digits and '_', starting with a letter or '_' (at most 63)."
            )

    async def create_database(self, name: str) -> str:
        """Create database ``name`` owned by the login role; returns its DSN."""
        self._require_started("create_database()")
        self._check_dbname(name)
        async with await psycopg.AsyncConnection.connect(
            self._admin_conninfo(), autocommit=True
        ) as conn:
            await conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(self.user)
                )
            )
        return self.dsn(name)

    async def drop_database(self, name: str) -> None:
        """Drop database ``name`` (if it exists), disconnecting its sessions."""
        self._require_started("drop_database()")
        self._check_dbname(name)
        async with await psycopg.AsyncConnection.connect(
            self._admin_conninfo(), autocommit=True
        ) as conn:
            await conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    async def __aenter__(self) -> LocalPostgres:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def _clean_env() -> dict[str, str]:
    """The environment for initdb/postgres: ours minus PG* variables that would redirect them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LC_ALL", "C")
    return env
