"""Stream preface and frames: `type (varint) | length (varint) | payload` (docs/protocol.md §2).

`FrameParser` is the incremental reader both stream kinds share. Its rules, checked in this
order as soon as enough bytes are present (so the outcome never depends on how the bytes were
split into chunks):

1. the first five bytes are `PREFACE`, compared byte by byte as they arrive;
2. each frame's type is checked the moment its varint is complete;
3. its declared length is checked against the limit *before* any payload is buffered;
4. the payload is handed out once all of it has arrived.

Each `feed` costs time linear in its own length plus at most 16 bytes of header re-decoding,
so data arriving one byte at a time is not quadratic.
"""

from __future__ import annotations

import enum

from common.wire.errors import ErrorCode, ProtocolError
from common.wire.varint import decode_varint, encode_varint

PREFACE: bytes = b"KOKO\x01"
_PREFACE_LEN = len(PREFACE)


class FrameType(enum.IntEnum):
    HELLO = 0x01
    HELLO_ACK = 0x02
    PING = 0x03
    PONG = 0x04
    DRAIN = 0x05
    SERVICES = 0x06
    REQUEST = 0x10
    RESPONSE = 0x11


HEAD_FRAME_TYPES = frozenset({FrameType.REQUEST, FrameType.RESPONSE})

Frame = tuple[int, bytes]


def encode_frame(frame_type: int, payload: bytes) -> bytes:
    """Return one frame: type, payload length, payload.

    Raises:
        ValueError: `frame_type` is not a valid varint value.
    """
    return b"".join((encode_varint(frame_type), encode_varint(len(payload)), payload))


class FrameParser:
    """Incremental parser of one receiving direction: the preface, then frames.

    Args:
        max_payload: the largest declared payload length accepted.
        too_large: the error code for a frame declared longer than `max_payload`.
        expect: if set, the only frame type allowed (a tunnel stream's head frame).
        forbid: frame types that are a `PROTOCOL_ERROR` here.
    """

    __slots__ = (
        "_buf",
        "_expect",
        "_forbid",
        "_length",
        "_max",
        "_pos",
        "_preface",
        "_too_large",
        "_type",
    )

    def __init__(
        self,
        max_payload: int,
        *,
        too_large: ErrorCode,
        expect: int | None = None,
        forbid: frozenset[int] = frozenset(),
    ) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._preface = False
        self._type: int | None = None
        self._length: int | None = None
        self._max = max_payload
        self._too_large = too_large
        self._expect = expect
        self._forbid = forbid

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes; call `next_frame` until it returns None."""
        self._buf += data

    def next_frame(self) -> Frame | None:
        """Return the next complete `(type, payload)`, or None until more bytes arrive.

        Raises:
            ProtocolError: bad preface, forbidden or unexpected type, or declared length over
                the limit.
        """
        if not self._preface and not self._read_preface():
            return None
        if self._type is None and not self._read_type():
            return None
        if self._length is None and not self._read_length():
            return None
        assert self._type is not None and self._length is not None
        end = self._pos + self._length
        if end > len(self._buf):
            return None
        frame = (self._type, bytes(self._buf[self._pos : end]))
        self._pos = end
        self._type = self._length = None
        return frame

    def take_rest(self) -> bytes:
        """Return the bytes after the last frame handed out, and forget them (frees the buffer).

        Only meaningful between frames: the stream switches to another format (a head's body).
        """
        rest = bytes(self._buf[self._pos :])
        self._buf = bytearray()
        self._pos = 0
        return rest

    def compact(self) -> None:
        """Drop consumed bytes (CPython deletes a bytearray's prefix in O(1))."""
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0

    @property
    def mid_frame(self) -> bool:
        """True if part of a preface or frame has been received but not handed out."""
        return self._pos < len(self._buf) or self._type is not None

    def _read_preface(self) -> bool:
        got = bytes(self._buf[self._pos : self._pos + _PREFACE_LEN])
        if not PREFACE.startswith(got):
            raise ProtocolError(ErrorCode.PROTOCOL_ERROR, f"bad stream preface {got!r}")
        if len(got) < _PREFACE_LEN:
            return False
        self._pos += _PREFACE_LEN
        self._preface = True
        return True

    def _read_type(self) -> bool:
        decoded = decode_varint(self._buf, self._pos)
        if decoded is None:
            return False
        frame_type, self._pos = decoded
        if frame_type in self._forbid or (self._expect is not None and frame_type != self._expect):
            raise ProtocolError(ErrorCode.PROTOCOL_ERROR, f"unexpected frame type {frame_type:#x}")
        self._type = frame_type
        return True

    def _read_length(self) -> bool:
        decoded = decode_varint(self._buf, self._pos)
        if decoded is None:
            return False
        length, self._pos = decoded
        if length > self._max:
            raise ProtocolError(
                self._too_large, f"frame of {length} bytes exceeds the limit of {self._max}"
            )
        self._length = length
        return True
