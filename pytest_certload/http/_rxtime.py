"""Kernel receive timestamps: ask Linux for them, read them, put them on our clock.

With ``SO_TIMESTAMPNS`` set on a socket, Linux stamps every packet it receives for that
socket (a software timestamp taken in the network stack, before the data waits in the
socket's receive queue) and hands the stamp to ``recvmsg`` as ancillary data:
``SCM_TIMESTAMPNS``, a ``struct timespec`` on ``CLOCK_REALTIME``. For TCP a ``recvmsg``
that consumes several packets reports the newest one (the kernel keeps the last stamp it
copied from, and coalesced segments keep the later stamp). Python's :mod:`socket` does
not export the constant on every build; on the architectures that use the generic
``asm-generic/socket.h`` numbers it is 35 (``SO_TIMESTAMPING``, which we do not need, is
37).

The engine's clock is :func:`time.perf_counter_ns` (``CLOCK_MONOTONIC`` on Linux). NTP
slews both clocks at the same rate, so their offset only moves when someone steps the
wall clock; an offset sampled at the ``recvmsg`` that returned a stamp converts it. On the
hot path (:func:`stamp_now`) that is one read of each clock, so the converted stamp is
late by the time between the two reads: at most 0.16 µs at the median and 0.18 µs at p99
on the 2-core reference machine (timed as a bracketing read pair); rarely (under 1 read in
1,000 there) a preemption right between the reads adds its pause. :func:`sample_offset`
brackets the wall-clock read with two engine-clock reads and takes their midpoint.
A step of the wall clock between the packet and the read shows as a negative span, which
:func:`span_ns` refuses.
"""

from __future__ import annotations

import atexit
import contextlib
import platform
import socket
import struct
import sys
from collections.abc import Iterable
from time import monotonic, perf_counter_ns, sleep, time_ns

__all__ = [
    "ANCBUF_SIZE",
    "SO_TIMESTAMPNS",
    "enable",
    "keep_stamping_on",
    "parse_ancillary",
    "sample_offset",
    "span_ns",
    "stamp_now",
    "unavailable_reason",
]

#: architectures whose socket option numbers are asm-generic's (SO_TIMESTAMPNS = 35)
_GENERIC_ARCHES = frozenset(
    {"x86_64", "amd64", "i386", "i686", "aarch64", "arm64", "armv7l", "armv6l", "riscv64"}
)


def _option() -> int | None:
    value = getattr(socket, "SO_TIMESTAMPNS", None)
    if isinstance(value, int):
        return value
    if sys.platform == "linux" and platform.machine().lower() in _GENERIC_ARCHES:
        return 35
    return None


#: the socket option (and the ancillary message type it produces), None where unknown
SO_TIMESTAMPNS: int | None = _option()
_SOL_SOCKET = socket.SOL_SOCKET
_TIMESPEC = struct.Struct("@ll")  # struct timespec {time_t tv_sec; long tv_nsec;}
#: room for one SCM_TIMESTAMPNS message (a spare timespec for safety)
ANCBUF_SIZE = socket.CMSG_SPACE(2 * _TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
#: the socket that keeps Linux stamping packets while this process lives
_keeper: socket.socket | None = None
_SWITCH_WAIT_S = 0.2
#: a span this far below 0 is no conversion error: the wall clock was stepped meanwhile
_STEP_TOLERANCE_NS = 100_000


def unavailable_reason() -> str:
    """Why this platform cannot give receive timestamps, or "" if it can."""
    if sys.platform != "linux":
        return f"kernel receive timestamps are read on Linux only (this is {sys.platform})"
    if SO_TIMESTAMPNS is None:
        return (
            "Python's socket module has no SO_TIMESTAMPNS and its value on "
            f"{platform.machine() or 'this architecture'} is not known here"
        )
    if not hasattr(socket.socket, "recvmsg_into") or not ANCBUF_SIZE:
        return "this Python's socket has no recvmsg_into"
    return ""


def keep_stamping_on() -> None:
    """Make sure Linux stamps packets from now on, for as long as this process lives.

    Stamping is switched on for the whole host by the first socket that asks, from a work
    queue a moment later (a deferred static-key switch), and off when the last such socket
    closes: a connection opened while no other one asked would get its first responses
    unstamped (measured here: 66-180 of 200 fresh connections did). So the first call
    opens one UDP socket with ``SO_TIMESTAMPNS`` that stays open until exit, and waits
    (at most ``_SWITCH_WAIT_S``, typically well under a millisecond) until a byte sent
    over loopback TCP comes back stamped. Best effort: a response that still comes
    without a stamp is counted as unmeasured, never estimated. Cheap after the first call.
    """
    global _keeper
    if _keeper is not None or unavailable_reason():
        return
    assert SO_TIMESTAMPNS is not None
    try:
        keeper = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    except OSError:
        return
    try:
        keeper.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        keeper.close()
        return
    _keeper = keeper
    atexit.register(keeper.close)
    # TCP, not UDP: a UDP read stamps an unstamped datagram itself, so it cannot tell
    with contextlib.suppress(OSError), socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=_SWITCH_WAIT_S)
        server, _ = listener.accept()
        with client, server:
            client.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            deadline = monotonic() + _SWITCH_WAIT_S
            while True:
                server.sendall(b"\0")
                _, ancdata, _, _ = client.recvmsg(1, ANCBUF_SIZE)
                if parse_ancillary(ancdata) or monotonic() > deadline:
                    return
                sleep(0.0005)


def enable(sock: socket.socket) -> str:
    """Turn on receive timestamps for ``sock``; "" on success, else why not."""
    reason = unavailable_reason()
    if reason:
        return reason
    keep_stamping_on()
    assert SO_TIMESTAMPNS is not None
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if not sock.getsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS):
            return "the kernel did not keep SO_TIMESTAMPNS on the socket"
    except OSError as exc:
        return f"the kernel refused SO_TIMESTAMPNS: {exc.strerror or exc}"
    return ""


def parse_ancillary(ancdata: Iterable[tuple[int, int, bytes]]) -> int:
    """The ``SCM_TIMESTAMPNS`` stamp in ``recvmsg``'s ancillary data as integer
    nanoseconds of ``CLOCK_REALTIME``; 0 when there is none (or it is malformed)."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            sec: int
            nsec: int
            sec, nsec = _TIMESPEC.unpack_from(data)
            if sec <= 0 or not 0 <= nsec < 1_000_000_000:
                return 0
            return sec * 1_000_000_000 + nsec
    return 0


def sample_offset() -> tuple[int, int]:
    """``(now, offset)``: the engine's clock now (``perf_counter_ns``) and
    ``CLOCK_REALTIME - perf_counter_ns`` read between two reads of it (at their
    midpoint), so ``realtime_ns - offset`` is the same instant on the engine's clock."""
    p1 = perf_counter_ns()
    real = time_ns()
    p2 = perf_counter_ns()
    return p2, real - ((p1 + p2) >> 1)


def stamp_now(ancdata: list[tuple[int, int, bytes]]) -> tuple[int, int]:
    """``(now, stamp)`` for a read that just returned ``ancdata``: the engine's clock
    now, and the read's kernel stamp on the engine's clock (0 when there is none).

    The per-read hot path, so cheaper than :func:`sample_offset`: the wall clock, then
    the engine's clock, one read each. The stamp comes out late by the time between the
    two reads (under 0.2 µs here; more only if the thread is preempted right there), so a
    delay measured from it is never overstated.
    """
    if ancdata:
        level, kind, data = ancdata[0]
        if kind == SO_TIMESTAMPNS and level == _SOL_SOCKET and len(data) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(data)
            real = time_ns()
            now = perf_counter_ns()
            if sec > 0 and 0 <= nsec < 1_000_000_000:
                return now, sec * 1_000_000_000 + nsec - real + now
            return now, 0
        if len(ancdata) > 1:  # not ours first: look through them all
            real = parse_ancillary(ancdata)
            if real:
                now, offset = sample_offset()
                return now, real - offset
    return perf_counter_ns(), 0


def span_ns(start_ns: int, end_ns: int) -> int | None:
    """``end_ns - start_ns`` (both on the engine's clock, one of them a converted kernel
    stamp), or None when it is negative beyond the conversion's error: the wall clock
    was stepped in between, and the figure would be made up. Less than
    ``_STEP_TOLERANCE_NS`` below 0 is the conversion's error around a true 0 and counts
    as 0."""
    span = end_ns - start_ns
    if span < 0:
        return 0 if span > -_STEP_TOLERANCE_NS else None
    return span
