"""One tunnel against a fake ingress node on real QUIC (127.0.0.1, mutual TLS): the HELLO
exchange, heartbeats, streams to a real origin, limits, draining both ways, typed errors."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from common.transport import TunnelStream
from common.wire import Drain, ErrorCode, HelloAck, Ping, Services, encode_frame
from edge.demo_server import RunningOrigin, running
from edge.origin import OriginPool
from edge.origin_config import OriginService
from edge.origin_proxy import OriginProxy
from edge.settings import IngressNode
from edge.tunnel import Tunnel, TunnelState
from edge.tunnel_errors import (
    Disconnected,
    HandshakeFailed,
    HeartbeatTimeout,
    ProtocolViolation,
    TunnelError,
    Unauthorized,
    WrongNode,
)
from tests.edge.agent_support import Pki, make_pki, node, tunnel, until
from tests.edge.fake_ingress import FakeIngress, get


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
async def ingress(pki: Pki) -> AsyncIterator[FakeIngress]:
    async with FakeIngress(pki.ingress, heartbeat_interval=0.5) as fake:
        yield fake


@pytest.fixture
async def demo() -> AsyncIterator[RunningOrigin]:
    async with running() as origin:
        yield origin


@pytest.fixture
async def proxy(demo: RunningOrigin) -> AsyncIterator[OriginProxy]:
    pool = OriginPool()
    table = {"web": OriginService(name="web", origin=demo.url)}
    yield OriginProxy(pool, lambda: table, agent="agent-1")
    await pool.aclose()


@contextlib.asynccontextmanager
async def running_tunnel(t: Tunnel) -> AsyncIterator[asyncio.Task[None]]:
    """Run `t` in a task; on exit cancel it if still running (its outcome stays on the task)."""
    async with asyncio.TaskGroup() as group:
        task = group.create_task(_outcome(t))
        try:
            yield task
        finally:
            task.cancel()


async def _outcome(t: Tunnel) -> None:
    with contextlib.suppress(TunnelError):
        await t.run()


async def run_until_error(t: Tunnel, within: float = 10.0) -> TunnelError:
    with pytest.raises(TunnelError) as info:
        async with asyncio.timeout(within):
            await t.run()
    return info.value


# ---- HELLO ------------------------------------------------------------------------------


async def test_hello_exchange_and_heartbeats(pki: Pki, ingress: FakeIngress) -> None:
    connected: list[bool] = []
    t = tunnel(node(ingress.port), pki.agent, on_connected=lambda: connected.append(True),
               services=("web", "api"), max_streams=7)  # fmt: skip
    async with running_tunnel(t):
        session = await ingress.session()
        assert session.hello.agent_id == "agent-1"
        assert session.hello.services == ("web", "api")
        assert session.hello.max_streams == 7
        assert session.hello.version == "test"
        await until(lambda: t.state is TunnelState.CONNECTED)
        assert connected == [True]
        assert t.accepted == ("web", "api") and t.rejected == {}
        assert t.node_id == "ingress-1"
        await session.wait_for(Ping)  # the first PING goes out at once
        await until(lambda: len([m for m in session.messages if isinstance(m, Ping)]) >= 3)
        assert t.rtt is not None and 0 < t.rtt < 0.5


async def test_rejected_services_are_kept_and_the_rest_served(
    pki: Pki, ingress: FakeIngress
) -> None:
    ingress.allowed = {"web"}
    t = tunnel(node(ingress.port), pki.agent, services=("web", "api"))
    async with running_tunnel(t):
        await ingress.session()
        await until(lambda: t.state is TunnelState.CONNECTED)
        assert t.accepted == ("web",)
        assert t.rejected == {"api": "not allowed for this agent"}


async def test_no_service_accepted_is_unauthorized(pki: Pki, ingress: FakeIngress) -> None:
    ingress.allowed = set()
    error = await run_until_error(tunnel(node(ingress.port), pki.agent))
    assert isinstance(error, Unauthorized)
    assert error.rejected == {"web": "not allowed for this agent"}


async def test_agent_id_not_in_the_certificate_is_unauthorized(
    pki: Pki, ingress: FakeIngress
) -> None:
    error = await run_until_error(tunnel(node(ingress.port), pki.agent, agent="someone-else"))
    assert isinstance(error, Unauthorized)


async def test_node_certificate_for_another_name_fails_the_handshake(
    pki: Pki, ingress: FakeIngress
) -> None:
    target = node(ingress.port, server_name="ingress.example.com")
    error = await run_until_error(tunnel(target, pki.agent))
    assert isinstance(error, HandshakeFailed)
    assert ingress.sessions == []


@pytest.mark.parametrize(
    ("identity", "accepted"),
    [
        (None, True),  # no identity named: the address is all that is checked
        ("urn:kokoa:ingress:ingress-1", True),
        ("urn:kokoa:ingress:ingress-2", False),
        ("urn:kokoa:org:o1:ingress:ingress-1", False),  # the organisation counts too
    ],
)
async def test_the_identity_a_node_entry_names_is_checked(
    pki: Pki, ingress: FakeIngress, identity: str | None, accepted: bool
) -> None:
    target = IngressNode(name="ingress-1", address=f"127.0.0.1:{ingress.port}", identity=identity)
    t = tunnel(target, pki.agent)
    if accepted:
        async with running_tunnel(t):
            await ingress.session()
        return
    error = await run_until_error(t)
    assert isinstance(error, WrongNode)
    assert str(error) == (
        f"the certificate at 127.0.0.1:{ingress.port} is for ingress 'ingress-1', "
        f"not {identity} (node 'ingress-1'); refusing it"
    )
    assert ingress.sessions == []


async def test_nobody_listening_fails_the_handshake(pki: Pki) -> None:
    async with FakeIngress(pki.ingress) as fake:
        port = fake.port
    loop = asyncio.get_running_loop()
    started = loop.time()
    error = await run_until_error(tunnel(node(port), pki.agent))
    assert isinstance(error, HandshakeFailed)
    assert loop.time() - started < 3.0  # the connector's 1 s handshake timeout


async def test_no_hello_ack_in_time_fails_the_handshake(pki: Pki) -> None:
    async def mute(conn: object) -> None:
        await asyncio.sleep(30)

    async with FakeIngress(pki.ingress) as fake:
        fake._handle = mute  # type: ignore[method-assign]
        await fake.stop()
        await fake.start()
        error = await run_until_error(tunnel(node(fake.port), pki.agent, hello_timeout=0.5))
    assert isinstance(error, HandshakeFailed)
    assert "HELLO_ACK" in str(error)


# ---- heartbeats ---------------------------------------------------------------------------


async def test_silent_node_is_detected_within_three_intervals(
    pki: Pki, ingress: FakeIngress
) -> None:
    t = tunnel(node(ingress.port), pki.agent, heartbeat_interval=0.3)
    loop = asyncio.get_running_loop()
    outcome: list[TunnelError] = []

    async def watch() -> None:
        try:
            await t.run()
        except TunnelError as exc:
            outcome.append(exc)

    async with asyncio.TaskGroup() as group:
        group.create_task(watch())
        session = await ingress.session()
        await until(lambda: t.state is TunnelState.CONNECTED)
        await asyncio.sleep(0.5)
        ingress.answer_pings = False  # the node goes silent; QUIC itself still ACKs
        silent_since = loop.time()
        closed = await session.wait_closed(within=5.0)
    detected = loop.time() - silent_since
    assert isinstance(outcome[0], HeartbeatTimeout)
    assert closed.code == ErrorCode.HEARTBEAT_TIMEOUT and closed.by_peer
    # Three intervals of silence, counted from the last PONG (sent < 0.3 s before we stopped).
    assert 0.5 < detected < 0.3 * 3 + 0.5


async def test_the_node_interval_wins_when_it_is_shorter(pki: Pki, ingress: FakeIngress) -> None:
    ingress.heartbeat_interval = 0.2
    t = tunnel(node(ingress.port), pki.agent, heartbeat_interval=5.0)
    async with running_tunnel(t):
        session = await ingress.session()
        await asyncio.sleep(1.0)
        pings = [m for m in session.messages if isinstance(m, Ping)]
        assert 4 <= len(pings) <= 7  # one at once, then every 0.2 s


# ---- streams ------------------------------------------------------------------------------


async def test_requests_reach_the_origin(
    pki: Pki, ingress: FakeIngress, proxy: OriginProxy
) -> None:
    t = tunnel(node(ingress.port), pki.agent, handler=proxy.serve)
    async with running_tunnel(t):
        session = await ingress.session()
        responses = await asyncio.gather(
            *(session.request(get(f"/bytes/{n}", rid=f"r{n}")) for n in (10, 70_000, 1))
        )
        assert [r.head.status if r.head else r.reset for r in responses] == [200, 200, 200]
        assert [len(r.body) for r in responses] == [10, 70_000, 1]
        unknown = await session.request(get("/", service="nope"))
        assert unknown.reset == ErrorCode.UNKNOWN_SERVICE


async def test_streams_beyond_max_streams_are_busy(
    pki: Pki, ingress: FakeIngress, proxy: OriginProxy
) -> None:
    t = tunnel(node(ingress.port), pki.agent, handler=proxy.serve, max_streams=1)
    async with running_tunnel(t), asyncio.TaskGroup() as group:
        session = await ingress.session()
        slow = group.create_task(session.request(get("/slow?delay=0.5")))
        await until(lambda: t.in_flight == 1)
        busy = await session.request(get("/"))
        assert busy.reset == ErrorCode.BUSY
        assert (await slow).head is not None
        await until(lambda: t.in_flight == 0)
        again = await session.request(get("/"))
        assert again.head is not None and again.head.status == 200


async def test_a_failing_handler_resets_only_its_stream(pki: Pki, ingress: FakeIngress) -> None:
    async def broken(stream: TunnelStream) -> None:
        raise RuntimeError("bug")

    t = tunnel(node(ingress.port), pki.agent, handler=broken)
    async with running_tunnel(t):
        session = await ingress.session()
        for _ in range(2):
            assert (await session.request(get("/"))).reset == ErrorCode.INTERNAL_ERROR
        assert t.state is TunnelState.CONNECTED


# ---- draining -----------------------------------------------------------------------------


async def test_our_drain_finishes_streams_in_flight(
    pki: Pki, ingress: FakeIngress, proxy: OriginProxy
) -> None:
    t = tunnel(node(ingress.port), pki.agent, handler=proxy.serve)
    async with asyncio.timeout(10), asyncio.TaskGroup() as group:
        run = group.create_task(t.run())
        session = await ingress.session()
        slow = group.create_task(session.request(get("/slow?delay=0.6")))
        await until(lambda: t.in_flight == 1)
        draining = group.create_task(t.drain("test", grace=5.0))
        assert await session.wait_for(Drain) == Drain("test")
        late = await session.request(get("/"))
        assert late.reset == ErrorCode.DRAINING
        response = await slow
        assert response.head is not None and response.head.status == 200
        assert response.body
        await draining
        await run  # returns, no error
    closed = await session.wait_closed()
    assert closed.code == ErrorCode.NO_ERROR and closed.by_peer


async def test_our_drain_cuts_streams_after_the_grace(
    pki: Pki, ingress: FakeIngress, proxy: OriginProxy
) -> None:
    t = tunnel(node(ingress.port), pki.agent, handler=proxy.serve)
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(10), asyncio.TaskGroup() as group:
        run = group.create_task(t.run())
        session = await ingress.session()
        slow = group.create_task(session.request(get("/slow?delay=3")))
        await until(lambda: t.in_flight == 1)
        started = loop.time()
        await t.drain("test", grace=0.5)
        assert 0.5 <= loop.time() - started < 2.0
        await run
        cut = await slow
        assert cut.head is None and cut.closed is not None  # the connection closed under it


async def test_drain_from_the_node_keeps_serving_until_it_closes(
    pki: Pki, ingress: FakeIngress, proxy: OriginProxy
) -> None:
    t = tunnel(node(ingress.port), pki.agent, handler=proxy.serve)
    async with asyncio.timeout(10), asyncio.TaskGroup() as group:
        failing = group.create_task(run_until_error(t))
        session = await ingress.session()
        slow = group.create_task(session.request(get("/slow?delay=0.3")))
        await until(lambda: t.in_flight == 1)
        await session.send(Drain("node restarting"))
        await until(lambda: t.state is TunnelState.DRAINING)
        response = await slow
        assert response.head is not None and response.head.status == 200
        assert not failing.done()
        session.conn.close(ErrorCode.SHUTDOWN, "bye")
        error = await failing
    assert isinstance(error, Disconnected)
    assert error.drained and error.by_peer and error.code == ErrorCode.SHUTDOWN


async def test_node_that_never_closes_after_drain_is_closed_after_the_grace(
    pki: Pki, ingress: FakeIngress
) -> None:
    t = tunnel(node(ingress.port), pki.agent, drain_grace=0.5)
    async with asyncio.timeout(10), asyncio.TaskGroup() as group:
        failing = group.create_task(run_until_error(t))
        session = await ingress.session()
        await until(lambda: t.state is TunnelState.CONNECTED)
        await session.send(Drain("going"))
        closed = await session.wait_closed(within=5)
        error = await failing
    assert closed.code == ErrorCode.NO_ERROR
    assert isinstance(error, Disconnected) and error.drained


# ---- SERVICES and protocol errors ----------------------------------------------------------


async def test_update_services_sends_services_and_takes_the_new_ack(
    pki: Pki, ingress: FakeIngress
) -> None:
    ingress.allowed = {"web", "api"}
    t = tunnel(node(ingress.port), pki.agent)
    async with running_tunnel(t):
        session = await ingress.session()
        await until(lambda: t.state is TunnelState.CONNECTED)
        await t.update_services(["web", "api", "extra"])
        assert await session.wait_for(Services) == Services(("web", "api", "extra"))
        await until(lambda: t.accepted == ("web", "api"))
        assert t.rejected == {"extra": "not allowed for this agent"}


async def test_services_changed_before_the_ack_are_sent_after_it(
    pki: Pki, ingress: FakeIngress
) -> None:
    t = tunnel(node(ingress.port), pki.agent)
    await t.update_services(["web", "api"])  # not connected: the next HELLO carries it
    async with running_tunnel(t):
        session = await ingress.session()
        assert session.hello.services == ("web", "api")


async def test_garbage_on_the_control_stream_is_a_protocol_violation(
    pki: Pki, ingress: FakeIngress
) -> None:
    t = tunnel(node(ingress.port), pki.agent)
    async with asyncio.TaskGroup() as group:
        failing = group.create_task(run_until_error(t))
        session = await ingress.session()
        await session.control.write(encode_frame(0x11, b"\x00"))  # a RESPONSE frame
        error = await failing
    assert isinstance(error, ProtocolViolation)
    closed = await session.wait_closed()
    assert closed.code == ErrorCode.PROTOCOL_ERROR


async def test_unexpected_hello_ack_with_nothing_accepted_is_unauthorized(
    pki: Pki, ingress: FakeIngress
) -> None:
    t = tunnel(node(ingress.port), pki.agent)
    async with asyncio.TaskGroup() as group:
        failing = group.create_task(run_until_error(t))
        session = await ingress.session()
        await session.send(HelloAck("ingress-1", (), (("web", "revoked"),)))
        error = await failing
    assert isinstance(error, Unauthorized)
    assert error.rejected == {"web": "revoked"}
