"""The client's side of the control channel as a small state machine (sans-IO: frames in,
events out; the asyncio shell in common/channel/client.py sends and sleeps).

Transitions:

    CHALLENGE --challenge--> WELCOME    the shell answers with a hello signed by the tunnel key
    WELCOME   --welcome----> OPEN       the welcome must be for our kind
    OPEN      --snapshot---> OPEN       the shell judges it (`judge`), applies it, acks or nacks
    any       --error------> (same)     the server closes next; the close code decides

Anything else (a snapshot before the welcome, a second challenge, a malformed frame) is a
`ChannelProtocolError`: the shell closes with 4400 and reconnects. A message of a type this
version does not know is ignored.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime

from common.channel.messages import (
    FORBIDDEN,
    PROTOCOL_ERROR,
    REFUSED,
    Challenge,
    ChannelProtocolError,
    Kind,
    ServerError,
    SnapshotMessage,
    Welcome,
    parse,
)


class Phase(enum.Enum):
    CHALLENGE = "challenge"
    WELCOME = "welcome"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class Challenged:
    nonce: str


@dataclass(frozen=True, slots=True)
class Welcomed:
    welcome: Welcome


@dataclass(frozen=True, slots=True)
class Offered:
    snapshot: SnapshotMessage


@dataclass(frozen=True, slots=True)
class Refused:
    code: str
    detail: str


Event = Challenged | Welcomed | Offered | Refused
_WAITING = {Phase.CHALLENGE: "a challenge", Phase.WELCOME: "a welcome", Phase.OPEN: "snapshots"}


class ChannelProtocol:
    """One channel's phase; `receive` turns each frame from the server into an event."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.phase = Phase.CHALLENGE

    def receive(self, frame: str | bytes) -> Event | None:
        """The event `frame` means, or None for a message to ignore.

        Raises:
            ChannelProtocolError: the frame breaks the protocol in this phase.
        """
        message = parse(frame)
        if message is None:
            return None
        if isinstance(message, ServerError):
            return Refused(message.code, message.detail)
        if self.phase is Phase.CHALLENGE and isinstance(message, Challenge):
            self.phase = Phase.WELCOME
            return Challenged(message.nonce)
        if self.phase is Phase.WELCOME and isinstance(message, Welcome):
            if message.kind != self.kind:
                raise ChannelProtocolError(f"welcomed as {message.kind}, but we are {self.kind}")
            self.phase = Phase.OPEN
            return Welcomed(message)
        if self.phase is Phase.OPEN and isinstance(message, SnapshotMessage):
            return Offered(message)
        raise ChannelProtocolError(
            f"unexpected {message.type} message while waiting for {_WAITING[self.phase]}"
        )


class Decision(enum.Enum):
    APPLY = "apply"  # a new version: validate, swap, persist, ack
    SAME = "same"  # the version running now: ack it, nothing to do
    STALE = "stale"  # issued before the one running (replicas may race): ignore it


@dataclass(frozen=True, slots=True)
class Running:
    version: str
    issued_at: datetime


def judge(version: str, issued_at: datetime, running: Running | None) -> Decision:
    """What to do with a snapshot offered while `running` runs."""
    if running is None:
        return Decision.APPLY
    if version == running.version:
        return Decision.SAME
    if issued_at < running.issued_at:
        return Decision.STALE
    return Decision.APPLY


@dataclass(frozen=True, slots=True)
class CloseVerdict:
    """How the shell reacts to a channel that ended."""

    forbidden: bool  # 4403: this identity is revoked or disabled; retry slowly, log an error
    level: int  # of the log line
    what: str


def classify_close(code: int | None) -> CloseVerdict:
    """The verdict for a channel the server closed with `code` (None: no close frame)."""
    if code == FORBIDDEN:
        return CloseVerdict(
            True, logging.ERROR, "the control plane refuses this identity (revoked or disabled)"
        )
    if code == REFUSED:
        return CloseVerdict(False, logging.WARNING, "the control plane refused the handshake")
    if code == PROTOCOL_ERROR:
        return CloseVerdict(False, logging.ERROR, "the control plane says we broke the protocol")
    return CloseVerdict(False, logging.WARNING, "the control channel closed")
