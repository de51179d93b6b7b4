"""The control channel: a WebSocket per ingress node and edge agent that carries versioned full
snapshots of its configuration down and status up (docs/protocol.md, "Control channel").

- `route`: the WebSocket endpoint and its handshake's framing;
- `handshake`: the hello's proof by the tunnel certificate's key, checked like a renewal;
- `session`: one open channel (push snapshots, read acks and status, watch heartbeats);
- `snapshots`: what a node or an agent is told, read from the database, and its version;
- `changes`: which commits change a snapshot, and waking channels on every replica;
- `reports`: status messages handed to control.services.status.
"""

from __future__ import annotations

from fastapi import FastAPI

from control.channel.changes import ChangeHub
from control.channel.reports import StatusReports
from control.channel.route import Channels, router
from control.channel.snapshots import UnsealedKeys
from control.runtime import Runtime

__all__ = ["ChangeHub", "install"]


def install(app: FastAPI, rt: Runtime, *, prefix: str) -> ChangeHub:
    """Mount the channel route on `app`; the returned hub must run for the app's lifetime
    (`async with hub.running(): …` in the lifespan)."""
    hub = ChangeHub(rt.sessionmaker, rt.engine)
    keys = UnsealedKeys(rt.ca.passphrase)
    app.state.channels = Channels(rt, hub, StatusReports(rt), keys)
    app.include_router(router, prefix=prefix)
    return hub
