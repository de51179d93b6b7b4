"""The origin read timeout around a request body, on one tunnel stream (in memory) to real
origins on 127.0.0.1, with `read_timeout` 0.3 s.

The wait for the response head starts once the whole body has been handed to the origin;
before that, each body byte from the tunnel keeps it going, an early answer is taken as it
comes, and a read timeout without a byte (the tunnel stalled) ends the stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import AsyncIterator

import pytest

from common.streams import read_head
from common.transport import StreamReset
from common.wire import ErrorCode, HeadReader, ResponseHead, encode_request
from edge.demo_server import RunningOrigin, running
from edge.origin import OriginPool
from tests.edge.memory_tunnel import MemoryStream, stream_pair
from tests.edge.raw_origin import Connection, RawOrigin, response
from tests.edge.test_origin_proxy import make_proxy, req, svc

TIMEOUT = 0.3
PIECE = 16 * 1024


@pytest.fixture
async def demo() -> AsyncIterator[RunningOrigin]:
    async with running() as origin:
        yield origin


@pytest.fixture
async def pool() -> AsyncIterator[OriginPool]:
    pool = OriginPool()
    yield pool
    await pool.aclose()


def post(target: str, size: int) -> bytes:
    head = req(target, method="POST", headers=((b"content-length", b"%d" % size),))
    return encode_request(head)


async def answer(ingress: MemoryStream) -> tuple[int | None, bytes, float]:
    """The response (status, body) or the reset (None, b""), and when it came."""
    loop = asyncio.get_running_loop()
    try:
        head, data = await read_head(ingress, HeadReader.response())
        assert isinstance(head, ResponseHead)
        parts = [data]
        while data := await ingress.read():
            parts.append(data)
        return head.status, b"".join(parts), loop.time()
    except StreamReset as exc:
        assert exc.code == ErrorCode.ORIGIN_TIMEOUT
        return None, b"", loop.time()


async def send_slowly(
    ingress: MemoryStream, pieces: int, interval: float, *, fin: bool = True
) -> float:
    """`pieces` × `PIECE` body bytes, one every `interval` s, then FIN (unless not `fin`);
    when the last went out, NaN if the agent reset the stream before."""
    try:
        for i in range(pieces):
            if i:
                await asyncio.sleep(interval)
            await ingress.write(b"x" * PIECE)
        if fin:
            await ingress.write_eof()
    except StreamReset:
        return math.nan
    return asyncio.get_running_loop().time()


async def test_slow_steady_body_outlasting_the_read_timeout(
    demo: RunningOrigin, pool: OriginPool
) -> None:
    proxy = make_proxy(pool, svc("demo", demo.url, read_timeout=TIMEOUT))
    ingress, agent = stream_pair()
    pieces = 25  # over 1.2 s: four read timeouts
    async with asyncio.timeout(10), asyncio.TaskGroup() as tg:
        tg.create_task(proxy.serve(agent))
        await ingress.write(post("/sha256", pieces * PIECE))
        tg.create_task(send_slowly(ingress, pieces, 0.05))
        status, body, _ = await answer(ingress)
    expected = hashlib.sha256(b"x" * PIECE * pieces).hexdigest()
    assert status == 200
    assert json.loads(body) == {"sha256": expected, "size": pieces * PIECE}


async def test_a_stalled_body_ends_within_one_to_two_read_timeouts(pool: OriginPool) -> None:
    async def reader(conn: Connection) -> None:
        while await conn.reader.read(65536):  # until the agent closes the connection
            pass

    async with RawOrigin(reader) as origin:
        proxy = make_proxy(
            pool, svc("demo", f"http://127.0.0.1:{origin.port}", read_timeout=TIMEOUT)
        )
        ingress, agent = stream_pair()
        async with asyncio.timeout(10), asyncio.TaskGroup() as tg:
            tg.create_task(proxy.serve(agent))
            await ingress.write(post("/", 1 << 20))
            stalled = await send_slowly(ingress, 16, 0.05, fin=False)  # 0.75 s, then nothing
            status, _, ended = await answer(ingress)
        assert status is None  # reset with ORIGIN_TIMEOUT
        assert TIMEOUT <= ended - stalled <= 2 * TIMEOUT + 0.2, ended - stalled
        await origin.wait_for(lambda: origin.closed == 1)


async def test_silent_origin_times_out_a_read_timeout_after_the_body(pool: OriginPool) -> None:
    async def silent(conn: Connection) -> None:
        await conn.request()  # the whole body
        await conn.reader.read(1)  # then nothing, until the agent closes the connection

    async with RawOrigin(silent) as origin:
        proxy = make_proxy(
            pool, svc("demo", f"http://127.0.0.1:{origin.port}", read_timeout=TIMEOUT)
        )
        ingress, agent = stream_pair()
        pieces = 16  # over 0.75 s: longer than the read timeout
        async with asyncio.timeout(10), asyncio.TaskGroup() as tg:
            tg.create_task(proxy.serve(agent))
            await ingress.write(post("/", pieces * PIECE))
            sent = tg.create_task(send_slowly(ingress, pieces, 0.05))
            status, _, ended = await answer(ingress)
        assert status is None  # reset with ORIGIN_TIMEOUT
        assert TIMEOUT <= ended - sent.result() <= TIMEOUT + 0.2, ended - sent.result()
        assert [len(r.body) for r in origin.requests] == [pieces * PIECE]


async def test_early_answer_is_passed_on_while_the_body_is_still_coming(
    pool: OriginPool,
) -> None:
    async def early(conn: Connection) -> None:
        await conn.reader.readuntil(b"\r\n\r\n")
        await conn.send(response(413, b"too large", "Connection: close"))
        while await conn.reader.read(65536):  # read and drop the rest, as servers do
            pass

    async with RawOrigin(early) as origin:
        proxy = make_proxy(
            pool, svc("demo", f"http://127.0.0.1:{origin.port}", read_timeout=TIMEOUT)
        )
        ingress, agent = stream_pair()
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(10), asyncio.TaskGroup() as tg:
            tg.create_task(proxy.serve(agent))
            started = loop.time()
            await ingress.write(post("/", 40 * PIECE))
            sending = tg.create_task(send_slowly(ingress, 40, 0.05))  # 2 s
            status, body, answered = await answer(ingress)
            assert not sending.done()  # the answer came while the body was still coming
            sending.cancel()
            ingress.reset(ErrorCode.CANCELLED)  # as the node does once the answer is over
    assert (status, body) == (413, b"too large")
    assert answered - started < TIMEOUT
