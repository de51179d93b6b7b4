"""The agent's response head as HTTP/1.1 toward the client, framed by us (pure: no I/O).

The tunnel says how long a body is (`content-length`, `:chunked`, or none: docs/protocol.md
§5.2); this module picks the client-side framing from that and the request:

| tunnel body          | client                | framing                                    |
|----------------------|-----------------------|--------------------------------------------|
| none (or HEAD, 204, 304) | any               | no body; `content-length` kept as sent     |
| `content-length: n`  | any                   | `content-length: n`, then n bytes          |
| `:chunked`           | HTTP/1.1              | `transfer-encoding: chunked`, re-chunked   |
| `:chunked`           | HTTP/1.0              | close-delimited (`connection: close`)      |

A response without a body and without `content-length` gets `content-length: 0` (except
204 and 304, which never have one), so a kept-alive client knows where it ends.
"""

from __future__ import annotations

import enum
import http

from common.wire import ResponseHead


class Framing(enum.Enum):
    NONE = "none"  # no body bytes follow the head
    LENGTH = "length"  # exactly content-length bytes
    CHUNKED = "chunked"  # chunked transfer coding until the tunnel's FIN
    CLOSE = "close"  # raw bytes until FIN, then close the connection


def _status_line(status: int, version: bytes = b"1.1") -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase.encode()
    except ValueError:
        phrase = b""
    return b"HTTP/%s %d %s\r\n" % (version, status, phrase)


STATUS_LINES = {status: _status_line(status) for status in range(100, 600)}
_KEEP_ALIVE_10 = b"connection: keep-alive\r\n"
_CLOSE = b"connection: close\r\n"
_CHUNKED = b"transfer-encoding: chunked\r\n"
_NO_BODY = (204, 304)
_DROPPED = frozenset((b"x-request-id", b"content-length"))


def encode_head(
    head: ResponseHead,
    request_id: bytes,
    *,
    head_request: bool,
    http10: bool,
    keep_alive: bool,
) -> tuple[bytes, Framing, int, bool]:
    """Serialize `head` for the client.

    Returns:
        The head bytes, the body framing, the body length (for `LENGTH`) and whether the
        connection stays open after this response.
    """
    status = head.status
    parts = [STATUS_LINES[status]]
    length: int | None = None
    for name, value in head.headers:
        if name in _DROPPED:
            if name == b"content-length":
                length = int(value)  # the codec checked: 1-19 digits, all equal
            continue
        parts += (name, b": ", value, b"\r\n")
    parts += (b"x-request-id: ", request_id, b"\r\n")
    framing, size = _framing(head, length, head_request=head_request, http10=http10)
    parts.append(_length_field(framing, status, length, head_request))
    keep_alive = keep_alive and framing is not Framing.CLOSE
    parts.append(_connection(keep_alive, http10) + b"\r\n")
    return b"".join(parts), framing, size, keep_alive


def _framing(
    head: ResponseHead, length: int | None, *, head_request: bool, http10: bool
) -> tuple[Framing, int]:
    if head_request or head.status in _NO_BODY:
        return Framing.NONE, 0
    if head.chunked:
        return (Framing.CLOSE if http10 else Framing.CHUNKED), 0
    if length:
        return Framing.LENGTH, length
    return Framing.NONE, 0


def _length_field(framing: Framing, status: int, length: int | None, head_request: bool) -> bytes:
    if framing is Framing.LENGTH:
        return b"content-length: %d\r\n" % (length or 0)
    if framing is Framing.CHUNKED:
        return _CHUNKED
    if framing is Framing.CLOSE or status == 204:
        return b""
    if length is not None:  # informational (HEAD, 304), or an empty body
        return b"content-length: %d\r\n" % length
    if head_request or status == 304:
        return b""
    return b"content-length: 0\r\n"


def _connection(keep_alive: bool, http10: bool) -> bytes:
    if not keep_alive:
        return _CLOSE
    return _KEEP_ALIVE_10 if http10 else b""


def upgrade_head(head: ResponseHead, request_id: bytes) -> bytes:
    """A `101 Switching Protocols` head: the agent's fields (with `upgrade`) plus ours."""
    parts = [STATUS_LINES[101]]
    for name, value in head.headers:
        if name not in _DROPPED:
            parts += (name, b": ", value, b"\r\n")
    parts += (b"x-request-id: ", request_id, b"\r\nconnection: upgrade\r\n\r\n")
    return b"".join(parts)


def chunk(data: bytes) -> tuple[bytes, bytes, bytes]:
    """`data` as one chunk of the chunked transfer coding (three parts, not joined)."""
    return b"%x\r\n" % len(data), data, b"\r\n"


LAST_CHUNK = b"0\r\n\r\n"
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
