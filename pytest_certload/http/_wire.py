"""The fast backend's transport: a non-blocking socket the connection reads itself.

Shared by its HTTP/1.1 (``_fast``) and HTTP/2 (``_h2``) connections: open a TCP socket,
do the TLS handshake over ``ssl.MemoryBIO`` (``SSLContext.wrap_bio``) and learn what ALPN
chose, register the socket with the event loop (``add_reader``), read it with
``recvmsg_into`` into a buffer the connection owns (no per-read allocation) together with
the kernel's receive timestamp of the bytes (``_rxtime``: Linux ``SO_TIMESTAMPNS``), and
write to it in order, queuing what the kernel does not take until it is writable.

A subclass gets the decrypted bytes in :meth:`SocketConnection._received` (with the
read's time and stamp in ``t_read`` and ``stamp``) and the end of the connection in
:meth:`SocketConnection._lost`. :func:`split_delay` turns one response's marks into the
server's time and the generator's delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from time import perf_counter_ns
from typing import Any, cast

from . import _rxtime

__all__ = [
    "BUFFER_SIZE",
    "SocketConnection",
    "discard",
    "handshake",
    "open_socket",
    "split_delay",
]

BUFFER_SIZE = 32 * 1024  # per connection; larger bodies are handled in slices
_HANDSHAKE_READ = 64 * 1024
NO_STAMP = "the kernel returned no receive timestamp with the response's bytes"
CLOCK_STEPPED = "the wall clock was stepped while the response was in flight"


class SocketConnection:
    """One connected socket, optionally TLS, read by the event loop's reader callback.

    The socket stays registered for reading while the connection is open, idle or not,
    so a server that closes an idle connection is noticed before reuse. ``t_read`` is
    when the last read returned (engine clock, ``perf_counter_ns``) and ``stamp`` the
    kernel's receive stamp of its bytes on the same clock (0 when the kernel gave none).
    """

    __slots__ = (
        "_bufs",
        "buf",
        "closed",
        "fd",
        "incoming",
        "loop",
        "no_stamps",
        "outgoing",
        "sock",
        "sslobj",
        "stamp",
        "t_read",
        "unsent",
        "view",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        tls: tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO] | None,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self.sslobj: ssl.SSLObject | None = None
        self.incoming: ssl.MemoryBIO | None = None
        self.outgoing: ssl.MemoryBIO | None = None
        if tls is not None:
            self.sslobj, self.incoming, self.outgoing = tls
        #: why this connection's reads carry no kernel timestamp ("" if they do)
        self.no_stamps = _rxtime.enable(sock)
        self.buf = bytearray(BUFFER_SIZE)
        self.view = memoryview(self.buf)
        self._bufs = [self.view]
        self.closed = False
        #: bytes the socket did not take yet (a partial send)
        self.unsent = b""
        self.t_read = 0
        self.stamp = 0

    def start_reading(self) -> None:
        """Register the socket with the loop (NotImplementedError where it cannot)."""
        self.loop.add_reader(self.fd, self._on_readable)

    # -- to be provided by the protocol --------------------------------------------------
    def _received(self, data: memoryview) -> None:
        """Decrypted bytes from the peer; ``t_read``/``stamp`` are their read's."""
        raise NotImplementedError

    def _lost(self, exc: Exception | None) -> None:
        """The connection ended (EOF: ``None``; a reset or TLS error: the exception).
        Implementations close the connection."""
        raise NotImplementedError

    # -- reading -------------------------------------------------------------------------
    def _on_readable(self) -> None:
        try:
            if self.no_stamps:
                nbytes = self.sock.recv_into(self.view)
                self.t_read = perf_counter_ns()
                self.stamp = 0
            else:
                nbytes, ancdata, _, _ = self.sock.recvmsg_into(self._bufs, _rxtime.ANCBUF_SIZE)
                self.t_read, self.stamp = _rxtime.stamp_now(ancdata)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not nbytes:
            self._lost(None)
        elif self.sslobj is None:
            self._received(self.view[:nbytes])
        else:
            self._decrypt(nbytes)

    def _decrypt(self, nbytes: int) -> None:
        sslobj, incoming = self.sslobj, self.incoming
        assert sslobj is not None
        assert incoming is not None
        incoming.write(self.view[:nbytes])
        while not self.closed:
            try:
                # with a buffer, read() returns a count (typeshed says bytes)
                n = cast(int, sslobj.read(BUFFER_SIZE, self.buf))
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:  # the server's close_notify
                self._lost(None)
                return
            except ssl.SSLError as exc:
                self._lost(exc)
                return
            if not n:
                self._lost(None)
                return
            self._received(self.view[:n])
            if not incoming.pending and not sslobj.pending():
                break  # all read: spare the exception another read() would raise
        if not self.closed:
            self._flush_tls()

    # -- writing -------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        """Encrypt (with TLS) and hand ``data`` to the kernel now, in order."""
        if self.sslobj is not None:
            assert self.outgoing is not None
            self.sslobj.write(data)
            data = self.outgoing.read()
        self._write(data)

    def _write(self, data: bytes) -> None:
        """Send raw bytes in order: behind anything still unsent, else at once, queuing
        what the kernel does not take until the socket is writable."""
        if self.unsent:
            self.unsent += data
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._lost(exc)
            return
        if sent < len(data):
            self.unsent = data[sent:]
            self.loop.add_writer(self.fd, self._on_writable)

    def _on_writable(self) -> None:
        try:
            sent = self.sock.send(self.unsent)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        self.unsent = self.unsent[sent:]
        if not self.unsent:
            self.loop.remove_writer(self.fd)

    def _flush_tls(self) -> None:
        """Send what the TLS layer wrote on its own (alerts, key-update answers)."""
        assert self.outgoing is not None
        if self.outgoing.pending:
            self._write(self.outgoing.read())

    def close(self, *, abort: bool = False) -> None:
        """Stop reading and close the socket (a TLS connection sends close_notify
        first unless ``abort``)."""
        if self.closed:
            return
        self.closed = True
        self.loop.remove_reader(self.fd)
        if self.unsent:
            self.loop.remove_writer(self.fd)
            if not abort:  # best effort: what the kernel takes now, or no close_notify
                try:
                    abort = self.sock.send(self.unsent) < len(self.unsent)
                except OSError:
                    abort = True
            self.unsent = b""
        if not abort and self.sslobj is not None and self.outgoing is not None:
            # unwrap() writes our close_notify, then wants theirs (SSLWantReadError):
            # an HTTP client need not wait for it
            with contextlib.suppress(ssl.SSLError, ValueError):
                self.sslobj.unwrap()
            with contextlib.suppress(OSError):
                self.sock.send(self.outgoing.read())
        self.sock.close()


def split_delay(
    no_stamps: str, t_write: int, stamp_first: int, stamp_done: int, t_resume: int
) -> tuple[int | None, int | None, str]:
    """``(server_time, generator_delay, why_not)`` of one response.

    ``server_time``: from just before the request's first ``send`` (``t_write``) to the
    kernel's receive stamp of the read that brought the first response bytes. That read
    may have taken several segments and the kernel reports the newest, so for a response
    split over segments this is an upper bound of the server's time to first byte; it
    never contains a wait of ours.

    ``generator_delay``: from the kernel's receive stamp of the read that completed the
    response to the moment the awaiting task resumed with it (``t_resume``). We stop the
    clock at the task's resumption, not at the ``recvmsg``, because both waits are ours
    and both are in ``http_req_duration``: bytes wait in the kernel until the loop polls,
    then the finished response waits in the loop's ready queue until every callback and
    task step ahead of it has run. When many VUs' responses arrive together, one poll
    reads them all within microseconds and the ready queue holds most of the delay: a
    measurement at the read would miss it (100 VUs each burning 3 ms of CPU after their
    request, 20 ms server: p50 221 ms to the resumption, 57 ms to the read, against
    ``http_req_duration`` p50 246 ms and a server time of 22 ms; ``tests/unit/test_http.py``
    has the two-response case). The stamp being the newest segment's makes this a lower
    bound. Over HTTP/2 the same holds per stream: the read that brought the stream's
    first frame, and the read that brought its last.
    """
    if no_stamps:
        return None, None, no_stamps
    if not stamp_first or not stamp_done:
        return None, None, NO_STAMP
    server = _rxtime.span_ns(t_write, stamp_first)
    delay = _rxtime.span_ns(stamp_done, t_resume)
    if server is None or delay is None:
        return None, None, CLOCK_STEPPED
    return server, delay, ""


async def _resolve(loop: asyncio.AbstractEventLoop, host: str, port: int) -> list[tuple[Any, ...]]:
    """Addresses for ``host``: a numeric one at once, a name through the loop's resolver."""
    kwargs: dict[str, Any] = {"type": socket.SOCK_STREAM, "proto": socket.IPPROTO_TCP}
    try:
        return socket.getaddrinfo(host, port, flags=socket.AI_NUMERICHOST, **kwargs)
    except socket.gaierror:
        return list(await loop.getaddrinfo(host, port, **kwargs))


async def open_socket(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    """A connected non-blocking TCP socket (each address in turn; the first error)."""
    first: OSError | None = None
    for family, kind, proto, _, address in await _resolve(loop, host, port):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            first = first or exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise first or OSError(f"no address found for {host}")


async def handshake(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, ctx: ssl.SSLContext, host: str
) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
    """The client side of a TLS handshake over ``sock`` through memory BIOs (the
    protocol ALPN chose is ``sslobj.selected_alpn_protocol()``)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    sslobj = ctx.wrap_bio(incoming, outgoing, server_side=False, server_hostname=host)
    while True:
        try:
            sslobj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError:
            with contextlib.suppress(OSError):  # the alert OpenSSL wrote, best effort
                sock.send(outgoing.read())
            raise
        if outgoing.pending:
            await loop.sock_sendall(sock, outgoing.read())
        data = await loop.sock_recv(sock, _HANDSHAKE_READ)
        if not data:
            raise ConnectionResetError("the server closed the connection during the handshake")
        incoming.write(data)
    if outgoing.pending:
        await loop.sock_sendall(sock, outgoing.read())
    return sslobj, incoming, outgoing


def discard(sock: socket.socket | None) -> None:
    if sock is not None:
        sock.close()
