"""The QUIC client (the edge agent's side): `connect()` dials one ingress node."""

from __future__ import annotations

import asyncio
import socket

from aioquic.quic.connection import NetworkAddress

from common.pki import TlsFiles
from common.quic.connection import QuicTunnelConnection
from common.quic.endpoint import DatagramEndpoint, udp_socket
from common.quic.engine import QuicEngine
from common.quic.options import QuicOptions
from common.quic.tls import PeerVerifier, client_configuration
from common.transport import ConnectionClosed


class ClientEndpoint(DatagramEndpoint):
    """A connected UDP socket that carries exactly one connection."""

    def __init__(self, sock: socket.socket, *, gso: bool = True) -> None:
        super().__init__(sock, gso=gso)
        self._connected = True
        self.conn: QuicTunnelConnection | None = None

    def handle_datagram(self, data: bytes, addr: NetworkAddress) -> None:
        if self.conn is not None:
            self.conn.datagram_received(data, addr)

    def connection_ended(self, conn: QuicTunnelConnection) -> None:  # noqa: ARG002
        self._close_socket()


async def connect(
    host: str,
    port: int,
    tls: TlsFiles,
    *,
    server_name: str,
    options: QuicOptions = QuicOptions(),  # noqa: B008 - frozen, shared on purpose
) -> QuicTunnelConnection:
    """Dial an ingress node, complete mutual TLS, and verify it is the ingress `server_name`.

    Returns once the server has confirmed the handshake (so a server that refused our
    certificate makes this raise, not the first stream operation).

    Raises:
        ConnectionClosed: the handshake failed, was refused, or took longer than
            `options.handshake_timeout`; `code`/`reason` say why.
        common.pki.PkiError: our certificate, key or CA file cannot be loaded.
        OSError: the address cannot be resolved or the socket not created.
    """
    loop = asyncio.get_running_loop()
    verifier = PeerVerifier(tls, "ingress", server_name=server_name)
    engine = QuicEngine(configuration=client_configuration(tls, options), options=options)
    family, *_, addr = (await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM))[0]
    sock = udp_socket(family, options.socket_buffer, connect=addr)
    try:
        _, endpoint = await loop.create_datagram_endpoint(
            lambda: ClientEndpoint(sock, gso=options.gso), sock=sock
        )
    except BaseException:
        sock.close()
        raise
    conn = QuicTunnelConnection(engine, endpoint, options, verifier)
    endpoint.conn = conn
    try:
        engine.connect(addr, now=loop.time())
        conn.transmit()
        async with asyncio.timeout(options.handshake_timeout):
            await conn.wait_established()
    except TimeoutError:
        conn.abandon(0, "handshake timed out")
        raise ConnectionClosed(
            0, f"handshake timed out after {options.handshake_timeout}s", by_peer=False
        ) from None
    except BaseException:
        conn.abandon(0, "connect failed")
        raise
    return conn
