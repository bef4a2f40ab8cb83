"""Kernel receive timestamps: parsing the ancillary data, converting to the engine's clock,
and what Linux really gives on loopback (the facts the fast backend's split rests on)."""

from __future__ import annotations

import socket
import struct
import sys
import time

import pytest

from pytest_certload.http import _rxtime

S = 1_000_000_000
MS = 1_000_000
linux_only = pytest.mark.skipif(
    bool(_rxtime.unavailable_reason()), reason=_rxtime.unavailable_reason() or "n/a"
)


def _scm(sec: int, nsec: int) -> tuple[int, int, bytes]:
    assert _rxtime.SO_TIMESTAMPNS is not None
    return (socket.SOL_SOCKET, _rxtime.SO_TIMESTAMPNS, struct.pack("@ll", sec, nsec))


@linux_only
def test_parse_ancillary_reads_a_timespec_and_ignores_everything_else() -> None:
    stamp = _scm(1_796_052_636, 942_101_815)
    assert _rxtime.parse_ancillary([stamp]) == 1_796_052_636 * S + 942_101_815
    other = (socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("@i", 3))
    assert _rxtime.parse_ancillary([other, stamp]) == 1_796_052_636 * S + 942_101_815
    assert _rxtime.parse_ancillary([]) == 0
    assert _rxtime.parse_ancillary([other]) == 0
    assert _rxtime.parse_ancillary([(socket.SOL_SOCKET, stamp[1], b"\x01" * 4)]) == 0  # short
    assert _rxtime.parse_ancillary([_scm(1, 1_000_000_000)]) == 0  # tv_nsec out of range
    assert _rxtime.parse_ancillary([_scm(0, 5)]) == 0  # no wall-clock time


@linux_only
def test_a_stamp_is_converted_to_the_engine_clock_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """stamp_now reads the wall clock, then the engine's: the stamp moves by their
    difference. With both clocks frozen the arithmetic is exact."""
    monkeypatch.setattr(_rxtime, "time_ns", lambda: 1_796_052_637 * S)  # wall clock "now"
    monkeypatch.setattr(_rxtime, "perf_counter_ns", lambda: 5_000 * MS)  # engine clock "now"
    # the kernel stamped the bytes 3.25 ms before "now" on the wall clock
    now, stamp = _rxtime.stamp_now([_scm(1_796_052_636, S - 3_250_000)])
    assert (now, stamp) == (5_000 * MS, 5_000 * MS - 3_250_000)
    assert _rxtime.stamp_now([]) == (5_000 * MS, 0)
    assert _rxtime.stamp_now([_scm(0, 0)]) == (5_000 * MS, 0)
    # the bracketed offset: wall clock between two engine-clock reads, at their midpoint
    reads = iter([100, 300])
    monkeypatch.setattr(_rxtime, "perf_counter_ns", lambda: next(reads))
    assert _rxtime.sample_offset() == (300, 1_796_052_637 * S - 200)


def test_a_span_below_zero_is_the_conversion_error_or_a_stepped_clock() -> None:
    assert _rxtime.span_ns(10 * MS, 30 * MS) == 20 * MS
    assert _rxtime.span_ns(10 * MS, 10 * MS - 400) == 0  # within the conversion's error
    assert _rxtime.span_ns(10 * MS, 9 * MS) is None  # 1 ms early: the wall clock stepped


@linux_only
def test_the_conversion_is_accurate_to_a_fraction_of_a_microsecond() -> None:
    """The offset between the two clocks, sampled many times in a row, moves by far less
    than a microsecond at the median: what a stamp's conversion can be off by."""
    offsets = sorted(_rxtime.sample_offset()[1] for _ in range(2_000))
    median = offsets[len(offsets) // 2]
    assert offsets[len(offsets) // 10] > median - 1_000
    assert offsets[len(offsets) * 9 // 10] < median + 1_000


def test_platforms_without_timestamps_say_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert _rxtime.unavailable_reason() == (
        "kernel receive timestamps are read on Linux only (this is darwin)"
    )
    with socket.socket() as sock:
        assert _rxtime.enable(sock).startswith("kernel receive timestamps are read on Linux")


@linux_only
def test_linux_stamps_loopback_tcp_when_the_bytes_arrive_not_when_they_are_read() -> None:
    """The fact the whole split rests on: on loopback the kernel stamps each read's bytes
    at their arrival; bytes left unread for 50 ms keep their arrival stamp."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        with client, server:
            assert _rxtime.enable(client) == ""
            buf = bytearray(1024)
            for _ in range(3):
                t_send = time.perf_counter_ns()
                server.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
                time.sleep(0.05)  # the bytes wait in the kernel
                nbytes, ancdata, _, _ = client.recvmsg_into([buf], _rxtime.ANCBUF_SIZE)
                now, stamp = _rxtime.stamp_now(ancdata)
                assert nbytes == 19
                assert stamp, ancdata
                assert t_send - 100_000 <= stamp <= t_send + 10 * MS  # at the arrival...
                assert now - stamp >= 50 * MS  # ...not at the read


@linux_only
def test_fresh_connections_get_their_first_bytes_stamped() -> None:
    """Linux switches stamping on for the host a moment after the first socket asks and
    off when the last one closes; keep_stamping_on holds it on, so a connection opened
    after all others closed still gets its first response stamped."""
    _rxtime.keep_stamping_on()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        for _ in range(50):
            client = socket.create_connection(listener.getsockname())
            server, _ = listener.accept()
            with client, server:
                assert _rxtime.enable(client) == ""
                server.sendall(b"x")
                time.sleep(0.0002)
                _, ancdata, _, _ = client.recvmsg(1, _rxtime.ANCBUF_SIZE)
                assert _rxtime.parse_ancillary(ancdata)
            time.sleep(0.002)  # time for a deferred switch-off, were nothing holding it
