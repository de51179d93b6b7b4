"""The control channel's messages as the server reads and writes them, and its close codes.

Every frame is a JSON object with a "type" (docs/protocol.md, "Control channel"). Reading
never raises anything but `ChannelClosing`: a frame that is not text, not JSON, not an object,
too large, of an unknown type or malformed becomes a close with a code and a short reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

M = TypeVar("M", bound=BaseModel)

SUBPROTOCOL = "kokoa-channel.v1"
MAX_MESSAGE = 4 * 1024 * 1024  # bytes of one message, either way

# Close codes (RFC 6455 leaves 4000-4999 to applications).
PROTOCOL_ERROR = 4400  # a frame broke the protocol
REFUSED = 4401  # the handshake failed: nonce, certificate, signature, throttled
FORBIDDEN = 4403  # revoked certificate, or disabled/deleted node or agent
TIMEOUT = 4408  # no hello in time, or no status for 3 heartbeat intervals
TOO_BIG = 1009  # RFC 6455: message too big
INTERNAL_ERROR = 1011  # RFC 6455: the server failed (the database is unreachable, say)
MAX_REASON = 123  # bytes: a close frame's payload is at most 125 bytes with the code

ErrorCode = Literal["refused", "revoked", "disabled"]
CLOSE_CODES: dict[ErrorCode, int] = {
    "refused": REFUSED,
    "revoked": FORBIDDEN,
    "disabled": FORBIDDEN,
}


class ChannelClosing(Exception):
    """Close the channel with `code` and `reason`, after an error message if `error` is set."""

    def __init__(self, code: int, reason: str, error: ErrorCode | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.error = error

    @classmethod
    def refusal(cls, error: ErrorCode, detail: str) -> ChannelClosing:
        return cls(CLOSE_CODES[error], detail, error)

    @property
    def short_reason(self) -> str:
        """The reason cut to what a close frame can carry (UTF-8, whole characters)."""
        return self.reason.encode()[:MAX_REASON].decode(errors="ignore")


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Hello(_Message):
    type: Literal["hello"]
    kind: Literal["ingress", "agent"]
    certificate: str = Field(max_length=32 * 1024)
    signature: str = Field(max_length=512)
    software: str = Field(default="", max_length=200)
    snapshot_version: str | None = Field(default=None, max_length=64)


class Ack(_Message):
    type: Literal["ack"]
    version: str = Field(max_length=64)


class Nack(_Message):
    type: Literal["nack"]
    version: str = Field(max_length=64)
    error: str = Field(default="", max_length=4000)


def decode(frame: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object in an ASGI `websocket.receive` message, or ChannelClosing."""
    text = frame.get("text")
    if text is None:
        raise ChannelClosing(PROTOCOL_ERROR, "binary frames are not part of this protocol")
    if len(text) > MAX_MESSAGE // 4 and len(text.encode()) > MAX_MESSAGE:
        raise ChannelClosing(TOO_BIG, f"a message is at most {MAX_MESSAGE} bytes")
    try:
        data = json.loads(text)
    except ValueError:
        raise ChannelClosing(PROTOCOL_ERROR, "a message is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ChannelClosing(PROTOCOL_ERROR, "a message is a JSON object with a string type")
    return data


def parse(model: type[M], data: dict[str, Any]) -> M:
    """`data` as `model`, or ChannelClosing naming the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "message"
        raise ChannelClosing(
            PROTOCOL_ERROR, f"bad {data.get('type')} message: {where}: {first['msg']}"
        ) from None


def unexpected(data: dict[str, Any], expected: str) -> ChannelClosing:
    kind = str(data.get("type"))[:40]
    return ChannelClosing(PROTOCOL_ERROR, f"unexpected message type {kind!r}; expected {expected}")


def error(code: ErrorCode, detail: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "detail": detail}
