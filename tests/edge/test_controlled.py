"""An edge agent in control mode: a snapshot becomes its nodes and services (or is refused
whole, naming the field), the file may not set them, and in a running agent (real QUIC to fake
nodes) a newly listed node is dialled, a removed one drained and dropped, the others untouched;
a reload keeps the snapshot's part; the status report names connected nodes by their id; a
node's certificate must be that node's (another node's, at its address, is refused)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.backoff import BackoffPolicy
from common.channel import AgentConfig, Snapshot, SnapshotRejected
from common.config import ConfigError
from common.wire import Drain
from edge import controlled
from edge.app import EdgeApp
from edge.counters import Counters
from edge.settings import ControlledEdgeSettings, load_settings
from edge.supervisor import NodeState, NodeStatus, Supervisor
from tests.edge.agent_support import (
    Pki,
    fast_connect,
    make_pki,
    node,
    node_tls,
    options,
    refuse,
    until,
)
from tests.edge.fake_ingress import FakeIngress

ORG, AGENT = str(uuid.uuid4()), str(uuid.uuid4())
IDS = {"n1": str(uuid.uuid4()), "n2": str(uuid.uuid4())}


def received(nodes: dict[str, int], services: dict[str, str]) -> Snapshot[AgentConfig]:
    raw = {
        "agent": {"id": AGENT, "name": "agent-1", "org_id": ORG},
        "ingress": [
            {"id": IDS[name], "name": name, "address": f"127.0.0.1:{port}", "server_name": None}
            for name, port in nodes.items()
        ],
        "services": [
            {
                "id": str(uuid.uuid4()),
                "name": name,
                "origin": origin,
                "host_header": None,
                "tls_verify": True,
                "connect_timeout": 5.0,
                "read_timeout": 60.0,
            }
            for name, origin in services.items()
        ],
    }
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()
    version = hashlib.sha256(canonical).hexdigest()
    return Snapshot(version, datetime.now(UTC), AgentConfig.model_validate(raw), raw)


def file_settings(root: Path, **extra: Any) -> Path:
    data = {
        "agent": "agent-1",
        "tls": {
            "cert": "pki/agent-agent-1.pem",
            "key": "pki/agent-agent-1.key",
            "ca": "pki/ca.pem",
        },
        "heartbeat_interval": 0.5,
        "backoff": {"initial": 0.1, "max": 0.5},
        "drain_grace": 2,
    } | extra
    path = root / "agent.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


# ---- the mapping ---------------------------------------------------------------------------


def test_a_snapshot_becomes_nodes_and_services(tmp_path: Path, pki: Pki) -> None:
    base = load_settings(file_settings(tmp_path), controlled=True)
    assert isinstance(base, ControlledEdgeSettings)
    assert (base.ingress, base.services) == ((), ())
    snapshot = received({"n1": 7844, "n2": 7845}, {"web": "http://127.0.0.1:8080"})
    settings = controlled.settings_for(base, snapshot.config)
    assert [(n.name, n.address, n.verify_name, n.identity) for n in settings.ingress] == [
        ("n1", "127.0.0.1:7844", "127.0.0.1", f"urn:kokoa:org:{ORG}:ingress:{IDS['n1']}"),
        ("n2", "127.0.0.1:7845", "127.0.0.1", f"urn:kokoa:org:{ORG}:ingress:{IDS['n2']}"),
    ]
    [web] = settings.services
    assert (web.name, web.origin, web.read_timeout) == ("web", "http://127.0.0.1:8080", 60.0)
    assert settings.tls == base.tls and settings.heartbeat_interval == 0.5
    nothing = controlled.settings_for(base, received({"n1": 7844}, {}).config)
    assert nothing.ingress == ()  # no service to claim: no node is dialled


@pytest.mark.parametrize(
    ("nodes", "services", "reason"),
    [
        ({"n1": 7844}, {"web": "ftp://127.0.0.1"}, "services.0.origin"),
        ({"n1": 7844}, {"-web": "http://127.0.0.1:80"}, "services.0.name"),
        ({"n1": 0}, {"web": "http://127.0.0.1:80"}, "ingress.0.address"),
    ],
)
def test_a_snapshot_that_does_not_validate_is_refused_whole(
    tmp_path: Path, pki: Pki, nodes: dict[str, int], services: dict[str, str], reason: str
) -> None:
    base = load_settings(file_settings(tmp_path), controlled=True)
    assert isinstance(base, ControlledEdgeSettings)
    with pytest.raises(SnapshotRejected, match=reason):
        controlled.settings_for(base, received(nodes, services).config)


def test_in_control_mode_the_file_may_not_set_nodes_or_services(tmp_path: Path, pki: Pki) -> None:
    path = file_settings(
        tmp_path,
        ingress=[{"name": "n", "address": "127.0.0.1:1"}],
        services=[{"name": "web", "origin": "http://127.0.0.1:80"}],
    )
    with pytest.raises(ConfigError) as error:
        load_settings(path, controlled=True)
    assert [field for field, _ in error.value.problems] == ["ingress", "services"]
    assert all("comes from the control plane" in reason for _, reason in error.value.problems)
    assert load_settings(path).service_names == ("web",)  # standalone: the file's to say


def test_the_status_report() -> None:
    counters = Counters()
    web = counters.begin("web")
    counters.end(web, status=200, failed=False, bytes_in=3, bytes_out=10)
    failed = counters.begin("web")
    counters.end(failed, status=0, failed=True, bytes_in=0, bytes_out=0)
    counters.begin("web")  # in flight
    since = datetime.now(UTC)

    def status(
        name: str, state: NodeState, attempt: int = 0, error: str | None = None
    ) -> NodeStatus:
        return NodeStatus(
            name,
            "127.0.0.1:1",
            state,
            0.0125,
            error,
            attempt,
            None,
            (),
            0,
            since if state is NodeState.CONNECTED else None,
        )

    parts = controlled.report(
        [
            status("n1", NodeState.CONNECTED),
            status("n2", NodeState.BACKING_OFF, 3, "HandshakeFailed: unreachable"),
            status("n3", NodeState.BACKING_OFF, 1, "HandshakeFailed: unreachable"),
        ],
        IDS,
        counters,
        ["web", "api"],
    )
    assert [s.to_json() for s in parts.services] == [
        {"name": "api", "requests": 0, "errors": 0, "bytes_in": 0, "bytes_out": 0, "in_flight": 0},
        {"name": "web", "requests": 2, "errors": 1, "bytes_in": 3, "bytes_out": 10, "in_flight": 1},
    ]
    [peer] = parts.connections
    assert peer.to_json() == {
        "kind": "ingress",
        "id": IDS["n1"],
        "name": "n1",
        "connected_since": since.isoformat(),
        "rtt_ms": 12.5,
    }
    assert parts.problems == ["ingress n2: HandshakeFailed: unreachable"]


# ---- a running agent -------------------------------------------------------------------------


@pytest.fixture
async def agent(tmp_path: Path, pki: Pki) -> AsyncIterator[EdgeApp]:
    path = file_settings(tmp_path)
    app = EdgeApp(path, load_settings(path, controlled=True), agent_version="test")
    async with asyncio.TaskGroup() as group:
        group.create_task(app.run(), name="agent")
        yield app
        app.stop()


def connected(app: EdgeApp) -> dict[str, NodeState]:
    return {status.name: status.state for status in app.supervisor.status()}


async def test_nodes_follow_the_snapshots_and_the_others_stay_untouched(
    agent: EdgeApp, pki: Pki, tmp_path: Path
) -> None:
    web = {"web": "http://127.0.0.1:9"}
    async with (
        FakeIngress(node_tls(pki.authority, IDS["n1"], ORG), name="n1") as one,
        FakeIngress(node_tls(pki.authority, IDS["n2"], ORG), name="n2") as two,
    ):
        await agent.apply_snapshot(received({"n1": one.port}, web))
        first = await one.session()
        assert first.hello.services == ("web",)

        await agent.apply_snapshot(received({"n1": one.port, "n2": two.port}, web))
        await two.session()
        await until(
            lambda: connected(agent) == {"n1": NodeState.CONNECTED, "n2": NodeState.CONNECTED}
        )
        report = agent.status_report()
        assert {(p.name, p.id) for p in report.connections} == {
            ("n1", IDS["n1"]),
            ("n2", IDS["n2"]),
        }

        await agent.apply_snapshot(received({"n2": two.port}, web))
        assert isinstance(await first.wait_for(Drain), Drain)  # drained, then dropped
        await first.wait_closed()
        await until(lambda: connected(agent) == {"n2": NodeState.CONNECTED})
        assert len(one.sessions) == 1 and len(two.sessions) == 1 and two.sessions[0].closed is None

        with pytest.raises(SnapshotRejected, match="origin"):
            await agent.apply_snapshot(received({"n1": one.port}, {"web": "ftp://x"}))
        assert connected(agent) == {"n2": NodeState.CONNECTED}  # what ran stays

        file_settings(tmp_path, log={"level": "debug", "format": "text"})
        assert await agent.reload()  # the file's part changes, the snapshot's stays
        assert agent.orchestrator.current.settings.log.level == "debug"
        assert connected(agent) == {"n2": NodeState.CONNECTED} and two.sessions[0].closed is None

        await agent.apply_snapshot(received({"n2": two.port}, {}))  # no service left
        await two.sessions[0].wait_closed()
        await until(lambda: connected(agent) == {})


async def test_a_refused_claim_backs_off_as_usual_not_to_the_cap(pki: Pki) -> None:
    """A node that does not know the service yet (its snapshot and ours race) refuses the
    claim, not the identity: the next attempt comes soon, not after the cap."""
    delays: list[float] = []
    done = asyncio.Event()

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) >= 3:
            done.set()
        await asyncio.sleep(0)

    async with FakeIngress(pki.ingress, allowed=set()) as refusing:
        sup = Supervisor(
            lambda: options(pki.agent, heartbeat_interval=0.3),
            refuse,
            BackoffPolicy(initial=1.0, cap=8.0, multiplier=2.0),
            connect=fast_connect,
            sleep=sleep,
            rand=lambda: 0.5,
        )
        sup.apply([node(refusing.port, "n1")])
        async with asyncio.timeout(20), asyncio.TaskGroup() as group:
            group.create_task(sup.run())
            await done.wait()
            await sup.drain("done", grace=0.1)
    assert delays[:3] == [0.5, 1.0, 2.0]  # a certificate refusal: [4.0, 4.0, 4.0]


async def test_another_nodes_certificate_at_a_nodes_address_is_refused(
    agent: EdgeApp, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """n2's certificate (same CA, same 127.0.0.1 address SAN) served at n1's address: the
    TLS checks pass, the identity check does not; n2's own connection is left alone."""
    caplog.set_level(logging.ERROR, logger="kokoa.edge.supervisor")
    web = {"web": "http://127.0.0.1:9"}
    n2_files = node_tls(pki.authority, IDS["n2"], ORG)
    async with (
        FakeIngress(n2_files, name="n2") as impostor,
        FakeIngress(n2_files, name="n2") as two,
    ):
        await agent.apply_snapshot(received({"n1": impostor.port, "n2": two.port}, web))
        await two.session()

        def n1_error() -> str:
            [n1] = [s for s in agent.supervisor.status() if s.name == "n1"]
            return n1.last_error or ""

        await until(lambda: n1_error().startswith("WrongNode") and len(caplog.records) >= 2)
        assert f"ingress {IDS['n2']!r} of org {ORG}" in n1_error()
        assert f"not urn:kokoa:org:{ORG}:ingress:{IDS['n1']}" in n1_error()
        [record, *_] = caplog.records
        assert record.getMessage() == "refusing the ingress node: its certificate is another's"
        assert record.__dict__["node"] == "n1"
        assert impostor.sessions == []  # closed before any HELLO: it learnt nothing
        assert connected(agent)["n2"] is NodeState.CONNECTED
        assert len(two.sessions) == 1 and two.sessions[0].closed is None

        async with FakeIngress(node_tls(pki.authority, IDS["n1"], ORG), name="n1") as one:
            await agent.apply_snapshot(received({"n1": one.port, "n2": two.port}, web))
            await one.session()  # the real n1 at its (new) address is accepted
            await until(lambda: connected(agent)["n1"] is NodeState.CONNECTED)
        assert two.sessions[0].closed is None and len(two.sessions) == 1
