"""Bodies that do not fit in memory, slow peers on either side, and upgraded connections."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator

import httpx
import psutil
import pytest
import websockets

from tests.ingress.public_fakes import PATTERN, Front, read_response, running_front

MIB = 1 << 20
BIG = 64 * MIB
HIGH_WATER = 1 * MIB  # the memory streams' watermark (the QUIC stream's, in production)


@pytest.fixture
async def front() -> AsyncIterator[Front]:
    async with running_front(high_water=HIGH_WATER) as f:
        yield f


def rss() -> int:
    return int(psutil.Process(os.getpid()).memory_info().rss)


async def blocks(total: int, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        piece = PATTERN[: min(size, total - sent)]
        sent += len(piece)
        yield piece


def digest_of(total: int) -> str:
    digest = hashlib.sha256()
    for _ in range(total // len(PATTERN)):
        digest.update(PATTERN)
    digest.update(PATTERN[: total % len(PATTERN)])
    return digest.hexdigest()


@pytest.mark.parametrize("sized", [True, False], ids=["content-length", "chunked"])
async def test_large_upload_arrives_intact_with_bounded_buffers(front: Front, sized: bool) -> None:
    before = rss()
    async with httpx.AsyncClient(
        base_url=front.base, headers={"Host": "app.test"}, timeout=60
    ) as http:
        headers = {"Content-Length": str(BIG)} if sized else {}
        response = await http.post("/sha256", content=blocks(BIG), headers=headers)
    assert response.status_code == 200
    assert response.json() == {"sha256": digest_of(BIG), "size": BIG}
    assert front.agent.heads[-1].chunked is not sized
    # What the ingress wrote and the agent had not read yet never exceeded the stream's
    # watermark by more than one client read.
    assert front.gateway.leases[-1].stream.peak_unread_outbound <= HIGH_WATER + 512 * 1024  # type: ignore[attr-defined]
    assert rss() - before < 48 * MIB


@pytest.mark.parametrize("query", ["", "?chunked"], ids=["content-length", "chunked"])
async def test_large_download_arrives_intact_with_bounded_buffers(front: Front, query: str) -> None:
    before = rss()
    digest = hashlib.sha256()
    size = 0
    async with (
        httpx.AsyncClient(base_url=front.base, headers={"Host": "app.test"}, timeout=60) as http,
        http.stream("GET", f"/bytes/{BIG}{query}") as response,
    ):
        assert response.status_code == 200
        if query:
            assert response.headers["transfer-encoding"] == "chunked"
        else:
            assert response.headers["content-length"] == str(BIG)
        async for data in response.aiter_raw():
            digest.update(data)
            size += len(data)
    assert (size, digest.hexdigest()) == (BIG, digest_of(BIG))
    assert front.agent.streams[-1].peak_unread_outbound <= HIGH_WATER + 256 * 1024
    assert rss() - before < 48 * MIB


async def test_slow_client_slows_the_agent(front: Front) -> None:
    reader, writer = await front.open()
    try:
        writer.write(b"GET /bytes/%d HTTP/1.1\r\nHost: app.test\r\n\r\n" % BIG)
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(0.5)  # the client reads nothing for a while
        stream = front.agent.streams[-1]
        first = stream._out.size
        await asyncio.sleep(0.3)
        # The agent is blocked: the ingress stopped reading the stream, whose buffer stays at
        # the watermark instead of growing toward the 64 MiB body.
        assert stream._out.size == first
        assert stream.peak_unread_outbound <= HIGH_WATER + 256 * 1024
        received = 0
        while received < BIG:
            received += len(await reader.read(1 << 20))
    finally:
        writer.close()
    assert received == BIG


async def test_slow_agent_stops_reading_the_client(front: Front) -> None:
    # The agent reads nothing of this request for a while: the client's sends must stall
    # (the ingress paused reading its socket) instead of the ingress buffering the body.
    _, writer = await front.open()
    writer.write(b"POST /slow-sink HTTP/1.1\r\nHost: app.test\r\nContent-Length: %d\r\n\r\n" % BIG)
    sent = 0
    try:
        async with asyncio.timeout(1.0):
            while sent < BIG:
                writer.write(PATTERN)
                await writer.drain()
                sent += len(PATTERN)
    except TimeoutError:
        pass
    finally:
        writer.close()
    # Socket buffers on both sides hold a few MiB at most; the rest was never read.
    assert sent < 24 * MIB
    lease = front.gateway.leases[-1]
    assert lease.stream.peak_unread_outbound <= HIGH_WATER + 512 * 1024  # type: ignore[attr-defined]


# ---- upgrades -----------------------------------------------------------------------------


async def test_websocket_through_the_tunnel(front: Front) -> None:
    uri = f"ws://app.test:{front.port}/ws"
    async with websockets.connect(uri, host="127.0.0.1", port=front.port) as ws:
        for message in ("hello", "x" * 100_000):
            await ws.send(message)
            assert await ws.recv() == message
        await ws.send(b"\x00\x01binary")
        assert await ws.recv() == b"\x00\x01binary"
    head = front.agent.heads[-1]
    headers = dict(head.headers)
    assert headers[b"upgrade"] == b"websocket"
    assert b"sec-websocket-key" in headers
    assert b"connection" not in headers


async def test_upgrade_pipe_carries_raw_bytes_both_ways(front: Front) -> None:
    reader, writer = await front.open()
    try:
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: raw\r\n\r\n"
            b"early bytes;"
        )
        status, headers, _ = await read_response(reader)
        assert (status, headers["upgrade"], headers["connection"]) == (101, "raw", "upgrade")
        assert headers["x-request-id"] == front.agent.heads[-1].request_id
        assert await reader.readexactly(12) == b"early bytes;"
        writer.write(b"GET / HTTP/1.1\r\n\r\n")  # not HTTP any more: passed through as is
        assert await reader.readexactly(18) == b"GET / HTTP/1.1\r\n\r\n"
        writer.write_eof()  # half-close: the agent's echo ends, and so does the pipe
        async with asyncio.timeout(5):
            assert await reader.read() == b""
    finally:
        writer.close()


async def test_refused_upgrade_is_an_ordinary_response_then_close(front: Front) -> None:
    reader, writer = await front.open()
    try:
        writer.write(
            b"GET /other HTTP/1.1\r\nHost: app.test\r\nConnection: upgrade\r\nUpgrade: raw\r\n\r\n"
            b"bytes for the pipe"
        )
        status, headers, body = await read_response(reader)
        assert (status, body, headers["connection"]) == (200, b"ok", "close")
        async with asyncio.timeout(5):
            assert await reader.read() == b""
    finally:
        writer.close()


GIB = 1 << 30


@pytest.mark.slow
async def test_one_gib_each_way_keeps_memory_flat(front: Front) -> None:
    # Raw sockets on the client side (httpx would be the bottleneck); the checksums prove
    # every byte arrived, RSS proves nothing held a body.
    before = rss()
    peak = before
    reader, writer = await front.open()
    try:
        writer.write(b"GET /bytes/%d HTTP/1.1\r\nHost: app.test\r\n\r\n" % GIB)
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"content-length: %d" % GIB in head
        digest, size = hashlib.sha256(), 0
        while size < GIB:
            data = await reader.read(1 << 20)
            digest.update(data)
            size += len(data)
            if size % (64 * MIB) < len(data):
                peak = max(peak, rss())
        assert (size, digest.hexdigest()) == (GIB, digest_of(GIB))
        writer.write(b"POST /sha256 HTTP/1.1\r\nHost: app.test\r\nContent-Length: %d\r\n\r\n" % GIB)
        for i in range(GIB // len(PATTERN)):
            writer.write(PATTERN)
            await writer.drain()
            if i % 256 == 0:
                peak = max(peak, rss())
        status, _, body = await read_response(reader)
    finally:
        writer.close()
    assert status == 200
    assert json.loads(body) == {"sha256": digest_of(GIB), "size": GIB}
    assert peak - before < 64 * MIB, (peak - before) / MIB
