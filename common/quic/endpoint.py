"""The UDP side of a QUIC endpoint: one `asyncio.DatagramProtocol` per socket.

Batched I/O: each datagram is processed as it arrives, but transmitting is deferred with one
`loop.call_soon` per loop iteration, so every connection that received several datagrams (or
was written to several times) in one iteration builds its packets once, coalesced, and sends
them back to back. On uvloop, which reads many datagrams per wake-up, this turns most ACKs
and small frames into a fraction of the packets.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import cast

from aioquic.quic.connection import NetworkAddress

from common.quic.connection import QuicTunnelConnection

log = logging.getLogger(__name__)


class DatagramEndpoint(asyncio.DatagramProtocol):
    """Common to the client and server endpoints: socket setup and batched transmit."""

    def __init__(self, socket_buffer: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._socket_buffer = socket_buffer
        self._transport: asyncio.DatagramTransport | None = None
        self._pending: list[QuicTunnelConnection] = []
        self._closed = self._loop.create_future()

    # --- asyncio.DatagramProtocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, option, self._socket_buffer)
                except OSError as exc:  # pragma: no cover - depends on the kernel
                    log.warning("cannot set UDP socket buffer: %s", exc)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors (port unreachable…) can be forged; QUIC's timers decide instead.
        log.debug("UDP error ignored: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002
        if not self._closed.done():
            self._closed.set_result(None)

    # --- for connections ---------------------------------------------------------------------

    def schedule(self, conn: QuicTunnelConnection) -> None:
        conn.scheduled = True
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(conn)

    def send(self, data: bytes, addr: NetworkAddress) -> None:
        if self._transport is not None:
            self._transport.sendto(data, addr)

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
