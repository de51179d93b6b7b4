"""Per-service counters of the streams the agent served, for the control channel's status
message: cumulative since the process started (requests, errors, body bytes), and the streams
in flight now. Plain integers changed from the event loop: no locks.

`errors` counts streams answered with a status >= 500 and streams that failed here (reset with
one of our codes: the origin refused, timed out or broke the protocol; or the connection to the
node was lost). A stream the ingress reset (its client went away) is no error of the service.
"""

from __future__ import annotations


class ServiceStats:
    __slots__ = ("bytes_in", "bytes_out", "errors", "in_flight", "requests")

    def __init__(self) -> None:
        self.requests = self.errors = self.bytes_in = self.bytes_out = self.in_flight = 0


class Counters:
    """The counters of every service that had a stream (names come from our configuration)."""

    def __init__(self) -> None:
        self._services: dict[str, ServiceStats] = {}

    def begin(self, service: str) -> ServiceStats:
        """A stream for `service` starts."""
        stats = self._services.get(service)
        if stats is None:
            stats = self._services[service] = ServiceStats()
        stats.in_flight += 1
        return stats

    @staticmethod
    def end(
        stats: ServiceStats, *, status: int, failed: bool, bytes_in: int, bytes_out: int
    ) -> None:
        """The stream `begin` returned `stats` for has ended."""
        stats.in_flight -= 1
        stats.requests += 1
        if status >= 500 or failed:
            stats.errors += 1
        stats.bytes_in += bytes_in
        stats.bytes_out += bytes_out

    def stats(self) -> dict[str, ServiceStats]:
        """The counters of every service that had a stream, by name (live objects: read them
        at once)."""
        return dict(self._services)
