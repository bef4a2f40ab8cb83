"""What the stack's processes and the generator cost, read with psutil.

A :class:`ProcessTree` is one service: its process and every descendant (postgres'
backends, nginx's and apache's workers, the double's server workers). Its CPU time counts
the children the root has already reaped too (``children_user``/``children_system``), so
a backend or an apache worker that exited between two samples is not lost. RSS, threads
and open file descriptors are sums over the live processes of the tree (shared pages
count once per process: for postgres that overstates, for certctl it is exact).

The generator is this process and its live descendants that belong to no service: the
``--certload-tx`` popen workers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import psutil

__all__ = ["ProcessSample", "ProcessTree", "children_map", "descendants", "trees"]


@dataclass(frozen=True)
class ProcessSample:
    """One read of a process tree: cumulative CPU time, and the live tree's size."""

    cpu_ns: int
    rss_bytes: int
    threads: int
    fds: int
    processes: int


Children = Mapping[int, list[psutil.Process]]
"""Every live process by its parent's pid: one scan of the process table per sample."""


def children_map(roots: Iterable[int]) -> dict[int, list[psutil.Process]]:
    """Parent pid -> live children, for this process's descendants and those of every
    root in ``roots`` that is not one of them (a container's process): one walk of the
    process table for all of this process's descendants (a few hundred microseconds on a
    quiet machine; ``psutil.process_iter`` costs several times that), one more per
    foreign root."""
    out: dict[int, list[psutil.Process]] = {}
    own = psutil.Process()

    def add(procs: Iterable[psutil.Process]) -> set[int]:
        seen = set()
        for proc in procs:
            try:
                ppid = proc.ppid()
            except psutil.Error:
                continue
            out.setdefault(ppid, []).append(proc)
            seen.add(proc.pid)
        return seen

    mine = add(own.children(recursive=True)) | {own.pid}
    for pid in roots:
        if pid not in mine:
            try:
                add(psutil.Process(pid).children(recursive=True))
            except psutil.Error:
                continue
    return out


def descendants(pid: int, children: Children) -> list[psutil.Process]:
    """The live descendants of ``pid`` in ``children``."""
    out: list[psutil.Process] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            out.append(child)
            todo.append(child.pid)
    return out


class _CPUTimes(Protocol):
    @property
    def user(self) -> float: ...
    @property
    def system(self) -> float: ...
    @property
    def children_user(self) -> float: ...
    @property
    def children_system(self) -> float: ...


def _cpu_ns(times: _CPUTimes, *, reaped: bool) -> int:
    total = times.user + times.system
    if reaped:
        total += times.children_user + times.children_system
    return int(total * 1e9)


class ProcessTree:
    """A service's process and its descendants, sampled on demand.

    Raises :class:`psutil.Error` from the constructor when ``pid`` is not there (the
    sampler says so in a note); afterwards a vanished process only stops counting.
    """

    def __init__(self, name: str, pid: int) -> None:
        self.name = name
        self.pid = pid
        self.root = psutil.Process(pid)
        #: why a figure could not be read (psutil.AccessDenied on another user's process)
        self.denied = ""

    def members(self, children: Children) -> list[psutil.Process]:
        """The root and its live descendants in ``children``."""
        return [self.root, *descendants(self.pid, children)]

    def sample(
        self, members: Iterable[psutil.Process], *, exclude: Iterable[int] = ()
    ) -> ProcessSample | None:
        """The figures of ``members`` (the tree now) less ``exclude`` (pids that are not
        this tree's, e.g. the services the generator's own process started); None once
        the root has gone."""
        skip = set(exclude)
        cpu = rss = threads = fds = count = 0
        for proc in members:
            if proc.pid in skip:
                continue
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    mem = proc.memory_info()
                    n_threads = proc.num_threads()
                    try:
                        n_fds = proc.num_fds()
                    except psutil.AccessDenied as exc:
                        self.denied = f"open file descriptors of pid {proc.pid}: {exc}"
                        n_fds = 0
            except psutil.AccessDenied as exc:
                self.denied = f"pid {proc.pid}: {exc}"
                continue
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                if proc.pid == self.pid:
                    return None
                continue
            cpu += _cpu_ns(times, reaped=proc.pid == self.pid and not skip)
            rss += mem.rss
            threads += n_threads
            fds += n_fds
            count += 1
        return ProcessSample(cpu, rss, threads, fds, count)


def trees(pids: Mapping[str, int]) -> tuple[dict[str, ProcessTree], list[str]]:
    """A tree per service that is there, and a note per service that is not."""
    out: dict[str, ProcessTree] = {}
    notes: list[str] = []
    for name, pid in pids.items():
        try:
            out[name] = ProcessTree(name, pid)
        except psutil.Error as exc:
            notes.append(f"{name} (pid {pid}) not sampled: {exc}")
    return out, notes
