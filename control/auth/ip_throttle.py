"""Throttling of unauthenticated endpoints per client address (moving windows, failures only).

Like login throttling (control/auth/throttle.py) but keyed by the client's address alone:
enrollment and certificate renewal have no account to key on. Only failures count, so a
fleet enrolling through one NAT address is not slowed down by its own successes.
"""

from __future__ import annotations

import math
import time

from limits import parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string


class IpThrottle:
    def __init__(self, namespace: str, limits: str, storage_url: str) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(f"async+{storage_url}"))
        self._namespace = namespace
        self._items = parse_many(limits)

    async def retry_after(self, ip: str | None) -> int | None:
        """Seconds to wait when an attempt from `ip` now would be refused, else None."""
        if not ip:
            return None
        waits = []
        for item in self._items:
            if not await self._limiter.test(item, self._namespace, ip):
                stats = await self._limiter.get_window_stats(item, self._namespace, ip)
                waits.append(max(1, math.ceil(stats.reset_time - time.time())))
        return max(waits) if waits else None

    async def failed(self, ip: str | None) -> None:
        if ip:
            for item in self._items:
                await self._limiter.hit(item, self._namespace, ip)
