"""The composition root in-process: every listener up, requests routed to a scripted agent over
real QUIC, HTTP → HTTPS redirect, reload (valid and invalid), graceful stop."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import yaml

from common.quic import connect
from common.streams import read_head
from common.transport import TunnelStream
from common.wire import (
    Drain,
    ErrorCode,
    HeadReader,
    RequestHead,
    ResponseHead,
    encode_response,
)
from ingress.app import IngressApp
from ingress.settings import load_settings
from tests.common.quic_support import HOST, Authority
from tests.ingress.tunnel_harness import FAST, Agent

SERVICES: list[dict[str, Any]] = [
    {"name": "web", "hosts": ["web.test", "*.web.test"], "agents": ["agent-1"]},
    {
        "name": "api",
        "hosts": ["web.test"],
        "path_prefix": "/api",
        "strip_prefix": True,
        "agents": ["agent-1"],
    },
]


@dataclass
class Setup:
    root: Path
    ca: Authority
    https_ca: trustme.CA
    config: Path

    def write(self, services: list[dict[str, Any]], **extra: Any) -> None:
        data = {
            "node": "ingress-t",
            "tunnel": {
                "listen": f"{HOST}:0",
                "cert": "ca/ingress-ingress-t.pem",
                "key": "ca/ingress-ingress-t.key",
                "ca": "ca/ca.pem",
            },
            "http": {"listen": f"{HOST}:0"},
            "https": {
                "listen": f"{HOST}:0",
                "certificates": [{"cert": "site.pem", "key": "site.key"}],
            },
            "admin": {"listen": f"{HOST}:0"},
            "services": services,
            "limits": {"heartbeat_interval": 1},
            "drain_grace": 2,
        } | extra
        self.config.write_text(yaml.safe_dump(data))

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.https_ca.configure_trust(context)
        return context


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    ca = Authority(tmp_path / "ca")
    ca.issue("ingress", "ingress-t")
    https_ca = trustme.CA()
    site = https_ca.issue_cert("web.test", "*.web.test", HOST)
    site.cert_chain_pems[0].write_to_path(str(tmp_path / "site.pem"))
    site.private_key_pem.write_to_path(str(tmp_path / "site.key"))
    result = Setup(tmp_path, ca, https_ca, tmp_path / "ingress.yaml")
    result.write(SERVICES)
    return result


@pytest.fixture
async def app(setup: Setup) -> AsyncIterator[IngressApp]:
    node = IngressApp(setup.config, load_settings(setup.config))
    async with asyncio.TaskGroup() as group:
        group.create_task(node.run(), name="node")
        async with asyncio.timeout(5):
            while not (node.readiness().ready and "admin" in node.ports):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        yield node
        node.stop()


async def serve_one(agent: Agent, body: bytes) -> RequestHead:
    """Answer the next stream the node opens with 200 and `body`; return its head."""
    async with asyncio.timeout(5):
        stream: TunnelStream = await agent.conn.accept_stream()
        head, _ = await read_head(stream, HeadReader.request())
    assert isinstance(head, RequestHead)
    length = str(len(body)).encode()
    await stream.write(encode_response(ResponseHead(200, ((b"content-length", length),))) + body)
    await stream.write_eof()
    return head


async def test_every_listener_and_readiness(app: IngressApp, setup: Setup) -> None:
    ports = app.ports
    assert set(ports) == {"tunnel", "http", "https", "admin"}
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{ports['admin']}") as admin:
        ready = (await admin.get("/readyz")).json()
        assert ready == {
            "ready": True,
            "node": "ingress-t",
            "config_loaded": True,
            "listeners": {"tunnel": True, "http": True, "https": True},
            "agents": 0,
        }
        metrics = (await admin.get("/metrics")).text
        assert 'kokoa_ingress_agents_connected{service="web"} 0.0' in metrics
        assert "process_resident_memory_bytes" in metrics


async def test_http_redirects_to_https(app: IngressApp) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"http://{HOST}:{app.ports['http']}/a?b=1", headers={"host": "web.test"}
        )
    assert response.status_code == 308
    assert response.headers["location"] == f"https://web.test:{app.ports['https']}/a?b=1"


async def test_requests_reach_the_agent_by_host_and_prefix(app: IngressApp, setup: Setup) -> None:
    base = f"https://{HOST}:{app.ports['https']}"
    async with httpx.AsyncClient(base_url=base, verify=setup.client_context()) as client:
        assert (await client.get("/", headers={"host": "web.test"})).status_code == 502
        assert (await client.get("/", headers={"host": "nope.test"})).status_code == 404
        tls = setup.ca.issue("agent", "agent-1")
        conn = await connect(HOST, app.ports["tunnel"], tls, server_name=HOST, options=FAST)
        try:
            agent = Agent(conn, "agent-1")
            await agent.hello(("web", "api"))
            for path, host, service, target in [
                ("/x?y=1", "web.test", "web", "/x?y=1"),
                ("/api/v1?q", "web.test", "api", "/v1?q"),
                ("/api", "a.b.web.test", "web", "/api"),
            ]:
                async with asyncio.TaskGroup() as group:
                    answer = group.create_task(serve_one(agent, b"hi"))
                    response = await client.get(path, headers={"host": host})
                head = answer.result()
                assert (response.status_code, response.content) == (200, b"hi")
                assert (head.service, head.target, head.authority) == (service, target, host)
                assert head.scheme == "https"
        finally:
            conn.close()
            await conn.wait_closed()


async def test_reload_swaps_routes_and_refuses_an_invalid_file(
    app: IngressApp, setup: Setup
) -> None:
    base = f"https://{HOST}:{app.ports['https']}"
    async with httpx.AsyncClient(base_url=base, verify=setup.client_context()) as client:

        async def status(host: str) -> int:
            return (await client.get("/", headers={"host": host})).status_code

        assert (await status("web.test"), await status("new.test")) == (502, 404)
        setup.write([{"name": "new", "hosts": ["new.test"], "agents": []}])
        assert app.reload()
        assert (await status("web.test"), await status("new.test")) == (404, 502)
        setup.config.write_text("services: [{name: x, hosts: [Bad.Host]}]\n")
        assert not app.reload()
        assert (await status("web.test"), await status("new.test")) == (404, 502)
        setup.write(
            SERVICES,
            https={
                "listen": f"{HOST}:0",
                "certificates": [{"cert": "missing.pem", "key": "site.key"}],
            },
        )
        assert not app.reload()  # the certificate does not load: all of it is refused
        assert (await status("web.test"), await status("new.test")) == (404, 502)


async def test_stop_drains_agents_and_closes_with_shutdown(setup: Setup) -> None:
    node = IngressApp(setup.config, load_settings(setup.config))
    async with asyncio.TaskGroup() as group:
        running = group.create_task(node.run(), name="node")
        async with asyncio.timeout(5):
            while not node.readiness().ready:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        tls = setup.ca.issue("agent", "agent-1")
        conn = await connect(HOST, node.ports["tunnel"], tls, server_name=HOST, options=FAST)
        agent = Agent(conn, "agent-1")
        await agent.hello(("web",))
        node.stop()
        assert await agent.receive() == Drain("node shutting down")
        closed = await agent.closed_with()
        assert closed.code == ErrorCode.SHUTDOWN
        async with asyncio.timeout(5):
            await running
    assert not node.readiness().listeners["tunnel"]


async def test_a_listener_that_cannot_start_releases_the_others(setup: Setup) -> None:
    with socket.create_server((HOST, 0)) as taken:
        port = taken.getsockname()[1]
        setup.write(SERVICES, http={"listen": f"{HOST}:{port}"})
        node = IngressApp(setup.config, load_settings(setup.config))
        with pytest.raises(OSError):
            await node.run()
    https = node.ports.get("https")
    assert https is not None
    with pytest.raises(ConnectionRefusedError):  # the HTTPS listener was closed again
        socket.create_connection((HOST, https), timeout=1).close()
