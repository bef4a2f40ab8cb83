"""Hosts with their own network stacks on one machine: Linux network namespaces (root only).

A *lab* is a server namespace holding a bridge, and worker namespaces joined to it by
veth pairs; one more veth pair joins the bridge to the namespace this process runs in
(the controller), so every party has its own addresses, routes and sockets::

    this process  10.213.N.1 --veth-- [srv: br0 10.213.N.2] --veth p-w1-- [w1: 10.213.N.11]
                                                            --veth p-w2-- [w2: 10.213.N.12]

Everything a lab makes is named after the process that made it (``clmh<pid>x<seq>``):
the namespaces ``clmh<pid>x<seq>-<role>``, the controller's end of its uplink
``clmh<pid>x<seq>`` and its directory ``$TMPDIR/clmh<pid>x<seq>-*`` (configuration, keys,
logs). :meth:`Lab.close` kills every process inside its namespaces, deletes the link, the
namespaces and the directory, and says what it could not remove; :func:`network_lab`
first removes what a crashed run of a process that no longer exists left behind.

Hosts for execnet gateways: :meth:`Lab.start_sshd` (Debian's openssh-server, a throwaway
host key and client key) and :meth:`Lab.start_socketserver` (execnet's
``script/socketserver.py``, run as a module). Only addresses of the lab are used. Imports no pytest.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

__all__ = [
    "PREFIX",
    "Lab",
    "LabError",
    "LabProcess",
    "network_lab",
    "remove_leftovers",
    "unavailable",
]

#: the first characters of every name a lab gives (namespaces, links, directories)
PREFIX = "clmh"
SSHD = "/usr/sbin/sshd"
#: the execnet socket server's port in its worker namespace
SOCKET_PORT = 8888
#: the server namespace's address is .2, the controller's .1, workers' from .11
_SERVER_HOST, _CONTROLLER_HOST, _FIRST_WORKER_HOST = 2, 1, 11
_NAME_RE = re.compile(rf"^{PREFIX}(\d+)x(\d+)(?:-|$)")
_seq = itertools.count(1)
#: an abstract unix socket (gone with its holder): one lab at a time picks a subnet
_LOCK_NAME = b"\0certload-netlab-subnet"
#: the private /16 the labs' /24s come from
_NET = "10.213"


class LabError(RuntimeError):
    """A lab could not be built or removed; the message says which command and why."""


def _run(*argv: str, check: bool = True, timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if check and proc.returncode != 0:
        raise LabError(
            f"`{' '.join(argv)}` exited {proc.returncode}: {proc.stderr.strip() or proc.stdout}"
        )
    return proc


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@cache
def unavailable() -> str | None:
    """Why a lab cannot be built here (``None``: it can): checked by doing it once."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces need Linux; this is {sys.platform}"
    if os.geteuid() != 0:
        return (
            f"building network namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); "
            f"this process runs as uid {os.geteuid()}"
        )
    for tool, package in (("ip", "iproute2"), ("ssh", "openssh-client")):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed; apt-get install {package}"
    for tool in (SSHD, "ssh-keygen"):
        if shutil.which(tool) is None:
            return (
                f"{tool} is not installed, so no ssh= gateway can be started; apt-get "
                "install openssh-server (scripts/setup.sh does)"
            )
    probe = f"{PREFIX}{os.getpid()}x0"
    made = _run("ip", "netns", "add", f"{probe}-probe", check=False)
    if made.returncode != 0:
        return f"`ip netns add` is not permitted here: {made.stderr.strip()}"
    try:
        link = _run(
            "ip", "link", "add", probe, "type", "veth", "peer", "name", "eth0",
            "netns", f"{probe}-probe", check=False,
        )  # fmt: skip
        if link.returncode != 0:
            return f"`ip link add ... type veth` is not permitted here: {link.stderr.strip()}"
        _run("ip", "link", "del", probe, check=False)
    finally:
        _run("ip", "netns", "del", f"{probe}-probe", check=False)
    return None


# -- leftovers of crashed runs --------------------------------------------------------


def _owner(name: str) -> int | None:
    match = _NAME_RE.match(name)
    return int(match.group(1)) if match else None


def _namespaces() -> list[str]:
    out = _run("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _links() -> list[str]:
    out = _run("ip", "-o", "link", "show", check=False).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


def _kill_namespace(ns: str) -> list[int]:
    """SIGKILL every process in ``ns``; their pids."""
    pids = [int(p) for p in _run("ip", "netns", "pids", ns, check=False).stdout.split()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def remove_leftovers() -> list[str]:
    """Remove the namespaces, links and directories of labs whose process is gone (a
    crashed or killed run); what was removed. Labs of live processes are left alone."""
    removed = []
    for ns in _namespaces():
        owner = _owner(ns)
        if owner is not None and not _alive(owner):
            _kill_namespace(ns)
            _run("ip", "netns", "del", ns, check=False)
            removed.append(f"namespace {ns}")
    for link in _links():
        owner = _owner(link)
        if owner is not None and not _alive(owner):
            _run("ip", "link", "del", link, check=False)
            removed.append(f"link {link}")
    for path in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        owner = _owner(path.name)
        if owner is not None and not _alive(owner) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(f"directory {path}")
    return removed


# -- processes inside a namespace -----------------------------------------------------


@dataclass
class LabProcess:
    """A process started inside a lab namespace, its output drained into a log file."""

    name: str
    role: str
    popen: subprocess.Popen[bytes]
    log: Path
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _drain(proc: LabProcess, marker: bytes) -> None:
    """Copy the process's output to its log; set ``ready`` at the first ``marker``."""
    assert proc.popen.stdout is not None
    with open(proc.log, "ab") as log:
        for line in proc.popen.stdout:
            log.write(line)
            log.flush()
            if marker in line:
                proc.ready.set()


# -- the lab --------------------------------------------------------------------------


@dataclass
class Lab:
    """One lab: its namespaces by role (``srv`` and the workers), addresses, processes."""

    name: str
    subnet: ipaddress.IPv4Network
    workers: tuple[str, ...]
    directory: Path
    processes: list[LabProcess] = field(default_factory=list)
    _built: list[str] = field(default_factory=list)

    # -- names and addresses --
    @property
    def roles(self) -> tuple[str, ...]:
        return ("srv", *self.workers)

    def namespace(self, role: str) -> str:
        if role not in self.roles:
            raise LabError(f"{role!r} is not a role of lab {self.name} ({', '.join(self.roles)})")
        return f"{self.name}-{role}"

    @property
    def uplink(self) -> str:
        """The controller's end of the link to the bridge (in this process's namespace)."""
        return self.name

    def address(self, role: str) -> str:
        """``controller``, ``srv`` or a worker role's IPv4 address."""
        if role == "controller":
            host = _CONTROLLER_HOST
        elif role == "srv":
            host = _SERVER_HOST
        elif role in self.workers:
            host = _FIRST_WORKER_HOST + self.workers.index(role)
        else:
            raise LabError(f"{role!r} is not a role of lab {self.name}")
        return str(self.subnet.network_address + host)

    def port_of(self, role: str) -> str:
        """The bridge port (in ``srv``) that a worker's link plugs into."""
        return f"p-{role}"

    # -- building --
    @classmethod
    def create(cls, workers: Sequence[str]) -> Lab:
        name = f"{PREFIX}{os.getpid()}x{next(_seq)}"
        directory = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        lab = cls(name, ipaddress.IPv4Network(f"{_NET}.0.0/24"), tuple(workers), directory)
        try:
            lab._build()
        except BaseException:
            lab.close()
            raise
        return lab

    def _ns(self, role: str, *argv: str) -> None:
        _run("ip", "-n", self.namespace(role), *argv)

    def _build(self) -> None:
        for role in self.roles:
            _run("ip", "netns", "add", self.namespace(role))
            self._built.append(self.namespace(role))
            self._ns(role, "link", "set", "lo", "up")
        self._ns("srv", "link", "add", "br0", "type", "bridge")
        self._ns("srv", "link", "set", "br0", "up")
        for role in self.workers:
            port = self.port_of(role)
            self._ns("srv", "link", "add", port, "type", "veth", "peer", "name", "eth0",
                     "netns", self.namespace(role))  # fmt: skip
            self._ns("srv", "link", "set", port, "master", "br0", "up")
        with _subnet_lock():
            self.subnet = _free_subnet()
            _run("ip", "link", "add", self.uplink, "type", "veth", "peer", "name", "uplink",
                 "netns", self.namespace("srv"))  # fmt: skip
            self._built.append(self.uplink)
            _run("ip", "addr", "add", f"{self.address('controller')}/24", "dev", self.uplink)
        _run("ip", "link", "set", self.uplink, "up")
        self._ns("srv", "link", "set", "uplink", "master", "br0", "up")
        self._ns("srv", "addr", "add", f"{self.address('srv')}/24", "dev", "br0")
        for role in self.workers:
            self._ns(role, "addr", "add", f"{self.address(role)}/24", "dev", "eth0")
            self._ns(role, "link", "set", "eth0", "up")

    # -- processes --
    def argv(self, role: str, *argv: str) -> list[str]:
        """``argv`` run inside ``role``'s namespace (``ip netns exec`` execs it: same pid)."""
        return ["ip", "netns", "exec", self.namespace(role), *argv]

    def spawn(
        self,
        role: str,
        name: str,
        argv: Sequence[str],
        *,
        ready: bytes,
        timeout_s: float = 20.0,
        env: dict[str, str] | None = None,
    ) -> LabProcess:
        """Start ``argv`` in ``role``'s namespace; return once its output shows ``ready``."""
        popen = subprocess.Popen(
            self.argv(role, *argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,
            env=env,
        )
        proc = LabProcess(name, role, popen, self.directory / f"{name}.log")
        self.processes.append(proc)
        threading.Thread(target=_drain, args=(proc, ready), daemon=True).start()
        if not proc.ready.wait(timeout_s):
            raise LabError(
                f"{name} in namespace {self.namespace(role)} did not print {ready.decode()!r} "
                f"within {timeout_s:g} s (exit code {popen.poll()}); command: "
                f"{' '.join(popen.args)}\nits output:\n{proc.tail()}"  # type: ignore[arg-type]
            )
        return proc

    def start_socketserver(
        self, role: str, python: str = sys.executable, *, as_script: bool = False
    ) -> str:
        """execnet's socket server in ``role``'s namespace, started as a module
        (``python -m execnet.script.socketserver``); the ``socket=`` gateway spec.

        ``as_script`` starts it as a normal script (``python .../socketserver.py``, the
        first mode its docstring names), which puts execnet's script directory first on
        ``sys.path``, where its ``socketserver.py`` shadows the standard library's module
        of that name.
        """
        address = f"{self.address(role)}:{SOCKET_PORT}"
        if as_script:
            import execnet

            program = [str(Path(execnet.__file__).parent / "script" / "socketserver.py")]
        else:
            program = ["-m", "execnet.script.socketserver"]
        self.spawn(
            role, f"socketserver-{role}", [python, "-u", *program, address],
            ready=b"Entering Accept loop",
        )  # fmt: skip
        return f"socket={address}//id={role}"

    def start_sshd(self, role: str, python: str = sys.executable) -> str:
        """An sshd in ``role``'s namespace (throwaway host and client keys, root login by
        key only); the ``ssh=`` gateway spec, whose ``ssh_config=`` file names the key."""
        keys = self.directory / "ssh"
        keys.mkdir(mode=0o700, exist_ok=True)
        host_key, client_key = keys / f"host-{role}", keys / "client"
        for key in (host_key, client_key):
            if not key.exists():
                _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.name,
                     "-f", str(key))  # fmt: skip
        sshd_config = keys / f"sshd_config-{role}"
        sshd_config.write_text(
            f"ListenAddress {self.address(role)}\n"
            "Port 22\n"
            f"HostKey {host_key}\n"
            f"AuthorizedKeysFile {client_key}.pub\n"
            "PermitRootLogin prohibit-password\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "PidFile none\n"
            "PrintMotd no\n"
            # a session whose client is unreachable ends after 2 s, and its worker with it
            "ClientAliveInterval 1\n"
            "ClientAliveCountMax 2\n"
            "LogLevel INFO\n"
        )
        alias = f"{self.name}-{role}"
        ssh_config = keys / f"ssh_config-{role}"
        ssh_config.write_text(
            f"Host {alias}\n"
            f"  HostName {self.address(role)}\n"
            "  User root\n"
            f"  IdentityFile {client_key}\n"
            "  IdentitiesOnly yes\n"
            "  BatchMode yes\n"
            "  StrictHostKeyChecking no\n"
            "  UserKnownHostsFile /dev/null\n"
            "  LogLevel ERROR\n"
            "  ConnectTimeout 10\n"
            # a dead link ends the gateway (and names the worker lost) within 3 s
            "  ServerAliveInterval 1\n"
            "  ServerAliveCountMax 2\n"
        )
        # sshd's privilege-separation directory (the package's tmpfiles.d makes it at boot)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.spawn(
            role, f"sshd-{role}", [SSHD, "-D", "-e", "-f", str(sshd_config)],
            ready=b"Server listening on",
        )  # fmt: skip
        return f"ssh={alias}//ssh_config={ssh_config}//python={python}//id={role}"

    def process(self, name: str) -> LabProcess:
        for proc in self.processes:
            if proc.name == name:
                return proc
        raise LabError(f"lab {self.name} started no process {name!r}")

    def pids(self, role: str) -> list[int]:
        """Every process inside ``role``'s namespace now."""
        out = _run("ip", "netns", "pids", self.namespace(role), check=False).stdout
        return [int(p) for p in out.split()]

    def role_of(self, pid: int) -> str | None:
        """The role whose namespace ``pid`` runs in; ``None`` for another namespace."""
        try:
            inode = os.stat(f"/proc/{pid}/ns/net").st_ino
        except OSError:
            return None
        for role in self.roles:
            with contextlib.suppress(OSError):
                if os.stat(f"/run/netns/{self.namespace(role)}").st_ino == inode:
                    return role
        return None

    # -- the network --
    def cut(self, role: str) -> None:
        """Take a worker's link down at the bridge: it reaches neither the server nor us."""
        self._ns("srv", "link", "set", self.port_of(role), "down")

    def mend(self, role: str) -> None:
        self._ns("srv", "link", "set", self.port_of(role), "up")

    # -- teardown --
    def close(self) -> None:
        """Kill every process in the namespaces, delete the link, the namespaces and the
        directory. Raises :class:`LabError` naming whatever is still there."""
        for ns in self._built:
            if ns.startswith(f"{self.name}-"):
                _kill_namespace(ns)
        for proc in self.processes:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=10)
            if proc.popen.stdout is not None:
                proc.popen.stdout.close()
        problems = []
        if self.uplink in self._built:
            _run("ip", "link", "del", self.uplink, check=False)
        for ns in self._built:
            if not ns.startswith(f"{self.name}-"):
                continue
            left = [pid for pid in _kill_namespace(ns) if _alive(pid)]
            deadline = time.monotonic() + 10
            while left and time.monotonic() < deadline:
                time.sleep(0.05)  # SIGKILLed: waiting for the kernel to finish them
                left = [pid for pid in left if _alive(pid)]
            if left:
                problems.append(f"processes {left} in {ns} survived SIGKILL")
            deleted = _run("ip", "netns", "del", ns, check=False)
            if deleted.returncode != 0:
                problems.append(f"`ip netns del {ns}`: {deleted.stderr.strip()}")
        self._built.clear()
        shutil.rmtree(self.directory, ignore_errors=True)
        problems += [f"namespace {ns} is still listed" for ns in self.leftovers()]
        if problems:
            raise LabError(f"lab {self.name} was not removed cleanly: " + "; ".join(problems))

    def leftovers(self) -> list[str]:
        """What of this lab exists (empty after :meth:`close`)."""
        found = [f"namespace {ns}" for ns in _namespaces() if ns.startswith(f"{self.name}-")]
        found += [f"link {link}" for link in _links() if link == self.uplink]
        if self.directory.exists():
            found.append(f"directory {self.directory}")
        return found


@contextlib.contextmanager
def _subnet_lock(timeout_s: float = 30.0) -> Iterator[None]:
    """Held while a lab picks and claims a subnet, so two labs never pick the same one."""
    lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                lock.bind(_LOCK_NAME)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise LabError(
                        f"another lab held the subnet lock for {timeout_s:g} s"
                    ) from None
                time.sleep(0.05)  # another process is choosing: it takes milliseconds
        yield
    finally:
        lock.close()


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 of 10.213.0.0/16 that no address or route of this namespace touches."""
    seen = _run("ip", "-4", "-o", "addr", "show").stdout + _run("ip", "-4", "route").stdout
    used = {int(n) for n in re.findall(rf"\b{re.escape(_NET)}\.(\d+)\.", seen)}
    start = os.getpid() % 250 + 1
    for n in [*range(start, 255), *range(1, start)]:
        if n not in used:
            return ipaddress.IPv4Network(f"{_NET}.{n}.0/24")
    raise LabError(f"every /24 of {_NET}.0.0/16 is in use here")


@contextlib.contextmanager
def network_lab(workers: Sequence[str] = ("w1", "w2")) -> Iterator[Lab]:
    """A :class:`Lab` with these worker roles, removed on exit (also when the body raises);
    leftovers of crashed runs are removed first."""
    remove_leftovers()
    lab = Lab.create(workers)
    try:
        yield lab
    finally:
        lab.close()
