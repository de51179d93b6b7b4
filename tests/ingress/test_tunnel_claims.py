"""Which claimed services an agent identity may serve (pure)."""

from __future__ import annotations

import pytest

from common.transport import PeerIdentity
from ingress.claims import NOT_ALLOWED, UNKNOWN, evaluate
from ingress.settings import ServiceConfig

SERVICES = [
    ServiceConfig(name="web", hosts=("web.test",), agents=("agent-1", "agent-2")),
    ServiceConfig(name="api", hosts=("api.test",), agents=("agent-1",)),
    ServiceConfig(name="acme", hosts=("acme.test",), agents=("acme/agent-1",)),
    ServiceConfig(name="nobody", hosts=("nobody.test",)),
]


@pytest.mark.parametrize(
    ("peer", "claim", "accepted", "rejected"),
    [
        (PeerIdentity("agent-1", "agent", 1), ("api", "web"), ("api", "web"), ()),
        (PeerIdentity("agent-1", "agent", 1), ("web", "web"), ("web",), ()),
        (PeerIdentity("agent-2", "agent", 1), ("web", "api"), ("web",), (("api", NOT_ALLOWED),)),
        (PeerIdentity("agent-1", "agent", 1), ("zzz",), (), (("zzz", UNKNOWN),)),
        (PeerIdentity("agent-1", "agent", 1), ("nobody",), (), (("nobody", NOT_ALLOWED),)),
        (PeerIdentity("agent-1", "agent", 1), (), (), ()),
        # An organisation's certificate matches only `org/id` entries, and the reverse.
        (PeerIdentity("agent-1", "agent", 1, "acme"), ("acme",), ("acme",), ()),
        (
            PeerIdentity("agent-1", "agent", 1, "acme"),
            ("web",),
            (),
            (("web", NOT_ALLOWED),),
        ),
        (PeerIdentity("agent-1", "agent", 1), ("acme",), (), (("acme", NOT_ALLOWED),)),
        (PeerIdentity("agent-1", "agent", 1, "other"), ("acme",), (), (("acme", NOT_ALLOWED),)),
    ],
)
def test_evaluate(
    peer: PeerIdentity,
    claim: tuple[str, ...],
    accepted: tuple[str, ...],
    rejected: tuple[tuple[str, str], ...],
) -> None:
    assert evaluate(SERVICES, peer, claim) == (accepted, rejected)
