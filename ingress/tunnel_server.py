"""The agents' side of an ingress node: one `AgentSession` per connection, all known here.

`TunnelServer.handle` is the connection handler given to `common.quic.serve` (any transport
giving `TunnelConnection`s will do): the connection lives as long as its session runs. The
node calls `reconfigure()` after a reload, `revoke()` after new revocations arrived (the
sessions of revoked agents are closed at once), and `drain()` when it stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from common.transport import TunnelConnection
from ingress.agents import AgentPool
from ingress.control_stream import AgentSession, RevocationCheck
from ingress.settings import IngressSettings

log = logging.getLogger(__name__)


class TunnelServer:
    """Owns the sessions of the connected agents and keeps the pool in step with them."""

    def __init__(
        self,
        pool: AgentPool,
        settings: Callable[[], IngressSettings],
        is_revoked: RevocationCheck | None = None,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._is_revoked = is_revoked
        self._sessions: set[AgentSession] = set()
        self._draining: str | None = None
        pool.track(service.name for service in settings().services)

    @property
    def sessions(self) -> frozenset[AgentSession]:
        return frozenset(self._sessions)

    async def handle(self, conn: TunnelConnection) -> None:
        """Serve one agent connection until it ends (the QUIC server's `on_connection`)."""
        session = AgentSession(conn, self._pool, self._settings, self._is_revoked)
        self._sessions.add(session)
        try:
            if self._draining is not None:
                session.drain_on_hello(self._draining)
            await session.run()
        finally:
            self._sessions.discard(session)

    def reconfigure(self) -> None:
        """Re-evaluate every agent's claim against the current settings."""
        for session in list(self._sessions):
            session.reevaluate()
        self._pool.track(service.name for service in self._settings().services)

    def revoke(self) -> int:
        """Close the connection of every agent whose certificate is now revoked; how many."""
        closed = 0
        for session in list(self._sessions):
            if session.revoked():
                session.revoke()
                closed += 1
        if closed:
            log.warning("revoked agents disconnected", extra={"agents": closed})
        return closed

    async def drain(self, reason: str = "node shutting down") -> None:
        """Send DRAIN to every agent: no new streams; those in flight finish."""
        self._draining = reason
        async with asyncio.TaskGroup() as group:
            for session in list(self._sessions):
                group.create_task(session.drain(reason), name=f"drain-{session.peer.name}")
        log.info("agents told to drain", extra={"agents": len(self._sessions)})
