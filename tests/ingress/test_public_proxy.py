"""Requests through the public front end to a fake agent, with real HTTP clients on loopback:
forwarding headers, routing, framing both ways, keep-alive, pipelining, 100-continue."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from common.wire import ErrorCode
from tests.ingress.public_fakes import Front, eventually, pattern, read_response, running_front


@pytest.fixture
async def front() -> AsyncIterator[Front]:
    async with running_front() as f:
        yield f


def client(front: Front, host: str = "app.test", **kwargs: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=front.base, headers={"Host": host}, timeout=30, **kwargs)  # type: ignore[arg-type]


def header_map(seen: dict[str, object]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in seen["headers"]:  # type: ignore[attr-defined]
        out.setdefault(name, []).append(value)
    return out


async def raw_exchange(front: Front, payload: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await front.open()
    try:
        writer.write(payload)
        return await read_response(reader)
    finally:
        writer.close()


# ---- the request head ---------------------------------------------------------------------


async def test_forwarding_headers_are_ours_not_the_clients(front: Front) -> None:
    async with client(front) as http:
        response = await http.get(
            "/headers?x=1",
            headers={
                "X-Forwarded-For": "6.6.6.6",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "evil.test",
                "X-Real-IP": "6.6.6.6",
                "Forwarded": "for=6.6.6.6",
                "X-Request-Id": "forged",
                "X-Custom": "kept",
            },
        )
    assert response.status_code == 200
    seen = response.json()
    headers = header_map(seen)
    assert headers["x-forwarded-for"] == ["127.0.0.1"]
    assert headers["x-forwarded-proto"] == ["http"]
    assert headers["x-forwarded-host"] == ["app.test"]
    assert "x-real-ip" not in headers and "forwarded" not in headers
    assert headers["x-request-id"] == [seen["request_id"]]
    assert seen["request_id"] != "forged" and len(seen["request_id"]) == 32
    assert response.headers["x-request-id"] == seen["request_id"]
    assert headers["x-custom"] == ["kept"]
    assert (seen["service"], seen["method"], seen["target"]) == ("app", "GET", "/headers?x=1")
    assert (seen["scheme"], seen["authority"], seen["client"]) == ("http", "app.test", "127.0.0.1")
    assert seen["client_port"] > 0


async def test_hop_by_hop_fields_and_those_connection_names_are_dropped(front: Front) -> None:
    status, _, body = await raw_exchange(
        front,
        b"GET /headers HTTP/1.1\r\nHost: app.test\r\nConnection: keep-alive, X-Secret\r\n"
        b"Keep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: x\r\nProxy-Connection: close\r\n"
        b"X-Secret: 1\r\nUpgrade: h2c\r\nX-Other: 2\r\n\r\n",
    )
    assert status == 200
    names = set(header_map(json.loads(body)))
    assert names.isdisjoint(
        {"connection", "keep-alive", "te", "trailer", "proxy-connection", "x-secret", "upgrade"}
    )
    assert "x-other" in names


async def test_host_is_normalised_for_routing_and_kept_as_sent(front: Front) -> None:
    async with client(front, "APP.Test.:8080") as http:
        response = await http.get("/headers")
    assert response.status_code == 200
    assert response.json()["authority"] == "APP.Test.:8080"
    assert front.gateway.routed[-1] == ("app.test", "/headers")


async def test_absolute_form_target_uses_its_authority(front: Front) -> None:
    status, _, body = await raw_exchange(
        front, b"GET http://app.test/headers?q HTTP/1.1\r\nHost: other.test\r\n\r\n"
    )
    assert status == 200
    seen = json.loads(body)
    assert (seen["authority"], seen["target"]) == ("app.test", "/headers?q")


@pytest.mark.parametrize(
    ("target", "sent"),
    [("/v1/headers?a=b", "/headers?a=b"), ("/v1", "/"), ("/v1?q", "/?q"), ("/v1/", "/")],
)
async def test_strip_prefix_rewrites_the_target(front: Front, target: str, sent: str) -> None:
    async with client(front, "api.test") as http:
        response = await http.get(target)
    assert response.status_code == 200
    assert front.agent.heads[-1].target == sent
    assert front.agent.heads[-1].service == "api"


async def test_path_outside_the_prefix_is_404(front: Front) -> None:
    async with client(front, "api.test") as http:
        response = await http.get("/v2/x")
    assert response.status_code == 404
    assert front.agent.heads == []


# ---- framing ------------------------------------------------------------------------------


async def test_keep_alive_serves_many_requests_on_one_connection(front: Front) -> None:
    reader, writer = await front.open()
    try:
        for i in range(5):
            writer.write(b"GET /bytes/%d HTTP/1.1\r\nHost: app.test\r\n\r\n" % (i * 1000))
            status, headers, body = await read_response(reader)
            assert (status, body) == (200, pattern(i * 1000))
            assert "connection" not in headers
    finally:
        writer.close()
    assert len(front.agent.heads) == 5
    assert front.server.connections == 1


async def test_connection_close_is_honoured(front: Front) -> None:
    reader, writer = await front.open()
    try:
        writer.write(b"GET /bytes/10 HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
        _, headers, _ = await read_response(reader)
        assert headers["connection"] == "close"
        assert await reader.read() == b""  # closed by the server
    finally:
        writer.close()


async def test_pipelined_requests_are_answered_in_order(front: Front) -> None:
    requests = b"".join(
        b"GET /bytes/%d HTTP/1.1\r\nHost: app.test\r\n\r\n" % size for size in (300, 0, 70000, 5)
    )
    requests += b"POST /sha256 HTTP/1.1\r\nHost: app.test\r\nContent-Length: 3\r\n\r\nabc"
    reader, writer = await front.open()
    try:
        writer.write(requests)
        bodies = [(await read_response(reader))[2] for _ in range(5)]
    finally:
        writer.close()
    assert bodies[:4] == [pattern(300), b"", pattern(70000), pattern(5)]
    assert json.loads(bodies[4])["size"] == 3


async def test_chunked_request_and_response(front: Front) -> None:
    async def parts() -> AsyncIterator[bytes]:
        for i in range(20):
            yield bytes([i]) * (1000 + i)

    async with client(front) as http:
        response = await http.post("/echo", content=parts())
    assert response.status_code == 200
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.content == b"".join(bytes([i]) * (1000 + i) for i in range(20))
    head = front.agent.heads[-1]
    assert head.chunked and head.content_length() is None


async def test_sized_request_keeps_its_length(front: Front) -> None:
    async with client(front) as http:
        response = await http.post("/sha256", content=b"x" * 12345)
    assert response.json()["size"] == 12345
    head = front.agent.heads[-1]
    assert (head.chunked, head.content_length()) == (False, 12345)


async def test_head_request_has_no_body_but_keeps_the_length(front: Front) -> None:
    reader, writer = await front.open()
    try:
        request = b"HEAD /status/200?length=42 HTTP/1.1\r\nHost: app.test\r\n\r\n"
        writer.write(request + request)  # the second proves the first had no body
        for _ in range(2):
            status, headers, body = await read_response(reader, head_request=True)
            assert (status, headers["content-length"], body) == (200, "42", b"")
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("path", "length"), [("/status/204", None), ("/status/304?length=9", "9"), ("/status/200", "0")]
)
async def test_bodiless_statuses(front: Front, path: str, length: str | None) -> None:
    reader, writer = await front.open()
    try:
        request = b"GET %s HTTP/1.1\r\nHost: app.test\r\n\r\n" % path.encode()
        writer.write(request + request)  # the second proves the first had no body
        for _ in range(2):
            status, headers, body = await read_response(reader)
            assert status == int(path.split("/")[2][:3])
            assert headers.get("content-length") == length
            assert "transfer-encoding" not in headers and body == b""
    finally:
        writer.close()


async def test_http10_client_gets_close_delimited_chunked_responses(front: Front) -> None:
    reader, writer = await front.open()
    try:
        writer.write(b"GET /bytes/5000?chunked HTTP/1.0\r\nHost: app.test\r\n\r\n")
        status, headers, body = await read_response(reader)
    finally:
        writer.close()
    assert status == 200
    assert "transfer-encoding" not in headers and "content-length" not in headers
    assert headers["connection"] == "close"
    assert body == pattern(5000)


async def test_http10_keep_alive_when_asked_and_sized(front: Front) -> None:
    reader, writer = await front.open()
    try:
        for _ in range(2):
            writer.write(
                b"GET /bytes/10 HTTP/1.0\r\nHost: app.test\r\nConnection: keep-alive\r\n\r\n"
            )
            status, headers, body = await read_response(reader)
            assert (status, headers["connection"], body) == (200, "keep-alive", pattern(10))
    finally:
        writer.close()


async def test_expect_100_continue(front: Front) -> None:
    reader, writer = await front.open()
    try:
        writer.write(
            b"POST /sha256 HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        async with asyncio.timeout(5):
            interim = await reader.readuntil(b"\r\n\r\n")
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        status, _, body = await read_response(reader)
    finally:
        writer.close()
    assert (status, json.loads(body)["size"]) == (200, 5)
    assert b"expect" not in [n for n, _ in front.agent.heads[-1].headers]


async def test_no_100_continue_when_the_body_already_came(front: Front) -> None:
    reader, writer = await front.open()
    try:
        writer.write(
            b"POST /sha256 HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\n\r\nhello"
        )
        status, _, _ = await read_response(reader)
    finally:
        writer.close()
    assert status == 200


async def test_server_sent_events_are_not_buffered(front: Front) -> None:
    arrivals: list[float] = []
    loop = asyncio.get_running_loop()
    async with client(front) as http, http.stream("GET", "/sse") as response:
        async for _ in response.aiter_raw():
            arrivals.append(loop.time())
    assert len(arrivals) >= 5
    assert arrivals[-1] - arrivals[0] > 0.3


# ---- the client going away ----------------------------------------------------------------


async def test_client_gone_mid_upload_cancels_the_stream(front: Front) -> None:
    _, writer = await front.open()
    writer.write(b"POST /sha256 HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100000\r\n\r\nabc")
    await writer.drain()
    await eventually(lambda: front.agent.heads)
    writer.close()
    await eventually(lambda: front.agent.resets_seen)
    assert front.agent.resets_seen == [ErrorCode.CANCELLED]
    await eventually(lambda: front.sample("kokoa_ingress_in_flight", service="app") == 0)


async def test_client_gone_mid_download_cancels_the_stream(front: Front) -> None:
    reader, writer = await front.open()
    writer.write(b"GET /bytes/100000000 HTTP/1.1\r\nHost: app.test\r\n\r\n")
    await reader.readexactly(100000)
    writer.close()
    stream = front.gateway.leases[-1].stream
    await eventually(lambda: stream.reset_code is not None)  # type: ignore[attr-defined]
    assert stream.reset_code == ErrorCode.CANCELLED  # type: ignore[attr-defined]
    assert front.sample("kokoa_ingress_requests_total", service="app", status="200") == 1


# ---- log and metrics ----------------------------------------------------------------------


async def test_one_access_log_line_per_request(
    front: Front, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kokoa.ingress.access")
    async with client(front) as http:
        response = await http.post("/sha256?a", content=b"x" * 1000)
    records = [r for r in caplog.records if r.name == "kokoa.ingress.access"]
    assert len(records) == 1
    fields = records[0].__dict__
    assert fields["request_id"] == response.headers["x-request-id"]
    assert (fields["service"], fields["agent"], fields["method"]) == ("app", "agent-1", "POST")
    assert (fields["target"], fields["status"], fields["client"]) == ("/sha256?a", 200, "127.0.0.1")
    assert (fields["bytes_in"], fields["bytes_out"]) == (1000, len(response.content))
    assert fields["duration_ms"] > 0 and fields["error"] is None


async def test_metrics_count_requests_and_bytes(front: Front) -> None:
    async with client(front) as http:
        await http.post("/sha256", content=b"x" * 1000)
        await http.get("/bytes/5000")
        await http.get("/status/204")
    assert front.sample("kokoa_ingress_requests_total", service="app", status="200") == 2
    assert front.sample("kokoa_ingress_requests_total", service="app", status="204") == 1
    assert front.sample("kokoa_ingress_bytes_received_total", service="app") == 1000
    sent = front.sample("kokoa_ingress_bytes_sent_total", service="app")
    assert sent == 5000 + len(b'{"sha256": "') + 64 + len(b'", "size": 1000}')
    assert front.sample("kokoa_ingress_request_seconds_count", service="app") == 3
    assert front.sample("kokoa_ingress_in_flight", service="app") == 0
