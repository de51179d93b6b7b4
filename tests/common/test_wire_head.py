"""REQUEST/RESPONSE heads: table-driven round trips, rejections and limits (protocol §5)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from common.wire import (
    PREFACE,
    ErrorCode,
    FrameType,
    HeadReader,
    HeadTooLargeError,
    ProtocolError,
    RequestHead,
    ResponseHead,
    encode_frame,
    encode_request,
    encode_response,
    encode_varint,
)


def raw_fields(*pairs: tuple[bytes, bytes]) -> bytes:
    """Fields exactly as given, unvalidated: the way a broken or hostile peer might send them."""
    return b"".join(encode_varint(len(n)) + n + encode_varint(len(v)) + v for n, v in pairs)


def raw_stream(payload: bytes, frame_type: int = FrameType.REQUEST) -> bytes:
    return PREFACE + encode_frame(frame_type, payload)


BASE_REQ = (
    (b":service", b"web"),
    (b":method", b"GET"),
    (b":scheme", b"https"),
    (b":authority", b"example.com"),
    (b":target", b"/"),
    (b":client", b"192.0.2.1"),
    (b":request-id", b"r-1"),
)


def req(*extra: tuple[bytes, bytes], drop: tuple[bytes, ...] = ()) -> bytes:
    return raw_fields(*(f for f in BASE_REQ if f[0] not in drop), *extra)


def decode(data: bytes, reader: HeadReader | None = None) -> RequestHead | ResponseHead | None:
    return (reader or HeadReader.request()).feed(data)


def error_code(data: bytes, reader: HeadReader) -> ErrorCode:
    with pytest.raises(ProtocolError) as info:
        reader.feed(data)
    return info.value.code


REQUESTS = [
    RequestHead("web", "r1", "127.0.0.1", method="GET", target="/", authority="a.example"),
    RequestHead(
        "api",
        "0123456789abcdef",
        "2001:db8::1",
        method="POST",
        target="/v1/items?x=1&y=%20",
        scheme="https",
        authority="api.example:8443",
        client_port=65535,
        headers=((b"content-type", b"application/json"), (b"content-length", b"17")),
    ),
    RequestHead(
        "web",
        "r2",
        "10.0.0.1",
        method="PUT",
        target="/up",
        authority="h",
        chunked=True,
        headers=((b"x-a", b"1"), (b"x-a", b"2"), (b"upgrade", b"websocket")),
    ),
    RequestHead("web", "r3", "fe80::1%eth0", method="OPTIONS", target="*", authority=""),
    RequestHead("wéb", "r4", "1.2.3.4", method="GET", target="/ünï", authority="bücher.example"),
    RequestHead("ssh", "r5", "198.51.100.7", kind="tcp", client_port=50123),
    RequestHead("db", "r6", "::1", kind="tcp"),
    RequestHead(
        "web",
        "r7",
        "1.1.1.1",
        method="GET",
        target="/",
        authority="x",
        headers=((b"x-empty", b""), (b"x-bin", bytes(range(14, 256))), (b"!#$%&'*+-.^_`|~", b"t")),
    ),
]

RESPONSES = [
    ResponseHead(200),
    ResponseHead(101, ((b"upgrade", b"websocket"),)),
    ResponseHead(404, ((b"content-length", b"0"), (b"content-length", b"0"))),
    ResponseHead(599, ((b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")), chunked=True),
    ResponseHead(100),
]


@pytest.mark.parametrize("head", REQUESTS)
def test_request_round_trip(head: RequestHead) -> None:
    data = encode_request(head)
    assert data.startswith(PREFACE + b"\x10")
    reader = HeadReader.request()
    assert reader.feed(data + b"body") == head
    assert reader.head == head
    assert reader.leftover == b"body"


@pytest.mark.parametrize("head", RESPONSES)
def test_response_round_trip(head: ResponseHead) -> None:
    data = encode_response(head)
    assert data.startswith(PREFACE + b"\x11")
    reader = HeadReader.response()
    assert reader.feed(data) == head
    assert reader.leftover == b""


def test_request_wire_format_is_as_specified() -> None:
    head = RequestHead("web", "r", "1.2.3.4", method="GET", target="/", authority="h")
    fields = raw_fields(
        (b":service", b"web"),
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":authority", b"h"),
        (b":target", b"/"),
        (b":client", b"1.2.3.4"),
        (b":request-id", b"r"),
    )
    assert encode_request(head) == raw_stream(fields)


def test_tcp_request_wire_format() -> None:
    head = RequestHead("ssh", "r", "1.2.3.4", kind="tcp", client_port=22)
    fields = raw_fields(
        (b":service", b"ssh"),
        (b":kind", b"tcp"),
        (b":client", b"1.2.3.4"),
        (b":client-port", b"22"),
        (b":request-id", b"r"),
    )
    assert encode_request(head) == raw_stream(fields)


def test_response_wire_format() -> None:
    head = ResponseHead(204, ((b"x", b"y"),), chunked=True)
    fields = raw_fields((b":status", b"204"), (b":chunked", b"1"), (b"x", b"y"))
    assert encode_response(head) == raw_stream(fields, FrameType.RESPONSE)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # Pseudo-fields in any order, explicit defaults.
        (raw_fields(*reversed(BASE_REQ)), {}),
        (req((b":kind", b"http")), {}),
        (req((b":client-port", b"0")), {"client_port": 0}),
        (req((b":client-port", b"00080")), {"client_port": 80}),
        (req((b":chunked", b"1")), {"chunked": True}),
        (req((b"content-length", b"5"), (b"content-length", b"005")), {}),
        (req((b"host", b"example.com")), {}),
    ],
)
def test_decoder_accepts(payload: bytes, expected: dict[str, object]) -> None:
    head = decode(raw_stream(payload))
    assert isinstance(head, RequestHead)
    for name, value in expected.items():
        assert getattr(head, name) == value


REQUEST_REJECTIONS: list[tuple[str, str, bytes]] = [
    ("empty head", "missing pseudo-field :service", b""),
    ("missing :service", "missing pseudo-field", req(drop=(b":service",))),
    ("missing :client", "missing pseudo-field", req(drop=(b":client",))),
    ("missing :request-id", "missing pseudo-field", req(drop=(b":request-id",))),
    ("missing :method", "missing pseudo-field", req(drop=(b":method",))),
    ("missing :target", "missing pseudo-field", req(drop=(b":target",))),
    ("missing :scheme", "missing pseudo-field", req(drop=(b":scheme",))),
    ("missing :authority", "missing pseudo-field", req(drop=(b":authority",))),
    ("unknown pseudo-field", "unknown pseudo-field", req((b":path", b"/"))),
    ("response pseudo in request", "unknown pseudo-field", req((b":status", b"200"))),
    ("repeated pseudo-field", "repeated pseudo-field", req((b":service", b"web"))),
    ("pseudo after header", "after a header", req((b"accept", b"*/*"), (b":chunked", b"1"))),
    ("empty name", "invalid header name", req((b"", b"v"))),
    ("bare colon", "invalid pseudo-field name", req((b":", b"v"))),
    ("uppercase name", "invalid header name", req((b"Accept", b"*/*"))),
    (
        "uppercase pseudo",
        "invalid pseudo-field name",
        raw_fields((b":Service", b"web"), *BASE_REQ[1:]),
    ),
    ("space in name", "invalid header name", req((b"x y", b"1"))),
    ("colon in name", "invalid header name", req((b"x:y", b"1"))),
    ("non-ascii name", "invalid header name", req(("ä".encode(), b"1"))),
    ("CR in value", "CR, LF or NUL", req((b"x", b"a\rb"))),
    ("LF in value", "CR, LF or NUL", req((b"x", b"a\nb"))),
    ("NUL in value", "CR, LF or NUL", req((b"x", b"a\x00b"))),
    ("NUL in pseudo value", "CR, LF or NUL", req((b":chunked", b"1\x00"))),
    ("connection", "hop-by-hop", req((b"connection", b"close"))),
    ("keep-alive", "hop-by-hop", req((b"keep-alive", b"timeout=5"))),
    ("proxy-connection", "hop-by-hop", req((b"proxy-connection", b"x"))),
    ("te", "hop-by-hop", req((b"te", b"trailers"))),
    ("transfer-encoding", "hop-by-hop", req((b"transfer-encoding", b"chunked"))),
    ("trailer", "hop-by-hop", req((b"trailer", b"x"))),
    ("bad :kind", ":kind must be", req((b":kind", b"udp"))),
    ("bad :scheme", ":scheme must be", req(drop=(b":scheme",)) + raw_fields((b":scheme", b"ftp"))),
    ("empty :service", "empty :service", raw_fields((b":service", b""), *BASE_REQ[1:])),
    ("space in :service", "in :service", raw_fields((b":service", b"a b"), *BASE_REQ[1:])),
    (
        "bad :method",
        "invalid method",
        raw_fields((b":method", b"G T"), *(f for f in BASE_REQ if f[0] != b":method")),
    ),
    (
        "empty :method",
        "invalid method",
        raw_fields((b":method", b""), *(f for f in BASE_REQ if f[0] != b":method")),
    ),
    (
        "absolute target",
        "not origin-form",
        raw_fields((b":target", b"http://x/"), *BASE_REQ[:4], *BASE_REQ[5:]),
    ),
    (
        "space in target",
        "in :target",
        raw_fields((b":target", b"/a b"), *BASE_REQ[:4], *BASE_REQ[5:]),
    ),
    (
        "tab in authority",
        "in :authority",
        raw_fields((b":authority", b"a\tb"), *BASE_REQ[:3], *BASE_REQ[4:]),
    ),
    (
        "bad :client",
        "does not appear",
        raw_fields((b":client", b"localhost"), *BASE_REQ[:5], *BASE_REQ[6:]),
    ),
    (
        "v4 leading zero",
        "does not appear",
        raw_fields((b":client", b"01.2.3.4"), *BASE_REQ[:5], *BASE_REQ[6:]),
    ),
    (
        "non-ascii :client",
        "not ASCII",
        raw_fields((b":client", "fe80::1%é".encode()), *BASE_REQ[:5], *BASE_REQ[6:]),
    ),
    ("bad port", "invalid client port", req((b":client-port", b"65536"))),
    ("negative port", "invalid client port", req((b":client-port", b"-1"))),
    ("long port", "invalid client port", req((b":client-port", b"000000"))),
    ("empty port", "invalid client port", req((b":client-port", b""))),
    ("chunked 0", ":chunked must be", req((b":chunked", b"0"))),
    ("chunked true", ":chunked must be", req((b":chunked", b"true"))),
    ("chunked + content-length", "together", req((b":chunked", b"1"), (b"content-length", b"3"))),
    ("bad content-length", "invalid content-length", req((b"content-length", b"3, 3"))),
    ("signed content-length", "invalid content-length", req((b"content-length", b"+3"))),
    ("empty content-length", "invalid content-length", req((b"content-length", b""))),
    ("20-digit content-length", "invalid content-length", req((b"content-length", b"1" * 20))),
    (
        "conflicting content-length",
        "conflicting",
        req((b"content-length", b"3"), (b"content-length", b"4")),
    ),
    ("invalid utf-8 service", "can't decode", raw_fields((b":service", b"\xff"), *BASE_REQ[1:])),
    ("truncated name length", "truncated field length", req() + b"\x40"),
    ("truncated name", "past the end", req() + b"\x05ab"),
    ("truncated value length", "truncated field length", req() + b"\x01x"),
    ("truncated value", "past the end", req() + b"\x01x\x05ab"),
    (
        "tcp with :method",
        "tcp request carries only",
        raw_fields((b":kind", b"tcp"), *BASE_REQ[:2], *BASE_REQ[5:]),
    ),
    (
        "tcp with :chunked",
        "tcp request carries only",
        raw_fields((b":kind", b"tcp"), BASE_REQ[0], *BASE_REQ[5:], (b":chunked", b"1")),
    ),
    (
        "tcp with a header",
        "tcp request carries only",
        raw_fields((b":kind", b"tcp"), BASE_REQ[0], *BASE_REQ[5:], (b"x", b"1")),
    ),
]


@pytest.mark.parametrize(
    ("why", "match", "payload"), REQUEST_REJECTIONS, ids=[r[0] for r in REQUEST_REJECTIONS]
)
def test_request_rejections(why: str, match: str, payload: bytes) -> None:
    with pytest.raises(ProtocolError, match=re.escape(match)) as info:
        HeadReader.request().feed(raw_stream(payload))
    assert info.value.code == ErrorCode.PROTOCOL_ERROR


RESPONSE_REJECTIONS = [
    ("no status", "missing pseudo-field :status", raw_fields((b"x", b"1"))),
    ("status 99", "invalid status", raw_fields((b":status", b"099"))),
    ("status 600", "invalid status", raw_fields((b":status", b"600"))),
    ("two digits", "invalid status", raw_fields((b":status", b"20"))),
    ("four digits", "invalid status", raw_fields((b":status", b"2000"))),
    ("padded", "invalid status", raw_fields((b":status", b" 200"))),
    (
        "request pseudo",
        "unknown pseudo-field",
        raw_fields((b":status", b"200"), (b":service", b"x")),
    ),
    (
        "repeated status",
        "repeated pseudo-field",
        raw_fields((b":status", b"200"), (b":status", b"200")),
    ),
    (
        "chunked + length",
        "together",
        raw_fields((b":status", b"200"), (b":chunked", b"1"), (b"content-length", b"1")),
    ),
    (
        "hop-by-hop",
        "hop-by-hop",
        raw_fields((b":status", b"200"), (b"transfer-encoding", b"chunked")),
    ),
]


@pytest.mark.parametrize(
    ("why", "match", "payload"), RESPONSE_REJECTIONS, ids=[r[0] for r in RESPONSE_REJECTIONS]
)
def test_response_rejections(why: str, match: str, payload: bytes) -> None:
    with pytest.raises(ProtocolError, match=re.escape(match)) as info:
        HeadReader.response().feed(raw_stream(payload, FrameType.RESPONSE))
    assert info.value.code == ErrorCode.PROTOCOL_ERROR


@pytest.mark.parametrize(
    ("reader", "frame_type"),
    [
        (HeadReader.request, FrameType.RESPONSE),
        (HeadReader.response, FrameType.REQUEST),
        (HeadReader.request, FrameType.HELLO),
        (HeadReader.response, 0x21),
    ],
)
def test_wrong_first_frame_type(reader: Callable[[], HeadReader], frame_type: int) -> None:
    data = raw_stream(raw_fields((b":status", b"200")), frame_type)
    assert error_code(data, reader()) == ErrorCode.PROTOCOL_ERROR


def test_bad_preface() -> None:
    data = b"KOKO\x02" + encode_frame(FrameType.REQUEST, req())
    assert error_code(data, HeadReader.request()) == ErrorCode.PROTOCOL_ERROR


def test_declared_length_over_limit_is_head_too_large_before_buffering() -> None:
    reader = HeadReader.request(max_size=1000)
    # The header alone declares 1001 bytes; none of the payload has been sent.
    assert error_code(PREFACE + b"\x10" + encode_varint(1001), reader) == ErrorCode.HEAD_TOO_LARGE


def test_head_at_the_size_limit_is_accepted() -> None:
    payload = req((b"x-pad", b"p" * 10))
    reader = HeadReader.request(max_size=len(payload))
    assert isinstance(reader.feed(raw_stream(payload)), RequestHead)


def test_default_size_limit_is_64_kib() -> None:
    assert error_code(PREFACE + b"\x10" + encode_varint(65537), HeadReader.request()) == (
        ErrorCode.HEAD_TOO_LARGE
    )
    assert HeadReader.request().feed(PREFACE + b"\x10" + encode_varint(65536)) is None


def test_header_count_limit() -> None:
    many = [(b"x-h", b"v")] * 256
    assert isinstance(decode(raw_stream(req(*many))), RequestHead)
    reader = HeadReader.request()
    assert error_code(raw_stream(req(*many, (b"x-h", b"v"))), reader) == ErrorCode.HEAD_TOO_LARGE
    small = HeadReader.response(max_headers=2)
    data = raw_stream(raw_fields((b":status", b"200"), *[(b"a", b"")] * 3), FrameType.RESPONSE)
    assert error_code(data, small) == ErrorCode.HEAD_TOO_LARGE


def test_reader_stays_failed_and_refuses_body_after_head() -> None:
    reader = HeadReader.request()
    bad = raw_stream(req((b"te", b"x")))
    assert error_code(bad, reader) == ErrorCode.PROTOCOL_ERROR
    assert error_code(b"", reader) == ErrorCode.PROTOCOL_ERROR
    good = HeadReader.request()
    assert good.feed(raw_stream(req())) is not None
    with pytest.raises(RuntimeError):
        good.feed(b"more")


def test_feed_eof() -> None:
    reader = HeadReader.request()
    assert reader.feed(raw_stream(req())[:-1]) is None
    with pytest.raises(ProtocolError) as info:
        reader.feed_eof()
    assert info.value.code == ErrorCode.PROTOCOL_ERROR
    done = HeadReader.request()
    done.feed(raw_stream(req()))
    done.feed_eof()  # FIN right after the head: no body, fine


def test_reader_needs_a_head_frame_type() -> None:
    with pytest.raises(ValueError):
        HeadReader(FrameType.PING)


def test_content_length_accessor() -> None:
    assert REQUESTS[1].content_length() == 17
    assert REQUESTS[0].content_length() is None
    assert ResponseHead(200, ((b"content-length", b"0"),)).content_length() == 0


ENCODER_REJECTIONS: list[tuple[str, str, RequestHead]] = [
    ("empty service", "empty :service", RequestHead("", "r", "1.2.3.4", method="GET", target="/")),
    (
        "empty request id",
        "empty :request-id",
        RequestHead("web", "", "1.2.3.4", method="GET", target="/"),
    ),
    ("bad client", "does not appear", RequestHead("web", "r", "host", method="GET", target="/")),
    ("no method", "invalid method", RequestHead("web", "r", "1.2.3.4", target="/")),
    ("no target", "empty :target", RequestHead("web", "r", "1.2.3.4", method="GET")),
    ("bad kind", "kind must be", RequestHead("web", "r", "1.2.3.4", kind="udp")),
    (
        "bad scheme",
        ":scheme must be",
        RequestHead("web", "r", "1.2.3.4", method="GET", target="/", scheme="ws"),
    ),
    (
        "tcp with method",
        "carries no method",
        RequestHead("web", "r", "1.2.3.4", kind="tcp", method="GET"),
    ),
    (
        "tcp with scheme",
        "carries no method",
        RequestHead("web", "r", "1.2.3.4", kind="tcp", scheme="https"),
    ),
    ("tcp chunked", "carries only", RequestHead("web", "r", "1.2.3.4", kind="tcp", chunked=True)),
    (
        "tcp headers",
        "carries only",
        RequestHead("web", "r", "1.2.3.4", kind="tcp", headers=((b"a", b"b"),)),
    ),
    (
        "port too big",
        "invalid client port",
        RequestHead("web", "r", "1.2.3.4", kind="tcp", client_port=70000),
    ),
    (
        "negative port",
        "invalid client port",
        RequestHead("web", "r", "1.2.3.4", kind="tcp", client_port=-1),
    ),
    (
        "lone surrogate",
        "surrogates not allowed",
        RequestHead("web\udc80", "r", "1.2.3.4", kind="tcp"),
    ),
    (
        "uppercase header",
        "invalid header name",
        RequestHead("w", "r", "::1", "tcp", headers=((b"X", b"1"),)),
    ),
    (
        "hop-by-hop",
        "hop-by-hop",
        RequestHead(
            "w", "r", "::1", method="GET", target="/", headers=((b"connection", b"close"),)
        ),
    ),
    (
        "LF in value",
        "CR, LF or NUL",
        RequestHead("w", "r", "::1", method="GET", target="/", headers=((b"x", b"a\nb"),)),
    ),
    (
        "chunked + length",
        "together",
        RequestHead(
            "w",
            "r",
            "::1",
            method="GET",
            target="/",
            chunked=True,
            headers=((b"content-length", b"1"),),
        ),
    ),
]


@pytest.mark.parametrize(
    ("why", "match", "head"), ENCODER_REJECTIONS, ids=[r[0] for r in ENCODER_REJECTIONS]
)
def test_encoder_refuses_what_a_decoder_would_reject(
    why: str, match: str, head: RequestHead
) -> None:
    with pytest.raises(ValueError, match=re.escape(match)):
        encode_request(head)


@pytest.mark.parametrize("status", [99, 600, -200, 1000])
def test_encoder_refuses_bad_status(status: int) -> None:
    with pytest.raises(ValueError):
        encode_response(ResponseHead(status))


def test_encoder_refuses_response_with_bad_header() -> None:
    with pytest.raises(ValueError, match="hop-by-hop"):
        encode_response(ResponseHead(200, ((b"trailer", b"x"),)))


def test_encoder_size_limits_are_typed() -> None:
    big = ResponseHead(200, ((b"x", b"v" * 70000),))
    with pytest.raises(HeadTooLargeError):
        encode_response(big)
    assert HeadReader.response(max_size=80000).feed(encode_response(big, max_size=80000)) == big
    many = ResponseHead(200, ((b"x", b""),) * 257)
    with pytest.raises(HeadTooLargeError):
        encode_response(many)
    with pytest.raises(HeadTooLargeError):
        encode_request(
            RequestHead("w", "r", "::1", method="GET", target="/", headers=((b"x", b"1"),) * 3),
            max_headers=2,
        )
    with pytest.raises(HeadTooLargeError):
        encode_request(RequestHead("w", "r", "::1", kind="tcp"), max_size=10)


def test_encoder_refuses_values_that_would_not_come_back_equal() -> None:
    # Type-violating values that happen to serialize: the decoded head would differ.
    odd = RequestHead("w", "r", "::1", method="GET", target="/", chunked=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not representable"):
        encode_request(odd)
    with pytest.raises(ValueError, match="not representable"):
        encode_response(ResponseHead(200, chunked="yes"))  # type: ignore[arg-type]
