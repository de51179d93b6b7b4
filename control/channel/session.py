"""One open channel after its handshake: snapshots down; acks, nacks and status up.

Three tasks in one group, the first failure ending all:
- push: waits for a change (or `RECHECK` seconds), re-reads the subject and its config, and
  sends a snapshot when the version differs from the last one sent. A subject that is now
  disabled or deleted, or whose certificate was revoked, ends the channel with 4403; an
  expired certificate with 4401 (the process reconnects with its renewed one).
- read: acks and nacks are logged, status messages recorded; anything else closes with 4400.
- watch: no status for 3 heartbeat intervals closes with 4408.
Only push sends, so frames never interleave.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocket, WebSocketDisconnect

from control.channel import snapshots
from control.channel.changes import RECHECK, ChangeHub, Waiter
from control.channel.handshake import Peer
from control.channel.messages import (
    TIMEOUT,
    Ack,
    ChannelClosing,
    Nack,
    decode,
    parse,
    unexpected,
)
from control.channel.reports import StatusReports
from control.db.models import EdgeAgent, IngressNode, IssuedCertificate
from control.runtime import Runtime

log = logging.getLogger(__name__)
MISSED_HEARTBEATS = 3


class Channel:
    def __init__(
        self,
        ws: WebSocket,
        rt: Runtime,
        hub: ChangeHub,
        reports: StatusReports,
        peer: Peer,
        keys: snapshots.UnsealedKeys,
    ) -> None:
        self.ws, self.rt, self.hub, self.reports, self.peer = ws, rt, hub, reports, peer
        self.keys = keys
        self.interval = rt.settings.channel_heartbeat_interval
        self.sent: str | None = None  # version of the last snapshot sent
        self.acked: str | None = None
        self._status_seen = asyncio.Event()

    async def run(self) -> None:
        """Welcome, first snapshot, then push/read/watch until one of them ends the channel.

        Raises:
            ChannelClosing: how the channel must end.
            WebSocketDisconnect: the peer went away.
        """
        with self.hub.watch() as waiter:  # before the first read: no change goes unseen
            config = await self.config()
            await self._send(self._welcome())
            await self._send_snapshot(config)
            async with asyncio.TaskGroup() as group:
                group.create_task(self._push(waiter), name=f"channel-push-{self.peer.id}")
                group.create_task(self._read(), name=f"channel-read-{self.peer.id}")
                group.create_task(self._watch(), name=f"channel-watch-{self.peer.id}")

    async def config(self) -> snapshots.Config:
        """The subject's config now, or ChannelClosing if it may no longer have one."""
        now = self.rt.now()
        async with self.rt.sessionmaker() as db, db.begin():
            row = await self._subject(db)
            if now >= self.peer.not_after:
                raise ChannelClosing.refusal(
                    "refused", "the certificate has expired: reconnect with the renewed one"
                )
            if isinstance(row, IngressNode):
                return await snapshots.ingress_config(db, row, now, self.keys)
            return await snapshots.agent_config(db, row)

    async def _subject(self, db: AsyncSession) -> IngressNode | EdgeAgent:
        row: IngressNode | EdgeAgent | None
        if self.peer.kind == "ingress":
            row = await db.get(IngressNode, self.peer.id)
        else:
            row = await db.get(EdgeAgent, self.peer.id)
        if row is None or row.org_id != self.peer.org_id or not row.enabled:
            raise ChannelClosing.refusal("disabled", f"the {self.peer.kind} is disabled or deleted")
        query = select(IssuedCertificate.revoked_at).where(
            IssuedCertificate.serial == self.peer.serial
        )
        if (await db.execute(query)).scalar() is not None:
            raise ChannelClosing.refusal(
                "revoked", "the certificate is revoked: enroll again with a new token"
            )
        return row

    def _welcome(self) -> dict[str, Any]:
        peer = self.peer
        return {
            "type": "welcome",
            "kind": peer.kind,
            "id": str(peer.id),
            "org_id": str(peer.org_id),
            "name": peer.name,
            "heartbeat_interval": self.interval,
        }

    async def _push(self, waiter: Waiter) -> None:
        while True:
            # jittered: channels opened together (after a restart) re-check apart
            await waiter.wait(RECHECK * random.uniform(0.8, 1.2))
            config = await self.config()
            if snapshots.version(config) != self.sent:
                await self._send_snapshot(config)

    async def _send_snapshot(self, config: snapshots.Config) -> None:
        message = snapshots.message(config, self.rt.now())
        await self._send(message)
        self.sent = message["version"]
        log.info("snapshot %s sent to %s %s", self.sent[:12], self.peer.kind, self.peer.id)

    async def _send(self, message: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(message, separators=(",", ":")))

    async def _read(self) -> None:
        while True:
            frame = await self.ws.receive()
            if frame["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(frame.get("code", 1000), frame.get("reason"))
            data = decode(frame)
            kind = data["type"]
            if kind == "status":
                await self.reports.report(self.peer, data)
                self._status_seen.set()
            elif kind == "ack":
                self.acked = parse(Ack, data).version
            elif kind == "nack":
                nack = parse(Nack, data)
                log.warning(
                    "%s %s refused snapshot %s: %s",
                    self.peer.kind, self.peer.id, nack.version[:12], nack.error,
                )  # fmt: skip
            else:
                raise unexpected(data, "ack, nack or status")

    async def _watch(self) -> None:
        limit = MISSED_HEARTBEATS * self.interval
        while True:
            try:
                async with asyncio.timeout(limit):
                    await self._status_seen.wait()
            except TimeoutError:
                raise ChannelClosing(TIMEOUT, f"no status message for {limit:g} s") from None
            self._status_seen.clear()
