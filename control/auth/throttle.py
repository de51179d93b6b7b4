"""Login throttling per account and per client address (moving windows, no permanent lockout).

Only failures count. When either key is over its limit the attempt is refused before the
password is even checked, with the seconds until the oldest counted failure leaves the window.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string


class LoginThrottle:
    def __init__(self, account_limits: str, ip_limits: str, storage_url: str) -> None:
        storage = storage_from_string(f"async+{storage_url}")
        self._limiter = MovingWindowRateLimiter(storage)
        self._account = parse_many(account_limits)
        self._ip = parse_many(ip_limits)

    def _keys(self, email: str, ip: str | None) -> list[tuple[RateLimitItem, str, str]]:
        keys = [(item, "account", email.lower()) for item in self._account]
        if ip:
            keys += [(item, "ip", ip) for item in self._ip]
        return keys

    async def retry_after(self, email: str, ip: str | None) -> int | None:
        """Seconds to wait when an attempt now would be refused, else None."""
        waits = []
        for item, kind, key in self._keys(email, ip):
            if not await self._limiter.test(item, "login", kind, key):
                stats = await self._limiter.get_window_stats(item, "login", kind, key)
                waits.append(max(1, math.ceil(stats.reset_time - time.time())))
        return max(waits) if waits else None

    async def failed(self, email: str, ip: str | None) -> None:
        for item, kind, key in self._keys(email, ip):
            await self._limiter.hit(item, "login", kind, key)
