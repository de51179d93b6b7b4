"""One connection attempt from the agent to one ingress node (docs/protocol.md §3-4).

`Tunnel.run()` dials the node (QUIC, mutual TLS), opens the control stream, sends HELLO and
waits for HELLO_ACK; then the established connection is a `Session` (edge/tunnel_session.py:
heartbeat, control reader, accept loop and watch in one `TaskGroup`).

How it ends is a typed `TunnelError` (edge/tunnel_errors.py) for the supervisor to classify;
`run()` returns normally only after our own `drain()` closed the connection. The connection
is always closed (and its socket released) when `run()` ends, however it ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from common import pki, quic
from common.pki import PkiError, TlsFiles
from common.transport import ConnectionClosed, TunnelConnection
from common.wire import ControlMessage, ErrorCode, Hello, HelloAck
from edge.control_channel import ControlChannel
from edge.settings import IngressNode
from edge.tunnel_errors import (
    CredentialsError,
    HandshakeFailed,
    HeartbeatTimeout,
    ProtocolViolation,
    TunnelError,
    WrongNode,
    classify_connect,
)
from edge.tunnel_session import Session, StreamHandler, TunnelOptions, TunnelState

__all__ = ["Connector", "StreamHandler", "Tunnel", "TunnelOptions", "TunnelState"]

log = logging.getLogger("kokoa.edge.tunnel")

Connector = Callable[[IngressNode, TlsFiles], Awaitable[TunnelConnection]]
RELEASE_WAIT = 2.0  # seconds a closed connection may take to end (QUIC's closing period)


async def quic_connector(node: IngressNode, tls: TlsFiles) -> TunnelConnection:
    """Dial `node` over QUIC with mutual TLS, checking its certificate names `verify_name`
    (its identity, `node.identity`, is checked by `Tunnel.run` for every connector)."""
    return await quic.connect(node.host, node.port, tls, server_name=node.verify_name)


class Tunnel:
    """One connection attempt to `node` and, if it succeeds, its life; see the module doc."""

    def __init__(
        self,
        node: IngressNode,
        options: TunnelOptions,
        *,
        handler: StreamHandler,
        connect: Connector = quic_connector,
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        self.node = node
        self._options = options
        self._handler = handler
        self._connect_to = connect
        self._on_connected = on_connected
        self._services = options.services  # what we want to claim
        self._claimed = options.services  # what the node was last told
        self._conn: TunnelConnection | None = None
        self._session: Session | None = None
        self._ended = False

    # --- status --------------------------------------------------------------------------

    @property
    def state(self) -> TunnelState:
        if self._ended:
            return TunnelState.CLOSED
        return TunnelState.CONNECTING if self._session is None else self._session.state

    @property
    def accepted(self) -> tuple[str, ...]:
        return () if self._session is None else self._session.accepted

    @property
    def rejected(self) -> dict[str, str]:
        return {} if self._session is None else self._session.rejected

    @property
    def node_id(self) -> str | None:
        """The node's name from its HELLO_ACK."""
        return None if self._session is None else self._session.node_id

    @property
    def rtt(self) -> float | None:
        if self._session is not None:
            return self._session.rtt
        return None if self._conn is None else self._conn.rtt

    @property
    def in_flight(self) -> int:
        return 0 if self._session is None else self._session.in_flight

    @property
    def connected_since(self) -> datetime | None:
        """When the node accepted our HELLO (None before)."""
        return None if self._session is None else self._session.connected_at

    # --- life ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, say HELLO, and serve the node's streams until the connection ends.

        Returns only after `drain()` closed the connection.

        Raises:
            TunnelError: a subclass saying why the attempt failed or the connection ended.
        """
        conn = self._conn = await self._connect()
        try:
            check_identity(self.node, conn)
            session = self._session = await self._handshake(conn)
            if self._on_connected is not None:
                self._on_connected()
            if self._claimed != self._services:  # changed while HELLO was on its way
                await session.guard(self._claim(session))
            await session.run()
        except TunnelError as exc:
            conn.close(exc.close_code, _public_reason(exc))
            raise
        finally:
            self._ended = True
            conn.close(ErrorCode.SHUTDOWN, "agent stopping")  # no-op once closed
            await _released(conn)

    async def drain(self, reason: str, grace: float) -> None:
        """Send DRAIN, take no new stream, give those in flight up to `grace` seconds, close.

        The connection is closed with NO_ERROR (and `run()` returns) when this returns; a
        connection still being set up is closed with SHUTDOWN.
        """
        if self._session is not None and not self._ended:
            await self._session.drain(reason, grace)
        elif self._conn is not None:
            self._conn.close(ErrorCode.SHUTDOWN, "agent stopping")

    async def update_services(self, services: Sequence[str]) -> None:
        """Claim `services` from now on: SERVICES on a live connection, else the next HELLO."""
        self._services = tuple(services)
        if self._session is not None and not self._ended:
            await self._claim(self._session)

    # --- connecting ----------------------------------------------------------------------

    async def _connect(self) -> TunnelConnection:
        try:
            return await self._connect_to(self.node, self._options.tls)
        except ConnectionClosed as exc:
            raise classify_connect(exc) from None
        except PkiError as exc:
            raise CredentialsError(str(exc)) from None
        except OSError as exc:
            raise HandshakeFailed(f"cannot reach {self.node.address}: {exc}") from None

    async def _handshake(self, conn: TunnelConnection) -> Session:
        options = self._options
        try:
            channel = ControlChannel(await conn.open_stream())
            self._claimed = self._services
            hello = Hello(options.agent, options.version, self._claimed, options.max_streams)
            await channel.send(hello)
            async with asyncio.timeout(options.hello_timeout):
                ack, pending = await _first_message(channel)
        except ConnectionClosed as exc:
            raise classify_connect(exc) from None
        except TimeoutError:
            raise HandshakeFailed(f"no HELLO_ACK within {options.hello_timeout:g}s") from None
        session = Session(self.node, conn, channel, options, self._handler)
        session.begin(ack, pending)
        return session

    async def _claim(self, session: Session) -> None:
        self._claimed = self._services
        await session.claim(self._claimed)


def check_identity(node: IngressNode, conn: TunnelConnection) -> None:
    """Refuse a node whose (valid) certificate is not the one `node.identity` names.

    The chain, the ingress role and the address were checked in the TLS handshake; without
    this, any certificate of our CA for an ingress with that address (another node on the
    same host, say) would pass for `node`.

    Raises:
        WrongNode: the certificate names another identity.
    """
    if node.identity is None:
        return
    role, name, org = pki.parse_identity_uri(node.identity)  # validated with the settings
    peer = conn.peer
    if (peer.role, peer.name, peer.org) != (role, name, org):
        owner = f" of org {peer.org}" if peer.org else ""
        raise WrongNode(
            f"the certificate at {node.address} is for {peer.role} {peer.name!r}{owner}, "
            f"not {node.identity} (node {node.name!r}); refusing it"
        )


async def _first_message(channel: ControlChannel) -> tuple[HelloAck, list[ControlMessage]]:
    """The HELLO_ACK, and whatever came in the same read (a DRAIN may follow at once)."""
    while not (messages := await channel.receive()):
        pass
    first, *rest = messages
    if not isinstance(first, HelloAck):
        raise ProtocolViolation(f"{type(first).__name__} before HELLO_ACK")
    return first, rest


async def _released(conn: TunnelConnection) -> None:
    """Wait (briefly) for a closed connection to end, so that its socket is released."""
    try:
        async with asyncio.timeout(RELEASE_WAIT):
            await conn.wait_closed()
    except TimeoutError:
        log.warning("connection still closing after %ss; leaving it", RELEASE_WAIT)
    except asyncio.CancelledError:  # stopping: skip the closing period, release the socket
        abandon = getattr(conn, "abandon", None)
        if abandon is not None:
            abandon()
        raise


def _public_reason(error: TunnelError) -> str:
    """The close reason sent on the wire (the details stay in our logs)."""
    if isinstance(error, HeartbeatTimeout):
        return "heartbeat timeout"
    if isinstance(error, ProtocolViolation):
        return "control stream protocol error"
    if isinstance(error, WrongNode):
        return "not the node expected at this address"
    return ""
