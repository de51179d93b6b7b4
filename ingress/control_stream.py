"""One agent connection seen from the ingress: its control stream (docs/protocol.md §4).

Session rules, in order:

1. The agent's first stream is the control stream; HELLO must be its first frame, within
   `hello_timeout` of the handshake, or the connection is closed with HELLO_TIMEOUT.
2. A revoked certificate (by serial or identity, from the control plane's snapshot) is closed
   with REVOKED (the QUIC listener refuses it at the TLS handshake already; this catches one
   that completed its handshake just before the revocation arrived).
   `agent_id` must equal the certificate's identity, else UNAUTHORIZED. The services it
   claims are accepted when this node routes them and the configuration lists the agent in
   their `agents`; HELLO_ACK says which, and why the others were refused. If none is
   accepted, HELLO_ACK is sent and the connection closed with UNAUTHORIZED.
3. Then the agent is in the pool. PING → PONG. DRAIN → no new streams on it. SERVICES →
   re-evaluate and answer a fresh HELLO_ACK (same rules). HELLO, HELLO_ACK, or a malformed
   frame → PROTOCOL_ERROR. No frame for 3 heartbeat intervals → HEARTBEAT_TIMEOUT.
4. Any further stream the agent opens → STREAM_NOT_ALLOWED (the QUIC shell already refuses
   unidirectional ones).

A configuration reload re-evaluates the standing claim (`reevaluate`): services may be
gained or lost; losing them all closes with UNAUTHORIZED. The pool forgets the agent when
the connection ends, however it ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from common.transport import ConnectionClosed, PeerIdentity, StreamReset, TunnelConnection
from common.transport import TunnelStream as Stream
from common.wire import (
    ControlMessage,
    ControlReader,
    Drain,
    ErrorCode,
    Hello,
    HelloAck,
    Ping,
    Pong,
    ProtocolError,
    Services,
    encode_control,
)
from ingress.agents import Agent, AgentPool
from ingress.claims import evaluate
from ingress.settings import IngressSettings

log = logging.getLogger(__name__)
E = TypeVar("E", bound=BaseException)
RevocationCheck = Callable[[PeerIdentity], bool]

SILENT_INTERVALS = 3
LINGER_MIN, LINGER_MAX = 0.05, 1.0  # seconds


class SessionClosed(Exception):
    """The session ends: close the connection with `code`; `reason` goes on the wire."""

    def __init__(
        self, code: ErrorCode, reason: str, detail: str = "", *, linger: bool = False
    ) -> None:
        super().__init__(detail or reason)
        self.code = code
        self.reason = reason
        self.linger = linger  # let what we just wrote reach the peer before closing


class AgentSession:
    """Drives one agent connection from HELLO to close; `run()` is the connection handler."""

    def __init__(
        self,
        conn: TunnelConnection,
        pool: AgentPool,
        settings: Callable[[], IngressSettings],
        is_revoked: RevocationCheck | None = None,
    ) -> None:
        self.conn = conn
        self._pool = pool
        self._settings = settings
        self._is_revoked = is_revoked
        self._reader = ControlReader()
        self._write_lock = asyncio.Lock()
        self._control: Stream | None = None
        self._claim: tuple[str, ...] = ()
        self._pending: list[ControlMessage] = []
        self._max_streams = 0
        self._drain_reason: str | None = None
        self._interval = settings().limits.heartbeat_interval
        self.agent: Agent | None = None
        self.connected_at: datetime | None = None  # when it joined the pool

    @property
    def peer(self) -> PeerIdentity:
        return self.conn.peer

    async def run(self) -> None:
        """Serve the connection until it ends; never raises for what the peer did."""
        try:
            await self._serve()
        except* SessionClosed as group:
            closed = _first(group)
            if closed.linger:
                await self._linger()
            self._close(closed)
        except* ConnectionClosed as group:
            gone = _first(group)
            if gone.by_peer:
                log.info(
                    "agent disconnected", extra=self._fields(code=gone.code, reason=gone.reason)
                )
        finally:
            if self.agent is not None:
                self._pool.remove(self.agent)

    async def _serve(self) -> None:
        limits = self._settings().limits
        try:
            async with asyncio.timeout(limits.hello_timeout):
                self._control = await self.conn.accept_stream()
                hello = await self._first_message()
        except TimeoutError:
            raise SessionClosed(ErrorCode.HELLO_TIMEOUT, "no HELLO in time") from None
        await self._welcome(hello)
        async with asyncio.TaskGroup() as group:
            group.create_task(self._refuse_streams(), name=f"agent-streams-{self.peer.name}")
            await self._read_loop()

    # ---- HELLO ---------------------------------------------------------------------------

    async def _first_message(self) -> Hello:
        while not (messages := await self._read_messages()):
            pass
        first, *self._pending = messages  # what came in the same read is handled after it
        if not isinstance(first, Hello):
            raise _protocol(f"{type(first).__name__} before HELLO")
        return first

    async def _welcome(self, hello: Hello) -> None:
        if self.revoked():
            raise SessionClosed(ErrorCode.REVOKED, "revoked", "the certificate is revoked")
        if hello.agent_id != self.peer.name:
            raise SessionClosed(
                ErrorCode.UNAUTHORIZED,
                "agent_id does not match the certificate",
                f"HELLO agent_id {hello.agent_id!r} but certificate {self.peer.name!r}",
            )
        self._claim = hello.services
        self._max_streams = hello.max_streams
        accepted = await self._acknowledge(preface=True)
        self.agent = Agent(self.conn, max_streams=self._stream_cap(), services=accepted)
        self._pool.add(self.agent)
        self.connected_at = datetime.now(UTC)
        log.info(
            "agent connected",
            extra=self._fields(version=hello.version, services=list(accepted)),
        )
        if self._drain_reason is not None:
            await self._send_drain()

    async def _acknowledge(self, *, preface: bool = False) -> frozenset[str]:
        """Evaluate the claim, send HELLO_ACK; close with UNAUTHORIZED if nothing is accepted."""
        settings = self._settings()
        accepted, rejected = evaluate(settings.services, self.peer, self._claim)
        ack = HelloAck(settings.node, accepted, rejected, self._interval)
        await self._send(encode_control(ack, preface=preface))
        if rejected:
            log.warning("agent claims refused", extra=self._fields(rejected=dict(rejected)))
        if not accepted:
            raise SessionClosed(
                ErrorCode.UNAUTHORIZED, "no service allowed for this agent", linger=True
            )
        return frozenset(accepted)

    # ---- after HELLO ---------------------------------------------------------------------

    async def _read_loop(self) -> None:
        # Only complete messages count as signs of life: trickling the bytes of one frame
        # does not keep a connection open.
        loop = asyncio.get_running_loop()
        silence = SILENT_INTERVALS * self._interval
        deadline = loop.time() + silence
        for message in self._pending:
            await self._handle(message)
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    messages = await self._read_messages()
            except TimeoutError:
                raise SessionClosed(
                    ErrorCode.HEARTBEAT_TIMEOUT, f"silent for {silence:g}s"
                ) from None
            if messages:
                deadline = loop.time() + silence
            for message in messages:
                await self._handle(message)

    async def _handle(self, message: ControlMessage) -> None:
        match message:
            case Ping(seq=seq):
                await self._send(encode_control(Pong(seq)))
            case Pong():
                pass  # we send no PING; an unsolicited PONG is harmless
            case Drain(reason=reason):
                if self.agent is not None:
                    self._pool.drain(self.agent)
                log.info("agent draining", extra=self._fields(reason=reason))
            case Services(services=services):
                self._claim = services
                self._update(await self._acknowledge())
            case Hello() | HelloAck():
                raise _protocol(f"unexpected {type(message).__name__}")

    async def _refuse_streams(self) -> None:
        await self.conn.accept_stream()
        self._close(SessionClosed(ErrorCode.STREAM_NOT_ALLOWED, "only the control stream"))

    async def _read_messages(self) -> list[ControlMessage]:
        assert self._control is not None
        try:
            data = await self._control.read(65536)
            if not data:
                self._reader.feed_eof()
                raise _protocol("control stream ended")
            return self._reader.feed(data)
        except ProtocolError as exc:
            raise _protocol(exc.message) from None
        except StreamReset as exc:
            raise _protocol(f"control stream reset with code {exc.code:#x}") from None

    async def _send(self, data: bytes) -> None:
        assert self._control is not None
        try:
            async with self._write_lock:
                await self._control.write(data)
        except StreamReset as exc:
            raise _protocol(f"control stream stopped with code {exc.code:#x}") from None

    # ---- from the node -------------------------------------------------------------------

    def drain_on_hello(self, reason: str) -> None:
        """Send DRAIN right after HELLO_ACK (the node is stopping)."""
        self._drain_reason = reason

    async def drain(self, reason: str) -> None:
        """Tell the agent this node is going away and will close the connection.

        The node keeps leasing streams on it until then: requests in flight and those still
        arriving on the public connections being drained are served, not refused.
        """
        self._drain_reason = reason
        if self.agent is not None:
            await self._send_drain()

    async def _send_drain(self) -> None:
        assert self._drain_reason is not None
        try:
            await self._send(encode_control(Drain(self._drain_reason)))
        except (SessionClosed, ConnectionClosed):
            pass

    def revoked(self) -> bool:
        return self._is_revoked is not None and self._is_revoked(self.peer)

    def revoke(self) -> None:
        """The agent's certificate was revoked: out of the pool, connection closed now."""
        self._close(SessionClosed(ErrorCode.REVOKED, "revoked", "the certificate was revoked"))

    def reevaluate(self) -> None:
        """Apply the current configuration to the standing claim (after a reload)."""
        if self.agent is None:
            return
        accepted, _ = evaluate(self._settings().services, self.peer, self._claim)
        if not accepted:
            self._close(SessionClosed(ErrorCode.UNAUTHORIZED, "no service allowed any more"))
            return
        self._update(frozenset(accepted))

    def _update(self, accepted: frozenset[str]) -> None:
        assert self.agent is not None
        self.agent.max_streams = self._stream_cap()
        if accepted != self.agent.services:
            self._pool.set_services(self.agent, accepted)
            log.info("agent services changed", extra=self._fields(services=sorted(accepted)))

    def _stream_cap(self) -> int:
        return min(self._max_streams, self._settings().limits.max_streams_per_agent)

    async def _linger(self) -> None:
        """Give the HELLO_ACK we just wrote time to reach the agent (a close discards what
        the transport has not sent yet): a few round trips, or until the agent closes."""
        wait = min(LINGER_MAX, max(LINGER_MIN, 3 * self.conn.rtt))
        try:
            async with asyncio.timeout(wait):
                await self.conn.wait_closed()
        except TimeoutError:
            pass

    def _close(self, closed: SessionClosed) -> None:
        level = logging.INFO if closed.code == ErrorCode.NO_ERROR else logging.WARNING
        log.log(
            level,
            "closing agent connection",
            extra=self._fields(code=closed.code.name, reason=str(closed)),
        )
        if self.agent is not None:
            self._pool.remove(self.agent)
        self.conn.close(closed.code, closed.reason)

    def _fields(self, **extra: object) -> dict[str, object]:
        peer = self.conn.peer
        return {"agent": peer.name, "org": peer.org, **extra}


def _first(group: BaseExceptionGroup[E]) -> E:
    """The first exception in a (possibly nested) group that `except*` matched."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


def _protocol(detail: str) -> SessionClosed:
    return SessionClosed(ErrorCode.PROTOCOL_ERROR, "control stream protocol error", detail)
