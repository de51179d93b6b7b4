"""The control channel's client, shared by ingress nodes and edge agents (docs/protocol.md,
"Control channel"; docs/enrollment.md).

An enrolled process holds one WebSocket to the control plane: versioned full snapshots come
down, acks, nacks and status go up. `ChannelClient(…).restore()` applies the snapshot stored
by an earlier run (before the process listens); `run()` keeps the channel for ever.

- `messages`: the frames, read (`parse`, never raising but `ChannelProtocolError`) and built;
- `snapshot`: the shapes of the two kinds of config, versions, `SnapshotRejected`;
- `protocol`: the client's phases and decisions (sans-IO);
- `status`: what a status message reports;
- `client`: the asyncio shell (websockets) and when it dials again (`RetryPolicy`, with
  common/backoff.py).

Nothing here is imported by a standalone (`--control`-less) node or agent.
"""

from importlib.metadata import PackageNotFoundError, version

from common.channel.client import ChannelClient, RetryPolicy, channel_url
from common.channel.snapshot import (
    AgentConfig,
    IngressConfig,
    Snapshot,
    SnapshotRejected,
)
from common.channel.status import PeerConnection, ServiceCounters, StatusParts


def software() -> str:
    """What a hello and a status message say we are: "kokoa <version>"."""
    try:
        return f"kokoa {version('kokoa')}"
    except PackageNotFoundError:
        return "kokoa unknown"


__all__ = [
    "AgentConfig",
    "ChannelClient",
    "IngressConfig",
    "PeerConnection",
    "RetryPolicy",
    "ServiceCounters",
    "Snapshot",
    "SnapshotRejected",
    "StatusParts",
    "channel_url",
    "software",
]
