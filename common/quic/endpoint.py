"""The UDP side of a QUIC endpoint: one `asyncio.DatagramProtocol` per socket.

- **Batched receive.** Every datagram is processed as it arrives, but transmitting is
  deferred with one `loop.call_soon` per loop iteration, so a connection that received many
  datagrams (or was written to many times) builds its packets once, coalesced. uvloop reads
  up to 32 datagrams per wake-up by itself; on asyncio's selector loop, which reads one,
  `datagram_received` drains the non-blocking socket (up to READ_BATCH) itself.
- **Coalesced transmit.** `datagrams_to_send()` once per connection per batch; each run of
  equal-size datagrams to one address leaves in one `sendmsg()` with UDP GSO (Linux), falling
  back to `transport.sendto` per datagram where the kernel refuses it or the socket is full.
- **Our own sockets**, with SO_RCVBUF/SO_SNDBUF set before bind/connect, handed to the loop.

bench/quic_raw.py measures what each of these buys.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
import sys
from collections.abc import Callable
from typing import cast

from aioquic.quic.connection import NetworkAddress

from common.quic.connection import QuicTunnelConnection

log = logging.getLogger(__name__)


def udp_socket(
    family: int, buffer_size: int, *, bind: NetworkAddress | None = None,
    connect: NetworkAddress | None = None,
) -> socket.socket:  # fmt: skip
    """A non-blocking UDP socket with `buffer_size` SO_RCVBUF/SO_SNDBUF, bound or connected."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, option, buffer_size)
            except OSError as exc:  # pragma: no cover - depends on the kernel
                log.warning("cannot set UDP socket buffer: %s", exc)
        if bind is not None:
            sock.bind(bind)
        if connect is not None:
            sock.connect(connect)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


READ_BATCH = 64  # datagrams read per wake-up on asyncio's selector loop
MAX_DATAGRAM = 65536
UDP_SEGMENT = 103  # linux/udp.h: one sendmsg() carries many datagrams of one size (GSO)
GSO_BYTES = 65000  # a GSO send is one UDP datagram for the kernel: at most ~64 KiB
GSO_FAILURES = (errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP)


class DatagramEndpoint(asyncio.DatagramProtocol):
    """Common to the client and server endpoints: socket setup and batched transmit."""

    def __init__(self, sock: socket.socket, *, gso: bool = True) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.DatagramTransport | None = None
        self._pending: list[QuicTunnelConnection] = []
        self._closed = self._loop.create_future()
        self._sock: socket.socket | None = sock  # None once the transport has closed it
        # asyncio's selector loop reads one datagram per wake-up; we drain the rest ourselves.
        selector = isinstance(self._loop, asyncio.selector_events.BaseSelectorEventLoop)
        self._socket = sock if selector else None
        self._gso = gso and sys.platform == "linux"
        self._connected = False  # a connected socket takes no address
        self._mtu_warned = False

    # --- asyncio.DatagramProtocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        # Both asyncio's and uvloop's datagram transports have it (typeshed does not say so).
        self._write_buffered: Callable[[], int] = getattr(
            transport, "get_write_buffer_size", lambda: 0
        )

    def datagram_received(self, data: bytes, addr: NetworkAddress) -> None:
        """Handle `data`, then whatever else the socket holds (up to READ_BATCH datagrams).

        asyncio's selector loop reads one datagram per wake-up, which would cost one transmit
        per datagram; draining the (non-blocking) socket here batches them as uvloop does.
        """
        self._handle(data, addr)
        sock = self._socket
        if sock is None:
            return
        for _ in range(READ_BATCH):
            try:
                data, addr = sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.error_received(exc)
                return
            self._handle(data, addr)

    def _handle(self, data: bytes, addr: NetworkAddress) -> None:
        try:
            self.handle_datagram(data, addr)
        except Exception:  # a bug of ours; never let it reach the event loop
            log.exception("dropped a datagram from %s", addr)

    def handle_datagram(self, data: bytes, addr: NetworkAddress) -> None:
        raise NotImplementedError

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable…) can be forged; QUIC's timers decide instead. A path
        # MTU below max_datagram_size is worth one warning: the connection will not get through.
        if isinstance(exc, OSError) and exc.errno == errno.EMSGSIZE and not self._mtu_warned:
            self._mtu_warned = True
            log.warning("UDP datagram too large for the path (%s): lower max_datagram_size", exc)
        log.debug("UDP error ignored: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002
        self._sock = self._socket = None
        if not self._closed.done():
            self._closed.set_result(None)

    # --- for connections ---------------------------------------------------------------------

    def schedule(self, conn: QuicTunnelConnection) -> None:
        conn.scheduled = True
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(conn)

    def send(self, datagrams: list[tuple[bytes, NetworkAddress]]) -> None:
        """Send what one connection built, in GSO batches where the kernel allows.

        aioquic fills datagrams to the maximum size while it has data, so a burst is a run
        of equal sizes (and maybe a shorter last one): one sendmsg() with UDP_SEGMENT sends it
        all, saving a system call per datagram.
        """
        transport = self._transport
        if transport is None:
            return
        if not self._gso or len(datagrams) == 1 or self._write_buffered():
            for data, addr in datagrams:
                transport.sendto(data, None if self._connected else addr)
            return
        start, count = 0, len(datagrams)
        while start < count:
            stop = _run_end(datagrams, start)
            self._send_run(datagrams[start:stop])
            start = stop

    def _send_run(self, run: list[tuple[bytes, NetworkAddress]]) -> None:
        transport, sock = self._transport, self._sock
        addr = None if self._connected else run[0][1]
        if len(run) > 1 and sock is not None and self._gso:
            segment = struct.pack("=H", len(run[0][0]))
            buffers = [data for data, _ in run]
            control = [(socket.SOL_UDP, UDP_SEGMENT, segment)]
            try:
                if addr is None:
                    sock.sendmsg(buffers, control)
                else:
                    sock.sendmsg(buffers, control, 0, addr)
                return
            except (BlockingIOError, InterruptedError):
                pass  # the transport queues them until the socket is writable
            except OSError as exc:
                if exc.errno not in GSO_FAILURES:
                    self.error_received(exc)
                    return
                log.info("UDP GSO unavailable (%s); sending datagrams one by one", exc)
                self._gso = False
        assert transport is not None
        for data, _ in run:
            transport.sendto(data, addr)

    def cid_changed(self, conn: QuicTunnelConnection, cid: bytes, *, issued: bool) -> None:
        """Connection IDs matter to a server only."""

    def connection_ended(self, conn: QuicTunnelConnection) -> None:
        raise NotImplementedError

    # --- internals ---------------------------------------------------------------------------

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for conn in pending:
            conn.transmit()  # never raises: a connection contains its own failures

    def _close_socket(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def _wait_socket_closed(self) -> None:
        await asyncio.shield(self._closed)


def _run_end(datagrams: list[tuple[bytes, NetworkAddress]], start: int) -> int:
    """End of the GSO run from `start`: same address, same size (the last may be shorter)."""
    data, addr = datagrams[start]
    size = len(data)
    limit = min(len(datagrams), start + max(1, GSO_BYTES // size))
    stop = start + 1
    while stop < limit:
        next_data, next_addr = datagrams[stop]
        if next_addr != addr or len(next_data) > size:
            break
        stop += 1
        if len(next_data) < size:
            break
    return stop
