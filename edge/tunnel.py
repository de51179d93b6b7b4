"""One connection from the agent to one ingress node (docs/protocol.md §3-4).

`Tunnel.run()` dials the node, opens the control stream, sends HELLO and waits for HELLO_ACK,
then runs four tasks in one `TaskGroup`, where the first failure cancels the rest:

- **heartbeat**: PING every interval (the smaller of ours and the node's); no frame at all for
  three intervals closes the connection with HEARTBEAT_TIMEOUT;
- **control reader**: PONG (round-trip time), DRAIN from the node, HELLO_ACK (answer to our
  SERVICES), PING (answered);
- **accept loop**: each stream the node opens is served by the stream handler in a task of the
  same group (so a dead connection cancels its streams); beyond `max_streams` in flight a
  stream is reset with BUSY, and while we drain with DRAINING;
- **watch**: the connection's end.

How it ends is a typed `TunnelError` (edge/tunnel_errors.py) for the supervisor to classify;
`run()` returns normally only after our own `drain()` closed the connection.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from common import quic
from common.pki import PkiError, TlsFiles
from common.transport import ConnectionClosed, TransportError, TunnelConnection, TunnelStream
from common.wire import ControlMessage, Drain, ErrorCode, Hello, HelloAck, Ping, Pong, Services
from edge.control_channel import ControlChannel
from edge.heartbeat import SILENT_INTERVALS, Heartbeat
from edge.settings import IngressNode
from edge.tunnel_errors import (
    CredentialsError,
    HandshakeFailed,
    HeartbeatTimeout,
    ProtocolViolation,
    TunnelError,
    Unauthorized,
    classify,
    classify_connect,
)

log = logging.getLogger("kokoa.edge.tunnel")

StreamHandler = Callable[[TunnelStream], Awaitable[None]]
Connector = Callable[[IngressNode, TlsFiles], Awaitable[TunnelConnection]]
LINGER_MIN, LINGER_MAX = 0.05, 1.0  # seconds for the last bytes to leave before a close
RELEASE_WAIT = 2.0  # seconds a closed connection may take to end (QUIC's closing period)


class TunnelState(enum.StrEnum):
    CONNECTING = "connecting"  # dialling, TLS, HELLO
    CONNECTED = "connected"
    DRAINING = "draining"  # we or the node asked for it; streams in flight go on
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class TunnelOptions:
    """What one connection attempt uses (taken from the current configuration)."""

    agent: str
    tls: TlsFiles
    services: tuple[str, ...]
    version: str = "unknown"
    max_streams: int = 512
    heartbeat_interval: float = 2.0
    hello_timeout: float = 5.0
    drain_grace: float = 30.0  # how long a DRAIN from the node may keep the connection up


async def quic_connector(node: IngressNode, tls: TlsFiles) -> TunnelConnection:
    """Dial `node` over QUIC with mutual TLS, checking its certificate names `verify_name`."""
    return await quic.connect(node.host, node.port, tls, server_name=node.verify_name)


class _Closed(TunnelError):
    """Internal: the connection ended because our own drain closed it."""


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
        self.state = TunnelState.CONNECTING
        self.accepted: tuple[str, ...] = ()
        self.rejected: dict[str, str] = {}
        self.node_id: str | None = None  # the name in the node's HELLO_ACK
        self._options = options
        self._handler = handler
        self._connect_to = connect
        self._on_connected = on_connected
        self._services = options.services
        self._hello_services: tuple[str, ...] | None = None
        self._conn: TunnelConnection | None = None
        self._channel: ControlChannel | None = None
        self._heartbeat: Heartbeat | None = None
        self._group: asyncio.TaskGroup | None = None
        self._streams: set[asyncio.Task[None]] = set()
        self._draining = False  # our drain: no new streams
        self._drained = False  # our drain closed the connection
        self._peer_drain: str | None = None
        self._pending: list[ControlMessage] = []  # read with HELLO_ACK, handled once connected

    # --- status --------------------------------------------------------------------------

    @property
    def rtt(self) -> float | None:
        """Round-trip time: from PING/PONG once measured, else the transport's estimate."""
        if self._heartbeat is not None and self._heartbeat.rtt is not None:
            return self._heartbeat.rtt
        return self._conn.rtt if self._conn is not None else None

    @property
    def in_flight(self) -> int:
        return len(self._streams)

    # --- life ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, say HELLO, and serve the node's streams until the connection ends.

        Returns only after `drain()` closed the connection.

        Raises:
            TunnelError: a subclass saying why the attempt failed or the connection ended.
        """
        conn = await self._connect()
        self._conn = conn
        try:
            await self._handshake(conn)
            await self._serve(conn)
        except TunnelError as exc:
            conn.close(exc.close_code, _public_reason(exc))
            raise
        finally:
            self.state = TunnelState.CLOSED
            conn.close(ErrorCode.SHUTDOWN, "agent stopping")  # no-op once closed
            await _released(conn)

    async def drain(self, reason: str, grace: float) -> None:
        """Send DRAIN, take no new stream, give those in flight up to `grace` seconds, close.

        The connection is closed with NO_ERROR (and `run()` returns) when this returns.
        """
        conn, channel = self._conn, self._channel
        if conn is None or channel is None or self.state is TunnelState.CONNECTING:
            if conn is not None:
                conn.close(ErrorCode.SHUTDOWN, "agent stopping")
            return
        self._draining = True
        self.state = TunnelState.DRAINING
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        await self._finish_streams(channel, reason, deadline)
        await self._linger(deadline - loop.time())
        self._drained = True
        conn.close(ErrorCode.NO_ERROR, "drained")

    async def update_services(self, services: Sequence[str]) -> None:
        """Claim `services` from now on: SERVICES on a live connection, else the next HELLO."""
        self._services = tuple(services)
        if self.state in (TunnelState.CONNECTED, TunnelState.DRAINING):
            await self._send_services()

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

    async def _handshake(self, conn: TunnelConnection) -> None:
        options = self._options
        try:
            channel = self._channel = ControlChannel(await conn.open_stream())
            self._hello_services = self._services
            await channel.send(
                Hello(options.agent, options.version, self._services, options.max_streams)
            )
            async with asyncio.timeout(options.hello_timeout):
                ack = await self._first_message(channel)
        except ConnectionClosed as exc:
            raise classify_connect(exc) from None
        except TimeoutError:
            raise HandshakeFailed(f"no HELLO_ACK within {options.hello_timeout:g}s") from None
        self._acknowledged(ack)
        interval = min(options.heartbeat_interval, ack.heartbeat_interval)
        self._heartbeat = Heartbeat(interval, asyncio.get_running_loop().time())
        self.state = TunnelState.CONNECTED
        log.info("connected", extra=self._fields(services=list(self.accepted), interval=interval))
        if self._on_connected is not None:
            self._on_connected()

    async def _first_message(self, channel: ControlChannel) -> HelloAck:
        while not (messages := await channel.receive()):
            pass
        first, *self._pending = messages  # a DRAIN may follow in the same read
        if not isinstance(first, HelloAck):
            raise ProtocolViolation(f"{type(first).__name__} before HELLO_ACK")
        return first

    def _acknowledged(self, ack: HelloAck) -> None:
        self.node_id, self.accepted, self.rejected = ack.node, ack.accepted, dict(ack.rejected)
        if self.rejected:
            log.warning("services refused by the node", extra=self._fields(rejected=self.rejected))
        if not self.accepted:
            raise Unauthorized("the node accepts none of our services", self.rejected)

    # --- connected -----------------------------------------------------------------------

    async def _serve(self, conn: TunnelConnection) -> None:
        if self._hello_services != self._services:  # changed while HELLO was on its way
            await self._guard(self._send_services())
        error: TunnelError | None = None
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                name = self.node.name
                group.create_task(self._guard(self._beat()), name=f"heartbeat-{name}")
                group.create_task(self._guard(self._listen()), name=f"control-{name}")
                group.create_task(self._guard(self._accept(conn, group)), name=f"accept-{name}")
                group.create_task(self._guard(self._watch(conn)), name=f"watch-{name}")
        except* TunnelError as errors:
            error = _first(errors)
        finally:
            self._group = None
        if error is not None and not isinstance(error, _Closed):
            raise error

    async def _guard(self, work: Awaitable[None]) -> None:
        """Run `work`, turning the connection's end into the typed error it means."""
        try:
            await work
        except ConnectionClosed as exc:
            if self._drained and not exc.by_peer:
                raise _Closed() from None
            raise classify(exc, drained=self._peer_drain is not None) from None

    async def _watch(self, conn: TunnelConnection) -> NoReturn:
        raise await conn.wait_closed()

    async def _beat(self) -> NoReturn:
        heartbeat, channel = self._heartbeat, self._channel
        assert heartbeat is not None and channel is not None
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if heartbeat.expired(now):
                silent = SILENT_INTERVALS * heartbeat.interval
                raise HeartbeatTimeout(f"no frame from the node for {silent:g}s")
            ping = heartbeat.due(now)
            if ping is not None:
                await channel.send(ping)
            await asyncio.sleep(max(0.0, heartbeat.wake_at - loop.time()))

    async def _listen(self) -> NoReturn:
        heartbeat, channel = self._heartbeat, self._channel
        assert heartbeat is not None and channel is not None
        loop = asyncio.get_running_loop()
        messages, self._pending = self._pending, []
        while True:
            now = loop.time()
            for message in messages:
                await self._on_message(message, now)
            messages = await channel.receive()
            heartbeat.heard(loop.time())  # any bytes count: a partial or unknown frame too

    async def _on_message(self, message: ControlMessage, now: float) -> None:
        assert self._heartbeat is not None and self._channel is not None
        match message:
            case Pong(seq=seq):
                self._heartbeat.pong(seq, now)
            case Ping(seq=seq):
                await self._channel.send(Pong(seq))
            case Drain(reason=reason):
                self._node_drains(reason)
            case HelloAck():
                self._acknowledged(message)
            case _:
                raise ProtocolViolation(f"unexpected {type(message).__name__}")

    async def _accept(self, conn: TunnelConnection, group: asyncio.TaskGroup) -> NoReturn:
        limit = self._options.max_streams
        while True:
            stream = await conn.accept_stream()
            if self._draining:
                stream.reset(ErrorCode.DRAINING)
            elif len(self._streams) >= limit:
                stream.reset(ErrorCode.BUSY)
            else:
                task = group.create_task(self._serve_stream(stream), name="tunnel-stream")
                self._streams.add(task)
                task.add_done_callback(self._streams.discard)

    async def _serve_stream(self, stream: TunnelStream) -> None:
        try:
            await self._handler(stream)
        except Exception:  # the handler should map its failures itself; contain it if not
            log.exception("stream handler failed", extra=self._fields(stream=stream.stream_id))
            stream.reset(ErrorCode.INTERNAL_ERROR)

    # --- draining ------------------------------------------------------------------------

    def _node_drains(self, reason: str) -> None:
        """DRAIN from the node: keep serving what is in flight and expect it to close."""
        if self._peer_drain is not None:
            return
        self._peer_drain = reason
        self.state = TunnelState.DRAINING
        log.info("node asks us to drain", extra=self._fields(reason=reason))
        if self._group is not None:
            self._group.create_task(self._drain_backstop(), name=f"drain-{self.node.name}")

    async def _drain_backstop(self) -> None:
        """A node that asked us to drain but never closes: close it ourselves after the grace."""
        await asyncio.sleep(self._options.drain_grace)
        if self._conn is not None:
            log.warning("node did not close after DRAIN; closing", extra=self._fields())
            self._conn.close(ErrorCode.NO_ERROR, "drained")

    async def _finish_streams(self, channel: ControlChannel, reason: str, deadline: float) -> None:
        """Send DRAIN and wait for the streams in flight, until `deadline` (loop time)."""
        try:
            await channel.send(Drain(reason))
            async with asyncio.timeout_at(deadline):
                await self._wait_idle()
        except (TunnelError, TransportError):
            pass  # the connection is failing anyway; run() reports it
        except TimeoutError:
            log.warning("drain grace over; cutting streams", extra=self._fields(n=self.in_flight))

    async def _wait_idle(self) -> None:
        while self._streams:
            await asyncio.wait(list(self._streams))

    async def _linger(self, budget: float) -> None:
        """Let the last response bytes leave: a close discards what is not sent yet."""
        if self._conn is None:
            return
        wait = min(budget, LINGER_MAX, max(LINGER_MIN, 3 * (self.rtt or 0.0)))
        if wait > 0:
            try:
                async with asyncio.timeout(wait):
                    await self._conn.wait_closed()
            except TimeoutError:
                pass

    async def _send_services(self) -> None:
        assert self._channel is not None
        self._hello_services = self._services
        await self._channel.send(Services(self._services))
        log.info("services claimed", extra=self._fields(services=list(self._services)))

    def _fields(self, **extra: Any) -> dict[str, Any]:
        return {"node": self.node.name, "address": self.node.address, **extra}


async def _released(conn: TunnelConnection) -> None:
    """Wait (briefly) for a closed connection to end, so that its socket is released."""
    try:
        async with asyncio.timeout(RELEASE_WAIT):
            await conn.wait_closed()
    except TimeoutError:
        log.warning("connection still closing after %ss; leaving it", RELEASE_WAIT)


def _first(group: BaseExceptionGroup[TunnelError]) -> TunnelError:
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


def _public_reason(error: TunnelError) -> str:
    """The close reason sent on the wire (the details stay in our logs)."""
    if isinstance(error, HeartbeatTimeout):
        return "heartbeat timeout"
    if isinstance(error, ProtocolViolation):
        return "control stream protocol error"
    return ""
