"""The WebSocket route `/api/v1/channel` (not in the OpenAPI: it is no REST resource).

accept (subprotocol kokoa-channel.v1) → challenge → hello → welcome + snapshot → the open
channel (control/channel/session.py). Every way it ends is a close code with a reason, never a
traceback: 4400 protocol, 4401 refused, 4403 revoked or disabled, 4408 timeout, 1009 too big.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlalchemy.exc import SQLAlchemyError

from control.channel.changes import ChangeHub
from control.channel.handshake import Peer, authenticate
from control.channel.messages import (
    INTERNAL_ERROR,
    PROTOCOL_ERROR,
    SUBPROTOCOL,
    TIMEOUT,
    ChannelClosing,
    Hello,
    decode,
    error,
    parse,
    unexpected,
)
from control.channel.reports import StatusReports
from control.channel.session import Channel
from control.channel.snapshots import UnsealedKeys
from control.runtime import Runtime
from control.services import renewal

log = logging.getLogger(__name__)
HELLO_TIMEOUT = 10.0  # seconds from the challenge to the hello

router = APIRouter()


@dataclass(frozen=True)
class Channels:
    """What the route needs of its app: kept on `app.state.channels` by `install`."""

    rt: Runtime
    hub: ChangeHub
    reports: StatusReports
    keys: UnsealedKeys  # public certificates' keys, decrypted once for every channel


@router.websocket("/channel")
async def channel(websocket: WebSocket) -> None:
    """The control channel of an ingress node or an edge agent (docs/protocol.md)."""
    channels: Channels = websocket.app.state.channels
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    peer: Peer | None = None
    try:
        if SUBPROTOCOL not in offered:
            raise ChannelClosing(PROTOCOL_ERROR, f"the subprotocol must be {SUBPROTOCOL}")
        nonce = renewal.challenge(channels.rt).nonce
        await websocket.send_json({"type": "challenge", "nonce": nonce})
        hello = await _hello(websocket)
        ip = websocket.client.host if websocket.client else None
        peer = await authenticate(channels.rt, nonce, hello, ip)
        channels.reports.opened(peer)
        await Channel(
            websocket, channels.rt, channels.hub, channels.reports, peer, channels.keys
        ).run()
    except* ChannelClosing as group:
        closing = group.exceptions[0]
        assert isinstance(closing, ChannelClosing)
        await _close(websocket, closing, peer)
    except* WebSocketDisconnect:
        pass
    except* SQLAlchemyError:
        log.exception("control channel: database error")
        await _close(websocket, ChannelClosing(INTERNAL_ERROR, "database unavailable"), peer)
    finally:
        if peer is not None:
            await channels.reports.closed(peer)


async def _hello(websocket: WebSocket) -> Hello:
    try:
        async with asyncio.timeout(HELLO_TIMEOUT):
            frame = await websocket.receive()
    except TimeoutError:
        raise ChannelClosing(TIMEOUT, f"no hello within {HELLO_TIMEOUT:g} s") from None
    if frame["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(frame.get("code", 1000))
    data = decode(frame)
    if data["type"] != "hello":
        raise unexpected(data, "hello")
    return parse(Hello, data)


async def _close(websocket: WebSocket, closing: ChannelClosing, peer: Peer | None) -> None:
    who = f"{peer.kind} {peer.id}" if peer else "a client"
    log.info("closing the channel of %s: %s %s", who, closing.code, closing.reason)
    # The peer may be gone already: nothing more to tell it then.
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        if closing.error is not None:
            await websocket.send_json(error(closing.error, closing.reason))
        await websocket.close(closing.code, closing.short_reason)
