"""The ingress tunnel side under test: a real QUIC server with `TunnelServer`, and scripted
agents that speak the control protocol over real QUIC connections on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from common.config import parse
from common.quic import QuicOptions, QuicServer, QuicTunnelConnection, connect, serve
from common.transport import ConnectionClosed, TunnelStream
from common.wire import ControlMessage, ControlReader, Hello, HelloAck, encode_control
from ingress.agents import AgentPool
from ingress.metrics import IngressMetrics
from ingress.settings import IngressSettings
from ingress.tunnel_server import TunnelServer
from tests.common.quic_support import HOST, Authority

FAST = QuicOptions(idle_timeout=5.0, handshake_timeout=3.0)


def settings(services: list[dict[str, Any]], **limits: float) -> IngressSettings:
    data = {
        "node": "ingress-t",
        "tunnel": {"listen": f"{HOST}:0", "cert": "x", "key": "x", "ca": "x"},
        "http": {"listen": f"{HOST}:0"},
        "admin": None,
        "services": services,
        "limits": limits,
    }
    return parse(data, IngressSettings)


SERVICES = [
    {"name": "web", "hosts": ["web.test"], "agents": ["agent-1", "agent-2", "agent-3"]},
    {"name": "api", "hosts": ["api.test"], "agents": ["agent-1"]},
    {"name": "other", "hosts": ["other.test"], "agents": ["agent-9"]},
]


@dataclass
class Ingress:
    """A TunnelServer behind a real QUIC listener; `current` is what the sessions read."""

    ca: Authority
    current: IngressSettings
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    pool: AgentPool = field(init=False)
    tunnel: TunnelServer = field(init=False)
    open_timeout: float = 2.0
    quic: QuicServer | None = None

    def __post_init__(self) -> None:
        metrics = IngressMetrics(self.registry)
        self.pool = AgentPool(open_timeout=self.open_timeout, gauge=metrics.agents_connected)
        self.tunnel = TunnelServer(self.pool, lambda: self.current)

    @property
    def port(self) -> int:
        assert self.quic is not None
        return self.quic.port

    def reload(self, new: IngressSettings) -> None:
        self.current = new
        self.tunnel.reconfigure()

    def gauge(self, service: str) -> float | None:
        return self.registry.get_sample_value(
            "kokoa_ingress_agents_connected", {"service": service}
        )

    async def wait_count(self, service: str, count: int, within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while self.pool.count(service) != count:  # noqa: ASYNC110 - a plain counter
                await asyncio.sleep(0.01)


@asynccontextmanager
async def running_ingress(
    ca: Authority, current: IngressSettings, *, open_timeout: float = 2.0
) -> AsyncIterator[Ingress]:
    ingress = Ingress(ca, current, open_timeout=open_timeout)
    tls = ca.issue("ingress", "ingress-t")
    ingress.quic = await serve(HOST, 0, tls, ingress.tunnel.handle, options=FAST)
    try:
        yield ingress
    finally:
        ingress.quic.close()
        await ingress.quic.wait_closed(grace=2.0)


class Agent:
    """A scripted agent: a real QUIC client that writes control frames by hand."""

    def __init__(self, conn: QuicTunnelConnection, name: str) -> None:
        self.conn = conn
        self.name = name
        self.control: TunnelStream | None = None
        self.reader = ControlReader()
        self.inbox: list[ControlMessage] = []

    async def open_control(self, data: bytes = b"") -> TunnelStream:
        self.control = await self.conn.open_stream()
        if data:
            await self.control.write(data)
        return self.control

    async def hello(
        self, services: tuple[str, ...], *, agent_id: str | None = None, max_streams: int = 512
    ) -> HelloAck:
        hello = Hello(agent_id or self.name, "test", services, max_streams=max_streams)
        await self.open_control(encode_control(hello, preface=True))
        message = await self.receive()
        assert isinstance(message, HelloAck), message
        return message

    async def send(self, message: ControlMessage) -> None:
        assert self.control is not None
        await self.control.write(encode_control(message))

    async def receive(self, within: float = 5.0) -> ControlMessage:
        assert self.control is not None
        async with asyncio.timeout(within):
            while not self.inbox:
                data = await self.control.read()
                assert data, "control stream ended"
                self.inbox.extend(self.reader.feed(data))
        return self.inbox.pop(0)

    async def closed_with(self, within: float = 5.0) -> ConnectionClosed:
        async with asyncio.timeout(within):
            return await self.conn.wait_closed()


@asynccontextmanager
async def agents(
    ingress: Ingress, *names: str, options: QuicOptions = FAST
) -> AsyncIterator[list[Agent]]:
    """Connect one scripted agent per name (each with its own certificate)."""
    async with AsyncExitStack() as stack:
        connected = []
        for name in names:
            tls = ingress.ca.issue("agent", name)
            conn = await connect(HOST, ingress.port, tls, server_name=HOST, options=options)
            stack.push_async_callback(_close, conn)
            connected.append(Agent(conn, name))
        yield connected


async def _close(conn: QuicTunnelConnection) -> None:
    conn.close()
    await asyncio.wait_for(conn.wait_closed(), 5.0)
