"""The bytes an origin sent that the tunnel has not taken yet, with read flow control.

Above `HIGH_WATER` buffered bytes the transport stops reading the socket; once the consumer
has taken enough to get down to `LOW_WATER`, it reads again. So a slow tunnel slows the
origin through TCP, and the agent never holds more than about `HIGH_WATER` plus one socket
read per connection.
"""

from __future__ import annotations

import asyncio
from collections import deque

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024


class ReceiveBuffer:
    """A FIFO of received chunks that pauses and resumes its transport's reading."""

    __slots__ = ("_chunks", "_paused", "_size", "transport")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._paused = False

    def __bool__(self) -> bool:
        return bool(self._chunks)

    def __len__(self) -> int:
        """Buffered bytes."""
        return self._size

    def push(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size > HIGH_WATER and not self._paused:
            self._paused = True
            if self.transport is not None:
                self.transport.pause_reading()

    def take(self, max_bytes: int) -> bytes:
        """The oldest chunk, joined with the next ones while they fit in `max_bytes`."""
        chunks = self._chunks
        first = chunks.popleft()
        if chunks and len(first) + len(chunks[0]) <= max_bytes:
            parts = [first]
            size = len(first)
            while chunks and size + len(chunks[0]) <= max_bytes:
                size += len(chunks[0])
                parts.append(chunks.popleft())
            first = b"".join(parts)
        self._size -= len(first)
        if self._paused and self._size <= LOW_WATER:
            self._paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
        return first
