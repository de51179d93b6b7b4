"""The QUIC shell's streams over real UDP on 127.0.0.1: data, FIN, resets, stream lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from aioquic.quic.connection import NetworkAddress

from common.quic import QuicServer, QuicTunnelConnection, QuicTunnelStream
from common.quic.endpoint import DatagramEndpoint, _run_end
from common.transport import ConnectionClosed, StreamReset
from tests.common.quic_support import Accepted, Authority, dialled, running_server


@dataclass
class Pair:
    server: QuicServer
    agent: QuicTunnelConnection  # the client side (edge agent)
    ingress: QuicTunnelConnection  # the server side


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority(tmp_path / "ca")


@pytest.fixture
async def pair(ca: Authority) -> AsyncIterator[Pair]:
    accepted = Accepted()
    async with running_server(ca.issue("ingress", "in-1"), accepted) as server:
        async with dialled(server, ca.issue("agent", "web-1")) as agent:
            yield Pair(server, agent, await accepted.next())


async def read_all(stream: QuicTunnelStream) -> bytes:
    parts = []
    while chunk := await stream.read():
        parts.append(chunk)
    return b"".join(parts)


async def test_identities_and_rtt(pair: Pair) -> None:
    assert pair.ingress.peer.name == "web-1" and pair.ingress.peer.role == "agent"
    assert pair.agent.peer.name == "in-1" and pair.agent.peer.role == "ingress"
    assert 0 < pair.agent.rtt < 1.0
    assert pair.server.connections == {pair.ingress}


async def test_agent_stream_round_trip(pair: Pair) -> None:
    up = await pair.agent.open_stream()
    await up.write(b"hello ")
    await up.write(b"ingress")
    await up.write_eof()
    down = await pair.ingress.accept_stream()
    assert down.stream_id == up.stream_id == 0
    assert await read_all(down) == b"hello ingress"
    await down.write(b"x" * 300_000)
    await down.write_eof()
    assert await read_all(up) == b"x" * 300_000


async def test_ingress_opens_streams_in_order(pair: Pair) -> None:
    streams = [await pair.ingress.open_stream() for _ in range(5)]
    for i, stream in enumerate(reversed(streams)):  # the peer sees the last one first
        await stream.write(b"%d" % i)
        await stream.write_eof()
    accepted = [await pair.agent.accept_stream() for _ in range(5)]
    assert [s.stream_id for s in accepted] == [1, 5, 9, 13, 17]  # opened implicitly, in order
    assert [await read_all(s) for s in accepted] == [b"4", b"3", b"2", b"1", b"0"]


async def test_open_stream_now_stops_at_the_peer_limit(pair: Pair) -> None:
    limit = pair.agent.engine._remote_max_streams_bidi  # the ingress's max_incoming_streams
    streams = [pair.agent.open_stream_now() for _ in range(limit)]
    assert all(stream is not None for stream in streams)
    assert pair.agent.open_stream_now() is None  # no waiting: the caller decides

    async def wait_for_a_stream() -> BaseException | None:
        try:
            await pair.agent.open_stream()
        except ConnectionClosed as exc:
            return exc
        return None

    async with asyncio.TaskGroup() as group:
        waiting = group.create_task(wait_for_a_stream())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # open_stream() waits for the limit
        pair.agent.close(0x105, "bye")
        with pytest.raises(ConnectionClosed):
            pair.agent.open_stream_now()
    assert isinstance(waiting.result(), ConnectionClosed)


async def test_read_respects_max_bytes(pair: Pair) -> None:
    stream = await pair.agent.open_stream()
    await stream.write(bytes(range(256)) * 100)
    await stream.write_eof()
    peer = await pair.ingress.accept_stream()
    sizes, data = [], b""
    while chunk := await peer.read(1000):
        sizes.append(len(chunk))
        data += chunk
    assert data == bytes(range(256)) * 100
    assert max(sizes) <= 1000 and sizes[0] == 1000
    assert await peer.read() == b""  # FIN stays visible


async def test_reset_reaches_peer_reader_and_writer(pair: Pair) -> None:
    stream = await pair.agent.open_stream()
    await stream.write(b"partial")
    peer = await pair.ingress.accept_stream()
    assert await peer.read() == b"partial"
    pending_read = asyncio.ensure_future(peer.read())  # noqa: TID251 - a bare pending read
    await asyncio.sleep(0.05)
    stream.reset(0x9)
    with pytest.raises(StreamReset) as reset:
        await asyncio.wait_for(pending_read, 5)
    assert reset.value.code == 0x9
    with pytest.raises(StreamReset) as stopped:  # STOP_SENDING: the peer's writes fail too
        for _ in range(100):
            await peer.write(b"y" * 1000)
            await asyncio.sleep(0.01)
    assert stopped.value.code == 0x9
    with pytest.raises(StreamReset):  # our own ends are closed as well
        await stream.read()


async def test_peer_reset_drops_unread_data(pair: Pair) -> None:
    stream = await pair.ingress.open_stream()
    await stream.write(b"a" * 50_000)
    peer = await pair.agent.accept_stream()
    await asyncio.sleep(0.05)
    stream.reset(0x4)
    await asyncio.sleep(0.05)
    with pytest.raises(StreamReset) as reset:
        await peer.read()
    assert reset.value.code == 0x4
    assert peer.buffered == 0


async def test_write_after_eof_is_a_bug(pair: Pair) -> None:
    stream = await pair.agent.open_stream()
    await stream.write_eof()
    await stream.write_eof()  # idempotent
    with pytest.raises(RuntimeError):
        await stream.write(b"late")


async def test_close_fails_pending_operations_with_code(pair: Pair) -> None:
    stream = await pair.agent.open_stream()
    await stream.write(b"ping")
    peer = await pair.ingress.accept_stream()
    reader = asyncio.ensure_future(stream.read())  # noqa: TID251
    acceptor = asyncio.ensure_future(pair.agent.accept_stream())  # noqa: TID251
    await asyncio.sleep(0.05)
    pair.ingress.close(0x105, "going away")
    for pending in (reader, acceptor):
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(pending, 5)
        assert (closed.value.code, closed.value.reason, closed.value.by_peer) == (
            0x105,
            "going away",
            True,
        )
    with pytest.raises(ConnectionClosed) as local:
        await peer.write(b"x")
    assert local.value.by_peer is False and local.value.code == 0x105
    why = await asyncio.wait_for(pair.agent.wait_closed(), 5)
    assert (why.code, why.by_peer) == (0x105, True)


async def exchange_many(pair: Pair, count: int, concurrency: int) -> None:
    async def serve_streams() -> None:
        while True:
            stream = await pair.ingress.accept_stream()
            await stream.write(await read_all(stream))
            await stream.write_eof()

    async def exchange(i: int) -> None:
        stream = await pair.agent.open_stream()
        await stream.write(b"%d" % i)
        await stream.write_eof()
        assert await read_all(stream) == b"%d" % i

    async with asyncio.TaskGroup() as tasks:
        server = tasks.create_task(serve_streams())
        for batch in range(count // concurrency):
            await asyncio.gather(*(exchange(batch * concurrency + i) for i in range(concurrency)))
        await asyncio.sleep(0.2)  # let the last ACKs arrive
        server.cancel()


def assert_no_stream_state(pair: Pair) -> None:
    for conn in (pair.agent, pair.ingress):
        assert conn.stream_count == 0
        assert len(conn.engine._streams) == 0
        assert not conn.engine._streams_queue and not conn.blocked_writers


async def test_many_short_streams_leave_no_state(pair: Pair) -> None:
    await exchange_many(pair, 2_000, 100)  # more than max_incoming_streams
    assert_no_stream_state(pair)


@pytest.mark.slow
async def test_100k_streams_do_not_leak(pair: Pair) -> None:
    process = psutil.Process()
    await exchange_many(pair, 10_000, 200)
    rss = process.memory_info().rss
    await exchange_many(pair, 90_000, 200)
    assert_no_stream_state(pair)
    assert process.memory_info().rss - rss < 16 << 20


async def test_bursts_go_out_in_gso_batches(pair: Pair) -> None:
    sent: list[int] = []
    endpoint = pair.agent._endpoint
    assert isinstance(endpoint, DatagramEndpoint)
    original = endpoint._send_run

    def spy(run: list[tuple[bytes, NetworkAddress]]) -> None:
        sent.append(len(run))
        original(run)

    endpoint._send_run = spy  # type: ignore[method-assign]
    stream = await pair.agent.open_stream()
    payload = bytes(range(256)) * 4096  # 1 MiB
    await stream.write(payload)
    await stream.write_eof()
    assert await read_all(await pair.ingress.accept_stream()) == payload
    assert endpoint._gso  # the kernel took them (no fallback)
    assert max(sent) > 10


def test_gso_runs_split_on_size_and_address() -> None:
    a, b = ("127.0.0.1", 1), ("127.0.0.1", 2)
    datagrams = [(b"x" * 10, a)] * 3 + [(b"x" * 5, a), (b"x" * 10, a), (b"x" * 10, b)]
    assert _run_end(datagrams, 0) == 4  # three full ones and a shorter last
    assert _run_end(datagrams, 4) == 5  # the address changes
    assert _run_end(datagrams, 5) == 6
    big = [(b"x" * 1452, a)] * 100
    assert _run_end(big, 0) == 65000 // 1452  # one GSO send stays under 64 KiB
