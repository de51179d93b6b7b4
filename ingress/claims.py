"""Which of the services an agent claims it may serve here: a pure decision.

A claimed service is accepted when this node has it and the agent's certificate identity is
listed in the service's `agents` (as `id`, or `org/id` for an organisation's certificate).
The identity comes from the certificate, never from a message (docs/protocol.md §1).
"""

from __future__ import annotations

from collections.abc import Sequence

from common.transport import PeerIdentity
from ingress.settings import ServiceConfig

UNKNOWN = "unknown service"
NOT_ALLOWED = "not allowed for this agent"


def evaluate(
    services: Sequence[ServiceConfig], peer: PeerIdentity, claimed: Sequence[str]
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Split an agent's claim into (accepted, rejected with the reason), in claim order."""
    by_name = {service.name: service for service in services}
    accepted: list[str] = []
    rejected: dict[str, str] = {}
    for name in claimed:
        service = by_name.get(name)
        if service is None:
            rejected[name] = UNKNOWN
        elif not service.allows(peer.name, peer.org):
            rejected[name] = NOT_ALLOWED
        elif name not in accepted:
            accepted.append(name)
    return tuple(accepted), tuple(rejected.items())
