"""The demo origin's slow upload endpoint (`POST /sha256?rate=B`), over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from edge.demo_server import RunningOrigin, running

MIB = 1 << 20


@pytest.fixture
async def origin() -> AsyncIterator[RunningOrigin]:
    async with running() as served:
        yield served


async def test_rate_limits_how_fast_the_upload_is_read(origin: RunningOrigin) -> None:
    body = bytes(range(256)) * (3 * MIB // 256)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=origin.url, timeout=30) as http:
        response = await http.post("/sha256", params={"rate": 2 * MIB}, content=body)
    elapsed = time.monotonic() - started
    answer = response.json()
    waited = answer.pop("waited")
    assert answer == {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
    assert 1.5 <= elapsed < 10, elapsed  # 3 MiB at 2 MiB/s: 1.5 s of sleep at least
    # The client is much faster than 2 MiB/s: the body was there whenever the origin asked.
    assert 0 <= waited < 0.3 * elapsed, (waited, elapsed)


@pytest.mark.parametrize("rate", ["0", "-5", "fast", str(2**41)])
async def test_a_bad_rate_is_a_400(origin: RunningOrigin, rate: str) -> None:
    async with httpx.AsyncClient(base_url=origin.url, timeout=10) as http:
        response = await http.post("/sha256", params={"rate": rate}, content=b"x")
    assert response.status_code == 400
    assert "rate must be" in response.text


async def pushed(origin: RunningOrigin, query: str, total: int, seconds: float) -> int:
    """Body bytes of a `total`-byte upload to /sha256 the origin let through in `seconds`."""
    _, writer = await asyncio.open_connection(origin.host, origin.port)
    head = f"POST /sha256{query} HTTP/1.1\r\nHost: demo\r\nContent-Length: {total}\r\n\r\n"
    writer.write(head.encode())
    piece = b"k" * (256 << 10)
    accepted = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while accepted < total:
                writer.write(piece)
                await writer.drain()  # waits while the kernel buffers are full
                accepted += len(piece)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return accepted


async def test_a_slow_origin_pushes_back_on_the_sender(origin: RunningOrigin) -> None:
    total = 96 * MIB
    # Control: unthrottled, the whole body goes through in the time allowed…
    assert await pushed(origin, "", total, seconds=5.0) == total
    # …throttled to 1 MiB/s the sender is held back to the rate plus what the kernel buffers
    # hold (loopback autotuning lets those reach a few MiB): the origin does not buffer it.
    assert await pushed(origin, f"?rate={MIB}", total, seconds=2.0) < 24 * MIB


async def test_unthrottled_answer_is_unchanged(origin: RunningOrigin) -> None:
    reader, writer = await asyncio.open_connection(origin.host, origin.port)
    writer.write(b"POST /sha256 HTTP/1.1\r\nHost: demo\r\nContent-Length: 5\r\n\r\nkokoa")
    await writer.drain()
    response = await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
    await writer.wait_closed()
    assert response.startswith(b"HTTP/1.1 200 ")
    body = json.loads(response.split(b"\r\n\r\n", 1)[1])
    assert body == {"sha256": hashlib.sha256(b"kokoa").hexdigest(), "size": 5}
