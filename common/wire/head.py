"""REQUEST and RESPONSE heads: the first frame of each direction of a tunnel stream.

A tunnel stream carries, in each direction, the preface, one head frame, then raw body bytes
until FIN (docs/protocol.md §5). `encode_request`/`encode_response` produce the preface and
the head frame; a `HeadReader` per receiving direction turns bytes back into the head and
hands over whatever body bytes arrived with it.

Decoders and encoders share one grammar (`fields.py`): building a head from pseudo-fields is
the same function on both sides, so an encoder raises `ValueError` for exactly the heads a
decoder would refuse, and `decode(encode(head)) == head` whenever encoding succeeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import TypeVar

from common.wire import fields as f
from common.wire.errors import ErrorCode, HeadTooLargeError, ProtocolError
from common.wire.fields import MAX_HEADERS, Headers
from common.wire.frames import PREFACE, FrameParser, FrameType, encode_frame

_PREFACE_LEN = len(PREFACE)

MAX_HEAD_SIZE = 65536
"""Default limit on a head frame's payload, in bytes."""

_REQUEST_PSEUDO = frozenset(
    {
        *(b":service", b":kind", b":method", b":target", b":scheme", b":authority"),
        *(b":client", b":client-port", b":request-id", b":chunked"),
    }
)
_HTTP_ONLY = (b":method", b":target", b":scheme", b":authority", b":chunked")
_RESPONSE_PSEUDO = frozenset((b":status", b":chunked"))
_H = TypeVar("_H", "RequestHead", "ResponseHead")


@dataclass(frozen=True, slots=True)
class RequestHead:
    """What the ingress tells the agent about one request (or TCP connection)."""

    service: str
    request_id: str
    client: str
    kind: str = "http"  # "http" | "tcp"
    method: str = ""
    target: str = ""
    scheme: str = "http"
    authority: str = ""
    client_port: int = 0
    chunked: bool = False  # body length unknown, ends at FIN
    headers: Headers = ()

    def content_length(self) -> int | None:
        """The declared body length, or None (chunked, TCP, or no body). Valid heads only."""
        return f.content_length(self.headers)


@dataclass(frozen=True, slots=True)
class ResponseHead:
    """What the agent tells the ingress about the origin's response."""

    status: int
    headers: Headers = ()
    chunked: bool = False

    def content_length(self) -> int | None:
        """The declared body length, or None. Valid heads only."""
        return f.content_length(self.headers)


def encode_request(
    head: RequestHead,
    *,
    max_size: int = MAX_HEAD_SIZE,
    max_headers: int = MAX_HEADERS,
    check: bool = True,
) -> bytes:
    """Return the preface and REQUEST frame: the first bytes the ingress writes on a stream.

    Args:
        check: whether to check every value against the grammar. The ingress passes False
            for the heads it builds from a request its parser has already validated (the
            check is a third of an ingress's codec time); the sizes are checked anyway, and
            an agent still refuses a bad head (PROTOCOL_ERROR).

    Raises:
        HeadTooLargeError: the head is over `max_size` bytes or `max_headers` headers.
        ValueError: with `check`, a decoder would reject the head (bad value, hop-by-hop
            header, …).
    """
    pseudo = _request_pseudo(head)
    if not check:
        if len(head.headers) > max_headers:
            raise HeadTooLargeError(f"{len(head.headers)} header fields, more than {max_headers}")
        return _encode_head(FrameType.REQUEST, pseudo, head.headers, max_size)
    f.check_headers(head.headers, max_headers)
    if _request_values(dict(pseudo), head.headers) != _REQUEST_VALUES(head):
        raise ValueError(f"request head not representable on the wire: {head!r}")
    return _encode_head(FrameType.REQUEST, pseudo, head.headers, max_size)


def encode_response(
    head: ResponseHead, *, max_size: int = MAX_HEAD_SIZE, max_headers: int = MAX_HEADERS
) -> bytes:
    """Return the preface and RESPONSE frame: the first bytes the agent writes on a stream.

    Raises:
        HeadTooLargeError: the head is over `max_size` bytes or `max_headers` headers.
        ValueError: a decoder would reject the head.
    """
    pseudo = [(b":status", str(head.status).encode())]
    if head.chunked:
        pseudo.append((b":chunked", b"1"))
    f.check_headers(head.headers, max_headers)
    if _response_values(dict(pseudo), head.headers) != _RESPONSE_VALUES(head):
        raise ValueError(f"response head not representable on the wire: {head!r}")
    return _encode_head(FrameType.RESPONSE, pseudo, head.headers, max_size)


def _encode_head(
    frame_type: FrameType, pseudo: list[tuple[bytes, bytes]], headers: Headers, max_size: int
) -> bytes:
    # Pseudo-field values were checked by building the head from them (none of their
    # grammars admits CR, LF or NUL); regular headers by check_headers.
    payload = f.encode_fields(pseudo) + f.encode_fields(headers)
    if len(payload) > max_size:
        raise HeadTooLargeError(f"head of {len(payload)} bytes, more than {max_size}")
    return PREFACE + encode_frame(frame_type, payload)


def _request_pseudo(head: RequestHead) -> list[tuple[bytes, bytes]]:
    pseudo = [(b":service", head.service.encode())]
    if head.kind == "http":
        pseudo += (
            (b":method", head.method.encode()),
            (b":scheme", head.scheme.encode()),
            (b":authority", head.authority.encode()),
            (b":target", head.target.encode()),
        )
    elif head.kind == "tcp":
        if head.method or head.target or head.authority or head.scheme != "http":
            raise ValueError("a tcp request carries no method, target, authority or scheme")
        pseudo.append((b":kind", b"tcp"))
    else:
        raise ValueError(f"kind must be 'http' or 'tcp', got {head.kind!r}")
    pseudo.append((b":client", head.client.encode()))
    if head.client_port:
        pseudo.append((b":client-port", str(head.client_port).encode()))
    pseudo.append((b":request-id", head.request_id.encode()))
    if head.chunked:
        pseudo.append((b":chunked", b"1"))
    return pseudo


def _build_request(pseudo: dict[bytes, bytes], headers: Headers) -> RequestHead:
    return RequestHead(*_request_values(pseudo, headers))


def _build_response(pseudo: dict[bytes, bytes], headers: Headers) -> ResponseHead:
    return ResponseHead(*_response_values(pseudo, headers))


# The grammar of each head, shared by decoders (which build the head from the values) and
# encoders (which compare them with the head's own, field by field: no head is built).
_RequestValues = tuple[str, str, str, str, str, str, str, str, int, bool, Headers]
_REQUEST_VALUES = attrgetter(*(field.name for field in fields(RequestHead)))
_RESPONSE_VALUES = attrgetter(*(field.name for field in fields(ResponseHead)))


def _request_values(pseudo: dict[bytes, bytes], headers: Headers) -> _RequestValues:
    """RequestHead's field values, in order, from its pseudo-fields and headers."""
    _no_unknown(pseudo, _REQUEST_PSEUDO)
    kind = f.one_of(b":kind", pseudo.get(b":kind", b"http"), ("http", "tcp"))
    service = f.text(b":service", _required(pseudo, b":service"))
    request_id = f.text(b":request-id", _required(pseudo, b":request-id"))
    client = f.client(_required(pseudo, b":client"))
    client_port = f.port(pseudo[b":client-port"]) if b":client-port" in pseudo else 0
    if kind == "tcp":
        if headers or any(name in pseudo for name in _HTTP_ONLY):
            raise ValueError(
                "a tcp request carries only :service, :kind, :client, :client-port and :request-id"
            )
        return (service, request_id, client, "tcp", "", "", "http", "", client_port, False, ())
    return (
        service,
        request_id,
        client,
        kind,
        f.method(_required(pseudo, b":method")),
        f.target(_required(pseudo, b":target")),
        f.one_of(b":scheme", _required(pseudo, b":scheme"), ("http", "https")),
        f.text(b":authority", _required(pseudo, b":authority"), empty=True),
        client_port,
        _chunked(pseudo, headers),
        headers,
    )


def _response_values(pseudo: dict[bytes, bytes], headers: Headers) -> tuple[int, Headers, bool]:
    """ResponseHead's field values, in order."""
    _no_unknown(pseudo, _RESPONSE_PSEUDO)
    status = f.status(_required(pseudo, b":status"))
    return status, headers, _chunked(pseudo, headers)


def _chunked(pseudo: dict[bytes, bytes], headers: Headers) -> bool:
    chunked = b":chunked" in pseudo and f.flag(b":chunked", pseudo[b":chunked"])
    length = f.content_length(headers)
    if chunked and length is not None:
        raise ValueError(":chunked and content-length together")
    return chunked


def _required(pseudo: dict[bytes, bytes], name: bytes) -> bytes:
    try:
        return pseudo[name]
    except KeyError:
        raise ValueError(f"missing pseudo-field {name.decode()}") from None


def _no_unknown(pseudo: dict[bytes, bytes], known: frozenset[bytes]) -> None:
    unknown = pseudo.keys() - known
    if unknown:
        raise ValueError(f"unknown pseudo-field {min(unknown)!r}")


def decode_request(payload: bytes, max_headers: int = MAX_HEADERS) -> RequestHead:
    """Decode a REQUEST frame's payload. Raises ProtocolError."""
    return _decode(payload, max_headers, _build_request)


def decode_response(payload: bytes, max_headers: int = MAX_HEADERS) -> ResponseHead:
    """Decode a RESPONSE frame's payload. Raises ProtocolError."""
    return _decode(payload, max_headers, _build_response)


def _decode(
    payload: bytes, max_headers: int, build: Callable[[dict[bytes, bytes], Headers], _H]
) -> _H:
    try:
        return build(*f.split_fields(payload, max_headers))
    except HeadTooLargeError as exc:
        raise ProtocolError(ErrorCode.HEAD_TOO_LARGE, str(exc)) from exc
    except ValueError as exc:  # includes UnicodeDecodeError
        raise ProtocolError(ErrorCode.PROTOCOL_ERROR, str(exc)) from exc


class HeadReader:
    """Reads the preface and head frame of one receiving direction of a tunnel stream.

    Feed it what the stream yields until `feed` returns the head; body bytes that came in the
    same read are then in `leftover`. Everything after that is body: do not feed it. After a
    `ProtocolError` the reader stays failed: every later `feed` raises it again.
    """

    __slots__ = (
        "_decode",
        "_error",
        "_frame_type",
        "_head",
        "_max_headers",
        "_max_size",
        "_parser",
        "leftover",
    )

    def __init__(
        self,
        frame_type: FrameType,
        max_size: int = MAX_HEAD_SIZE,
        max_headers: int = MAX_HEADERS,
    ) -> None:
        if frame_type not in (FrameType.REQUEST, FrameType.RESPONSE):
            raise ValueError(f"not a head frame type: {frame_type!r}")
        self._decode: Callable[[bytes, int], RequestHead | ResponseHead] = (
            decode_request if frame_type == FrameType.REQUEST else decode_response
        )
        self._frame_type = frame_type
        self._max_size = max_size
        self._parser: FrameParser | None = None  # made when a head does not come in one piece
        self._max_headers = max_headers
        self._head: RequestHead | ResponseHead | None = None
        self._error: ProtocolError | None = None
        self.leftover = b""

    @classmethod
    def request(
        cls, max_size: int = MAX_HEAD_SIZE, *, max_headers: int = MAX_HEADERS
    ) -> HeadReader:
        """A reader for the agent's side: expects a REQUEST head."""
        return cls(FrameType.REQUEST, max_size, max_headers)

    @classmethod
    def response(
        cls, max_size: int = MAX_HEAD_SIZE, *, max_headers: int = MAX_HEADERS
    ) -> HeadReader:
        """A reader for the ingress's side: expects a RESPONSE head."""
        return cls(FrameType.RESPONSE, max_size, max_headers)

    @property
    def head(self) -> RequestHead | ResponseHead | None:
        """The head, once `feed` has returned it."""
        return self._head

    def feed(self, data: bytes | bytearray | memoryview) -> RequestHead | ResponseHead | None:
        """Take the next bytes of the stream; return the head once it is complete.

        Raises:
            ProtocolError: `HEAD_TOO_LARGE` if the head frame declares more than `max_size`
                bytes or carries more than `max_headers` headers; `PROTOCOL_ERROR` for
                anything else malformed (preface, frame type, fields).
            RuntimeError: the head was already complete.
        """
        if self._head is not None:
            raise RuntimeError("head already read; the rest of the stream is body bytes")
        if self._error is not None:
            raise ProtocolError(self._error.code, self._error.message)
        try:
            whole = self._whole_frame(data) if self._parser is None else None
            if whole is None:  # not in one read (or not well-formed): the frame parser
                whole = self._next_payload(data)
                if whole is None:
                    return None
            self._head = self._decode(whole[0], self._max_headers)
        except ProtocolError as exc:
            self._error = exc
            raise
        self.leftover = whole[1] if self._parser is None else self._parser.take_rest()
        return self._head

    def _whole_frame(self, data: bytes | bytearray | memoryview) -> tuple[bytes, bytes] | None:
        """(payload, rest) when `data` holds the preface and a whole, valid head frame of
        ours with lengths of 1 or 2 bytes; None sends it to the frame parser (which also
        finds any error)."""
        if type(data) is not bytes or data[:_PREFACE_LEN] != PREFACE or len(data) < 8:
            return None
        first = data[_PREFACE_LEN + 1]  # the type is one byte: REQUEST and RESPONSE are < 64
        if data[_PREFACE_LEN] != self._frame_type or first >= 0x80:
            return None
        if first < 0x40:
            length, start = first, _PREFACE_LEN + 2
        else:
            length, start = ((first & 0x3F) << 8) | data[_PREFACE_LEN + 2], _PREFACE_LEN + 3
        end = start + length
        if length > self._max_size or end > len(data):
            return None
        return data[start:end], data[end:]

    def _next_payload(self, data: bytes | bytearray | memoryview) -> tuple[bytes, bytes] | None:
        """(payload, b"") once the frame parser has the whole head frame (the rest stays in
        the parser); None until then."""
        parser = self._parser
        if parser is None:
            parser = self._parser = FrameParser(
                self._max_size, too_large=ErrorCode.HEAD_TOO_LARGE, expect=self._frame_type
            )
        parser.feed(data)
        frame = parser.next_frame()
        return None if frame is None else (frame[1], b"")

    def feed_eof(self) -> None:
        """The peer finished its side (FIN).

        Raises:
            ProtocolError: `PROTOCOL_ERROR` if the head is not complete.
        """
        if self._head is None:
            raise ProtocolError(ErrorCode.PROTOCOL_ERROR, "stream ended before a complete head")
