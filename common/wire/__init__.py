"""The Kokoa tunnel protocol as a sans-IO codec (docs/protocol.md): bytes in, heads and
control messages out, `ProtocolError` with an `ErrorCode` for anything a peer got wrong.
No sockets, no clocks, no asyncio: `common.streams` is the thin glue to a `TunnelStream`.
"""

from common.wire.control import (
    MAX_CONTROL_PAYLOAD,
    ControlMessage,
    ControlReader,
    Drain,
    Hello,
    HelloAck,
    Ping,
    Pong,
    Services,
    decode_control,
    encode_control,
)
from common.wire.errors import ErrorCode, HeadTooLargeError, ProtocolError
from common.wire.fields import HOP_BY_HOP, MAX_HEADERS, Headers
from common.wire.frames import PREFACE, FrameType, encode_frame
from common.wire.head import (
    MAX_HEAD_SIZE,
    HeadReader,
    RequestHead,
    ResponseHead,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from common.wire.varint import MAX_VARINT, decode_varint, encode_varint

__all__ = [
    "HOP_BY_HOP",
    "MAX_CONTROL_PAYLOAD",
    "MAX_HEADERS",
    "MAX_HEAD_SIZE",
    "MAX_VARINT",
    "PREFACE",
    "ControlMessage",
    "ControlReader",
    "Drain",
    "ErrorCode",
    "FrameType",
    "HeadReader",
    "HeadTooLargeError",
    "Headers",
    "Hello",
    "HelloAck",
    "Ping",
    "Pong",
    "ProtocolError",
    "RequestHead",
    "ResponseHead",
    "Services",
    "decode_control",
    "decode_request",
    "decode_response",
    "decode_varint",
    "encode_control",
    "encode_frame",
    "encode_request",
    "encode_response",
    "encode_varint",
]
