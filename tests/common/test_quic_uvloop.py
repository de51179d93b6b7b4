"""The QUIC shell on uvloop (which the process entry points may choose): the same behaviour.

uvloop hands the endpoint many datagrams per wake-up and keeps its own UDP transport, so the
paths differ from asyncio's selector loop (no socket draining by us); these run the main
scenarios there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import uvloop

from common.quic import QuicOptions, QuicTunnelConnection
from common.transport import ConnectionClosed, StreamReset
from tests.common.quic_support import Accepted, Authority, dialled, running_server
from tests.common.test_quic_streams import read_all

Scenario = Callable[[QuicTunnelConnection, QuicTunnelConnection], Awaitable[None]]


async def round_trips(agent: QuicTunnelConnection, ingress: QuicTunnelConnection) -> None:
    async def answer() -> None:
        for _ in range(300):
            stream = await ingress.accept_stream()
            await stream.write(await read_all(stream) * 2)
            await stream.write_eof()

    async def ask(i: int) -> None:
        stream = await agent.open_stream()
        await stream.write(b"%d" % i)
        await stream.write_eof()
        assert await read_all(stream) == b"%d" % i * 2

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(answer())
        for batch in range(3):
            await asyncio.gather(*(ask(batch * 100 + i) for i in range(100)))


async def bulk_with_backpressure(
    agent: QuicTunnelConnection, ingress: QuicTunnelConnection
) -> None:
    stream = await ingress.open_stream()
    payload = bytes(range(256)) * (16 << 12)  # 16 MiB

    async def write() -> None:
        await stream.write(payload)
        await stream.write_eof()

    async with asyncio.TaskGroup() as tasks:
        writer = tasks.create_task(write())
        peer = await agent.accept_stream()
        await asyncio.sleep(0.3)
        assert not writer.done() and peer.buffered <= QuicOptions().stream_window
        assert await read_all(peer) == payload


async def resets_and_close(agent: QuicTunnelConnection, ingress: QuicTunnelConnection) -> None:
    stream = await agent.open_stream()
    await stream.write(b"x")
    peer = await ingress.accept_stream()
    peer.reset(0x7)
    with pytest.raises(StreamReset):
        for _ in range(100):
            await stream.write(b"y" * 1000)
            await asyncio.sleep(0.01)
    ingress.close(0x105, "bye")
    why = await asyncio.wait_for(agent.wait_closed(), 5)
    assert (why.code, why.reason, why.by_peer) == (0x105, "bye", True)
    with pytest.raises(ConnectionClosed):
        await agent.open_stream()


@pytest.mark.parametrize("scenario", [round_trips, bulk_with_backpressure, resets_and_close])
def test_on_uvloop(scenario: Scenario, tmp_path: Path) -> None:
    async def main() -> None:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        ca = Authority(tmp_path / "ca")
        accepted = Accepted()
        async with running_server(ca.issue("ingress", "in-1"), accepted) as server:
            async with dialled(server, ca.issue("agent", "a1")) as agent:
                await asyncio.wait_for(scenario(agent, await accepted.next()), 60)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
