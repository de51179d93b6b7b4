"""Error codes of the tunnel protocol and the codec's typed errors (docs/protocol.md §6).

Two kinds of mistake, as in h11:

* `ProtocolError` — the *peer* sent something the protocol forbids. It carries the
  `ErrorCode` to reset the stream (or close the connection) with; the layer above maps it
  at its boundary and never classifies by message text.
* `ValueError` (and its subclass `HeadTooLargeError`) — *we* asked an encoder to produce
  something a conforming decoder would reject. That is a bug or unsanitised input on our
  side, caught before a byte is written.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.IntEnum):
    """Application error codes for RESET_STREAM, STOP_SENDING and CONNECTION_CLOSE."""

    # Stream (and connection) errors.
    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    UNKNOWN_SERVICE = 0x3
    ORIGIN_REFUSED = 0x4
    ORIGIN_TIMEOUT = 0x5
    ORIGIN_ERROR = 0x6
    BUSY = 0x7
    DRAINING = 0x8
    CANCELLED = 0x9
    HEAD_TOO_LARGE = 0xA
    # Connection-only errors.
    UNAUTHORIZED = 0x100
    STREAM_NOT_ALLOWED = 0x101
    HEARTBEAT_TIMEOUT = 0x102
    HELLO_TIMEOUT = 0x103
    REVOKED = 0x104
    SHUTDOWN = 0x105


class ProtocolError(Exception):
    """The peer violated the protocol; reset the stream (or close the connection) with `code`.

    The message is for our logs only: it may quote peer input and is never sent on the wire.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ProtocolError({self.code.name}, {self.message!r})"


class HeadTooLargeError(ValueError):
    """An encoder was given a head over the size or field-count limit.

    A `ValueError` like every encoder rejection, but typed so that a proxy can answer its
    client with 431 (Request Header Fields Too Large) or 502 instead of 400.
    """
