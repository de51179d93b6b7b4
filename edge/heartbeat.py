"""Heartbeat bookkeeping for one connection (sans-IO: the caller passes `now`).

docs/protocol.md §4.3: the agent sends PING every interval; a peer silent for three
intervals (no frame of any kind) is dead. PONGs echo the PING's `seq`, which gives the
round-trip time. The tunnel's loop asks `due(now)` for the next PING, `expired(now)` for the
verdict, and sleeps until `wake_at`.
"""

from __future__ import annotations

from collections import OrderedDict

from common.wire import Ping

SILENT_INTERVALS = 3
MAX_OUTSTANDING = 8  # PINGs remembered for RTT; older unanswered ones are forgotten


class Heartbeat:
    """When to PING, when the peer counts as dead, and the RTT its PONGs show."""

    def __init__(self, interval: float, now: float) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.rtt: float | None = None
        self._last_heard = now
        self._next_ping = now  # the first PING goes out at once: an early RTT sample
        self._seq = 0
        self._sent: OrderedDict[int, float] = OrderedDict()

    @property
    def deadline(self) -> float:
        """When the peer counts as dead unless a frame arrives before."""
        return self._last_heard + SILENT_INTERVALS * self.interval

    @property
    def wake_at(self) -> float:
        """When the loop has something to do: the next PING or the deadline."""
        return min(self._next_ping, self.deadline)

    def heard(self, now: float) -> None:
        """The peer sent something."""
        self._last_heard = max(self._last_heard, now)

    def expired(self, now: float) -> bool:
        return now >= self.deadline

    def due(self, now: float) -> Ping | None:
        """The PING to send now, if one is due."""
        if now < self._next_ping:
            return None
        self._seq += 1
        self._sent[self._seq] = now
        if len(self._sent) > MAX_OUTSTANDING:
            self._sent.popitem(last=False)
        self._next_ping = now + self.interval
        return Ping(self._seq)

    def pong(self, seq: int, now: float) -> float | None:
        """A PONG arrived: the round-trip time it measures (None for an unknown `seq`)."""
        sent = self._sent.pop(seq, None)
        if sent is None:
            return None
        self.rtt = now - sent
        return self.rtt
