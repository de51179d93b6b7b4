"""The orchestrator in a real agent (supervisor, origin proxy, QUIC to fake nodes, real
origins): atomic swap with streams in flight keeping their service, SERVICES on a changed
claim, nodes following the ingress list, and refusals that keep the running snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from common.config import parse
from common.wire import Drain, Services
from edge.orchestrator import Orchestrator, ReloadRefused
from edge.origin import OriginPool
from edge.origin_proxy import OriginProxy
from edge.settings import EdgeSettings
from edge.supervisor import Supervisor
from tests.edge.agent_support import Pki, fast_connect, make_pki, until
from tests.edge.fake_ingress import FakeIngress, get
from tests.edge.raw_origin import Connection, RawOrigin, response


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def settings(
    pki: Pki, nodes: dict[str, int], services: dict[str, str], **extra: Any
) -> EdgeSettings:
    tls = pki.agent
    data = {
        "agent": "agent-1",
        "tls": {"cert": str(tls.cert), "key": str(tls.key), "ca": str(tls.ca)},
        "ingress": [{"name": n, "address": f"127.0.0.1:{p}"} for n, p in nodes.items()],
        "services": [{"name": n, "origin": o} for n, o in services.items()],
        "heartbeat_interval": 0.5,
        "backoff": {"initial": 0.1, "max": 0.5},
        "drain_grace": 2,
        **extra,
    }
    return parse(data, EdgeSettings)


@dataclass
class Agent:
    orchestrator: Orchestrator
    supervisor: Supervisor


async def run_agent(first: EdgeSettings) -> tuple[Agent, Coroutine[Any, Any, None], OriginPool]:
    """An agent's parts, wired as edge.app wires them; run the returned coroutine."""
    orchestrator = Orchestrator(first, agent_version="test")
    pool = OriginPool()
    proxy = OriginProxy(pool, orchestrator.services, agent="agent-1")
    supervisor = Supervisor(
        orchestrator.tunnel_options,
        proxy.serve,
        orchestrator.current.backoff,
        connect=fast_connect,
        drain_grace=2.0,
    )
    orchestrator.attach(supervisor)
    supervisor.apply(first.ingress)
    return Agent(orchestrator, supervisor), supervisor.run(), pool


class Named:
    """An origin that answers its own name, the first request only once `release` is set."""

    def __init__(self, name: bytes) -> None:
        self.name = name
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, conn: Connection) -> None:
        while await conn.request() is not None:
            await self.release.wait()
            await conn.send(response(200, self.name))


async def test_in_flight_streams_keep_their_service_and_new_ones_see_the_swap(pki: Pki) -> None:
    first, second = Named(b"first"), Named(b"second")
    first.release.clear()
    async with RawOrigin(first) as a, RawOrigin(second) as b, FakeIngress(pki.ingress) as node:
        old = settings(pki, {"n1": node.port}, {"web": f"http://127.0.0.1:{a.port}"})
        agent, running, pool = await run_agent(old)
        async with asyncio.timeout(20), asyncio.TaskGroup() as group:
            group.create_task(running)
            session = await node.session()
            in_flight = group.create_task(session.request(get("/")))
            await until(lambda: len(a.requests) == 1)
            new = settings(pki, {"n1": node.port}, {"web": f"http://127.0.0.1:{b.port}"})
            snapshot = await agent.orchestrator.apply(new)
            assert snapshot.version == 2
            after = await session.request(get("/"))
            first.release.set()
            before = await in_flight
            await agent.supervisor.drain("test", 1.0)
        await pool.aclose()
    assert before.body == b"first" and after.body == b"second"
    assert not [m for m in session.messages if isinstance(m, Services)]  # same names


async def test_a_changed_claim_is_sent_and_nodes_follow_the_list(pki: Pki) -> None:
    async with FakeIngress(pki.ingress) as n1, FakeIngress(pki.ingress) as n2:
        web = {"web": "http://127.0.0.1:9"}
        agent, running, pool = await run_agent(settings(pki, {"n1": n1.port}, web))
        async with asyncio.timeout(20), asyncio.TaskGroup() as group:
            group.create_task(running)
            s1 = await n1.session()
            both = web | {"api": "http://127.0.0.1:9"}
            await agent.orchestrator.apply(settings(pki, {"n1": n1.port}, both))
            assert await s1.wait_for(Services) == Services(("web", "api"))
            await agent.orchestrator.apply(settings(pki, {"n2": n2.port}, both))
            s2 = await n2.session()
            assert s2.hello.services == ("web", "api")  # the new claim in the next HELLO
            assert await s1.wait_for(Drain) == Drain("node removed")
            await s1.wait_closed()
            await agent.supervisor.drain("test", 1.0)
        await pool.aclose()


async def test_refused_changes_keep_the_running_snapshot(pki: Pki) -> None:
    base = settings(pki, {"n1": 1}, {"web": "http://127.0.0.1:9"})
    orchestrator = Orchestrator(base)
    current = orchestrator.current
    renamed = base.model_copy(update={"agent": "agent-2"})
    with pytest.raises(ReloadRefused, match="restart"):
        await orchestrator.apply(renamed)
    with pytest.raises(ReloadRefused, match="not newer"):
        await orchestrator.apply(base, version=1)
    assert orchestrator.current is current
    assert (await orchestrator.apply(base, version=7)).version == 7
    with pytest.raises(ReloadRefused, match="not newer"):
        await orchestrator.apply(base, version=7)
    assert (await orchestrator.apply(base)).version == 8


async def test_the_next_attempt_uses_the_new_options(pki: Pki) -> None:
    base = settings(pki, {"n1": 1}, {"web": "http://127.0.0.1:9"})
    orchestrator = Orchestrator(base, agent_version="9.9")
    assert orchestrator.tunnel_options().services == ("web",)
    assert orchestrator.tunnel_options().version == "9.9"
    changed = settings(pki, {"n1": 1}, {"api": "http://127.0.0.1:9"}, max_streams=3)
    await orchestrator.apply(changed)
    options = orchestrator.tunnel_options()
    assert options.services == ("api",) and options.max_streams == 3
    assert set(orchestrator.services()) == {"api"}
