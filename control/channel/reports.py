"""Where a channel's `status` messages and its end go: control.services.status.

`record_report(db, rt, subject, report)` gets every status message, parsed as
`control.schemas.status.StatusReport`; `channel_closed(db, rt, subject)` is called when the
last channel of a subject on this replica closes (a process that reconnects before its old
channel timed out is not reported offline in between).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from control.channel.handshake import Peer
from control.channel.messages import PROTOCOL_ERROR, ChannelClosing
from control.runtime import Runtime
from control.schemas.status import StatusReport

# A module, not its names: control.services.status imports control.channel.snapshots, so
# whichever of the two is imported first finds the other one half-initialised.
from control.services import status

log = logging.getLogger(__name__)


class StatusReports:
    """Hands status messages and channel ends of one app to control.services.status."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._open: Counter[tuple[str, uuid.UUID]] = Counter()

    def opened(self, peer: Peer) -> None:
        self._open[(peer.kind, peer.id)] += 1

    async def report(self, peer: Peer, data: dict[str, Any]) -> None:
        """Record one status message.

        Raises:
            ChannelClosing: the message does not parse as a status report.
        """
        try:
            report = StatusReport.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            detail = f"bad status message: {where}: {first['msg']}"
            raise ChannelClosing(PROTOCOL_ERROR, detail) from None
        try:
            async with self._rt.sessionmaker() as db:
                await status.record_report(db, self._rt, _subject(peer), report)
        except SQLAlchemyError:
            log.exception("could not record the status of %s %s", peer.kind, peer.id)

    async def closed(self, peer: Peer) -> None:
        key = (peer.kind, peer.id)
        self._open[key] -= 1
        if self._open[key] > 0:
            return
        del self._open[key]
        try:
            async with self._rt.sessionmaker() as db:
                await status.channel_closed(db, self._rt, _subject(peer))
        except SQLAlchemyError:
            log.exception("could not record the end of the channel of %s %s", peer.kind, peer.id)


def _subject(peer: Peer) -> status.ChannelSubject:
    return status.ChannelSubject(kind=peer.kind, id=peer.id, org_id=peer.org_id, name=peer.name)
