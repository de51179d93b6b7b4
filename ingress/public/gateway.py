"""What the public front end needs from the rest of the ingress node.

The front end parses, validates and answers HTTP; the node decides where a request goes
(`route`) and hands out a tunnel stream to an agent of that service (`lease`). The
composition root (`ingress/app.py`) implements `Gateway` over the routing table and the
agent pool, whose `ingress.agents.Lease` is a `TunnelLease`.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from common.transport import TunnelStream
from ingress.routing import Route


class TunnelLease(Protocol):
    """A tunnel stream to one agent; `async with` it, and the agent's slot is freed on exit."""

    @property
    def stream(self) -> TunnelStream: ...

    @property
    def agent(self) -> str:
        """The agent's id, for the access log."""
        ...

    async def __aenter__(self) -> object: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...


class Gateway(Protocol):
    """Routing and leasing, as seen from a public listener."""

    def route(self, host: str, path: str) -> Route | None:
        """The route for a request to `host` (lowercase, without port or trailing dot,
        IDNA A-labels; an IPv6 literal keeps its brackets) and `path` (the target's path
        as sent, without the query; `/` for `OPTIONS *`). None: 404, unknown host."""
        ...

    async def lease(self, service: str) -> TunnelLease:
        """A tunnel stream to an agent of `service`, to be used in `async with`.

        Raises:
            ingress.agents.AgentsBusy: every agent is at its stream limit (503).
            ingress.agents.NoAgentAvailable: no agent is connected for it (502).
        """
        ...
