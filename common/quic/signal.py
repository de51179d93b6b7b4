"""A reusable wake-up for any number of waiters (each re-checks its condition when woken)."""

from __future__ import annotations

import asyncio


class Signal:
    """`await signal.wait()` until the next `fire()`; waiters never see an exception here."""

    __slots__ = ("_future", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._future: asyncio.Future[None] | None = None

    @property
    def waiting(self) -> bool:
        return self._future is not None

    async def wait(self) -> None:
        if self._future is None:
            self._future = self._loop.create_future()
        await asyncio.shield(self._future)

    def fire(self) -> None:
        future, self._future = self._future, None
        if future is not None and not future.done():
            future.set_result(None)
