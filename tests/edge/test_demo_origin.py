"""The demo origin over real HTTP and WebSocket clients, and `kokoa demo origin` as a process."""

from __future__ import annotations

import asyncio
import hashlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from itertools import pairwise

import httpx
import pytest
import websockets

from edge.demo_origin import BLOCK, pattern_bytes, pattern_sha256
from edge.demo_server import RunningOrigin, running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with running() as origin, httpx.AsyncClient(base_url=origin.url, timeout=30) as client:
        client.origin = origin  # type: ignore[attr-defined]
        yield client


async def test_index_shows_the_forwarding_headers_escaped(http: httpx.AsyncClient) -> None:
    sent = {"X-Forwarded-For": "192.0.2.1", "X-Forwarded-Host": "<b>x</b>", "X-Request-Id": "r1"}
    response = await http.get("/", headers=sent)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "through Kokoa" in response.text
    assert "192.0.2.1" in response.text and "r1" in response.text
    assert "&lt;b&gt;x&lt;/b&gt;" in response.text and "<b>x</b>" not in response.text


async def test_headers_as_json(http: httpx.AsyncClient) -> None:
    response = await http.get("/headers", headers=[("X-Twice", "a"), ("X-Twice", "b")])
    assert response.json()["x-twice"] == "a, b"


async def test_echo_streams_back_sized_and_chunked(http: httpx.AsyncClient) -> None:
    body = bytes(range(256)) * 1000
    sized = await http.post("/echo", content=body)
    assert (sized.content, sized.headers["content-length"]) == (body, str(len(body)))

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 7000):
            yield body[i : i + 7000]

    chunked = await http.post("/echo", content=pieces())
    assert chunked.content == body and chunked.headers["transfer-encoding"] == "chunked"


async def test_sha256_of_an_upload(http: httpx.AsyncClient) -> None:
    body = b"kokoa" * 100_000
    response = await http.post("/sha256", content=body)
    assert response.json() == {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}


@pytest.mark.parametrize("size", [0, 1, len(BLOCK), len(BLOCK) * 3 + 5])
async def test_bytes_and_their_digest(http: httpx.AsyncClient, size: int) -> None:
    for chunked in (0, 1):
        response = await http.get(f"/bytes/{size}", params={"chunked": chunked})
        assert response.content == pattern_bytes(size)
        assert response.headers["x-sha256"] == hashlib.sha256(response.content).hexdigest()
        assert ("content-length" in response.headers) == (not chunked)
    assert pattern_sha256(size) == hashlib.sha256(pattern_bytes(size)).hexdigest()
    head = await http.head(f"/bytes/{size}")
    assert (head.content, head.headers["content-length"]) == (b"", str(size))


def test_pattern_is_not_trivially_repetitive() -> None:
    assert len(set(BLOCK)) == 256
    assert BLOCK[:4096] != BLOCK[4096:8192]


async def test_server_sent_events_are_flushed_one_by_one(http: httpx.AsyncClient) -> None:
    arrivals = []
    async with http.stream("GET", "/sse", params={"count": 3, "interval": 0.25}) as response:
        assert response.headers["content-type"] == "text/event-stream"
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                arrivals.append(time.monotonic())
    assert len(arrivals) == 3
    assert min(b - a for a, b in pairwise(arrivals)) > 0.15


async def test_slow_status_and_errors(http: httpx.AsyncClient) -> None:
    started = time.monotonic()
    assert (await http.get("/slow", params={"delay": 0.2})).status_code == 200
    assert time.monotonic() - started >= 0.2
    assert (await http.get("/status/418")).status_code == 418
    no_content = await http.get("/status/204")
    assert (no_content.status_code, no_content.content) == (204, b"")
    for bad in ("/status/99", "/status/x", "/bytes/-1", "/slow?delay=nope", "/sse?count=-1"):
        assert (await http.get(bad)).status_code == 400, bad
    assert (await http.get("/nowhere")).status_code == 404
    assert (await http.post("/headers")).status_code == 405


async def test_websocket_echo(http: httpx.AsyncClient) -> None:
    origin: RunningOrigin = http.origin  # type: ignore[attr-defined]
    async with websockets.connect(f"ws://{origin.host}:{origin.port}/ws") as ws:
        for message in ("hello", "x" * 100_000):
            await ws.send(message)
            assert await ws.recv() == message
        await ws.send(b"\x00\x01")
        assert await ws.recv() == b"\x00\x01"
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(f"ws://{origin.host}:{origin.port}/other"):
            pass


LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
    return port


def test_kokoa_demo_origin_command() -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "common.cli", "demo", "origin", "--host", LOOPBACK]
    proc = subprocess.Popen([*cmd, "--port", str(port)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://{LOOPBACK}:{port}/", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert response.status_code == 200 and "through Kokoa" in response.text
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err.decode()
    assert b"Traceback" not in err


async def test_running_releases_its_port() -> None:
    async with running() as origin:
        port = origin.port
    await asyncio.sleep(0)
    async with running(port=port) as again:
        assert again.port == port
