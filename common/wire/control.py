"""Control-stream messages (docs/protocol.md §4): frames whose payloads are JSON objects.

Decoding rules (a peer's mistake → `ProtocolError(PROTOCOL_ERROR)`): the payload is UTF-8
JSON whose top level is an object without duplicate keys; unknown keys are ignored; a missing
required key, a value of the wrong type, a number out of range, NaN/Infinity, or a string that
is not valid Unicode is an error. Unknown frame types are skipped; REQUEST/RESPONSE frames do
not belong on the control stream and are an error.

Which message may come when (HELLO first, from the agent, …) is the session's business, not
the codec's: `ControlReader` works the same in both directions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from common.wire import control_json as cj
from common.wire.errors import ErrorCode, ProtocolError
from common.wire.frames import HEAD_FRAME_TYPES, PREFACE, FrameParser, FrameType, encode_frame

MAX_CONTROL_PAYLOAD = 65536
"""Default limit on a control frame's payload, in bytes."""


@dataclass(frozen=True, slots=True)
class Hello:
    """Agent → ingress, first frame: who the agent is and what it claims to serve."""

    agent_id: str
    version: str
    services: tuple[str, ...]
    max_streams: int = 512
    protocol: int = 1
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class HelloAck:
    """Ingress → agent, first frame (and the answer to SERVICES)."""

    node: str
    accepted: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...] = ()  # (service, reason)
    heartbeat_interval: float = 2.0


@dataclass(frozen=True, slots=True)
class Ping:
    seq: int


@dataclass(frozen=True, slots=True)
class Pong:
    seq: int  # the PING's


@dataclass(frozen=True, slots=True)
class Drain:
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Services:
    """Agent → ingress: the agent's new claim after a configuration reload."""

    services: tuple[str, ...]


ControlMessage = Hello | HelloAck | Ping | Pong | Drain | Services

JSONObject = dict[str, object]


def _hello(o: JSONObject) -> Hello:
    return Hello(
        agent_id=cj.string(o, "agent_id"),
        version=cj.string(o, "version"),
        services=cj.strings(o, "services"),
        max_streams=cj.integer(o, "max_streams", 512),
        protocol=cj.integer(o, "protocol", 1),
        labels=cj.string_map(o, "labels"),
    )


def _hello_ack(o: JSONObject) -> HelloAck:
    return HelloAck(
        node=cj.string(o, "node"),
        accepted=cj.strings(o, "accepted"),
        rejected=cj.string_map(o, "rejected"),
        heartbeat_interval=cj.interval(o, "heartbeat_interval", 2.0),
    )


_DECODERS: dict[int, Callable[[JSONObject], ControlMessage]] = {
    FrameType.HELLO: _hello,
    FrameType.HELLO_ACK: _hello_ack,
    FrameType.PING: lambda o: Ping(cj.integer(o, "seq")),
    FrameType.PONG: lambda o: Pong(cj.integer(o, "seq")),
    FrameType.DRAIN: lambda o: Drain(cj.string(o, "reason", "")),
    FrameType.SERVICES: lambda o: Services(cj.strings(o, "services")),
}


def _to_json(message: ControlMessage) -> tuple[FrameType, JSONObject]:
    match message:
        case Hello():
            return FrameType.HELLO, {
                "agent_id": message.agent_id,
                "version": message.version,
                "protocol": message.protocol,
                "services": list(message.services),
                "max_streams": message.max_streams,
                "labels": dict(message.labels),
            }
        case HelloAck():
            return FrameType.HELLO_ACK, {
                "node": message.node,
                "accepted": list(message.accepted),
                "rejected": dict(message.rejected),
                "heartbeat_interval": message.heartbeat_interval,
            }
        case Ping():
            return FrameType.PING, {"seq": message.seq}
        case Pong():
            return FrameType.PONG, {"seq": message.seq}
        case Drain():
            return FrameType.DRAIN, {"reason": message.reason}
        case Services():
            return FrameType.SERVICES, {"services": list(message.services)}
    raise TypeError(f"not a control message: {message!r}")


def encode_control(
    message: ControlMessage, *, preface: bool = False, max_payload: int = MAX_CONTROL_PAYLOAD
) -> bytes:
    """Return `message` as one control frame, after the stream preface if `preface`.

    Raises:
        ValueError: a decoder would reject the message or decode something else (a number
            out of range, duplicate label keys, a payload over `max_payload`, …).
    """
    frame_type, obj = _to_json(message)
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except TypeError as exc:
        raise ValueError(f"not JSON-serializable: {message!r}") from exc
    payload = text.encode()
    if len(payload) > max_payload:
        raise ValueError(f"control payload of {len(payload)} bytes, more than {max_payload}")
    if _DECODERS[frame_type](cj.parse(payload)) != message:
        raise ValueError(f"control message not representable on the wire: {message!r}")
    frame = encode_frame(frame_type, payload)
    return PREFACE + frame if preface else frame


def decode_control(frame_type: int, payload: bytes) -> ControlMessage | None:
    """Decode one control frame's payload; None for a frame type this version does not know.

    Raises:
        ProtocolError: `PROTOCOL_ERROR` for a malformed payload or a head frame type.
    """
    if frame_type in HEAD_FRAME_TYPES:
        raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "head frame on the control stream")
    decoder = _DECODERS.get(frame_type)
    if decoder is None:
        return None
    try:
        return decoder(cj.parse(payload))
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
        name = FrameType(frame_type).name
        raise ProtocolError(ErrorCode.PROTOCOL_ERROR, f"bad {name} payload: {exc}") from exc


class ControlReader:
    """Reads one direction of the control stream: the preface, then control frames.

    After a `ProtocolError` the reader stays failed: every later `feed` raises it again.
    """

    __slots__ = ("_error", "_parser")

    def __init__(self, max_payload: int = MAX_CONTROL_PAYLOAD) -> None:
        self._parser = FrameParser(
            max_payload, too_large=ErrorCode.PROTOCOL_ERROR, forbid=HEAD_FRAME_TYPES
        )
        self._error: ProtocolError | None = None

    def feed(self, data: bytes | bytearray | memoryview) -> list[ControlMessage]:
        """Take the next bytes of the stream; return the messages they completed, in order.

        Raises:
            ProtocolError: `PROTOCOL_ERROR` for a bad preface, a frame over `max_payload`
                (judged on its declared length), a head frame, or a malformed payload.
        """
        if self._error is not None:
            raise ProtocolError(self._error.code, self._error.message)
        self._parser.feed(data)
        messages: list[ControlMessage] = []
        try:
            while (frame := self._parser.next_frame()) is not None:
                message = decode_control(*frame)
                if message is not None:
                    messages.append(message)
        except ProtocolError as exc:
            self._error = exc
            raise
        self._parser.compact()
        return messages

    def feed_eof(self) -> None:
        """The peer finished its side of the control stream.

        Raises:
            ProtocolError: `PROTOCOL_ERROR` if it ended in the middle of a frame.
        """
        if self._parser.mid_frame:
            raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "control stream ended mid-frame")
