"""One bidirectional QUIC stream as a `common.transport.TunnelStream`.

The stream buffers what aioquic delivered until the application reads it; every read returns
credit to the peer (via `QuicEngine.stream_consumed`), so the buffer never exceeds the stream
window. `write` queues into aioquic and then waits while the unacknowledged bytes are above
the high watermark, until ACKs bring them below the low one.

Each direction ends once: receiving on FIN-and-read-all, a peer RESET_STREAM or our reset;
sending on write_eof, a peer STOP_SENDING or our reset. When both have ended, the connection
forgets the stream (aioquic frees its own state once the peer has acknowledged ours).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from aioquic.quic.stream import QuicStream

from common.transport import StreamReset

if TYPE_CHECKING:
    from common.quic.connection import QuicTunnelConnection


class QuicTunnelStream:
    """A `TunnelStream` over one aioquic stream; made by `QuicTunnelConnection` only."""

    __slots__ = (
        "_chunks",
        "_conn",
        "_consumed",
        "_eof_sent",
        "_fin",
        "_peer_reset",
        "_peer_stop",
        "_reader",
        "_recv_done",
        "_reset_code",
        "_send_done",
        "_size",
        "_state",
        "_writer",
    )

    def __init__(self, conn: QuicTunnelConnection, state: QuicStream) -> None:
        self._conn = conn
        self._state = state
        self._chunks: deque[bytes] = deque()
        self._size = 0  # bytes buffered, unread
        self._consumed = 0  # bytes read (or discarded) in all
        self._fin = False
        self._peer_reset: int | None = None
        self._peer_stop: int | None = None
        self._reset_code: int | None = None
        self._eof_sent = False
        self._recv_done = False
        self._send_done = False
        self._reader: asyncio.Future[None] | None = None
        self._writer: asyncio.Future[None] | None = None

    @property
    def stream_id(self) -> int:
        return self._state.stream_id  # type: ignore[return-value]

    @property
    def buffered(self) -> int:
        """Bytes received and not yet read (for tests and metrics)."""
        return self._size

    # --- TunnelStream --------------------------------------------------------------------

    async def read(self, max_bytes: int = 65536) -> bytes:
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        while True:
            if self._peer_reset is not None:
                raise StreamReset(self._peer_reset)
            if self._chunks:
                return self._take(max_bytes)
            if self._fin:
                return b""
            if self._reset_code is not None:
                raise StreamReset(self._reset_code)
            self._conn.raise_if_closed()
            self._reader = self._conn.loop.create_future()
            try:
                await self._reader
            finally:
                self._reader = None

    async def write(self, data: bytes) -> None:
        self._check_writable()
        conn = self._conn
        if data:
            conn.engine.write(self._state, data)  # ours is known to be open for sending
            conn.schedule_transmit()
        if conn.engine.send_buffered(self._state) <= conn.options.high_watermark:
            return
        conn.blocked_writers.add(self)
        try:
            while conn.engine.send_buffered(self._state) > conn.options.low_watermark:
                self._writer = conn.loop.create_future()
                try:
                    await self._writer
                finally:
                    self._writer = None
                self._check_writable()
        finally:
            conn.blocked_writers.discard(self)

    async def write_eof(self) -> None:
        if self._eof_sent:
            return
        self._check_writable()
        self._eof_sent = True
        self._conn.engine.write(self._state, b"", end_stream=True)
        self._conn.schedule_transmit()
        self._send_finished()

    def reset(self, code: int) -> None:
        if self._reset_code is not None:
            return
        self._reset_code = code
        conn = self._conn
        if conn.closed is None:
            conn.engine.reset_stream(self.stream_id, code)  # no-op once all was acknowledged
            if not self._state.receiver.is_finished:
                conn.engine.stop_stream(self.stream_id, code)
            conn.schedule_transmit()
        self._discard()
        self._send_finished()
        self._recv_finished()

    # --- events from the connection ------------------------------------------------------

    def on_data(self, data: bytes, end_stream: bool) -> None:
        if data:
            self._chunks.append(data)
            self._size += len(data)
            self._conn.engine.unread += len(data)
        if end_stream:
            self._fin = True
        self._wake_reader()

    def on_reset(self, code: int) -> None:
        """The peer reset its sending side: unread data is dropped, reads raise."""
        self._peer_reset = code
        self._discard()
        self._recv_finished()

    def on_stop_sending(self, code: int) -> None:
        """The peer stopped reading: aioquic has reset our side, writes raise."""
        self._peer_stop = code
        self._wake_writer()
        self._send_finished()

    def on_closed(self) -> None:
        self._wake_reader()
        self._wake_writer()

    def wake_writer_if_drained(self) -> None:
        if self._conn.engine.send_buffered(self._state) <= self._conn.options.low_watermark:
            self._wake_writer()

    # --- internals -----------------------------------------------------------------------

    def _take(self, max_bytes: int) -> bytes:
        chunks = self._chunks
        data = chunks.popleft()
        size = len(data)
        if size > max_bytes:
            chunks.appendleft(data[max_bytes:])
            data = data[:max_bytes]
        elif chunks and size + len(chunks[0]) <= max_bytes:
            parts = [data]
            while chunks and size + len(chunks[0]) <= max_bytes:
                part = chunks.popleft()
                parts.append(part)
                size += len(part)
            data = b"".join(parts)
        self._consume(len(data))
        if self._fin and not chunks:
            self._recv_finished()
        return data

    def _consume(self, size: int) -> None:
        self._size -= size
        self._consumed += size
        self._conn.engine.unread -= size
        self._conn.credit(self._state, self._consumed)

    def _discard(self) -> None:
        if self._size:
            self._chunks.clear()
            self._consume(self._size)

    def _check_writable(self) -> None:
        if self._peer_stop is not None:
            raise StreamReset(self._peer_stop)
        if self._reset_code is not None:
            raise StreamReset(self._reset_code)
        self._conn.raise_if_closed()
        if self._eof_sent:
            raise RuntimeError("write after write_eof")

    def _recv_finished(self) -> None:
        self._wake_reader()
        if not self._recv_done:
            self._recv_done = True
            if self._send_done:
                self._conn.forget(self)

    def _send_finished(self) -> None:
        self._wake_writer()
        if not self._send_done:
            self._send_done = True
            if self._recv_done:
                self._conn.forget(self)

    def _wake_reader(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)

    def _wake_writer(self) -> None:
        if self._writer is not None and not self._writer.done():
            self._writer.set_result(None)
