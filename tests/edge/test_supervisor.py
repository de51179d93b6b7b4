"""The supervisor against fake ingress nodes on real QUIC: each node supervised on its own,
reconnection within the backoff cap, dead-node detection (a SIGSTOPped node process),
nodes added and removed at run time, graceful drain; and its decisions with a scripted
connector (delays by error type, a bug in one node's attempts contained)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from common.backoff import BackoffPolicy
from common.pki import TlsFiles
from common.transport import ConnectionClosed, TunnelConnection
from common.wire import Drain, ErrorCode
from edge.settings import IngressNode
from edge.supervisor import NodeState, NodeStatus, Supervisor
from tests.edge.agent_support import Pki, fast_connect, make_pki, node, options, refuse, until
from tests.edge.fake_ingress import FakeIngress, get

FAST_BACKOFF = BackoffPolicy(initial=0.1, cap=0.5, multiplier=2.0, reset_after=5.0)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def supervisor(pki: Pki, **kwargs: object) -> Supervisor:
    values: dict[str, object] = {"connect": fast_connect, "drain_grace": 2.0}
    values.update(kwargs)
    return Supervisor(
        lambda: options(pki.agent, heartbeat_interval=0.3),
        refuse,
        FAST_BACKOFF,
        **values,  # type: ignore[arg-type]
    )


@contextlib.asynccontextmanager
async def supervising(sup: Supervisor, nodes: list[IngressNode]) -> AsyncIterator[Supervisor]:
    sup.apply(nodes)
    async with asyncio.timeout(60), asyncio.TaskGroup() as group:
        group.create_task(sup.run())
        try:
            yield sup
        finally:
            await sup.drain("test over", grace=1.0)


def state_of(sup: Supervisor, name: str) -> NodeStatus:
    found = [s for s in sup.status() if s.name == name]
    assert found, f"{name} is not supervised"
    return found[0]


def is_(sup: Supervisor, name: str, state: NodeState) -> bool:
    """Whether node `name` is supervised and in `state`."""
    return any(s.name == name and s.state is state for s in sup.status())


async def free_port(pki: Pki) -> int:
    """A UDP port nothing listens on (a node that is down)."""
    async with FakeIngress(pki.ingress) as fake:
        return fake.port


# ---- real nodes -----------------------------------------------------------------------------


async def test_status_of_a_connected_node(pki: Pki) -> None:
    fake = await FakeIngress(pki.ingress).start()
    async with supervising(supervisor(pki), [node(fake.port)]) as sup:
        await fake.session()
        await until(lambda: is_(sup, "ingress-1", NodeState.CONNECTED))
        await until(lambda: (state_of(sup, "ingress-1").rtt or 1) < 0.5)
        status = state_of(sup, "ingress-1")
        assert status.accepted == ("web",) and status.last_error is None
        assert status.address == f"127.0.0.1:{fake.port}" and status.in_flight == 0
    await fake.stop()


async def test_one_node_down_never_disturbs_the_other(pki: Pki) -> None:
    down_port = await free_port(pki)
    async with FakeIngress(pki.ingress) as up:
        nodes = [node(up.port, "up"), node(down_port, "down")]
        async with supervising(supervisor(pki), nodes) as sup:
            session = await up.session()
            await until(lambda: state_of(sup, "down").attempt >= 2, within=10)
            down = state_of(sup, "down")
            assert down.state in (NodeState.BACKING_OFF, NodeState.CONNECTING)
            assert down.last_error is not None and "HandshakeFailed" in down.last_error
            assert state_of(sup, "up").state is NodeState.CONNECTED
            assert len(up.sessions) == 1 and session.closed is None
            response = await session.request(get("/"))
            assert response.reset == ErrorCode.UNKNOWN_SERVICE  # served by our handler
            # The down node comes up: it is dialled within the backoff cap (plus one attempt).
            late = await FakeIngress(pki.ingress, name="down").start(down_port)
            try:
                await late.session(within=5)
                await until(lambda: is_(sup, "down", NodeState.CONNECTED))
            finally:
                await late.stop()
            assert len(up.sessions) == 1 and session.closed is None


async def test_reconnects_after_the_node_restarts_within_the_backoff_cap(pki: Pki) -> None:
    fake = await FakeIngress(pki.ingress).start()
    port = fake.port
    loop = asyncio.get_running_loop()
    try:
        async with supervising(supervisor(pki), [node(port)]) as sup:
            await fake.session()
            await fake.stop()  # closes our connection with SHUTDOWN
            await until(lambda: state_of(sup, "ingress-1").last_error is not None)
            assert "Disconnected" in (state_of(sup, "ingress-1").last_error or "")
            await asyncio.sleep(1.0)  # a few failed attempts while it is down
            await fake.start(port)
            restarted = loop.time()
            await fake.session(index=1, within=5)
            # Worst case: the attempt in progress times out (1 s), then the cap (0.5 s).
            assert loop.time() - restarted < 1.0 + FAST_BACKOFF.cap + 0.5
    finally:
        await fake.stop()


@pytest.mark.slow
async def test_a_frozen_node_process_is_detected_and_left_for_a_live_one(
    pki: Pki, tmp_path: Path
) -> None:
    proc = start_node_process(pki.ingress, await free_port(pki))
    try:
        port = await read_port(proc)
        async with supervising(supervisor(pki), [node(port)]) as sup:
            await until(lambda: is_(sup, "ingress-1", NodeState.CONNECTED))
            await asyncio.sleep(0.5)
            loop = asyncio.get_running_loop()
            proc.send_signal(signal.SIGSTOP)  # no PONG, no QUIC ACK: the node is gone silent
            stopped = loop.time()
            await until(lambda: state_of(sup, "ingress-1").last_error is not None)
            detected = loop.time() - stopped
            assert "HeartbeatTimeout" in (state_of(sup, "ingress-1").last_error or "")
            assert detected < 3 * 0.3 + 0.5  # three intervals of 0.3 s, plus scheduling
            proc.send_signal(signal.SIGCONT)
            await until(lambda: is_(sup, "ingress-1", NodeState.CONNECTED), 10)
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def start_node_process(tls: TlsFiles, port: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "tests.edge.fake_ingress"]
    argv += [str(tls.cert), str(tls.key), str(tls.ca), str(port)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=Path(__file__).parents[2])


async def read_port(proc: subprocess.Popen[bytes]) -> int:
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
    assert line.startswith(b"listening "), line
    return int(line.split()[1])


async def test_apply_adds_and_removes_nodes_without_touching_the_others(pki: Pki) -> None:
    async with FakeIngress(pki.ingress) as a, FakeIngress(pki.ingress) as b:
        node_a, node_b = node(a.port, "a"), node(b.port, "b")
        async with supervising(supervisor(pki), [node_a]) as sup:
            session_a = await a.session()
            sup.apply([node_a, node_b])
            session_b = await b.session()
            assert len(a.sessions) == 1 and session_a.closed is None
            sup.apply([node_b])  # a is removed: drained, not reconnected
            assert await session_a.wait_for(Drain) == Drain("node removed")
            closed = await session_a.wait_closed()
            assert closed.code == ErrorCode.NO_ERROR
            assert [s.name for s in sup.status()] == ["b"]
            await asyncio.sleep(0.5)
            assert len(a.sessions) == 1  # never dialled again
            assert len(b.sessions) == 1 and session_b.closed is None
            moved = node(a.port, "b")  # b's entry now points at a's address: replaced
            sup.apply([moved])
            await session_b.wait_closed()
            await a.session(index=1)


async def test_drain_tells_every_node_and_ends_run(pki: Pki) -> None:
    async with FakeIngress(pki.ingress) as a, FakeIngress(pki.ingress) as b:
        sup = supervisor(pki)
        sup.apply([node(a.port, "a"), node(b.port, "b")])
        async with asyncio.timeout(20), asyncio.TaskGroup() as group:
            running = group.create_task(sup.run())
            sessions = [await a.session(), await b.session()]
            await until(lambda: all(s.state is NodeState.CONNECTED for s in sup.status()))
            await sup.drain("bye", grace=1.0)
            await running
        for session in sessions:
            assert await session.wait_for(Drain) == Drain("bye")
            assert (await session.wait_closed()).code == ErrorCode.NO_ERROR
        sup.apply([node(a.port, "a")])  # after drain: nothing starts
        assert sup.status() == []


# ---- decisions, with a scripted connector ----------------------------------------------------


class Script:
    """A connector that fails in a scripted way, and a sleep that records the delays."""

    def __init__(self, fail: Callable[[IngressNode], Exception], stop_after: int) -> None:
        self.fail = fail
        self.delays: dict[str, list[float]] = {}
        self.stop_after = stop_after
        self.done = asyncio.Event()

    async def connect(self, target: IngressNode, tls: TlsFiles) -> TunnelConnection:
        raise self.fail(target)

    async def sleep(self, delay: float) -> None:
        name = asyncio.current_task().get_name()  # type: ignore[union-attr]
        delays = self.delays.setdefault(name, [])
        delays.append(delay)
        if len(delays) >= self.stop_after:
            self.done.set()
        await asyncio.sleep(0)


async def scripted(pki: Pki, script: Script, nodes: list[IngressNode]) -> None:
    sup = supervisor(pki, connect=script.connect, sleep=script.sleep, rand=lambda: 0.5)
    sup.set_policy(BackoffPolicy(initial=1.0, cap=8.0, multiplier=2.0))
    sup.apply(nodes)
    async with asyncio.timeout(10), asyncio.TaskGroup() as group:
        group.create_task(sup.run())
        await script.done.wait()
        await sup.drain("done", grace=0.1)


async def test_failed_attempts_back_off_exponentially_with_jitter(pki: Pki) -> None:
    script = Script(lambda _: ConnectionClosed(0, "handshake timed out", by_peer=False), 6)
    await scripted(pki, script, [node(1)])
    assert script.delays["node-ingress-1"][:6] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


async def test_a_refusal_backs_off_to_the_cap_at_once(pki: Pki) -> None:
    refusal = ConnectionClosed(ErrorCode.UNAUTHORIZED, "unauthorized", by_peer=True)
    script = Script(lambda _: refusal, 3)
    await scripted(pki, script, [node(1)])
    assert script.delays["node-ingress-1"][:3] == [4.0, 4.0, 4.0]


async def test_a_bug_in_one_node_attempts_is_contained(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(target: IngressNode) -> Exception:
        if target.name == "buggy":
            return KeyError("oops")
        return ConnectionClosed(0, "timed out", by_peer=False)

    script = Script(fail, 4)
    await scripted(pki, script, [node(1, "buggy"), node(2, "fine")])
    assert len(script.delays["node-buggy"]) >= 3  # retried like any failure
    assert len(script.delays["node-fine"]) >= 3
    assert "tunnel failed unexpectedly" in caplog.text
