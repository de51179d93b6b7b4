"""The connected agents of each service, and leasing one of them for a request.

A lease picks, among the agents that serve the service and are not draining, the one with
the fewest streams in flight (ties go round-robin, so equal replicas share the load), counts
the new stream against it before opening it (so concurrent leases see each other), and opens
a tunnel stream on its connection. An agent at its `max_streams` is skipped; if opening fails
(the connection just died, or the peer's stream limit held us past `open_timeout`), the next
agent is tried. Only when none is left does `lease` raise `NoAgentAvailable`.

The pool is plain data changed only from the event loop: no locks, no awaits while choosing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from types import TracebackType

from prometheus_client import Gauge

from common.transport import ConnectionClosed, TransportError, TunnelConnection, TunnelStream

log = logging.getLogger(__name__)


class NoAgentAvailable(Exception):
    """The service is known, but no connected agent can take a new stream for it."""

    def __init__(self, service: str, reason: str = "no agent connected") -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason


class AgentsBusy(NoAgentAvailable):
    """Agents are connected, but every one has `max_streams` in flight (answer 503)."""


class Agent:
    """One registered agent connection: who it is, what it serves, how busy it is."""

    __slots__ = ("connection", "draining", "in_flight", "max_streams", "name", "org", "services")

    def __init__(
        self, connection: TunnelConnection, *, max_streams: int, services: frozenset[str]
    ) -> None:
        peer = connection.peer
        self.connection = connection
        self.name = peer.name
        self.org = peer.org
        self.max_streams = max_streams
        self.services = services
        self.in_flight = 0
        self.draining = False

    def __repr__(self) -> str:
        return f"<Agent {self.name} in_flight={self.in_flight} draining={self.draining}>"


class Lease:
    """A tunnel stream opened on one agent; `async with` it, and the slot is freed on exit."""

    __slots__ = ("_agent", "_released", "stream")

    def __init__(self, agent: Agent, stream: TunnelStream) -> None:
        self._agent = agent
        self._released = False
        self.stream = stream

    @property
    def agent(self) -> str:
        """The agent id (its certificate identity)."""
        return self._agent.name

    def release(self) -> None:
        """Free the agent's slot (idempotent; `async with` calls it)."""
        if not self._released:
            self._released = True
            self._agent.in_flight -= 1

    async def __aenter__(self) -> Lease:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class _Deadline:
    """Cancels `task` once, when its timer fires, and remembers that it did."""

    __slots__ = ("expired", "task")

    def __init__(self, task: asyncio.Task[object] | None) -> None:
        self.task = task
        self.expired = False

    def expire(self) -> None:
        if self.task is not None:
            self.expired = True
            self.task.cancel()


class AgentPool:
    """Agents by service; `lease(service)` opens a stream on the least busy one."""

    def __init__(self, *, open_timeout: float = 5.0, gauge: Gauge | None = None) -> None:
        self._open_timeout = open_timeout
        self._gauge = gauge  # kokoa_ingress_agents_connected{service}
        self._by_service: dict[str, tuple[Agent, ...]] = {}
        self._agents: set[Agent] = set()
        self._turn = 0
        self._tracked: frozenset[str] = frozenset()

    # ---- membership (called by the agent sessions) -------------------------------------

    def add(self, agent: Agent) -> None:
        """Make `agent` available for its `services`."""
        self._agents.add(agent)
        self._index(agent, agent.services, ())

    def set_services(self, agent: Agent, services: frozenset[str]) -> None:
        """Change what a registered agent serves."""
        old, agent.services = agent.services, services
        if agent in self._agents:
            self._index(agent, services - old, old - services)

    def remove(self, agent: Agent) -> None:
        """Forget `agent` (idempotent)."""
        if agent in self._agents:
            self._agents.discard(agent)
            self._index(agent, (), agent.services)

    def drain(self, agent: Agent) -> None:
        """Open no new stream on `agent`; the streams in flight go on."""
        agent.draining = True

    def agents(self) -> list[Agent]:
        return list(self._agents)

    def count(self, service: str) -> int:
        """How many agents are registered for `service` (draining ones included)."""
        return len(self._by_service.get(service, ()))

    def track(self, services: Iterable[str]) -> None:
        """Report every configured service in the gauge (0 when no agent is connected) and
        drop the series of services no longer configured that no agent serves."""
        tracked, self._tracked = self._tracked, frozenset(services)
        if self._gauge is None:
            return
        for service in tracked - self._tracked:
            if not self.count(service):
                self._gauge.remove(service)
        for service in self._tracked:
            self._report(service)

    def _index(self, agent: Agent, added: Iterable[str], removed: Iterable[str]) -> None:
        for service in added:
            self._by_service[service] = (*self._by_service.get(service, ()), agent)
            self._report(service)
        for service in removed:
            rest = tuple(a for a in self._by_service.get(service, ()) if a is not agent)
            if rest:
                self._by_service[service] = rest
            else:
                self._by_service.pop(service, None)
            self._report(service)

    def _report(self, service: str) -> None:
        if self._gauge is not None:
            self._gauge.labels(service=service).set(self.count(service))

    # ---- leasing (called per request) ---------------------------------------------------

    async def lease(self, service: str, *, exclude: frozenset[str] = frozenset()) -> Lease:
        """Open a tunnel stream for `service` on the least busy agent.

        Args:
            exclude: agent ids not to use (say, one that just answered BUSY).

        Raises:
            AgentsBusy: every candidate has `max_streams` in flight.
            NoAgentAvailable: no agent serves `service`, or none could open a stream.
        """
        tried: set[Agent] = set()
        while True:
            agent = self._pick(service, tried, exclude)
            agent.in_flight += 1
            try:
                stream = await self._open(agent.connection)
            except (TransportError, TimeoutError) as exc:
                agent.in_flight -= 1
                tried.add(agent)
                self._failed(agent, service, exc)
                continue
            except BaseException:
                agent.in_flight -= 1
                raise
            return Lease(agent, stream)

    async def _open(self, connection: TunnelConnection) -> TunnelStream:
        """`connection.open_stream()`, or TimeoutError after `open_timeout` seconds.

        A timer that cancels the task, as `asyncio.timeout` does, at a quarter of its cost,
        and only when the peer's stream limit makes us wait (this runs once per request, and
        almost never waits).
        """
        stream = connection.open_stream_now()
        if stream is not None:
            return stream
        loop = asyncio.get_running_loop()
        deadline = _Deadline(asyncio.current_task(loop))
        timer = loop.call_later(self._open_timeout, deadline.expire)
        try:
            return await connection.open_stream()
        except asyncio.CancelledError:
            if deadline.expired and deadline.task is not None and deadline.task.uncancel() == 0:
                raise TimeoutError("no stream opened in time") from None
            raise
        finally:
            timer.cancel()

    def _pick(self, service: str, tried: set[Agent], exclude: frozenset[str]) -> Agent:
        candidates = self._by_service.get(service, ())
        count = len(candidates)
        start = self._turn % count if count else 0
        self._turn += 1
        best: Agent | None = None
        busy = False
        for i in range(count):
            agent = candidates[(start + i) % count]
            if agent.draining or agent in tried or agent.name in exclude:
                continue
            if agent.in_flight >= agent.max_streams:
                busy = True
            elif best is None or agent.in_flight < best.in_flight:
                best = agent
        if best is not None:
            return best
        if busy:
            raise AgentsBusy(service, "every agent has max_streams in flight")
        raise NoAgentAvailable(service, "no agent available" if count else "no agent connected")

    def _failed(self, agent: Agent, service: str, exc: BaseException) -> None:
        log.warning(
            "could not open a stream to an agent; trying the next",
            extra={"agent": agent.name, "service": service, "error": repr(exc)},
        )
        if isinstance(exc, ConnectionClosed):
            self.remove(agent)
