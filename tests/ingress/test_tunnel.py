"""The control stream as the ingress runs it (docs/protocol.md §4), over real QUIC on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from common.transport import ConnectionClosed
from common.wire import (
    PREFACE,
    Drain,
    ErrorCode,
    FrameType,
    Hello,
    HelloAck,
    Ping,
    Pong,
    Services,
    encode_control,
    encode_frame,
)
from ingress.agents import NoAgentAvailable
from tests.common.quic_support import Authority
from tests.ingress.tunnel_harness import SERVICES, Ingress, agents, running_ingress, settings


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority(tmp_path / "ca")


@pytest.fixture
async def ingress(ca: Authority) -> AsyncIterator[Ingress]:
    async with running_ingress(ca, settings(SERVICES, heartbeat_interval=0.5)) as ingress:
        yield ingress


async def test_hello_accepts_what_the_identity_may_serve(ingress: Ingress) -> None:
    async with agents(ingress, "agent-1") as (agent,):
        ack = await agent.hello(("web", "api", "other", "nope"))
        assert ack == HelloAck(
            node="ingress-t",
            accepted=("web", "api"),
            rejected=(("other", "not allowed for this agent"), ("nope", "unknown service")),
            heartbeat_interval=0.5,
        )
        await ingress.wait_count("web", 1)
        assert ingress.pool.count("api") == 1
        assert ingress.pool.count("other") == 0
        assert ingress.gauge("web") == 1 and ingress.gauge("api") == 1
        assert ingress.gauge("other") == 0
    await ingress.wait_count("web", 0)
    assert ingress.gauge("web") == 0


async def test_messages_in_the_same_read_as_hello_are_handled(ingress: Ingress) -> None:
    async with agents(ingress, "agent-1", "agent-2") as (one, two):
        hello = encode_control(Hello("agent-1", "test", ("web", "api")), preface=True)
        await one.open_control(hello + encode_control(Services(("api",))) + encode_control(Ping(9)))
        first, second, third = [await one.receive() for _ in range(3)]
        assert isinstance(first, HelloAck) and first.accepted == ("web", "api")
        assert isinstance(second, HelloAck) and second.accepted == ("api",)
        assert third == Pong(9)
        assert (ingress.pool.count("web"), ingress.pool.count("api")) == (0, 1)
        await two.open_control(
            encode_control(Hello("agent-2", "test", ("web",)), preface=True)
            + encode_control(Drain("at once"))
            + encode_control(Ping(1))
        )
        assert isinstance(await two.receive(), HelloAck)
        assert await two.receive() == Pong(1)
        with pytest.raises(NoAgentAvailable):
            await ingress.pool.lease("web")


async def test_agent_id_must_match_the_certificate(ingress: Ingress) -> None:
    async with agents(ingress, "agent-2") as (agent,):
        hello = Hello("agent-1", "test", ("web", "api"))
        await agent.open_control(encode_control(hello, preface=True))
        closed = await agent.closed_with()
        assert closed.code == ErrorCode.UNAUTHORIZED
        assert closed.by_peer
    assert ingress.pool.count("web") == 0


async def test_no_allowed_service_gets_an_ack_then_unauthorized(ingress: Ingress) -> None:
    async with agents(ingress, "agent-2") as (agent,):
        ack = await agent.hello(("api", "other"))
        assert ack.accepted == ()
        assert dict(ack.rejected) == {
            "api": "not allowed for this agent",
            "other": "not allowed for this agent",
        }
        assert (await agent.closed_with()).code == ErrorCode.UNAUTHORIZED
    assert ingress.pool.count("api") == 0


async def test_a_second_agent_stream_closes_the_connection(ingress: Ingress) -> None:
    async with agents(ingress, "agent-1") as (agent,):
        await agent.hello(("web",))
        await ingress.wait_count("web", 1)
        extra = await agent.conn.open_stream()
        await extra.write(PREFACE)
        assert (await agent.closed_with()).code == ErrorCode.STREAM_NOT_ALLOWED
        await ingress.wait_count("web", 0)


async def test_a_unidirectional_stream_closes_the_connection(ingress: Ingress) -> None:
    async with agents(ingress, "agent-1") as (agent,):
        await agent.hello(("web",))
        engine = agent.conn.engine
        stream_id = engine.get_next_available_stream_id(is_unidirectional=True)
        engine.send_stream_data(stream_id, PREFACE)
        agent.conn.transmit()
        assert (await agent.closed_with()).code == ErrorCode.STREAM_NOT_ALLOWED
        await ingress.wait_count("web", 0)


async def test_no_control_stream_in_time_is_hello_timeout(ca: Authority) -> None:
    async with (
        running_ingress(ca, settings(SERVICES, hello_timeout=0.3)) as ingress,
        agents(ingress, "agent-1") as (agent,),
    ):
        started = asyncio.get_running_loop().time()
        assert (await agent.closed_with()).code == ErrorCode.HELLO_TIMEOUT
        assert 0.25 < asyncio.get_running_loop().time() - started < 2.0


async def test_a_control_stream_without_hello_is_hello_timeout(ca: Authority) -> None:
    async with (
        running_ingress(ca, settings(SERVICES, hello_timeout=0.3)) as ingress,
        agents(ingress, "agent-1") as (agent,),
    ):
        # The preface and half a frame: the HELLO never completes.
        await agent.open_control(PREFACE + encode_frame(FrameType.HELLO, b"{}" * 10)[:6])
        assert (await agent.closed_with()).code == ErrorCode.HELLO_TIMEOUT


@pytest.mark.parametrize(
    "first",
    [
        PREFACE + encode_control(Ping(1)),
        b"KOKO\x02",
        PREFACE + encode_frame(FrameType.HELLO, b"[]"),
        PREFACE + encode_frame(FrameType.REQUEST, b""),
    ],
    ids=["ping-before-hello", "bad-preface", "hello-not-an-object", "head-frame"],
)
async def test_a_bad_start_is_a_protocol_error(ingress: Ingress, first: bytes) -> None:
    async with agents(ingress, "agent-1") as (agent,):
        await agent.open_control(first)
        assert (await agent.closed_with()).code == ErrorCode.PROTOCOL_ERROR


@pytest.mark.parametrize(
    "later",
    [
        encode_control(Hello("agent-1", "test", ("web",))),
        encode_control(HelloAck("x", ())),
        encode_frame(FrameType.PING, b'{"seq": -1}'),
    ],
    ids=["second-hello", "hello-ack", "bad-ping"],
)
async def test_a_bad_frame_after_hello_is_a_protocol_error(ingress: Ingress, later: bytes) -> None:
    async with agents(ingress, "agent-1") as (agent,):
        await agent.hello(("web",))
        assert agent.control is not None
        await agent.control.write(later)
        assert (await agent.closed_with()).code == ErrorCode.PROTOCOL_ERROR
        await ingress.wait_count("web", 0)


async def test_unknown_frame_types_are_ignored(ingress: Ingress) -> None:
    async with agents(ingress, "agent-1") as (agent,):
        await agent.hello(("web",))
        assert agent.control is not None
        await agent.control.write(encode_frame(0x3F, b"whatever") + encode_control(Ping(7)))
        assert await agent.receive() == Pong(7)


async def test_pings_are_answered_and_keep_the_agent(ingress: Ingress) -> None:
    async with agents(ingress, "agent-1") as (agent,):
        await agent.hello(("web",))
        for seq in range(8):  # 8 x 0.25 s = 2 s, longer than 3 heartbeat intervals (1.5 s)
            await agent.send(Ping(seq))
            assert await agent.receive() == Pong(seq)
            await asyncio.sleep(0.25)
        assert ingress.pool.count("web") == 1


async def test_a_silent_agent_is_heartbeat_timeout(ingress: Ingress) -> None:
    async with agents(ingress, "agent-1") as (agent,):
        await agent.hello(("web",))
        started = asyncio.get_running_loop().time()
        assert (await agent.closed_with()).code == ErrorCode.HEARTBEAT_TIMEOUT
        # 3 intervals of 0.5 s, give or take a loop turn and a round trip.
        assert 1.4 < asyncio.get_running_loop().time() - started < 2.5
        await ingress.wait_count("web", 0)


async def test_trickling_one_frame_is_not_a_heartbeat(ingress: Ingress) -> None:
    async with agents(ingress, "agent-1") as (agent,):
        await agent.hello(("web",))
        assert agent.control is not None
        # A valid PING of 100 bytes, one byte every 0.1 s: it would complete after 10 s.
        frame = encode_frame(FrameType.PING, b'{"seq":1,"pad":"' + b"x" * 82 + b'"}')
        started = asyncio.get_running_loop().time()
        with contextlib.suppress(ConnectionClosed):
            for byte in frame:
                await agent.control.write(bytes([byte]))
                await asyncio.sleep(0.1)
        assert (await agent.closed_with()).code == ErrorCode.HEARTBEAT_TIMEOUT
        assert 1.4 < asyncio.get_running_loop().time() - started < 2.5


async def test_drain_from_the_agent_stops_new_streams(ingress: Ingress) -> None:
    async with agents(ingress, "agent-1", "agent-2") as (one, two):
        await one.hello(("web",))
        await two.hello(("web",))
        await ingress.wait_count("web", 2)
        await one.send(Drain("restarting"))
        await one.send(Ping(1))
        assert await one.receive() == Pong(1)  # the DRAIN before it was handled
        for _ in range(6):
            async with await ingress.pool.lease("web") as lease:
                assert lease.agent == "agent-2"
        await two.send(Drain("me too"))
        await two.send(Ping(2))
        assert await two.receive() == Pong(2)
        with pytest.raises(NoAgentAvailable):
            await ingress.pool.lease("web")
        assert ingress.pool.count("web") == 2  # still connected, just draining


async def test_drain_from_the_ingress_reaches_every_agent(ingress: Ingress) -> None:
    async with agents(ingress, "agent-1", "agent-2") as both:
        for agent in both:
            await agent.hello(("web",))
        await ingress.wait_count("web", 2)
        await ingress.tunnel.drain("node shutting down")
        for agent in both:
            assert await agent.receive() == Drain("node shutting down")
        # Until the node closes the connections, late requests are still served.
        leases = [await ingress.pool.lease("web") for _ in range(2)]
        assert {lease.agent for lease in leases} == {"agent-1", "agent-2"}
        for lease in leases:
            lease.release()


async def test_an_agent_connecting_while_draining_is_told_at_once(ingress: Ingress) -> None:
    await ingress.tunnel.drain("bye")
    async with agents(ingress, "agent-1") as (agent,):
        await agent.hello(("web",))
        assert await agent.receive() == Drain("bye")


async def test_services_replaces_the_claim(ingress: Ingress) -> None:
    async with agents(ingress, "agent-1") as (agent,):
        await agent.hello(("web",))
        await agent.send(Services(("api", "nope")))
        ack = await agent.receive()
        assert isinstance(ack, HelloAck)
        assert ack.accepted == ("api",)
        assert ack.rejected == (("nope", "unknown service"),)
        assert (ingress.pool.count("web"), ingress.pool.count("api")) == (0, 1)
        await agent.send(Services(("nope",)))
        ack = await agent.receive()
        assert isinstance(ack, HelloAck) and ack.accepted == ()
        assert (await agent.closed_with()).code == ErrorCode.UNAUTHORIZED
        await ingress.wait_count("api", 0)


async def test_a_reload_re_evaluates_connected_agents(ingress: Ingress) -> None:
    async with agents(ingress, "agent-1", "agent-2") as (one, two):
        await one.hello(("web", "api", "other"))
        await two.hello(("web", "other"))
        await ingress.wait_count("web", 2)
        # agent-1 loses web and gains other; agent-2 may serve nothing any more.
        ingress.reload(
            settings(
                [
                    {"name": "web", "hosts": ["web.test"], "agents": ["agent-3"]},
                    {"name": "api", "hosts": ["api.test"], "agents": ["agent-1"]},
                    {"name": "other", "hosts": ["other.test"], "agents": ["agent-1"]},
                ]
            )
        )
        assert (await two.closed_with()).code == ErrorCode.UNAUTHORIZED
        assert ingress.pool.count("web") == 0
        assert ingress.pool.count("api") == 1
        assert ingress.pool.count("other") == 1
        async with await ingress.pool.lease("other") as lease:
            assert lease.agent == "agent-1"
        await one.send(Ping(3))
        assert await one.receive() == Pong(3)  # agent-1 stays connected


async def test_a_reload_drops_the_gauge_of_a_removed_service(ingress: Ingress) -> None:
    assert ingress.gauge("other") == 0
    ingress.reload(settings(SERVICES[:2]))
    assert ingress.gauge("other") is None
    assert ingress.gauge("web") == 0


async def test_max_streams_is_capped_by_the_node(ca: Authority) -> None:
    async with (
        running_ingress(ca, settings(SERVICES, max_streams_per_agent=2)) as ingress,
        agents(ingress, "agent-1") as (agent,),
    ):
        await agent.hello(("web",), max_streams=100)
        await ingress.wait_count("web", 1)
        (registered,) = ingress.pool.agents()
        assert registered.max_streams == 2
