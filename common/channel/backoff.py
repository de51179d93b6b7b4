"""When to dial the control plane again: exponential backoff with full jitter (pure).

After the n-th failure in a row (from 0) the client waits a random time in
`[0, min(cap, initial * 2**n))` (full jitter, as edge/backoff.py does for tunnels: a restarted
control plane is not hit by every node and agent at once). The sequence starts again after a
channel stayed up `reset_after` seconds. A 4403 (revoked or disabled) raises the cap to
`forbidden_cap`: retrying will not help soon, but an operator may fix it, and the log says so.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    initial: float = 0.5
    cap: float = 30.0
    forbidden_cap: float = 300.0
    reset_after: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.cap <= self.forbidden_cap:
            raise ValueError("need 0 < initial <= cap <= forbidden_cap")


class Retry:
    """The retry state of one control channel; `clock` and `rand` are injectable."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        clock: Callable[[], float],
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self.attempt = 0  # failures in a row
        self._clock = clock
        self._rand = rand
        self._up_since: float | None = None

    def connected(self) -> None:
        """The channel is up (welcomed); from now on it counts towards `reset_after`."""
        self._up_since = self._clock()

    def failed(self, *, forbidden: bool = False) -> float:
        """The channel ended or could not be opened: seconds to wait before the next try."""
        if self._up_since is not None:
            if self._clock() - self._up_since >= self.policy.reset_after:
                self.attempt = 0
            self._up_since = None
        policy = self.policy
        cap = policy.forbidden_cap if forbidden else policy.cap
        ceiling = min(cap, policy.initial * 2.0 ** min(self.attempt, 64))
        self.attempt += 1
        return self._rand() * ceiling
