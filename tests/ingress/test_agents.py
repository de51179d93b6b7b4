"""The agent pool over real QUIC: least in-flight balancing, max_streams, and failover."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from common.wire import PREFACE
from ingress.agents import Agent as PoolAgent
from ingress.agents import AgentsBusy, Lease, NoAgentAvailable
from tests.common.quic_support import Authority
from tests.ingress.tunnel_harness import FAST, SERVICES, Agent, Ingress, agents, running_ingress
from tests.ingress.tunnel_harness import settings as make_settings


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority(tmp_path / "ca")


@pytest.fixture
async def ingress(ca: Authority) -> AsyncIterator[Ingress]:
    async with running_ingress(ca, make_settings(SERVICES)) as ingress:
        yield ingress


async def connected(
    ingress: Ingress, stack: AsyncExitStack, *names: str, max_streams: int = 512
) -> list[Agent]:
    before = ingress.pool.count("web")
    group = await stack.enter_async_context(agents(ingress, *names))
    for agent in group:
        await agent.hello(("web",), max_streams=max_streams)
    await ingress.wait_count("web", before + len(names))
    return group


def registered(ingress: Ingress, name: str) -> PoolAgent:
    (agent,) = [a for a in ingress.pool.agents() if a.name == name]
    return agent


async def test_a_lease_is_a_real_stream_to_the_agent(ingress: Ingress) -> None:
    async with AsyncExitStack() as stack:
        (agent,) = await connected(ingress, stack, "agent-1")
        async with await ingress.pool.lease("web") as lease:
            assert lease.agent == "agent-1"
            assert registered(ingress, "agent-1").in_flight == 1
            await lease.stream.write(PREFACE + b"hello")
            async with asyncio.timeout(5):
                stream = await agent.conn.accept_stream()
                assert await stream.read() == PREFACE + b"hello"
        assert registered(ingress, "agent-1").in_flight == 0


async def test_least_in_flight_wins(ingress: Ingress) -> None:
    async with AsyncExitStack() as stack:
        await connected(ingress, stack, "agent-1", "agent-2", "agent-3")
        held = [await ingress.pool.lease("web") for _ in range(3)]
        assert sorted(lease.agent for lease in held) == ["agent-1", "agent-2", "agent-3"]
        freed = held.pop(1)
        freed.release()
        freed.release()  # idempotent
        for _ in range(3):  # the one with a free slot gets every new lease while others are busier
            async with await ingress.pool.lease("web") as lease:
                assert lease.agent == freed.agent
        more = [await ingress.pool.lease("web")]
        assert more[0].agent == freed.agent
        assert [a.in_flight for a in ingress.pool.agents()] == [1, 1, 1]
        more += [await ingress.pool.lease("web") for _ in range(2)]
        assert len({lease.agent for lease in more[1:]}) == 2  # never twice on one while
        assert sorted(a.in_flight for a in ingress.pool.agents()) == [1, 2, 2]  # another idles
        for lease in held + more:
            lease.release()
        assert [a.in_flight for a in ingress.pool.agents()] == [0, 0, 0]


async def test_ties_go_round_robin(ingress: Ingress) -> None:
    async with AsyncExitStack() as stack:
        await connected(ingress, stack, "agent-1", "agent-2", "agent-3")
        seen = []
        for _ in range(30):
            async with await ingress.pool.lease("web") as lease:
                seen.append(lease.agent)
        assert Counter(seen) == {"agent-1": 10, "agent-2": 10, "agent-3": 10}


async def test_max_streams_is_respected_then_busy(ingress: Ingress) -> None:
    async with AsyncExitStack() as stack:
        await connected(ingress, stack, "agent-1", max_streams=1)
        await connected(ingress, stack, "agent-2", max_streams=3)
        held = [await ingress.pool.lease("web") for _ in range(4)]
        assert Counter(lease.agent for lease in held) == {"agent-1": 1, "agent-2": 3}
        with pytest.raises(AgentsBusy, match="every agent has max_streams in flight"):
            await ingress.pool.lease("web")
        held[0].release()
        async with await ingress.pool.lease("web") as lease:
            assert lease.agent == held[0].agent
        for lease in held:
            lease.release()


async def test_no_agent_and_unknown_service(ingress: Ingress) -> None:
    with pytest.raises(NoAgentAvailable, match="web: no agent connected") as info:
        await ingress.pool.lease("web")
    assert not isinstance(info.value, AgentsBusy)
    with pytest.raises(NoAgentAvailable):
        await ingress.pool.lease("no-such-service")
    async with AsyncExitStack() as stack:
        await connected(ingress, stack, "agent-1")
        with pytest.raises(NoAgentAvailable, match="no agent available"):
            await ingress.pool.lease("web", exclude=frozenset({"agent-1"}))


async def test_an_agent_that_disappears_gets_no_more_streams(ingress: Ingress) -> None:
    async with AsyncExitStack() as stack:
        one, two = await connected(ingress, stack, "agent-1", "agent-2")
        two.conn.close()
        await ingress.wait_count("web", 1)
        for _ in range(5):
            async with await ingress.pool.lease("web") as lease:
                assert lease.agent == "agent-1"
        assert one.conn.closed is None


async def test_a_dead_connection_still_in_the_pool_fails_over(ingress: Ingress) -> None:
    async with AsyncExitStack() as stack:
        await connected(ingress, stack, "agent-1", "agent-2")
        busy = await ingress.pool.lease("web")  # so that the other one is preferred
        dead = registered(ingress, "agent-2" if busy.agent == "agent-1" else "agent-1")
        dead.connection.close(0, "gone")  # the session has not noticed yet
        async with await ingress.pool.lease("web") as lease:
            assert lease.agent == busy.agent
        assert dead not in ingress.pool.agents()
        assert dead.in_flight == 0
        busy.release()


async def test_an_agent_whose_stream_limit_holds_us_is_skipped(ca: Authority) -> None:
    async with (
        running_ingress(ca, make_settings(SERVICES), open_timeout=0.3) as ingress,
        AsyncExitStack() as stack,
    ):
        tight = dataclasses.replace(FAST, max_incoming_streams=1)
        (stingy,) = await stack.enter_async_context(agents(ingress, "agent-1", options=tight))
        await stingy.hello(("web",))
        (roomy,) = await stack.enter_async_context(agents(ingress, "agent-2"))
        await roomy.hello(("web",))
        await ingress.wait_count("web", 2)
        first: list[Lease] = []
        for _ in range(2):  # one on each
            first.append(await ingress.pool.lease("web"))
        # agent-1 allows one stream at a time: a second lease on it waits for QUIC stream
        # credit, times out, and moves on to agent-2.
        registered(ingress, "agent-2").in_flight += 5
        async with await ingress.pool.lease("web") as lease:
            assert lease.agent == "agent-2"
        registered(ingress, "agent-2").in_flight -= 5
        assert registered(ingress, "agent-1").in_flight == 1
        for lease in first:
            lease.release()
