"""The control channel's messages as a node or an agent reads and writes them (docs/protocol.md,
"Control channel").

Reading (`parse`) never raises anything but `ChannelProtocolError`: a frame that is not text,
not JSON, not an object, too large or malformed is the server breaking the protocol. A message
of a type this version does not know is returned as `None` (a newer control plane may add
some); the client ignores it.

Writing: `hello`, `ack`, `nack` and `status` build the JSON objects the client sends.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

SUBPROTOCOL = "kokoa-channel.v1"
PATH = "/api/v1/channel"
MAX_MESSAGE = 4 * 1024 * 1024  # bytes of one message, either way

# Close codes (RFC 6455 leaves 4000-4999 to applications), as the control plane sends them.
PROTOCOL_ERROR = 4400  # a frame broke the protocol
REFUSED = 4401  # the handshake failed: nonce, certificate, signature, throttled, expired
FORBIDDEN = 4403  # revoked certificate, or disabled/deleted node or agent
TIMEOUT = 4408  # no hello in time, or no status for 3 heartbeat intervals

MAX_ERROR = 4000  # characters of a nack's error (the server's bound)
MAX_PROBLEM = 200  # characters of one problem in a status message (the server's bound)
MAX_PROBLEMS = 20
MAX_PEERS = 1000  # services, and connections, in one status message (the server's bound)

Kind = Literal["ingress", "agent"]
VERSION_PATTERN = r"^[0-9a-f]{64}$"


class ChannelProtocolError(Exception):
    """The control plane sent something the protocol does not allow."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Challenge(_Message):
    type: Literal["challenge"]
    nonce: str = Field(min_length=1, max_length=512)


class Welcome(_Message):
    type: Literal["welcome"]
    kind: Kind
    id: uuid.UUID
    org_id: uuid.UUID
    name: str = Field(max_length=253)
    heartbeat_interval: float = Field(gt=0, le=3600)


class ServerError(_Message):
    """Sent before the server closes a refused channel (4401, 4403)."""

    type: Literal["error"]
    code: str = Field(max_length=40)
    detail: str = Field(default="", max_length=4000)


class SnapshotMessage(_Message):
    """A versioned full snapshot; `config` is validated against the kind's model later."""

    type: Literal["snapshot"]
    version: str = Field(pattern=VERSION_PATTERN)
    issued_at: AwareDatetime
    config: dict[str, Any]


ServerMessage = Challenge | Welcome | ServerError | SnapshotMessage
_SERVER = TypeAdapter[ServerMessage](Annotated[ServerMessage, Field(discriminator="type")])
_KNOWN = frozenset({"challenge", "welcome", "error", "snapshot"})


def parse(frame: str | bytes) -> ServerMessage | None:
    """The message in one WebSocket frame; None for a type this version does not know.

    Raises:
        ChannelProtocolError: a binary frame, not a JSON object with a string type, too
            large, or a known type with a malformed field.
    """
    if isinstance(frame, bytes):
        raise ChannelProtocolError("binary frames are not part of this protocol")
    if len(frame) > MAX_MESSAGE // 4 and len(frame.encode()) > MAX_MESSAGE:
        raise ChannelProtocolError(f"a message is at most {MAX_MESSAGE} bytes")
    try:
        data = json.loads(frame)
    except ValueError:
        raise ChannelProtocolError("a message is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ChannelProtocolError("a message is a JSON object with a string type")
    if data["type"] not in _KNOWN:
        return None
    try:
        return _SERVER.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or "message"
        raise ChannelProtocolError(f"bad {data['type']} message: {where}: {first['msg']}") from None


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def hello(
    kind: Kind, certificate: str, signature: str, software: str, snapshot_version: str | None
) -> dict[str, Any]:
    return {
        "type": "hello",
        "kind": kind,
        "certificate": certificate,
        "signature": signature,
        "software": software,
        "snapshot_version": snapshot_version,
    }


def ack(version: str) -> dict[str, Any]:
    return {"type": "ack", "version": version}


def nack(version: str, error: str) -> dict[str, Any]:
    return {"type": "nack", "version": version, "error": error[:MAX_ERROR]}


def status(
    *,
    sent_at: datetime,
    started_at: datetime,
    software: str,
    snapshot_version: str | None,
    services: list[dict[str, Any]],
    connections: list[dict[str, Any]],
    problems: list[str],
) -> dict[str, Any]:
    return {
        "type": "status",
        "sent_at": sent_at.isoformat(),
        "snapshot_version": snapshot_version,
        "software": software,
        "started_at": started_at.isoformat(),
        "services": services[:MAX_PEERS],
        "connections": connections[:MAX_PEERS],
        "problems": [problem[:MAX_PROBLEM] for problem in problems[:MAX_PROBLEMS]],
    }
