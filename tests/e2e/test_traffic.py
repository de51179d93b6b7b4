"""Traffic through each of two ingress nodes to a real origin, as real processes on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from tests.e2e.conftest import DEMO
from tests.e2e.harness import Topology

MIB = 1 << 20


def client(base: str, **kwargs: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, headers={"Host": DEMO}, timeout=60, **kwargs)  # type: ignore[arg-type]


async def test_each_node_serves_the_demo_with_forwarding_headers(two_nodes: Topology) -> None:
    for node in two_nodes.nodes:
        async with client(node.base) as http:
            response = await http.get(
                "/headers", headers={"X-Forwarded-For": "6.6.6.6", "X-Request-Id": "forged"}
            )
        assert response.status_code == 200
        seen = {k.lower(): v for k, v in response.json().items()}
        assert seen["x-forwarded-for"] == "127.0.0.1"
        assert seen["x-forwarded-proto"] == "http"
        assert seen["x-forwarded-host"] == DEMO
        assert seen["x-request-id"] != "forged"
        assert response.headers["x-request-id"] == seen["x-request-id"]


async def chunks(total: int, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    block = bytes(range(256)) * (size // 256)
    sent = 0
    while sent < total:
        piece = block[: min(size, total - sent)]
        sent += len(piece)
        yield piece


def digest_of(total: int, size: int = 256 * 1024) -> str:
    block = bytes(range(256)) * (size // 256)
    h = hashlib.sha256()
    sent = 0
    while sent < total:
        piece = block[: min(size, total - sent)]
        h.update(piece)
        sent += len(piece)
    return h.hexdigest()


# Each direction crosses both nodes: sized through one, chunked through the other (100 MiB
# each way per node would cost a minute of CI for no more coverage).
SIZED_AND_CHUNKED = [
    pytest.param(0, False, id="sized-node1"),
    pytest.param(1, True, id="chunked-node2"),
]


@pytest.mark.parametrize(("node_index", "chunked"), SIZED_AND_CHUNKED)
async def test_100_mib_upload_checksum(two_nodes: Topology, node_index: int, chunked: bool) -> None:
    total = 100 * MIB
    async with client(two_nodes.nodes[node_index].base) as http:
        if chunked:  # no length known in advance
            response = await http.post("/sha256", content=chunks(total))
        else:  # Content-Length
            body = b"".join([piece async for piece in chunks(total)])
            response = await http.post("/sha256", content=body)
    assert response.status_code == 200
    assert response.json() == {"sha256": digest_of(total), "size": total}


@pytest.mark.parametrize(("node_index", "chunked"), SIZED_AND_CHUNKED)
async def test_100_mib_download_checksum(
    two_nodes: Topology, node_index: int, chunked: bool
) -> None:
    total = 100 * MIB
    async with client(two_nodes.nodes[node_index].base) as http:
        h = hashlib.sha256()
        size = 0
        async with http.stream(
            "GET", f"/bytes/{total}", params={"chunked": int(chunked)}
        ) as response:
            assert response.status_code == 200
            if chunked:
                assert "content-length" not in response.headers
                assert response.headers["transfer-encoding"] == "chunked"
            else:
                assert response.headers["content-length"] == str(total)
            expected = response.headers["x-sha256"]
            async for piece in response.aiter_raw():
                h.update(piece)
                size += len(piece)
    assert size == total
    assert h.hexdigest() == expected


async def test_chunked_echo_round_trip(two_nodes: Topology) -> None:
    async with client(two_nodes.nodes[0].base) as http:
        response = await http.post("/echo", content=chunks(3 * MIB + 17, size=1000))
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == digest_of(3 * MIB + 17, size=1000)


async def test_websocket_echo(two_nodes: Topology) -> None:
    for node in two_nodes.nodes:
        # The URI names the service (one Host header); the socket goes to the node.
        uri = f"ws://{DEMO}:{node.http}/ws"
        async with websockets.connect(uri, host="127.0.0.1", port=node.http) as ws:
            for message in ("hello", "x" * 100_000, "done"):
                await ws.send(message)
                assert await ws.recv() == message
            await ws.send(b"\x00\x01binary")
            assert await ws.recv() == b"\x00\x01binary"


async def test_server_sent_events_arrive_as_sent(two_nodes: Topology) -> None:
    interval = 0.3
    arrivals: list[float] = []
    async with client(two_nodes.nodes[1].base) as http:
        async with http.stream(
            "GET", "/sse", params={"count": 5, "interval": interval}
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    arrivals.append(time.monotonic())
    assert len(arrivals) == 5
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    # Unbuffered: each event arrives when it is sent, not all at the end.
    assert min(gaps) > interval * 0.5, gaps


async def test_500_concurrent_requests_all_succeed(two_nodes: Topology) -> None:
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
    results: list[int] = []
    for node in two_nodes.nodes:
        async with client(node.base, limits=limits) as http:
            responses = await asyncio.gather(*(http.get(f"/headers?i={i}") for i in range(500)))
        results += [r.status_code for r in responses]
    assert results == [200] * 1000


async def test_path_and_query_reach_the_origin_intact(two_nodes: Topology) -> None:
    async with client(two_nodes.nodes[0].base) as http:
        response = await http.get("/status/201")
        assert response.status_code == 201
        response = await http.head("/bytes/1000")
        assert response.status_code == 200
        assert response.content == b""


async def test_json_error_page_for_api_clients(two_nodes: Topology) -> None:
    async with httpx.AsyncClient(base_url=two_nodes.nodes[0].base) as http:
        response = await http.get("/", headers={"Host": "nope.test", "Accept": "application/json"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert json.loads(response.content)["request_id"]
