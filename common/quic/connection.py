"""One QUIC connection as a `common.transport.TunnelConnection`.

The I/O shell around a `QuicEngine` (aioquic style): the endpoint feeds datagrams in with
`datagram_received`, events are dispatched at once, and the endpoint calls `transmit` once
per loop iteration for every connection that has something to say. One `call_at` timer per
connection drives aioquic's timers. Whatever aioquic or a callback raises is logged and closes
this connection only (INTERNAL_ERROR); nothing escapes into the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

from aioquic.quic import events
from aioquic.quic.connection import NetworkAddress
from aioquic.quic.stream import QuicStream

from common.quic.engine import QuicEngine
from common.quic.options import QuicOptions
from common.quic.signal import Signal
from common.quic.stream import QuicTunnelStream
from common.quic.tls import PeerRejected, PeerVerifier
from common.transport import ConnectionClosed, PeerIdentity
from common.wire.errors import ErrorCode

log = logging.getLogger(__name__)


class Endpoint(Protocol):
    """What a connection needs from the UDP endpoint that carries it."""

    def schedule(self, conn: QuicTunnelConnection) -> None: ...
    def send(self, datagrams: list[tuple[bytes, NetworkAddress]]) -> None: ...
    def connection_ended(self, conn: QuicTunnelConnection) -> None: ...
    def cid_changed(self, conn: QuicTunnelConnection, cid: bytes, *, issued: bool) -> None: ...


class QuicTunnelConnection:
    """A `TunnelConnection` over QUIC; created by `connect()` or by a `QuicServer`."""

    def __init__(
        self,
        engine: QuicEngine,
        endpoint: Endpoint,
        options: QuicOptions,
        verifier: PeerVerifier,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.engine = engine
        self.options = options
        self.closed: ConnectionClosed | None = None
        self.blocked_writers: set[QuicTunnelStream] = set()
        self.scheduled = False  # set by the endpoint while a transmit is pending
        self._endpoint = endpoint
        self._verifier = verifier
        self._peer: PeerIdentity | None = None
        self._established = False
        self._ended = False
        self._streams: dict[int, QuicTunnelStream] = {}
        self._accept_queue: deque[QuicTunnelStream] = deque()
        is_client = engine.configuration.is_client
        self._local_parity = 0 if is_client else 1
        self._next_peer_stream = 1 if is_client else 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._changed = Signal(self.loop)  # stream credit, handshake, closed
        self._incoming = Signal(self.loop)  # streams to accept, closed
        self._gone = Signal(self.loop)

    # --- TunnelConnection ----------------------------------------------------------------

    @property
    def peer(self) -> PeerIdentity:
        if self._peer is None:
            raise RuntimeError("the peer is not verified yet")
        return self._peer

    @property
    def rtt(self) -> float:
        return self.engine.rtt

    @property
    def stream_count(self) -> int:
        """Streams the application has not finished with (for tests and metrics)."""
        return len(self._streams)

    async def open_stream(self) -> QuicTunnelStream:
        while not self.engine.can_open_stream():
            self.raise_if_closed()
            await self._changed.wait()
        stream = self.open_stream_now()
        assert stream is not None  # nothing ran since can_open_stream()
        return stream

    def open_stream_now(self) -> QuicTunnelStream | None:
        self.raise_if_closed()
        if not self.engine.can_open_stream():
            return None
        stream = QuicTunnelStream(self, self.engine.open_stream())
        self._streams[stream.stream_id] = stream
        return stream

    async def accept_stream(self) -> QuicTunnelStream:
        while not self._accept_queue:
            self.raise_if_closed()
            await self._incoming.wait()
        return self._accept_queue.popleft()

    def close(self, code: int = 0, reason: str = "") -> None:
        if self.closed is not None:
            return
        self._set_closed(ConnectionClosed(code, reason, by_peer=False))
        self.engine.close(error_code=code, reason_phrase=reason)
        self.schedule_transmit()

    def abandon(self, code: int = 0, reason: str = "") -> None:
        """Close, send CONNECTION_CLOSE once, and drop the connection without a closing period."""
        self.close(code, reason)
        self.transmit()
        self._terminate()

    async def wait_closed(self) -> ConnectionClosed:
        while not self._ended:
            await self._gone.wait()
        assert self.closed is not None
        return self.closed

    async def wait_established(self) -> None:
        """Wait until the handshake is done and the peer verified (ConnectionClosed if not)."""
        while not self._established:
            self.raise_if_closed()
            await self._changed.wait()

    # --- for streams ---------------------------------------------------------------------

    def raise_if_closed(self) -> None:
        closed = self.closed
        if closed is not None:
            raise ConnectionClosed(closed.code, closed.reason, by_peer=closed.by_peer)

    def schedule_transmit(self) -> None:
        if not self.scheduled and not self._ended:
            self._endpoint.schedule(self)

    def credit(self, state: QuicStream, consumed: int) -> None:
        engine = self.engine
        if (engine.stream_consumed(state, consumed) | engine.connection_consumed()) and (
            self.closed is None
        ):
            self.schedule_transmit()

    def forget(self, stream: QuicTunnelStream) -> None:
        self._streams.pop(stream.stream_id, None)
        self.blocked_writers.discard(stream)

    # --- driven by the endpoint ----------------------------------------------------------

    def datagram_received(self, data: bytes, addr: NetworkAddress) -> None:
        try:
            self.engine.receive_datagram(data, addr, now=self.loop.time())
            self._after_input()
        except Exception:
            self._abort("receiving a datagram")

    def transmit(self) -> None:
        self.scheduled = False
        if self._ended:
            return
        try:
            engine = self.engine
            datagrams = engine.datagrams_to_send(now=self.loop.time())
            if datagrams:
                self._endpoint.send(datagrams)
            self._arm_timer(engine.get_timer())
        except Exception:
            self._abort("transmitting")

    def _on_timer(self) -> None:
        at, self._timer, self._timer_at = self._timer_at or 0.0, None, None
        try:
            self.engine.handle_timer(now=max(at, self.loop.time()))
            self._after_input()
        except Exception:
            self._abort("handling a timer")
        self.transmit()

    def _arm_timer(self, at: float | None) -> None:
        if at == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = None if at is None else self.loop.call_at(at, self._on_timer)

    def _after_input(self) -> None:
        engine = self.engine
        event = engine.next_event()
        while event is not None:
            self._dispatch(event)
            event = engine.next_event()
        if self.closed is None and engine.close_event is not None:
            self._set_closed(self._engine_close_reason())
        if not self._established and self._peer is not None and engine.handshake_confirmed:
            self._established = True
            self._changed.fire()
        if self.blocked_writers:
            for stream in list(self.blocked_writers):
                stream.wake_writer_if_drained()
        if self._changed.waiting and engine.can_open_stream():
            self._changed.fire()
        engine.connection_consumed()
        self.schedule_transmit()

    def _dispatch(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.StreamDataReceived):
            stream = self._stream_for(event.stream_id)
            if stream is not None:
                stream.on_data(event.data, event.end_stream)
        elif isinstance(event, events.StreamReset):
            stream = self._stream_for(event.stream_id)
            if stream is not None:
                stream.on_reset(event.error_code)
        elif isinstance(event, events.StopSendingReceived):
            stream = self._stream_for(event.stream_id)
            if stream is not None:
                stream.on_stop_sending(event.error_code)
        elif isinstance(event, events.HandshakeCompleted):
            self._verify_peer(event.alpn_protocol)
        elif isinstance(event, events.ConnectionIdIssued | events.ConnectionIdRetired):
            issued = isinstance(event, events.ConnectionIdIssued)
            self._endpoint.cid_changed(self, event.connection_id, issued=issued)
        elif isinstance(event, events.ConnectionTerminated):
            self._terminate()

    def _stream_for(self, stream_id: int) -> QuicTunnelStream | None:
        stream = self._streams.get(stream_id)
        if stream is not None or self.closed is not None:
            return stream
        if stream_id & 2:
            self.close(ErrorCode.STREAM_NOT_ALLOWED, "unidirectional streams are not allowed")
            return None
        if stream_id & 1 == self._local_parity or stream_id < self._next_peer_stream:
            return None  # a stream we have finished with: late data is dropped
        for new_id in range(self._next_peer_stream, stream_id + 4, 4):
            state = self.engine.stream(new_id)
            if state is not None:  # QUIC opens lower-numbered streams implicitly
                stream = self._streams[new_id] = QuicTunnelStream(self, state)
                self._accept_queue.append(stream)
        self._next_peer_stream = stream_id + 4
        self._incoming.fire()
        return self._streams.get(stream_id)

    def _verify_peer(self, alpn: str | None) -> None:
        leaf, chain = self.engine.peer_certificates()
        try:
            self._peer = self._verifier.verify(alpn, leaf, chain)
        except PeerRejected as exc:
            log.warning("refusing QUIC peer %s: %s", self.engine.get_peer_address(), exc)
            self.close(exc.code, exc.public_reason)

    def _engine_close_reason(self) -> ConnectionClosed:
        event = self.engine.close_event
        assert event is not None
        reason = event.reason_phrase
        if event.frame_type is not None:  # a transport error, not an application close
            reason = f"QUIC transport error {event.error_code:#x}: {reason}"
        return ConnectionClosed(event.error_code, reason, by_peer=self.engine.closed_by_peer)

    def _set_closed(self, closed: ConnectionClosed) -> None:
        self.closed = closed
        streams = list(self._streams.values())
        self._streams.clear()
        self._accept_queue.clear()
        self.blocked_writers.clear()
        for stream in streams:
            stream.on_closed()
        self._changed.fire()
        self._incoming.fire()

    def _terminate(self) -> None:
        if self._ended:
            return
        if self.closed is None:
            self._set_closed(self._engine_close_reason())
        self._ended = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._endpoint.connection_ended(self)
        self._gone.fire()

    def _abort(self, doing: str) -> None:
        log.exception("QUIC connection to %s failed while %s", self._address(), doing)
        if self.closed is None:
            self._set_closed(
                ConnectionClosed(ErrorCode.INTERNAL_ERROR, "internal error", by_peer=False)
            )
        try:
            self.engine.close(error_code=ErrorCode.INTERNAL_ERROR, reason_phrase="internal error")
            self._endpoint.send(self.engine.datagrams_to_send(now=self.loop.time()))
        except Exception:
            log.exception("could not send CONNECTION_CLOSE; dropping the connection")
        self._terminate()

    def _address(self) -> NetworkAddress | None:
        try:
            return self.engine.get_peer_address()
        except Exception:
            return None
