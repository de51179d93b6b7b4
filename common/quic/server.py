"""The QUIC server (the ingress node's side): one UDP socket, connections found by ID.

Before aioquic sees a datagram (threats.md T4): Version Negotiation packets are dropped (a
server never needs one, and answering them enables reflection loops), a datagram of an
unknown version gets a Version Negotiation reply only if it is at least 1200 bytes (so it is
no amplifier), and only a client INITIAL in a datagram of at least 1200 bytes creates state,
and only while fewer than MAX_HANDSHAKES connections are still unverified.

Each new connection is handled by a task: wait for the handshake and the client certificate
check (at most `handshake_timeout`), then run `on_connection(conn)`. The connection lives as
long as that coroutine: when it returns the connection is closed with NO_ERROR, when it
raises, with INTERNAL_ERROR (and the error is logged).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable

from aioquic._buffer import Buffer
from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE
from aioquic.quic.connection import NetworkAddress
from aioquic.quic.packet import (
    QuicPacketType,
    encode_quic_version_negotiation,
    pull_quic_header,
)

from common.pki import TlsFiles
from common.quic.connection import QuicTunnelConnection
from common.quic.endpoint import DatagramEndpoint, udp_socket
from common.quic.engine import QuicEngine
from common.quic.options import QuicOptions
from common.quic.tls import PeerVerifier, RevocationCheck, server_configuration
from common.tasks import TaskSet
from common.transport import ConnectionClosed
from common.wire.errors import ErrorCode

log = logging.getLogger(__name__)

MAX_HANDSHAKES = 512  # unverified connections at once: bounds the CPU an Initial flood costs
ConnectionHandler = Callable[[QuicTunnelConnection], Awaitable[None]]


class QuicServer(DatagramEndpoint):
    """A listening QUIC endpoint; see `serve()`."""

    def __init__(
        self,
        sock: socket.socket,
        tls: TlsFiles,
        on_connection: ConnectionHandler,
        options: QuicOptions,
        is_revoked: RevocationCheck | None,
    ) -> None:
        super().__init__(sock, gso=options.gso)
        self._options = options
        self._configuration = server_configuration(tls, options)
        self._cid_length = self._configuration.connection_id_length
        self._versions = list(self._configuration.supported_versions)
        self._verifier = PeerVerifier(tls, "agent", is_revoked=is_revoked)
        self._is_revoked = is_revoked
        self._on_connection = on_connection
        self._cids: dict[bytes, QuicTunnelConnection] = {}
        self._conn_cids: dict[QuicTunnelConnection, set[bytes]] = {}
        self._live: set[QuicTunnelConnection] = set()
        self._tasks = TaskSet()
        self._handlers: set[asyncio.Task[None]] = set()
        self._closing = False
        self._handshakes = 0  # connections not yet verified
        self.refused_handshakes = 0  # new connections dropped because of MAX_HANDSHAKES

    @property
    def port(self) -> int:
        assert self._transport is not None
        return int(self._transport.get_extra_info("sockname")[1])

    @property
    def connections(self) -> frozenset[QuicTunnelConnection]:
        """Verified connections whose handler is running."""
        return frozenset(self._live)

    def update_tls(self, tls: TlsFiles) -> None:
        """Present `tls` (a renewed certificate, a new CA bundle) to connections from now on.

        Connections already open keep the certificate they were made with.

        Raises:
            common.pki.PkiError: a file cannot be loaded (the previous ones stay in use).
        """
        configuration = server_configuration(tls, self._options)
        verifier = PeerVerifier(tls, "agent", is_revoked=self._is_revoked)
        self._configuration, self._verifier = configuration, verifier

    def close(self, code: int = ErrorCode.SHUTDOWN, reason: str = "server shutting down") -> None:
        """Stop accepting connections and close every open one with `code`."""
        self._closing = True
        for conn in list(self._conn_cids):
            conn.close(code, reason)

    async def wait_closed(self, grace: float = 5.0) -> None:
        """Wait (at most `grace` seconds) for the handlers to finish, then release the socket."""
        if self._handlers:
            _, late = await asyncio.wait(self._handlers, timeout=grace)
            if late:
                log.warning("cancelling %d QUIC connection handlers", len(late))
        await self._tasks.cancel_all()
        for conn in list(self._conn_cids):
            conn.abandon(ErrorCode.SHUTDOWN, "server shutting down")
        self._close_socket()
        await self._wait_socket_closed()

    # --- asyncio.DatagramProtocol ----------------------------------------------------------

    def handle_datagram(self, data: bytes, addr: NetworkAddress) -> None:
        if data and not data[0] & 0x80:  # short header: the hot path
            conn = self._cids.get(data[1 : 1 + self._cid_length])
            if conn is not None:
                conn.datagram_received(data, addr)
            return
        try:
            header = pull_quic_header(Buffer(data=data), host_cid_length=self._cid_length)
        except ValueError:
            return
        if header.packet_type == QuicPacketType.VERSION_NEGOTIATION:
            return
        conn = self._cids.get(header.destination_cid)
        if conn is not None:
            conn.datagram_received(data, addr)
        elif len(data) < SMALLEST_MAX_DATAGRAM_SIZE or self._closing:
            return
        elif self._handshakes >= MAX_HANDSHAKES:
            self.refused_handshakes += 1  # logged by whoever reads it: a flood would flood logs
        elif header.version not in self._versions:
            reply = self._version_negotiation(header.source_cid, header.destination_cid)
            self.send([(reply, addr)])
        elif header.packet_type == QuicPacketType.INITIAL:
            self._accept(header.destination_cid).datagram_received(data, addr)

    # --- for connections ---------------------------------------------------------------------

    def cid_changed(self, conn: QuicTunnelConnection, cid: bytes, *, issued: bool) -> None:
        cids = self._conn_cids.get(conn)
        if cids is None:
            return
        if issued:
            cids.add(cid)
            self._cids[cid] = conn
        else:
            cids.discard(cid)
            self._cids.pop(cid, None)

    def connection_ended(self, conn: QuicTunnelConnection) -> None:
        for cid in self._conn_cids.pop(conn, ()):
            self._cids.pop(cid, None)
        self._live.discard(conn)

    # --- internals ---------------------------------------------------------------------------

    def _version_negotiation(self, source_cid: bytes, destination_cid: bytes) -> bytes:
        return encode_quic_version_negotiation(
            source_cid=destination_cid,
            destination_cid=source_cid,
            supported_versions=self._versions,
        )

    def _accept(self, original_cid: bytes) -> QuicTunnelConnection:
        engine = QuicEngine(
            configuration=self._configuration,
            options=self._options,
            original_destination_connection_id=original_cid,
        )
        conn = QuicTunnelConnection(engine, self, self._options, self._verifier)
        self._handshakes += 1  # until _serve() sees it verified or gone
        self._conn_cids[conn] = {original_cid, engine.host_cid}
        self._cids[original_cid] = self._cids[engine.host_cid] = conn
        task = self._tasks.spawn(self._serve(conn), name=f"quic-conn-{engine.host_cid.hex()}")
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        return conn

    async def _serve(self, conn: QuicTunnelConnection) -> None:
        try:
            async with asyncio.timeout(self._options.handshake_timeout):
                await conn.wait_established()
        except TimeoutError:
            conn.abandon(0, "handshake timed out")
            return
        except ConnectionClosed:
            return  # refused or failed; the connection ends by itself
        finally:
            self._handshakes -= 1
        self._live.add(conn)
        try:
            await self._on_connection(conn)
        except* ConnectionClosed:
            pass  # the connection ended under the handler: normal
        except* Exception:
            log.exception("QUIC connection handler failed for %s", conn.peer)
            conn.close(ErrorCode.INTERNAL_ERROR, "internal error")
        finally:
            conn.close(ErrorCode.NO_ERROR, "")


async def serve(
    host: str,
    port: int,
    tls: TlsFiles,
    on_connection: ConnectionHandler,
    *,
    options: QuicOptions = QuicOptions(),  # noqa: B008 - frozen, shared on purpose
    is_revoked: RevocationCheck | None = None,
) -> QuicServer:
    """Listen for edge agents on UDP `host:port` (port 0 picks one: see `QuicServer.port`).

    Every client must present a certificate of role "agent" from `tls.ca`, not revoked per
    `is_revoked`; otherwise it is closed with UNAUTHORIZED (or REVOKED) and `on_connection`
    is never called.

    Raises:
        common.pki.PkiError: our certificate, key or CA file cannot be loaded.
        OSError: the socket cannot be bound.
    """
    loop = asyncio.get_running_loop()
    family, *_, addr = (await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM))[0]
    sock = udp_socket(family, options.socket_buffer, bind=addr)
    try:
        server = QuicServer(sock, tls, on_connection, options, is_revoked)
        await loop.create_datagram_endpoint(lambda: server, sock=sock)
    except BaseException:
        sock.close()
        raise
    return server
