"""An established tunnel connection (after HELLO_ACK): four tasks in one `TaskGroup`, where the
first failure cancels the rest.

- **heartbeat**: PING every interval; no frame at all from the node for three intervals closes
  the connection with HEARTBEAT_TIMEOUT;
- **control reader**: PONG (round-trip time), DRAIN from the node, HELLO_ACK (the answer to
  our SERVICES), PING (answered);
- **accept loop**: each stream the node opens is served by the stream handler in a task of
  the same group (a dead connection cancels its streams); beyond `max_streams` in flight a
  stream is reset with BUSY, while we drain with DRAINING;
- **watch**: the connection's end.

`run()` raises the typed `TunnelError` that ended it, or returns after our own `drain()`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from common.pki import TlsFiles
from common.transport import ConnectionClosed, TransportError, TunnelConnection, TunnelStream
from common.wire import ControlMessage, Drain, ErrorCode, HelloAck, Ping, Pong, Services
from edge.control_channel import ControlChannel
from edge.heartbeat import SILENT_INTERVALS, Heartbeat
from edge.settings import IngressNode
from edge.tunnel_errors import HeartbeatTimeout, ProtocolViolation, TunnelError, Unauthorized
from edge.tunnel_errors import classify as classify_close

log = logging.getLogger("kokoa.edge.tunnel")

StreamHandler = Callable[[TunnelStream], Awaitable[None]]
LINGER_MIN, LINGER_MAX = 0.05, 1.0  # seconds for the last bytes to leave before a close


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


class _Closed(TunnelError):
    """Internal: the connection ended because our own drain closed it."""


class Session:
    """One established connection to `node`; see the module docstring."""

    def __init__(
        self,
        node: IngressNode,
        conn: TunnelConnection,
        channel: ControlChannel,
        options: TunnelOptions,
        handler: StreamHandler,
    ) -> None:
        self.node = node
        self.state = TunnelState.CONNECTED
        self.accepted: tuple[str, ...] = ()
        self.rejected: dict[str, str] = {}
        self.node_id: str | None = None  # the name in the node's HELLO_ACK
        self.heartbeat: Heartbeat | None = None
        self.connected_at = datetime.now(UTC)  # HELLO_ACK received
        self._conn = conn
        self._channel = channel
        self._options = options
        self._handler = handler
        self._pending: list[ControlMessage] = []
        self._group: asyncio.TaskGroup | None = None
        self._streams: set[asyncio.Task[None]] = set()
        self._draining = False  # our drain: no new streams
        self._drained = False  # our drain closed the connection
        self._peer_drain: str | None = None

    @property
    def rtt(self) -> float:
        """From PING/PONG once measured, else the transport's estimate."""
        measured = None if self.heartbeat is None else self.heartbeat.rtt
        return self._conn.rtt if measured is None else measured

    @property
    def in_flight(self) -> int:
        return len(self._streams)

    def begin(self, ack: HelloAck, pending: list[ControlMessage]) -> None:
        """Take the HELLO_ACK (and what came with it); start the heartbeat clock.

        Raises:
            Unauthorized: the node accepts none of our services.
        """
        self.acknowledge(ack)
        interval = min(self._options.heartbeat_interval, ack.heartbeat_interval)
        self.heartbeat = Heartbeat(interval, asyncio.get_running_loop().time())
        self._pending = pending
        log.info("connected", extra=self.fields(services=list(self.accepted), interval=interval))

    def acknowledge(self, ack: HelloAck) -> None:
        self.node_id, self.accepted, self.rejected = ack.node, ack.accepted, dict(ack.rejected)
        if self.rejected:
            log.warning("services refused by the node", extra=self.fields(rejected=self.rejected))
        if not self.accepted:
            raise Unauthorized("the node accepts none of our services", self.rejected)

    async def claim(self, services: tuple[str, ...]) -> None:
        """Send SERVICES (the node answers with a HELLO_ACK that `run` takes)."""
        await self._channel.send(Services(services))
        log.info("services claimed", extra=self.fields(services=list(services)))

    async def run(self) -> None:
        """Serve until the connection ends; return only if our `drain()` ended it."""
        error: TunnelError | None = None
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                name = self.node.name
                group.create_task(self.guard(self._beat()), name=f"heartbeat-{name}")
                group.create_task(self.guard(self._listen()), name=f"control-{name}")
                group.create_task(self.guard(self._accept(group)), name=f"accept-{name}")
                group.create_task(self.guard(self._watch()), name=f"watch-{name}")
        except* TunnelError as errors:
            error = _first(errors)
        finally:
            self._group = None
        if error is not None and not isinstance(error, _Closed):
            raise error

    async def guard(self, work: Awaitable[None]) -> None:
        """Run `work`, turning the connection's end into the typed error it means."""
        try:
            await work
        except ConnectionClosed as exc:
            if self._drained and not exc.by_peer:
                raise _Closed() from None
            raise classify_close(exc, drained=self._peer_drain is not None) from None

    async def drain(self, reason: str, grace: float) -> None:
        """Send DRAIN, take no new stream, give those in flight up to `grace`, close NO_ERROR."""
        self._draining = True
        self.state = TunnelState.DRAINING
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        await self._finish_streams(reason, deadline)
        await self._linger(deadline - loop.time())
        self._drained = True
        self._conn.close(ErrorCode.NO_ERROR, "drained")

    def fields(self, **extra: Any) -> dict[str, Any]:
        return {"node": self.node.name, "address": self.node.address, **extra}

    # --- the four tasks ------------------------------------------------------------------

    async def _watch(self) -> NoReturn:
        raise await self._conn.wait_closed()

    async def _beat(self) -> NoReturn:
        heartbeat, channel = self.heartbeat, self._channel
        assert heartbeat is not None
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
        heartbeat = self.heartbeat
        assert heartbeat is not None
        loop = asyncio.get_running_loop()
        messages, self._pending = self._pending, []
        while True:
            now = loop.time()
            for message in messages:
                await self._on_message(message, now)
            messages = await self._channel.receive()
            heartbeat.heard(loop.time())  # any bytes count: a partial or unknown frame too

    async def _on_message(self, message: ControlMessage, now: float) -> None:
        assert self.heartbeat is not None
        match message:
            case Pong(seq=seq):
                self.heartbeat.pong(seq, now)
            case Ping(seq=seq):
                await self._channel.send(Pong(seq))
            case Drain(reason=reason):
                self._node_drains(reason)
            case HelloAck():
                self.acknowledge(message)
            case _:
                raise ProtocolViolation(f"unexpected {type(message).__name__}")

    async def _accept(self, group: asyncio.TaskGroup) -> NoReturn:
        limit, conn = self._options.max_streams, self._conn
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
            log.exception("stream handler failed", extra=self.fields(stream=stream.stream_id))
            stream.reset(ErrorCode.INTERNAL_ERROR)

    # --- draining ------------------------------------------------------------------------

    def _node_drains(self, reason: str) -> None:
        """DRAIN from the node: keep serving what is in flight and expect it to close."""
        if self._peer_drain is not None:
            return
        self._peer_drain = reason
        self.state = TunnelState.DRAINING
        log.info("node asks us to drain", extra=self.fields(reason=reason))
        if self._group is not None:
            self._group.create_task(self._drain_backstop(), name=f"drain-{self.node.name}")

    async def _drain_backstop(self) -> None:
        """A node that asked us to drain but never closes: close it ourselves after the grace."""
        await asyncio.sleep(self._options.drain_grace)
        log.warning("node did not close after DRAIN; closing", extra=self.fields())
        self._conn.close(ErrorCode.NO_ERROR, "drained")

    async def _finish_streams(self, reason: str, deadline: float) -> None:
        """Send DRAIN and wait for the streams in flight, until `deadline` (loop time)."""
        try:
            await self._channel.send(Drain(reason))
            async with asyncio.timeout_at(deadline):
                while self._streams:
                    await asyncio.wait(list(self._streams))
        except (TunnelError, TransportError):
            pass  # the connection is failing anyway; run() reports it
        except TimeoutError:
            log.warning("drain grace over; cutting streams", extra=self.fields(n=self.in_flight))

    async def _linger(self, budget: float) -> None:
        """Let the last response bytes leave: a close discards what is not sent yet."""
        wait = min(budget, LINGER_MAX, max(LINGER_MIN, 3 * self.rtt))
        if wait > 0:
            try:
                async with asyncio.timeout(wait):
                    await self._conn.wait_closed()
            except TimeoutError:
                pass


def _first(group: BaseExceptionGroup[TunnelError]) -> TunnelError:
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first
