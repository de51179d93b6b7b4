"""Request body bytes between the client socket and the tunnel, with read flow control.

The parser pushes body bytes (after an upgrade: raw bytes) as they arrive; the exchange
takes them and writes them to the tunnel stream, whose `write` waits while the agent is
behind. Above `HIGH_WATER` buffered bytes the client socket stops being read; once the
exchange has taken the buffer down to `LOW_WATER`, reading resumes. So a slow agent slows
the client through TCP, and a connection never holds more than about `HIGH_WATER` plus one
socket read of body.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024


class ClientGone(Exception):
    """The client closed the connection (or broke the framing) before the body ended."""


class ReadControl(Protocol):
    """What the buffer needs of the client connection to throttle it."""

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


class RequestBody:
    """A FIFO of body chunks; `take` returns b"" once the body is complete."""

    __slots__ = (
        "_chunks",
        "_control",
        "_discarding",
        "_error",
        "_paused",
        "_size",
        "_waiter",
        "done",
        "received",
    )

    def __init__(self, control: ReadControl) -> None:
        self._control = control
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._error: Exception | None = None
        self._discarding = False
        self.done = False  # the client sent the whole body
        self.received = 0  # body bytes received so far

    @property
    def failed(self) -> bool:
        return self._error is not None

    @property
    def buffered(self) -> int:
        return self._size

    @property
    def starved(self) -> bool:
        """`take` is waiting for bytes the client has not sent yet."""
        return self._waiter is not None

    def push(self, data: bytes) -> None:
        """Body bytes from the client (called by the parser)."""
        if self._discarding:
            self.received += len(data)
            return
        self._chunks.append(data)
        self._size += len(data)
        self.received += len(data)
        if self._size > HIGH_WATER and not self._paused:
            self._paused = True
            self._control.pause_reading()
        self._wake()

    def finish(self) -> None:
        """The body is complete."""
        self.done = True
        self._wake()

    def fail(self, error: Exception) -> None:
        """The body will never be complete (the client went away or broke the framing)."""
        if not self.done and self._error is None:
            self._error = error
            self._wake()

    def discard(self) -> None:
        """Nobody will take the body any more: drop what is buffered and what comes."""
        self._discarding = True
        self._chunks.clear()
        self._size = 0
        self._resume()

    def take_all(self) -> bytes:
        """Everything buffered, at once (for a body that arrived with its head)."""
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        self._resume()
        return data

    async def take(self) -> bytes:
        """The next buffered chunk, waiting for one; b"" at the end of the body.

        Raises:
            ClientGone: the body will never be complete.
        """
        while not self._chunks:
            if self.done:
                return b""
            if self._error is not None:
                raise self._error
            self._resume()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._chunks.popleft()
        self._size -= len(data)
        if self._paused and self._size <= LOW_WATER:
            self._resume()
        return data

    def _resume(self) -> None:
        if self._paused:
            self._paused = False
            self._control.resume_reading()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
