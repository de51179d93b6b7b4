"""The origin HTTP/1.1 client and pool against real servers on 127.0.0.1: the demo origin under
uvicorn, and scripted asyncio servers for the edge cases."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import os
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trustme
import uvloop

from common.wire import RequestHead
from edge.demo_server import RunningOrigin, running
from edge.origin import (
    OriginClosed,
    OriginPool,
    OriginProtocolError,
    OriginRefused,
    OriginResponse,
    OriginTimeout,
    OriginTLSError,
)
from edge.origin_config import OriginService
from edge.origin_http import origin_request
from tests.edge.raw_origin import Connection, RawOrigin, response


@pytest.fixture
async def demo() -> AsyncIterator[RunningOrigin]:
    async with running() as origin:
        yield origin


@pytest.fixture
async def pool() -> AsyncIterator[OriginPool]:
    pool = OriginPool()
    yield pool
    await pool.aclose()


def service(origin: str, **options: object) -> OriginService:
    return OriginService.model_validate({"name": "svc", "origin": origin, **options})


def local(port: int, scheme: str = "http", **options: object) -> OriginService:
    return service(f"{scheme}://127.0.0.1:{port}", **options)


async def fetch(
    pool: OriginPool,
    svc: OriginService,
    target: str = "/",
    *,
    method: str = "GET",
    body: bytes | None = None,
    chunked: bool = False,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> tuple[OriginResponse, bytes]:
    """One exchange through the pool, as the proxy does it."""
    if body is not None and not chunked:
        headers += ((b"content-length", str(len(body)).encode()),)
    head = RequestHead(
        svc.name, "rid-1", "127.0.0.1", method=method, target=target,
        authority="public.example", chunked=chunked, headers=headers,
    )  # fmt: skip
    request = origin_request(head, svc)
    conn = await pool.acquire(svc)
    try:
        conn.begin(request, read_timeout=svc.read_timeout)
        if body:
            conn.send_body(body)
            await conn.drain()
        if request.has_body:
            conn.end_body()
        resp = await conn.response()
        parts = []
        while chunk := await conn.read():
            parts.append(chunk)
        return resp, b"".join(parts)
    finally:
        pool.release(conn)


def header(resp: OriginResponse, name: bytes) -> bytes | None:
    return next((v for k, v in resp.headers if k == name), None)


# ---- against the demo origin (uvicorn, httptools) ---------------------------------------


async def test_get_and_keep_alive_on_the_demo(demo: RunningOrigin, pool: OriginPool) -> None:
    svc = local(demo.port)
    seen = []
    for _ in range(3):
        resp, body = await fetch(pool, svc, "/bytes/5000")
        assert resp.status == 200
        assert hashlib.sha256(body).hexdigest() == header(resp, b"x-sha256").decode()  # type: ignore[union-attr]
        seen.append(pool.idle_count(svc))
    assert seen == [1, 1, 1]


async def test_request_headers_host_and_request_id(demo: RunningOrigin, pool: OriginPool) -> None:
    _, body = await fetch(pool, local(demo.port), "/headers", headers=((b"x-a", b"1"),))
    seen = json.loads(body)
    assert seen["host"] == "public.example"
    assert seen["x-request-id"] == "rid-1"
    assert seen["x-a"] == "1"
    _, body = await fetch(pool, local(demo.port, host_header="inside.local"), "/headers")
    assert json.loads(body)["host"] == "inside.local"


@pytest.mark.parametrize("chunked", [False, True])
async def test_request_bodies_sized_and_chunked(
    demo: RunningOrigin, pool: OriginPool, chunked: bool
) -> None:
    payload = bytes(range(256)) * 4096
    resp, body = await fetch(
        pool, local(demo.port), "/sha256", method="POST", body=payload, chunked=chunked
    )
    assert resp.status == 200
    assert json.loads(body) == {
        "sha256": hashlib.sha256(payload).hexdigest(),
        "size": len(payload),
    }


async def test_head_and_no_content_responses(demo: RunningOrigin, pool: OriginPool) -> None:
    svc = local(demo.port)
    resp, body = await fetch(pool, svc, "/bytes/100000", method="HEAD")
    assert (resp.status, body, header(resp, b"content-length")) == (200, b"", b"100000")
    assert pool.idle_count(svc) == 0  # after HEAD the connection is not trusted again
    resp, body = await fetch(pool, svc, "/status/204")
    assert (resp.status, body) == (204, b"")
    assert pool.idle_count(svc) == 1


# ---- scripted origins -------------------------------------------------------------------


async def serve_forever(conn: Connection, *, close: bool = False, version: str = "1.1") -> None:
    while await conn.request() is not None:
        extra = "Connection: close\r\n" if close else ""
        await conn.send(f"HTTP/{version} 200 OK\r\nContent-Length: 2\r\n{extra}\r\nok".encode())


async def test_keep_alive_reuse_counted_by_the_server(pool: OriginPool) -> None:
    async with RawOrigin(serve_forever) as origin:
        for _ in range(5):
            resp, body = await fetch(pool, local(origin.port))
            assert (resp.status, body) == (200, b"ok")
        assert origin.connections == 1
        assert len(origin.requests) == 5


@pytest.mark.parametrize("close, version", [(True, "1.1"), (False, "1.0")])
async def test_no_reuse_when_the_origin_says_close(
    pool: OriginPool, close: bool, version: str
) -> None:
    async def handler(conn: Connection) -> None:
        await serve_forever(conn, close=close, version=version)

    async with RawOrigin(handler) as origin:
        for _ in range(3):
            assert (await fetch(pool, local(origin.port)))[1] == b"ok"
        assert origin.connections == 3


async def test_idle_connection_closed_by_the_origin_is_not_reused(pool: OriginPool) -> None:
    async def one_then_close(conn: Connection) -> None:
        await conn.request()
        await conn.send(response(200, b"ok"))  # says keep-alive, then closes

    async with RawOrigin(one_then_close) as origin:
        svc = local(origin.port)
        await fetch(pool, svc)
        await origin.wait_for(lambda: origin.closed == 1)
        await asyncio.sleep(0.05)  # the EOF reaches the pooled connection
        assert pool.idle_count(svc) == 0
        assert (await fetch(pool, svc))[1] == b"ok"
        assert origin.connections == 2


async def test_idle_timeout_and_max_idle(pool: OriginPool) -> None:
    async with RawOrigin(serve_forever) as origin:
        short = OriginPool(idle_timeout=0.05)
        try:
            await fetch(short, local(origin.port))
            await asyncio.sleep(0.1)
            await fetch(short, local(origin.port))
            assert origin.connections == 2
        finally:
            await short.aclose()
        await origin.wait_for(lambda: origin.closed == 2)
        svc = local(origin.port, max_idle_connections=0)
        await fetch(pool, svc)
        await fetch(pool, svc)
        assert (origin.connections, pool.idle_count(svc)) == (4, 0)


async def test_aclose_closes_pooled_connections() -> None:
    async with RawOrigin(serve_forever) as origin:
        pool = OriginPool()
        await fetch(pool, local(origin.port))
        assert origin.closed == 0
        await pool.aclose()
        await origin.wait_for(lambda: origin.closed == 1)
        with pytest.raises(OriginRefused):
            await pool.acquire(local(origin.port))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_refused(pool: OriginPool) -> None:
    with pytest.raises(OriginRefused, match="cannot connect"):
        await fetch(pool, local(closed_port()))
    with pytest.raises(OriginRefused):
        await fetch(pool, service("http://no-such-host.invalid:80"))


async def test_connect_timeout_includes_the_tls_handshake(pool: OriginPool) -> None:
    async def silent(conn: Connection) -> None:
        await asyncio.sleep(10)

    async with RawOrigin(silent) as origin:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(OriginTimeout, match="no connection"):
            await fetch(pool, local(origin.port, "https", connect_timeout=0.3))
        assert 0.25 < loop.time() - started < 2


async def test_read_timeout_before_and_during_the_body(pool: OriginPool) -> None:
    async def stall(conn: Connection) -> None:
        request = await conn.request()
        assert request is not None
        if request.target == "/midway":
            await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
        await asyncio.sleep(10)

    async with RawOrigin(stall) as origin:
        svc = local(origin.port, read_timeout=0.2)
        with pytest.raises(OriginTimeout, match=r"respond within 0\.2s"):
            await fetch(pool, svc, "/")
        with pytest.raises(OriginTimeout):
            await fetch(pool, svc, "/midway")
        assert pool.idle_count(svc) == 0


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTZ/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
    ],
    ids=["status", "version", "two-lengths", "header-name", "huge-head", "101-unasked"],
)
async def test_malformed_responses(pool: OriginPool, reply: bytes) -> None:
    async def bad(conn: Connection) -> None:
        await conn.request()
        await conn.send(reply)
        await asyncio.sleep(1)

    async with RawOrigin(bad) as origin:
        svc = local(origin.port, read_timeout=2)
        with pytest.raises(OriginProtocolError):
            await fetch(pool, svc)
        assert pool.idle_count(svc) == 0


async def test_bytes_after_a_complete_response_spoil_the_connection(pool: OriginPool) -> None:
    async def extra(conn: Connection) -> None:
        await conn.request()
        await conn.send(response(200, b"ok") + b"HTTP/1.1 200 OK\r\n\r\n")
        await asyncio.sleep(1)

    async with RawOrigin(extra) as origin:
        svc = local(origin.port)
        resp, body = await fetch(pool, svc)  # the first response was complete: it stands
        assert (resp.status, body) == (200, b"ok")
        await asyncio.sleep(0.05)
        assert pool.idle_count(svc) == 0
        await fetch(pool, svc)
        assert origin.connections == 2


async def test_truncated_and_close_delimited_bodies(pool: OriginPool) -> None:
    async def short(conn: Connection) -> None:
        request = await conn.request()
        assert request is not None
        if request.target == "/truncated":
            await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        elif request.target == "/until-close":
            await conn.send(b"HTTP/1.0 200 OK\r\n\r\nall of this")
        else:
            await conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")

    async with RawOrigin(short) as origin:
        svc = local(origin.port)
        for target in ("/truncated", "/chunked-cut"):
            with pytest.raises(OriginProtocolError, match="mid-response"):
                await fetch(pool, svc, target)
        resp, body = await fetch(pool, svc, "/until-close")
        assert (resp.status, body, resp.keep_alive) == (200, b"all of this", False)


async def test_interim_responses_are_skipped(pool: OriginPool) -> None:
    async def interim(conn: Connection) -> None:
        await conn.request()
        await conn.send(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n")
        await asyncio.sleep(0.05)
        await conn.send(response(201, b"made"))

    async with RawOrigin(interim) as origin:
        resp, body = await fetch(pool, local(origin.port))
        assert (resp.status, body, header(resp, b"link")) == (201, b"made", None)


async def test_closed_before_response_is_typed_for_retry(pool: OriginPool) -> None:
    async def hang_up(conn: Connection) -> None:
        await conn.request()

    async with RawOrigin(hang_up) as origin:
        with pytest.raises(OriginClosed) as caught:
            await fetch(pool, local(origin.port))
        assert caught.value.before_response


# ---- TLS ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


async def test_https_with_a_private_ca(pool: OriginPool, ca: trustme.CA, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    async with RawOrigin(serve_forever, tls=tls_server(ca)) as origin:
        for _ in range(2):
            resp, body = await fetch(pool, local(origin.port, "https", ca=bundle))
            assert (resp.status, body) == (200, b"ok")
        assert origin.connections == 1
        resp, body = await fetch(pool, local(origin.port, "https", tls_verify=False))
        assert (resp.status, body) == (200, b"ok")


async def test_https_refuses_an_unknown_ca(
    pool: OriginPool, ca: trustme.CA, tmp_path: Path
) -> None:
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    async with RawOrigin(serve_forever, tls=tls_server(ca)) as origin:
        with pytest.raises(OriginTLSError, match="CERTIFICATE_VERIFY_FAILED"):
            await fetch(pool, local(origin.port, "https", ca=other))
        with pytest.raises(OriginTLSError, match="cannot load the CA bundle"):
            await fetch(pool, local(origin.port, "https", ca=tmp_path / "missing.pem"))
    async with RawOrigin(serve_forever) as plain:  # https:// to a plain HTTP server
        with pytest.raises(OriginTLSError):
            await fetch(pool, local(plain.port, "https", tls_verify=False))


# ---- the same on uvloop (the agent's event loop in production) ----------------------------


@pytest.mark.parametrize(
    "scenario",
    [
        test_keep_alive_reuse_counted_by_the_server,
        test_read_timeout_before_and_during_the_body,
        test_truncated_and_close_delimited_bodies,
        test_connect_timeout_includes_the_tls_handshake,
        test_https_with_a_private_ca,
        test_https_refuses_an_unknown_ca,
    ],
    ids=lambda scenario: scenario.__name__.removeprefix("test_"),
)
def test_on_uvloop(scenario: Callable[..., Awaitable[None]], tmp_path: Path) -> None:
    async def main() -> None:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        pool = OriginPool()
        try:
            if "ca" in inspect.signature(scenario).parameters:
                await scenario(pool, trustme.CA(), tmp_path)
            else:
                await scenario(pool)
        finally:
            await pool.aclose()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


async def test_a_replaced_ca_bundle_is_picked_up(
    pool: OriginPool, ca: trustme.CA, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(bundle))
    async with RawOrigin(serve_forever, tls=tls_server(ca)) as origin:
        svc = local(origin.port, "https", ca=bundle)
        with pytest.raises(OriginTLSError):
            await fetch(pool, svc)
        ca.cert_pem.write_to_path(str(bundle))
        os.utime(bundle, ns=(1, 1))  # a different mtime even on coarse clocks
        assert (await fetch(pool, svc))[1] == b"ok"
