"""An in-memory `TunnelStream` pair: the tunnel side of proxy unit tests, without QUIC.

It keeps the transport contract that matters to the proxy: `write` waits while the peer has
more than `high_water` unread bytes (so backpressure is real), `read` returns b"" after FIN,
and `reset` makes the peer's reads and writes raise `StreamReset` with the code. Each
direction records the most bytes it ever held unread, for memory assertions.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from common.transport import StreamReset


@dataclass
class _Direction:
    high_water: int
    chunks: deque[bytes] = field(default_factory=deque)
    size: int = 0
    peak: int = 0
    fin: bool = False
    reset: int | None = None  # the writer reset (RESET_STREAM): reads fail
    stopped: int | None = None  # the reader reset (STOP_SENDING): writes fail
    waiters: list[asyncio.Future[None]] = field(default_factory=list)

    def notify(self) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.waiters.clear()

    async def wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        await waiter


class MemoryStream:
    """One end of a bidirectional in-memory stream."""

    def __init__(self, stream_id: int, inbound: _Direction, outbound: _Direction) -> None:
        self._id = stream_id
        self._in = inbound
        self._out = outbound
        self.reset_code: int | None = None  # set when this end called reset()

    @property
    def stream_id(self) -> int:
        return self._id

    @property
    def peak_unread_outbound(self) -> int:
        """The most bytes this end's writes ever left unread by the peer."""
        return self._out.peak

    async def read(self, max_bytes: int = 65536) -> bytes:
        inbound = self._in
        while True:
            if inbound.reset is not None:
                raise StreamReset(inbound.reset)
            if inbound.chunks:
                return self._take(max_bytes)
            if inbound.fin:
                return b""
            await inbound.wait()

    def _take(self, max_bytes: int) -> bytes:
        inbound = self._in
        first = inbound.chunks.popleft()
        if len(first) > max_bytes:
            inbound.chunks.appendleft(first[max_bytes:])
            first = first[:max_bytes]
        inbound.size -= len(first)
        inbound.notify()
        return first

    async def write(self, data: bytes) -> None:
        out = self._out
        self._check_writable()
        if data:
            out.chunks.append(bytes(data))
            out.size += len(data)
            out.peak = max(out.peak, out.size)
            out.notify()
        while out.size > out.high_water:
            await out.wait()
            self._check_writable()

    def _check_writable(self) -> None:
        if self._out.stopped is not None:
            raise StreamReset(self._out.stopped)
        if self.reset_code is not None or self._out.fin:
            raise RuntimeError("write after reset or FIN")

    async def write_eof(self) -> None:
        self._check_writable()
        self._out.fin = True
        self._out.notify()

    def reset(self, code: int) -> None:
        if self.reset_code is not None:
            return
        self.reset_code = code
        if not self._out.fin:
            self._out.reset = code
            self._out.chunks.clear()
        self._in.stopped = code
        self._out.notify()
        self._in.notify()


def stream_pair(high_water: int = 1 << 20, stream_id: int = 1) -> tuple[MemoryStream, MemoryStream]:
    """Two connected ends: (ingress side, agent side)."""
    down = _Direction(high_water)  # agent → ingress
    up = _Direction(high_water)  # ingress → agent
    return MemoryStream(stream_id, down, up), MemoryStream(stream_id, up, down)
