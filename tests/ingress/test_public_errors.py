"""Every error the front end answers itself: the page (HTML or JSON), the status, the
connection's fate, the metrics; and the timeouts (slowloris, idle keep-alive, slow agent)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from common.wire import ErrorCode
from ingress.public import HttpLimits
from ingress.routing import Route
from tests.ingress.public_fakes import Front, eventually, read_response, running_front

JSON = {"Accept": "application/json"}


@pytest.fixture
async def front() -> AsyncIterator[Front]:
    async with running_front() as f:
        yield f


def client(front: Front, host: str = "app.test") -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=front.base, headers={"Host": host}, timeout=30)


async def get_json(front: Front, path: str, host: str = "app.test") -> tuple[int, dict[str, str]]:
    async with client(front, host) as http:
        response = await http.get(path, headers=JSON)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "message", "request_id"}
    assert body["request_id"] == response.headers["x-request-id"]
    return response.status_code, body


async def test_unknown_host_is_404(front: Front) -> None:
    status, body = await get_json(front, "/", host="nobody.test")
    assert (status, body["error"]) == (404, "unknown_host")
    assert "nobody.test" in body["message"]
    assert front.sample("kokoa_ingress_rejected_total", reason="unknown_host") == 1
    assert front.agent.heads == []


async def test_browsers_get_html(front: Front) -> None:
    async with client(front, "nobody.test") as http:
        response = await http.get("/", headers={"Accept": "text/html,*/*;q=0.8"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>404 Not Found</h1>" in response.text
    assert response.headers["x-request-id"] in response.text


async def test_html_escapes_what_the_client_sent(front: Front) -> None:
    async with client(front, "a-b.test") as http:
        response = await http.get("/")
    assert response.status_code == 404
    async with client(front, "x.test") as http:
        response = await http.get("/", headers={"Host": "<script>"})
    assert response.status_code == 400
    assert "<script>" not in response.text


async def test_no_agent_connected_is_502_and_says_so(front: Front) -> None:
    status, body = await get_json(front, "/", host="down.test")
    assert (status, body["error"]) == (502, "no_agent")
    assert body["message"] == "no agent is connected for service down"
    assert front.sample("kokoa_ingress_requests_total", service="down", status="502") == 1


async def test_every_agent_busy_is_503(front: Front) -> None:
    status, body = await get_json(front, "/", host="full.test")
    assert (status, body["error"]) == (503, "busy")


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        (ErrorCode.ORIGIN_REFUSED, 502, "origin_refused"),
        (ErrorCode.ORIGIN_TIMEOUT, 504, "origin_timeout"),
        (ErrorCode.ORIGIN_ERROR, 502, "origin_error"),
        (ErrorCode.UNKNOWN_SERVICE, 502, "unknown_service"),
        (ErrorCode.PROTOCOL_ERROR, 502, "bad_gateway"),
        (ErrorCode.INTERNAL_ERROR, 502, "bad_gateway"),
        (ErrorCode.HEAD_TOO_LARGE, 431, "header_too_large"),
        (ErrorCode.BUSY, 503, "busy"),
        (ErrorCode.DRAINING, 502, "draining"),
        (0x3FF, 502, "bad_gateway"),
    ],
)
async def test_stream_reset_by_the_agent(front: Front, code: int, status: int, error: str) -> None:
    got, body = await get_json(front, f"/reset/{code}")
    assert (got, body["error"]) == (status, error)
    assert front.sample("kokoa_ingress_streams_reset_total", service="app", code=str(code)) >= 1
    # BUSY and DRAINING refuse before doing anything: another lease is tried (3 in all).
    assert len(front.agent.heads) == (3 if code in (ErrorCode.BUSY, ErrorCode.DRAINING) else 1)


async def test_busy_agent_is_retried_on_another_lease(front: Front) -> None:
    async with client(front) as http:
        response = await http.get("/busy-once")
    assert (response.status_code, response.text) == (200, "ok")
    assert len(front.gateway.leases) == 2
    assert all(lease.released for lease in front.gateway.leases)


async def test_request_with_a_body_is_not_retried(front: Front) -> None:
    async with client(front) as http:
        response = await http.post("/reset/7", content=b"body")
    assert response.status_code == 503
    assert len(front.gateway.leases) == 1


async def test_reset_after_the_head_truncates_the_response(front: Front) -> None:
    async with client(front) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/reset-after-head")


async def test_response_head_timeout_is_504() -> None:
    async with running_front(HttpLimits(response_head_timeout=0.2)) as front:
        status, body = await get_json(front, "/slow-head/5")
        assert (status, body["error"]) == (504, "agent_timeout")
        assert front.gateway.leases[-1].stream.reset_code == ErrorCode.CANCELLED  # type: ignore[attr-defined]


async def test_malformed_agent_answer_is_502(front: Front) -> None:
    front.gateway.routes["bad.test"] = Route("bad")

    async def bad_agent(stream: object) -> None:
        await stream.write(b"KOKO\x02garbage")  # type: ignore[attr-defined]

    original = front.agent._answer

    async def answer(stream, head, leftover):  # type: ignore[no-untyped-def]
        if head.service == "bad":
            await bad_agent(stream)
            await stream.read()
            return
        await original(stream, head, leftover)

    front.agent._answer = answer  # type: ignore[method-assign]
    status, body = await get_json(front, "/", host="bad.test")
    assert (status, body["error"]) == (502, "bad_gateway")
    assert front.gateway.leases[-1].stream.reset_code == ErrorCode.PROTOCOL_ERROR  # type: ignore[attr-defined]


async def test_interim_response_from_the_agent_is_502(front: Front) -> None:
    status, body = await get_json(front, "/interim")
    assert (status, body["error"]) == (502, "bad_gateway")
    assert front.gateway.leases[-1].stream.reset_code == ErrorCode.PROTOCOL_ERROR  # type: ignore[attr-defined]


async def test_malformed_body_page_follows_accept(front: Front) -> None:
    reader, writer = await front.open()
    try:
        writer.write(
            b"POST /sha256 HTTP/1.1\r\nHost: app.test\r\nAccept: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n"
        )
        await eventually(lambda: front.agent.heads)
        writer.write(b"zz\r\n")
        status, headers, body = await read_response(reader)
    finally:
        writer.close()
    assert (status, headers["content-type"]) == (400, "application/json")
    assert json.loads(body)["request_id"] == front.agent.heads[-1].request_id


async def test_a_bug_is_a_500_page_without_details(
    front: Front, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(host: str, path: str) -> Route | None:
        raise RuntimeError("secret internal detail")

    front.gateway.route = broken  # type: ignore[method-assign]
    async with client(front) as http:
        response = await http.get("/")
    assert response.status_code == 500
    assert "secret" not in response.text and "Traceback" not in response.text
    assert "secret internal detail" in caplog.text  # logged server-side, with the traceback
    assert "Traceback" in caplog.text


# ---- limits and timeouts -------------------------------------------------------------------


async def raw(front: Front, payload: bytes) -> bytes:
    reader, writer = await front.open()
    try:
        writer.write(payload)
        async with asyncio.timeout(5):
            return await reader.read(-1)
    finally:
        writer.close()


async def test_head_over_the_limit_is_431() -> None:
    async with running_front(HttpLimits(max_header_bytes=4096)) as front:
        answer = await raw(
            front, b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 431 ")
        assert front.sample("kokoa_ingress_rejected_total", reason="header_too_large") == 1
        assert front.agent.heads == []


async def test_endless_header_line_is_431_before_it_ends() -> None:
    # httptools keeps a header line until its end: the byte count must stop it first.
    async with running_front(HttpLimits(max_header_bytes=4096)) as front:
        reader, writer = await front.open()
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: ")
            for _ in range(10):
                writer.write(b"a" * 1000)
                await writer.drain()
            async with asyncio.timeout(5):
                answer = await reader.read(-1)
        finally:
            writer.close()
        assert answer.startswith(b"HTTP/1.1 431 ")


async def test_endless_trailer_is_refused() -> None:
    async with running_front(HttpLimits(max_header_bytes=4096)) as front:
        reader, writer = await front.open()
        try:
            writer.write(
                b"POST /sha256 HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"2\r\nhi\r\n0\r\nX-Trailer: "
            )
            for _ in range(10):
                writer.write(b"a" * 1000)
                await writer.drain()
            async with asyncio.timeout(5):
                answer = await reader.read(-1)
        finally:
            writer.close()
        assert answer.startswith(b"HTTP/1.1 431 ")


async def test_too_many_header_fields_for_the_tunnel_is_431(front: Front) -> None:
    # Valid HTTP, but more fields than a tunnel head carries (256): the request is refused,
    # the connection stays usable.
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(300))
    reader, writer = await front.open()
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: app.test\r\n" + fields + b"\r\n")
        status, headers, _ = await read_response(reader)
        assert (status, headers.get("connection")) == (431, None)
        writer.write(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        assert (await read_response(reader))[0] == 200
    finally:
        writer.close()
    assert len(front.agent.heads) == 1


async def test_slowloris_head_is_408_and_closed() -> None:
    async with running_front(HttpLimits(header_timeout=0.3)) as front:
        reader, writer = await front.open()
        started = asyncio.get_running_loop().time()
        try:
            writer.write(b"GET / HTTP/1.1\r\n")
            first = b""
            for _ in range(40):  # a byte every 50 ms until the server answers
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        first = await reader.read(1)
                if first:
                    break
                writer.write(b"X")
            async with asyncio.timeout(5):
                answer = first + await reader.read(-1)
        finally:
            writer.close()
        elapsed = asyncio.get_running_loop().time() - started
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert 0.3 <= elapsed < 1.0
        assert front.sample("kokoa_ingress_rejected_total", reason="header_timeout") == 1


async def test_silent_connection_is_closed_without_an_answer() -> None:
    async with running_front(HttpLimits(header_timeout=0.3)) as front:
        reader, writer = await front.open()
        try:
            async with asyncio.timeout(5):
                assert await reader.read(-1) == b""
        finally:
            writer.close()


async def test_idle_keep_alive_connection_is_closed() -> None:
    async with running_front(HttpLimits(keepalive_timeout=0.3)) as front:
        reader, writer = await front.open()
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
            status, _, _ = await read_response(reader)
            started = asyncio.get_running_loop().time()
            async with asyncio.timeout(5):
                assert await reader.read(-1) == b""
            assert asyncio.get_running_loop().time() - started >= 0.25
        finally:
            writer.close()
        assert status == 200


async def test_unwanted_body_is_read_before_closing(front: Front) -> None:
    # 404 before reading a large body: the page must arrive, not a reset.
    reader, writer = await front.open()
    try:
        writer.write(b"POST / HTTP/1.1\r\nHost: nobody.test\r\nContent-Length: 3000000\r\n\r\n")
        writer.write(b"x" * 3_000_000)
        status, headers, _ = await read_response(reader)
        assert (status, headers["connection"]) == (404, "close")
        async with asyncio.timeout(5):
            assert await reader.read(-1) == b""
    finally:
        writer.close()


async def test_drain_finishes_requests_in_flight_and_closes_idle_connections() -> None:
    async with running_front() as front:
        idle_reader, idle_writer = await front.open()
        idle_writer.write(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        await read_response(idle_reader)
        busy_reader, busy_writer = await front.open()
        busy_writer.write(b"GET /slow-head/0.3 HTTP/1.1\r\nHost: app.test\r\n\r\n")
        await eventually(lambda: len(front.agent.heads) == 2)
        drained = asyncio.get_running_loop().create_task(front.server.drain(5))
        status, headers, body = await read_response(busy_reader)
        assert (status, body, headers["connection"]) == (200, b"late", "close")
        async with asyncio.timeout(5):
            assert await idle_reader.read(-1) == b""
            await drained
        with pytest.raises(OSError):
            await front.open()
        idle_writer.close()
        busy_writer.close()


async def test_json_error_body_shape(front: Front) -> None:
    reader, writer = await front.open()
    try:
        writer.write(
            b"GET / HTTP/1.1\r\nHost: down.test\r\n"
            b"Accept: text/html;q=0.5, application/json\r\n\r\n"
        )
        status, headers, body = await read_response(reader)
    finally:
        writer.close()
    assert status == 502 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"] == "no_agent"
