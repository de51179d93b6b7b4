"""What a node or an agent reports in its `status` messages (docs/protocol.md, "Control channel").

The process builds a `StatusParts` when asked (its `report()` callback); the channel client adds
the envelope (times, software, the snapshot version) and problems of its own (a refused
snapshot, a certificate close to expiry).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class ServiceCounters:
    """One service: cumulative since the process started, except `in_flight`."""

    name: str
    requests: int = 0
    errors: int = 0  # responses >= 500, and streams that failed
    bytes_in: int = 0
    bytes_out: int = 0
    in_flight: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requests": self.requests,
            "errors": self.errors,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "in_flight": self.in_flight,
        }


@dataclass(frozen=True, slots=True)
class PeerConnection:
    """An agent connected to this node, or a node this agent is connected to."""

    kind: Literal["agent", "ingress"]
    id: str  # the peer's uuid in the control plane
    name: str
    connected_since: datetime
    rtt: float | None  # seconds

    def to_json(self) -> dict[str, Any]:
        rtt = None if self.rtt is None else round(self.rtt * 1000, 3)
        return {
            "kind": self.kind,
            "id": self.id,
            "name": self.name,
            "connected_since": self.connected_since.isoformat(),
            "rtt_ms": rtt,
        }


@dataclass(frozen=True, slots=True)
class StatusParts:
    services: list[ServiceCounters] = field(default_factory=list)
    connections: list[PeerConnection] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
