"""Backpressure on the QUIC shell: a slow reader bounds memory at both ends, a writer waits."""

from __future__ import annotations

import asyncio
import random
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from aioquic.quic.connection import NetworkAddress

from common.quic import QuicOptions, QuicServer, QuicTunnelConnection, QuicTunnelStream
from common.quic.endpoint import DatagramEndpoint
from common.transport import ConnectionClosed
from tests.common.quic_support import Accepted, Authority, dialled, running_server

MiB = 1 << 20
CHUNK = 64 << 10
SLACK = 64 << 10
LOSS = 0.05
Handler = Callable[
    [bytes, NetworkAddress], None
]  # a few datagrams beyond the window may be in aioquic's reorder buffer


@dataclass
class Pair:
    server: QuicServer
    agent: QuicTunnelConnection
    ingress: QuicTunnelConnection
    options: QuicOptions


async def make_pair(tmp_path: Path, options: QuicOptions) -> AsyncIterator[Pair]:
    ca = Authority(tmp_path / "ca")
    accepted = Accepted()
    async with running_server(ca.issue("ingress", "in-1"), accepted, options=options) as server:
        async with dialled(server, ca.issue("agent", "a1"), options) as agent:
            yield Pair(server, agent, await accepted.next(), options)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    async for value in make_pair(tmp_path, QuicOptions()):
        yield value


@pytest.fixture
async def small_windows(tmp_path: Path) -> AsyncIterator[Pair]:
    options = QuicOptions(stream_window=256 << 10, connection_window=1 * MiB)
    async for value in make_pair(tmp_path, options):
        yield value


async def write_blocks(stream: QuicTunnelStream, total: int, block: bytes) -> int:
    crc = 0
    for _ in range(total // len(block)):
        await stream.write(block)
        crc = zlib.crc32(block, crc)
    await stream.write_eof()
    return crc


async def count(stream: QuicTunnelStream) -> int:
    total = 0
    while chunk := await stream.read():
        total += len(chunk)
    return total


async def test_writer_waits_for_a_reader_that_does_not_read(pair: Pair) -> None:
    stream = await pair.agent.open_stream()
    block = b"w" * CHUNK
    writer = asyncio.ensure_future(write_blocks(stream, 16 * MiB, block))  # noqa: TID251
    peer = await pair.ingress.accept_stream()
    await asyncio.sleep(1.0)
    assert not writer.done()  # it is waiting, not buffering 16 MiB
    sent = pair.agent.engine.send_buffered(stream._state)
    assert pair.options.low_watermark <= sent <= pair.options.high_watermark + CHUNK
    assert peer.buffered <= pair.options.stream_window
    received = 0
    while chunk := await peer.read():
        received += len(chunk)
    assert received == 16 * MiB
    await asyncio.wait_for(writer, 5)


async def test_connection_window_bounds_all_streams(small_windows: Pair) -> None:
    pair = small_windows
    block = b"c" * CHUNK
    streams = [await pair.agent.open_stream() for _ in range(16)]
    writers = [asyncio.ensure_future(write_blocks(s, 2 * MiB, block)) for s in streams]  # noqa: TID251
    await asyncio.sleep(1.0)
    peers = [await pair.ingress.accept_stream() for _ in range(16)]
    unread = sum(peer.buffered for peer in peers)
    assert unread == pair.ingress.engine.unread
    assert 0.75 * MiB <= unread <= pair.options.connection_window + SLACK
    assert all(peer.buffered <= pair.options.stream_window for peer in peers)
    assert not any(w.done() for w in writers)
    # Read them all at once: read one after the other, the others' unread data would hold the
    # whole connection window (head-of-line blocking is the price of a connection bound).
    assert await asyncio.gather(*(count(peer) for peer in peers)) == [2 * MiB] * 16
    await asyncio.wait_for(asyncio.gather(*writers), 10)


@pytest.mark.slow
async def test_slow_reader_bounds_memory_over_256_mib(pair: Pair) -> None:
    total = 256 * MiB
    process = psutil.Process()
    block = bytes(range(256)) * (CHUNK // 256)
    stream = await pair.agent.open_stream()
    rss_before = process.memory_info().rss
    writer = asyncio.ensure_future(write_blocks(stream, total, block))  # noqa: TID251
    peer = await pair.ingress.accept_stream()
    received, crc, peak_buffered, peak_rss, since_pause = 0, 0, 0, 0, 0
    while True:
        peak_buffered = max(peak_buffered, peer.buffered)
        chunk = await peer.read(CHUNK)
        if not chunk:
            break
        received += len(chunk)
        crc = zlib.crc32(chunk, crc)
        since_pause += len(chunk)
        if since_pause >= 8 * MiB:  # the slow part: stall long enough to fill the window
            since_pause = 0
            await asyncio.sleep(0.2)
            peak_rss = max(peak_rss, process.memory_info().rss)
    assert received == total
    assert crc == await asyncio.wait_for(writer, 30)
    window = pair.options.stream_window
    assert window // 2 <= peak_buffered <= window + SLACK  # it filled the window, no more
    assert peak_rss - rss_before < 48 * MiB  # far below the 256 MiB that went through


async def test_blocked_writer_fails_when_the_connection_goes(pair: Pair) -> None:
    stream = await pair.agent.open_stream()
    writer = asyncio.ensure_future(write_blocks(stream, 16 * MiB, b"v" * CHUNK))  # noqa: TID251
    await pair.ingress.accept_stream()
    await asyncio.sleep(0.3)
    assert stream in pair.agent.blocked_writers
    pair.ingress.close(0x105, "shutting down")
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(writer, 5)
    assert (closed.value.code, closed.value.by_peer) == (0x105, True)


async def test_low_watermark_zero_waits_for_every_ack(tmp_path: Path) -> None:
    options = QuicOptions(high_watermark=128 << 10, low_watermark=0)
    async for pair in make_pair(tmp_path, options):
        stream = await pair.agent.open_stream()
        writer = asyncio.ensure_future(write_blocks(stream, 4 * MiB, b"z" * CHUNK))  # noqa: TID251
        assert await count(await pair.ingress.accept_stream()) == 4 * MiB
        await asyncio.wait_for(writer, 5)


async def test_transfers_survive_packet_loss(small_windows: Pair) -> None:
    """Drop 5% of datagrams both ways: data, credit (MAX_DATA/MAX_STREAM_DATA) and FINs that
    get lost are sent again, and every byte arrives once, in order."""
    pair, rng = small_windows, random.Random(7)
    for endpoint in (pair.agent._endpoint, pair.ingress._endpoint):
        assert isinstance(endpoint, DatagramEndpoint)
        handle = endpoint.handle_datagram

        def lossy(data: bytes, addr: NetworkAddress, handle: Handler = handle) -> None:
            if rng.random() >= LOSS:
                handle(data, addr)

        endpoint.handle_datagram = lossy  # type: ignore[method-assign]
    payloads = [bytes([i]) * (i * 100_000 + 1) for i in range(1, 9)]
    streams = [await pair.agent.open_stream() for _ in payloads]

    async def send(stream: QuicTunnelStream, payload: bytes) -> None:
        await stream.write(payload)
        await stream.write_eof()

    async def receive() -> bytes:
        stream = await pair.ingress.accept_stream()
        data = bytearray()
        while chunk := await stream.read():
            data += chunk
            await asyncio.sleep(0)  # a reader that lags a little
        return bytes(data)

    async with asyncio.timeout(60):
        sent = asyncio.gather(*(send(s, p) for s, p in zip(streams, payloads, strict=True)))
        received = await asyncio.gather(*(receive() for _ in payloads))
        await sent
    assert sorted(received) == sorted(payloads)
