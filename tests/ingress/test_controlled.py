"""An ingress node in control mode: a snapshot becomes routes and revocations (or is refused
whole, naming the field), the file may not set services, and a revocation applied to a running
node closes the revoked agent's live connection at once and refuses its next handshake, while
the other agents keep serving."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from common import pki
from common.channel import IngressConfig, Snapshot, SnapshotRejected
from common.config import ConfigError
from common.quic import connect
from common.transport import ConnectionClosed, PeerIdentity
from common.wire import ErrorCode
from ingress import controlled
from ingress.app import IngressApp
from ingress.settings import load_settings
from tests.common.quic_support import HOST, Authority
from tests.ingress.test_app import serve_one
from tests.ingress.tunnel_harness import FAST, Agent, settings

ORG = str(uuid.uuid4())
NODE = str(uuid.uuid4())


def service(name: str, hosts: list[str], agents: list[str], **extra: Any) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "name": name, "hosts": hosts, "agents": agents} | extra


def received(
    services: list[dict[str, Any]], serials: Sequence[str] = (), identities: Sequence[str] = ()
) -> Snapshot[IngressConfig]:
    raw = {
        "node": {"id": NODE, "name": "ingress-t", "org_id": ORG},
        "services": services,
        "revoked": {"serials": list(serials), "identities": list(identities)},
    }
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
    version = hashlib.sha256(canonical).hexdigest()
    return Snapshot(version, datetime.now(UTC), IngressConfig.model_validate(raw), raw)


# ---- the mapping ---------------------------------------------------------------------------


def test_a_snapshot_becomes_routes_and_revocations() -> None:
    snapshot = received(
        [
            service("web", ["web.example.com", "*.web.example.com"], [f"{ORG}/a1"]),
            service("api", ["web.example.com"], [], path_prefix="/api", strip_prefix=True),
        ],
        serials=["ff", "1A2b"],
        identities=[f"{ORG}/gone"],
    )
    built = controlled.build(settings([]), snapshot.config)
    route = built.table.lookup("x.web.example.com", "/")
    assert route is not None and route.service == "web"
    api = built.table.lookup("web.example.com", "/api/x")
    assert api is not None and (api.service, api.target_for("/api/x")) == ("api", "/x")
    assert built.table.lookup("other.example.com", "/") is None
    assert built.settings.services[0].allows("a1", ORG)
    assert built.revoked.serials == {0xFF, 0x1A2B}
    assert built.revoked.covers(PeerIdentity("gone", "agent", 7, ORG))
    assert built.revoked.covers(PeerIdentity("a1", "agent", 0xFF, ORG))
    assert not built.revoked.covers(PeerIdentity("a1", "agent", 0xFE, ORG))
    assert not built.revoked.covers(PeerIdentity("gone", "agent", 7, "another-org"))
    assert built.settings.node == "ingress-t"  # the file's (the enrollment's), not the snapshot's


@pytest.mark.parametrize(
    ("services", "serials", "reason"),
    [
        ([service("web", ["Web.Example.com"], [])], [], "services.0.hosts.0"),
        ([service("web", ["a.test"], []), service("web", ["b.test"], [])], [], "duplicate service"),
        (
            [service("web", ["a.test"], []), service("two", ["a.test"], [])],
            [],
            "duplicate route 'a.test/'",
        ),
        ([service("web!", ["a.test"], [])], [], "services.0.name"),
        ([service("web", ["a.test"], ["bad agent"])], [], "services.0.agents.0"),
        ([], ["xyz"], "not all hexadecimal"),
    ],
)
def test_a_snapshot_that_does_not_validate_is_refused_whole(
    services: list[dict[str, Any]], serials: list[str], reason: str
) -> None:
    with pytest.raises(SnapshotRejected, match=reason):
        controlled.build(settings([]), received(services, serials).config)


def test_in_control_mode_the_file_may_not_set_services(tmp_path: Path) -> None:
    data: dict[str, Any] = {
        "node": "n",
        "tunnel": {"listen": f"{HOST}:0", "cert": "c", "key": "k", "ca": "a"},
        "http": {"listen": f"{HOST}:0"},
    }
    path = tmp_path / "ingress.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_settings(path, controlled=True).services == ()
    path.write_text(yaml.safe_dump(data | {"services": []}))
    with pytest.raises(ConfigError) as error:
        load_settings(path, controlled=True)
    assert error.value.problems == [
        (
            "services",
            "in control mode this comes from the control plane (docs/enrollment.md); "
            "remove it from the file",
        )
    ]
    assert load_settings(path).services == ()  # standalone, it is the file's to say


# ---- revocation on a running node ----------------------------------------------------------


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[IngressApp, Authority]]:
    ca = Authority(tmp_path / "ca")
    ca.issue("ingress", "ingress-t")
    config = tmp_path / "ingress.yaml"
    data = {
        "node": "ingress-t",
        "tunnel": {
            "listen": f"{HOST}:0",
            "cert": "ca/ingress-ingress-t.pem",
            "key": "ca/ingress-ingress-t.key",
            "ca": "ca/ca.pem",
        },
        "http": {"listen": f"{HOST}:0"},
        "admin": None,
        "limits": {"heartbeat_interval": 1},
        "drain_grace": 1,
    }
    config.write_text(yaml.safe_dump(data))
    app = IngressApp(config, load_settings(config))
    async with asyncio.TaskGroup() as group:
        group.create_task(app.run(), name="node")
        async with asyncio.timeout(5):
            while "http" not in app.ports:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        yield app, ca
        app.stop()


def issue(ca: Authority, name: str) -> tuple[pki.TlsFiles, int]:
    key, cert = pki.issue_certificate(ca.key, ca.cert, role="agent", name=name, org=ORG, days=1)
    assert key is not None
    base = ca.directory / f"agent-{name}"
    pki.write_key(base.with_suffix(".key"), key)
    pki.write_certificate(base.with_suffix(".pem"), cert)
    files = pki.TlsFiles(
        base.with_suffix(".pem"), base.with_suffix(".key"), ca.directory / "ca.pem"
    )
    return files, cert.serial_number


async def test_revoked_agents_are_dropped_at_once_and_refused_after(
    node: tuple[IngressApp, Authority],
) -> None:
    app, ca = node
    agents = [f"{ORG}/a1", f"{ORG}/a2"]
    await app.apply_snapshot(received([service("web", ["web.test"], agents)]))
    port = app.ports["tunnel"]
    (tls1, serial1), (tls2, _) = issue(ca, "a1"), issue(ca, "a2")
    one = Agent(await connect(HOST, port, tls1, server_name=HOST, options=FAST), "a1")
    two = Agent(await connect(HOST, port, tls2, server_name=HOST, options=FAST), "a2")
    for agent in (one, two):
        await agent.hello(("web",))
    assert app.pool.count("web") == 2

    started = time.monotonic()
    revoking = received([service("web", ["web.test"], agents)], serials=[f"{serial1:x}"])
    await app.apply_snapshot(revoking)
    closed = await one.closed_with(within=5)
    took = time.monotonic() - started
    assert (closed.code, closed.reason, closed.by_peer) == (ErrorCode.REVOKED, "revoked", True)
    assert took < 1.0, took
    assert app.pool.count("web") == 1

    with pytest.raises(ConnectionClosed) as refused:  # refused at the handshake from now on
        await connect(HOST, port, tls1, server_name=HOST, options=FAST)
    assert refused.value.code == ErrorCode.REVOKED

    base = f"http://{HOST}:{app.ports['http']}"
    async with httpx.AsyncClient(base_url=base) as client:
        async with asyncio.TaskGroup() as group:
            answer = group.create_task(serve_one(two, b"still here"))
            response = await client.get("/", headers={"host": "web.test"})
        assert (response.status_code, response.content) == (200, b"still here")
        assert answer.result().service == "web"

        by_identity = received([service("web", ["web.test"], agents)], identities=[f"{ORG}/a2"])
        await app.apply_snapshot(by_identity)  # every certificate of a2, whatever its serial
        assert (await two.closed_with(within=5)).code == ErrorCode.REVOKED
        gone = await client.get("/", headers={"host": "web.test"})
        assert gone.status_code == 502 and b"no agent" in gone.content
    with pytest.raises(ConnectionClosed):
        await connect(HOST, port, issue(ca, "a2")[0], server_name=HOST, options=FAST)


async def refuse_one(agent: Agent) -> None:
    async with asyncio.timeout(5):
        stream = await agent.conn.accept_stream()
    stream.reset(ErrorCode.ORIGIN_REFUSED)


async def test_an_agent_that_loses_its_services_is_closed_and_status_lists_agents(
    node: tuple[IngressApp, Authority],
) -> None:
    app, ca = node
    agent_id = str(uuid.uuid4())
    await app.apply_snapshot(received([service("web", ["web.test"], [f"{ORG}/{agent_id}"])]))
    tls, _ = issue(ca, agent_id)
    agent = Agent(
        await connect(HOST, app.ports["tunnel"], tls, server_name=HOST, options=FAST), agent_id
    )
    await agent.hello(("web",))
    report = app.status_report()
    assert [(s.name, s.requests, s.in_flight) for s in report.services] == [("web", 0, 0)]
    [peer] = report.connections
    assert (peer.kind, peer.id) == ("agent", agent_id)
    assert peer.rtt is not None and peer.connected_since <= datetime.now(UTC)

    base = f"http://{HOST}:{app.ports['http']}"
    async with httpx.AsyncClient(base_url=base) as client:
        async with asyncio.TaskGroup() as group:
            group.create_task(serve_one(agent, b"12345"))
            await client.get("/", headers={"host": "web.test"})
        async with asyncio.TaskGroup() as group:
            group.create_task(refuse_one(agent))
            failed = await client.get("/", headers={"host": "web.test"})
        assert failed.status_code == 502
    web = app.status_report().services[0]
    assert (web.name, web.requests, web.errors, web.bytes_out, web.in_flight) == ("web", 2, 1, 5, 0)

    await app.apply_snapshot(received([service("web", ["web.test"], [])]))
    assert (await agent.closed_with()).code == ErrorCode.UNAUTHORIZED
    assert app.status_report().connections == []
