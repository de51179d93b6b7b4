"""Per-service counters of the agent (for the control channel's status): the origin proxy
counts each stream of a known service — requests, errors (>= 500, or a stream that failed
here), body bytes each way, in flight — and not a stream the ingress gave up on, nor one for a
service the agent does not have."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from common.wire import ErrorCode, encode_request
from edge.counters import Counters
from edge.demo_server import RunningOrigin, running
from edge.origin import OriginPool
from edge.origin_proxy import OriginProxy
from tests.edge.memory_tunnel import stream_pair
from tests.edge.test_origin_proxy import call, closed_port, req, svc


@pytest.fixture
async def demo() -> AsyncIterator[RunningOrigin]:
    async with running() as origin:
        yield origin


@pytest.fixture
async def pool() -> AsyncIterator[OriginPool]:
    pool = OriginPool()
    yield pool
    await pool.aclose()


async def test_streams_are_counted_per_service(demo: RunningOrigin, pool: OriginPool) -> None:
    counters = Counters()
    table = {
        "demo": svc("demo", demo.url),
        "down": svc("down", f"http://127.0.0.1:{closed_port()}"),
    }
    proxy = OriginProxy(pool, lambda: table, agent="agent-t", counters=counters)

    ok = await call(proxy, req("/bytes/1000"))
    assert ok.head is not None and ok.head.status == 200
    upload = await call(proxy, req("/echo", method="POST", chunked=True), [b"x" * 300])
    assert upload.head is not None and upload.head.status == 200
    server_error = await call(proxy, req("/status/503"))
    assert server_error.head is not None and server_error.head.status == 503
    refused = await call(proxy, req(service="down"))
    assert refused.reset == ErrorCode.ORIGIN_REFUSED
    unknown = await call(proxy, req(service="nope"))
    assert unknown.reset == ErrorCode.UNKNOWN_SERVICE

    stats = counters.stats()
    assert set(stats) == {"demo", "down"}  # nothing for a service we do not have
    demo_stats, down = stats["demo"], stats["down"]
    assert (demo_stats.requests, demo_stats.errors, demo_stats.in_flight) == (3, 1, 0)
    assert demo_stats.bytes_in == 300 and demo_stats.bytes_out >= 1000 + 300
    assert (down.requests, down.errors, down.bytes_in, down.bytes_out) == (1, 1, 0, 0)


async def test_a_stream_the_ingress_gives_up_on_is_no_error(
    demo: RunningOrigin, pool: OriginPool
) -> None:
    counters = Counters()
    table = {"demo": svc("demo", demo.url)}
    proxy = OriginProxy(pool, lambda: table, agent="agent-t", counters=counters)
    ingress, agent = stream_pair()
    async with asyncio.timeout(10), asyncio.TaskGroup() as group:
        serving = group.create_task(proxy.serve(agent))
        await ingress.write(encode_request(req("/slow?delay=5")))
        await ingress.write_eof()
        for _ in range(200):  # the request reached the origin: one stream in flight
            if counters.stats().get("demo") and counters.stats()["demo"].in_flight == 1:
                break
            await asyncio.sleep(0.01)
        assert counters.stats()["demo"].in_flight == 1
        ingress.reset(ErrorCode.CANCELLED)  # its client went away
        await serving
    demo_stats = counters.stats()["demo"]
    assert (demo_stats.requests, demo_stats.errors, demo_stats.in_flight) == (1, 0, 0)
