"""The pure pieces of the front end, table-driven: request heads, response framing, error
pages and content negotiation, the tunnel head."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.wire import ErrorCode, HeadReader, ResponseHead, encode_request
from ingress.public import pages
from ingress.public.forward import new_request_id, route_path, tunnel_head
from ingress.public.request import (
    ClientRequest,
    Rejected,
    normalise_host,
    parse_head,
    split_fields,
)
from ingress.public.response import Framing, encode_head
from ingress.routing import Route


def head(
    *fields: tuple[bytes, bytes],
    method: bytes = b"GET",
    url: bytes = b"/",
    version: str = "1.1",
    upgrade: bool = False,
) -> ClientRequest:
    headers, special = split_fields(list(fields))
    return parse_head(method, version, url, headers, special, keep_alive=True, upgrade=upgrade)


HOST = (b"host", b"app.test")


# ---- parse_head -----------------------------------------------------------------------------


def test_plain_get() -> None:
    request = head(HOST, (b"accept", b"*/*"), (b"x-a", b"1"))
    assert (request.method, request.target, request.authority, request.host) == (
        "GET",
        "/",
        "app.test",
        "app.test",
    )
    assert request.headers == [(b"accept", b"*/*"), (b"x-a", b"1")]
    assert (request.content_length, request.chunked, request.has_body) == (None, False, False)
    assert request.accept == b"*/*"


def test_fields_we_replace_or_drop_are_not_kept() -> None:
    dropped = [
        (name, b"100-continue" if name == b"expect" else b"v")
        for name in (
            b"connection",
            b"keep-alive",
            b"proxy-connection",
            b"te",
            b"trailer",
            b"upgrade",
            b"expect",
            b"x-request-id",
            b"forwarded",
            b"x-real-ip",
            b"x-forwarded-for",
            b"x-forwarded-proto",
            b"x-forwarded-host",
            b"x-forwarded-port",
        )
    ]
    request = head(HOST, *dropped, (b"content-length", b"0"), (b"kept", b"v"))
    assert request.headers == [(b"kept", b"v")]


def test_connection_nominated_fields_are_dropped() -> None:
    request = head(HOST, (b"connection", b"X-A, close"), (b"x-a", b"1"), (b"x-b", b"2"))
    assert request.headers == [(b"x-b", b"2")]


@pytest.mark.parametrize(
    ("fields", "length", "chunked"),
    [
        (((b"content-length", b"0"),), 0, False),
        (((b"content-length", b"007"),), 7, False),
        (((b"transfer-encoding", b"chunked"),), None, True),
        (((b"transfer-encoding", b"Chunked"),), None, True),
    ],
)
def test_body_framing(
    fields: tuple[tuple[bytes, bytes], ...], length: int | None, chunked: bool
) -> None:
    request = head(HOST, *fields, method=b"POST")
    assert (request.content_length, request.chunked) == (length, chunked)


@pytest.mark.parametrize(
    ("kwargs", "fields", "status"),
    [
        ({}, (), 400),  # no Host
        ({}, (HOST, HOST), 400),
        ({"version": "2.0"}, (HOST,), 505),
        ({"version": "0.9"}, (HOST,), 505),
        ({"method": b"CONNECT", "url": b"app.test:443"}, (HOST,), 405),
        ({"url": b"*"}, (HOST,), 400),
        ({"url": b"ftp://app.test/"}, (HOST,), 400),
        ({"url": b"http://u@app.test/"}, (HOST,), 400),
        ({"url": b"/\xff"}, (HOST,), 400),
        ({}, ((b"host", b"app.test:70000"),), 400),
        ({}, ((b"host", b"a b"),), 400),
        ({}, ((b"host", b""),), 400),
        ({}, (HOST, (b"transfer-encoding", b"gzip, chunked")), 400),
        ({}, (HOST, (b"transfer-encoding", b"chunked"), (b"transfer-encoding", b"chunked")), 400),
        ({"version": "1.0"}, (HOST, (b"transfer-encoding", b"chunked")), 400),
        ({}, (HOST, (b"content-length", b"10000000000000000000")), 413),
        ({}, (HOST, (b"expect", b"nope"), (b"content-length", b"1")), 417),
        ({"upgrade": True}, (HOST, (b"upgrade", b"ws"), (b"content-length", b"1")), 400),
        ({}, (HOST, (b"content_length", b"5")), 400),
        ({}, (HOST, (b"x_forwarded_for", b"1.2.3.4")), 400),
    ],
)
def test_refusals(
    kwargs: dict[str, object], fields: tuple[tuple[bytes, bytes], ...], status: int
) -> None:
    with pytest.raises(Rejected) as caught:
        head(*fields, **kwargs)  # type: ignore[arg-type]
    assert caught.value.status == status


def test_underscore_in_other_names_is_fine() -> None:
    assert head(HOST, (b"x_custom", b"1")).headers == [(b"x_custom", b"1")]


def test_absolute_form() -> None:
    request = head((b"host", b"ignored.test"), url=b"HTTP://App.Test:8080?q=1")
    assert (request.target, request.authority, request.host) == (
        "/?q=1",
        "App.Test:8080",
        "app.test",
    )


def test_options_asterisk() -> None:
    request = head(HOST, method=b"OPTIONS", url=b"*")
    assert request.target == "*"
    assert route_path(request.target) == "/"


def test_upgrade_is_kept_only_when_llhttp_says_upgrade() -> None:
    fields = (HOST, (b"connection", b"upgrade"), (b"upgrade", b"websocket"))
    assert head(*fields, upgrade=True).upgrade == b"websocket"
    assert head(*fields, upgrade=False).upgrade is None


def test_expect_continue_only_with_a_body_in_http11() -> None:
    expect = (b"expect", b"100-Continue")
    assert head(HOST, expect, (b"content-length", b"5"), method=b"POST").expect_continue
    assert not head(HOST, expect, method=b"POST").expect_continue
    assert not head(HOST, expect, (b"content-length", b"5"), version="1.0").expect_continue


@pytest.mark.parametrize(
    ("authority", "host"),
    [
        (b"App.Test", "app.test"),
        (b"app.test.", "app.test"),
        (b"app.test:8080", "app.test"),
        (b"app.test:", "app.test"),
        (b"[::1]:8080", "[::1]"),
        (b"127.0.0.1", "127.0.0.1"),
        ("bücher.test".encode(), "xn--bcher-kva.test"),
        ("bücher.test:81".encode(), "xn--bcher-kva.test"),
    ],
)
def test_normalise_host(authority: bytes, host: str) -> None:
    assert normalise_host(authority)[1] == host


def test_international_authority_is_sent_as_a_labels() -> None:
    assert normalise_host("bücher.test:81".encode()) == (
        "xn--bcher-kva.test:81",
        "xn--bcher-kva.test",
    )


@pytest.mark.parametrize(
    "authority", [b"a/b", b"a@b", b"[::1", b"a:b:c", b"\xff", b"a b", b"-:1:2"]
)
def test_normalise_host_refuses(authority: bytes) -> None:
    with pytest.raises(Rejected):
        normalise_host(authority)


# ---- the tunnel head ------------------------------------------------------------------------


def test_tunnel_head_round_trips_through_the_codec() -> None:
    request = head(HOST, (b"x-a", b"1"), (b"content-length", b"3"), method=b"POST", url=b"/v1/x?y")
    request_id = new_request_id()
    sent = tunnel_head(
        request, Route("api", "/v1", True), request_id=request_id, client=("::1", 5), scheme="https"
    )
    decoded = HeadReader.request().feed(encode_request(sent))
    assert decoded == sent
    assert (sent.target, sent.service, sent.client, sent.client_port) == ("/x?y", "api", "::1", 5)
    assert dict(sent.headers) == {
        b"x-a": b"1",
        b"x-forwarded-for": b"::1",
        b"x-forwarded-proto": b"https",
        b"x-forwarded-host": b"app.test",
        b"x-request-id": request_id.encode(),
        b"content-length": b"3",
    }
    assert request.headers == [(b"x-a", b"1")]  # the client request is not changed


def test_request_ids_are_unique_hex() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


# ---- response framing ----------------------------------------------------------------------


def frame(
    status: int = 200,
    headers: tuple[tuple[bytes, bytes], ...] = (),
    *,
    chunked: bool = False,
    head_request: bool = False,
    http10: bool = False,
    keep_alive: bool = True,
) -> tuple[bytes, Framing, int, bool]:
    return encode_head(
        ResponseHead(status, headers, chunked),
        b"rid",
        head_request=head_request,
        http10=http10,
        keep_alive=keep_alive,
    )


CL = ((b"content-length", b"5"),)


@pytest.mark.parametrize(
    ("kwargs", "framing", "fields", "keep"),
    [
        ({"headers": CL}, Framing.LENGTH, [b"content-length: 5"], True),
        ({}, Framing.NONE, [b"content-length: 0"], True),
        ({"chunked": True}, Framing.CHUNKED, [b"transfer-encoding: chunked"], True),
        ({"chunked": True, "http10": True}, Framing.CLOSE, [b"connection: close"], False),
        ({"headers": CL, "http10": True}, Framing.LENGTH, [b"connection: keep-alive"], True),
        ({"headers": CL, "head_request": True}, Framing.NONE, [b"content-length: 5"], True),
        ({"chunked": True, "head_request": True}, Framing.NONE, [], True),
        ({"status": 204}, Framing.NONE, [], True),
        ({"status": 304, "headers": CL}, Framing.NONE, [b"content-length: 5"], True),
        ({"status": 304}, Framing.NONE, [], True),
        ({"headers": CL, "keep_alive": False}, Framing.LENGTH, [b"connection: close"], False),
    ],
)
def test_response_framing(
    kwargs: dict[str, object], framing: Framing, fields: list[bytes], keep: bool
) -> None:
    data, got, _, keep_alive = frame(**kwargs)  # type: ignore[arg-type]
    lines = data.split(b"\r\n")
    assert data.endswith(b"\r\n\r\n")
    assert (got, keep_alive) == (framing, keep)
    for field in fields:
        assert field in lines
    framing_fields = [
        line for line in lines if line.split(b":")[0] in (b"content-length", b"transfer-encoding")
    ]
    assert len(framing_fields) <= 1
    assert b"x-request-id: rid" in lines


def test_response_fields_pass_through_but_not_the_agents_request_id() -> None:
    data, *_ = frame(
        headers=((b"set-cookie", b"a=1"), (b"set-cookie", b"b=2"), (b"x-request-id", b"x"))
    )
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.count(b"set-cookie: ") == 2
    assert b"x-request-id: x\r\n" not in data


def test_unknown_status_has_an_empty_reason() -> None:
    assert frame(599)[0].startswith(b"HTTP/1.1 599 \r\n")


# ---- pages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "json_wanted"),
    [
        (b"", False),
        (b"*/*", False),
        (b"application/json", True),
        (b"application/json, */*", True),
        (b"text/html, application/json", False),
        (b"text/html;q=0.5, application/json", True),
        (b"application/problem+json", True),
        (b"application/json;q=0, text/html", False),
        (b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
        (b"application/json;q=bogus, text/html;q=0.1", False),
    ],
)
def test_prefers_json(accept: bytes, json_wanted: bool) -> None:
    assert pages.prefers_json(accept) is json_wanted


@given(st.binary(max_size=200))
def test_prefers_json_never_fails(accept: bytes) -> None:
    assert pages.prefers_json(accept) in (True, False)


def test_pages_carry_code_message_and_id() -> None:
    problem = pages.no_agent("web")
    page = pages.render(problem, "rid", b"application/json", keep_alive=True)
    head_, _, body = page.partition(b"\r\n\r\n")
    assert head_.startswith(b"HTTP/1.1 502 Bad Gateway\r\n")
    assert b"connection: close" not in head_
    assert json.loads(body) == {
        "error": "no_agent",
        "message": "no agent is connected for service web",
        "request_id": "rid",
    }
    assert b"content-length: %d" % len(body) in head_
    closing = pages.render(problem, "rid", b"", keep_alive=False)
    assert b"\r\nconnection: close\r\n\r\n" in closing and b"<h1>502 Bad Gateway</h1>" in closing


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_reset_code_has_a_page(code: ErrorCode) -> None:
    problem = pages.for_reset(code, "web")
    assert problem.status in (431, 502, 503, 504)
    assert problem.message
