"""Reconnection delays: capped exponential backoff with full jitter (pure, no I/O).

Used by the edge agent for its tunnels to ingress nodes (edge/supervisor.py) and by ingress
nodes and agents for their control channel (common/channel/client.py).

After the n-th failure in a row (n counted from 0) the caller waits a random time in
``[0, min(cap, initial * multiplier**n))`` — "full jitter" as in the AWS Architecture Blog's
*Exponential Backoff And Jitter*: of the schemes compared there it spreads a crowd of
reconnecting processes best (a restarted ingress node or control plane is not hit by all of
them at once) for the least total wait.

The sequence starts again once a connection has stayed healthy for `reset_after` seconds, so
a node that accepts and then drops connections at once (a crash loop, a refusal after the
handshake) keeps being retried slowly instead of hammered.

`Backoff` takes its clock and its random source as arguments: tests drive both.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """The shape of the delays; see the module docstring."""

    initial: float = 0.5
    cap: float = 15.0
    multiplier: float = 2.0
    reset_after: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.cap:
            raise ValueError("need 0 < initial <= cap")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")
        if self.reset_after < 0:
            raise ValueError("reset_after must not be negative")

    def ceiling(self, attempt: int, cap: float | None = None) -> float:
        """The largest delay after failure number `attempt` (0-based), capped at `cap` (the
        policy's own by default)."""
        cap = self.cap if cap is None else cap
        if attempt >= self._steps_to(cap):  # also keeps the power below float overflow
            return cap
        return min(cap, self.initial * self.multiplier**attempt)

    def _steps_to(self, cap: float) -> float:
        if self.multiplier == 1 or cap <= 0:
            return math.inf
        return math.ceil(math.log(cap / self.initial, self.multiplier))


class Backoff:
    """The retry state of one supervised connection.

    Call `connected()` when a connection becomes healthy and `failed()` when an attempt or a
    connection ends; `failed()` returns how long to wait before the next attempt.
    """

    def __init__(
        self,
        policy: BackoffPolicy,
        *,
        clock: Callable[[], float],
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._rand = rand
        self._attempt = 0
        self._up_since: float | None = None

    @property
    def attempt(self) -> int:
        """Failures in a row since the last reset."""
        return self._attempt

    def connected(self) -> None:
        """A connection is up and healthy (from now on it counts towards `reset_after`)."""
        self._up_since = self._clock()

    def failed(self, *, to_cap: bool = False, cap: float | None = None) -> float:
        """An attempt failed or a connection ended: the delay before the next attempt.

        Args:
            to_cap: jump straight to the cap (a refusal that retrying soon will not fix).
            cap: this time, grow up to `cap` instead of the policy's (the control channel's
                longer cap after the control plane refused its identity).
        """
        if self._up_since is not None:
            if self._clock() - self._up_since >= self.policy.reset_after:
                self._attempt = 0
            self._up_since = None
        cap = self.policy.cap if cap is None else cap
        ceiling = cap if to_cap else self.policy.ceiling(self._attempt, cap)
        self._attempt += 1
        return self._rand() * ceiling

    def reset(self) -> None:
        """Start the sequence again (the configuration changed, say)."""
        self._attempt = 0
        self._up_since = None
