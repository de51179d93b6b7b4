"""Pure translation between tunnel heads and HTTP/1.1 towards the origin."""

from __future__ import annotations

import pytest

from common.wire import HeadReader, RequestHead, ResponseHead
from edge.origin_config import OriginService
from edge.origin_errors import OriginProtocolError
from edge.origin_http import encode_tunnel_response, origin_request, tunnel_response
from edge.origin_messages import OriginResponse

SERVICE = OriginService(name="web", origin="http://127.0.0.1:8000")


def request(**fields: object) -> RequestHead:
    values: dict[str, object] = {
        "service": "web",
        "request_id": "r-1",
        "client": "192.0.2.1",
        "method": "GET",
        "target": "/a?b=c",
        "authority": "app.example",
    }
    values.update(fields)
    return RequestHead(**values)  # type: ignore[arg-type]


def lines(head: bytes) -> list[bytes]:
    assert head.endswith(b"\r\n\r\n")
    return head[:-4].split(b"\r\n")


def test_plain_get() -> None:
    out = origin_request(
        request(headers=((b"accept", b"*/*"), (b"x-forwarded-for", b"1.2.3.4"))), SERVICE
    )
    assert lines(out.head) == [
        b"GET /a?b=c HTTP/1.1",
        b"host: app.example",
        b"accept: */*",
        b"x-forwarded-for: 1.2.3.4",
        b"x-request-id: r-1",
    ]
    assert (out.has_body, out.chunked, out.upgrade, out.length) == (False, False, False, None)


def test_framing_is_ours_and_forged_fields_are_replaced() -> None:
    head = request(
        method="POST",
        headers=(
            (b"host", b"evil.example"),
            (b"x-request-id", b"forged"),
            (b"expect", b"100-continue"),
            (b"content-length", b"5"),
        ),
    )
    out = origin_request(head, SERVICE)
    assert lines(out.head) == [
        b"POST /a?b=c HTTP/1.1",
        b"host: app.example",
        b"x-request-id: r-1",
        b"content-length: 5",
    ]
    assert (out.has_body, out.length) == (True, 5)
    chunked = origin_request(request(method="POST", chunked=True), SERVICE)
    assert lines(chunked.head)[-1] == b"transfer-encoding: chunked"
    assert chunked.has_body and chunked.chunked
    empty = origin_request(request(method="POST", headers=((b"content-length", b"0"),)), SERVICE)
    assert not empty.has_body and lines(empty.head)[-1] == b"content-length: 0"


def test_host_override_and_default() -> None:
    override = OriginService(name="web", origin="http://127.0.0.1:8000", host_header="in.local")
    assert lines(origin_request(request(), override).head)[1] == b"host: in.local"
    assert lines(origin_request(request(authority=""), SERVICE).head)[1] == b"host: 127.0.0.1:8000"


def test_upgrade_request() -> None:
    head = request(headers=((b"upgrade", b"websocket"), (b"sec-websocket-key", b"k")))
    out = origin_request(head, SERVICE)
    assert out.upgrade and not out.has_body
    assert lines(out.head)[-2:] == [b"connection: upgrade", b"upgrade: websocket"]


def response(status: int, *headers: tuple[bytes, bytes]) -> OriginResponse:
    return OriginResponse(status, headers, keep_alive=True)


@pytest.mark.parametrize(
    "status, method, given, expected, chunked",
    [
        (200, "GET", [(b"content-length", b"10")], [(b"content-length", b"10")], False),
        (200, "GET", [(b"transfer-encoding", b"chunked")], [], True),
        (200, "GET", [], [], True),
        (200, "HEAD", [(b"content-length", b"10")], [(b"content-length", b"10")], False),
        (200, "HEAD", [(b"transfer-encoding", b"chunked")], [], False),
        (204, "GET", [(b"content-length", b"0")], [], False),
        (304, "GET", [(b"etag", b'"x"')], [(b"etag", b'"x"')], False),
        (
            200,
            "GET",
            [(b"connection", b"keep-alive, x-hop"), (b"x-hop", b"1"), (b"keep-alive", b"t=5"),
             (b"x-end", b"2"), (b"upgrade", b"h2c"), (b"content-length", b"0")],
            [(b"x-end", b"2"), (b"content-length", b"0")],
            False,
        ),
        (
            101,
            "GET",
            [(b"connection", b"Upgrade"), (b"upgrade", b"websocket"), (b"sec-ws", b"")],
            [(b"upgrade", b"websocket"), (b"sec-ws", b"")],
            False,
        ),
        (426, "GET", [(b"upgrade", b"h2c"), (b"content-length", b"0")],
         [(b"upgrade", b"h2c"), (b"content-length", b"0")], False),
    ],
)  # fmt: skip
def test_response_heads(
    status: int,
    method: str,
    given: list[tuple[bytes, bytes]],
    expected: list[tuple[bytes, bytes]],
    chunked: bool,
) -> None:
    head = tunnel_response(response(status, *given), method=method)
    assert head == ResponseHead(status, tuple(expected), chunked)
    # … and it crosses the tunnel unchanged.
    reader = HeadReader.response()
    assert reader.feed(encode_tunnel_response(head, 65536)) == head


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-length", b"ten")],
        [(b"content-length", b"1"), (b"content-length", b"2")],
    ],
)
def test_bad_lengths_are_origin_errors(headers: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(OriginProtocolError, match="content-length"):
        tunnel_response(response(200, *headers), method="GET")


def test_unrepresentable_heads_are_origin_errors() -> None:
    big = ResponseHead(200, ((b"x-big", b"a" * 70_000),))
    with pytest.raises(OriginProtocolError, match="not representable"):
        encode_tunnel_response(big, 65536)
    bad = ResponseHead(200, ((b"x", b"a\x00b"),))
    with pytest.raises(OriginProtocolError):
        encode_tunnel_response(bad, 65536)
