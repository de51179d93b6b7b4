"""Ingress nodes and agents enrolled by token against a real control plane (HTTPS), then
serving through the tunnel as real processes: first start with a token, later starts without,
enrolled again with new tokens in the same state directories after a disable and enable,
certificates renewed in the background without dropping live connections, and the starts that
must fail (a used token, a control plane we do not trust, options without --control)."""

from __future__ import annotations

import http.client
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from common import pki
from common.localrun import LOOPBACK, free_port, kokoa_command
from tests.control.enroll_support import Owner
from tests.e2e.control_plane import ControlPlane, control_plane
from tests.e2e.harness import Node, Topology, get, wait_for

pytestmark = pytest.mark.e2e
HOST = "demo.test"


@dataclass
class Enrolled:
    """A control plane with one organisation, one ingress node and one agent in it."""

    cp: ControlPlane
    boss: Owner
    topo: Topology
    node: Node
    node_row: dict[str, Any]
    agent_row: dict[str, Any]
    origin_port: int = field(default_factory=free_port)

    def control_args(self, token: str | None = None) -> list[str]:
        args = ["--control", self.cp.url, "--control-ca", str(self.cp.ca_file)]
        return [*args, "--token", token] if token else args

    def start_ingress(self, token: str | None = None) -> None:
        args = ["ingress", "run", "--config", "ingress-1.yaml", *self.control_args(token)]
        self.topo.start("ingress-1", *args)

    def start_agent(self, token: str | None = None) -> None:
        args = ["edge", "run", "--config", "agent-1.yaml", *self.control_args(token)]
        self.topo.start("agent-1", *args)

    def token(self, kind: str) -> str:
        row = self.node_row if kind == "ingress" else self.agent_row
        return str(self.boss.token(kind, row["id"])["token"])

    def wait_serving(self) -> None:
        self.topo.wait_ready(self.node)
        self.topo.wait_agents("demo", 1, [self.node])
        status, body = get(f"{self.node.base}/", headers={"Host": HOST})
        assert status == 200, body[:300]

    def state(self, name: str) -> Path:
        return self.topo.root / f"{name}.state"

    def serial(self, name: str) -> int:
        return pki.load_certificates(self.state(name) / "tunnel.crt")[0].serial_number


@pytest.fixture
def enrolled(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Enrolled]:
    overrides = getattr(request, "param", {})
    with control_plane(tmp_path / "control", **overrides) as cp:
        boss = cp.owner()
        topo = Topology(tmp_path / "run", services=[])
        node = Node("ingress-1")
        setup = Enrolled(cp, boss, topo, node, boss.node(f"{LOOPBACK}:{node.tunnel}"), boss.agent())
        _write_configs(setup)
        try:
            topo.start_demo_origin(setup.origin_port)
            yield setup
        finally:
            topo.stop_all()
            boss.client.close()


def _write_configs(setup: Enrolled) -> None:
    """The files carry no identity, no certificate, no services and no nodes: enrollment
    provides the first two, the control plane's snapshots the others (a service made here
    through the API)."""
    node = setup.node
    body = {
        "name": "demo",
        "hostname": HOST,
        "origin": f"http://{LOOPBACK}:{setup.origin_port}",
        "agent_ids": [setup.agent_row["id"]],
    }
    setup.boss.client.post(f"{setup.boss.base}/services", json=body).raise_for_status()
    ingress = {
        "tunnel": {"listen": f"{LOOPBACK}:{node.tunnel}"},
        "http": {"listen": f"{LOOPBACK}:{node.http}"},
        "admin": {"listen": f"{LOOPBACK}:{node.admin}"},
        "limits": {"heartbeat_interval": 1.0},
    }
    agent = {
        "heartbeat_interval": 1.0,
        "backoff": {"initial": 0.1, "max": 1.0},
        "drain_grace": 2,
    }
    root = setup.topo.root
    (root / "ingress-1.yaml").write_text(yaml.safe_dump(ingress, sort_keys=False))
    (root / "agent-1.yaml").write_text(yaml.safe_dump(agent, sort_keys=False))


def test_enrolled_by_token_they_tunnel_and_restart_without_one(enrolled: Enrolled) -> None:
    enrolled.start_ingress(enrolled.token("ingress"))
    enrolled.start_agent(enrolled.token("agent"))
    enrolled.wait_serving()

    for name, row, role in (
        ("ingress-1", enrolled.node_row, "ingress"),
        ("agent-1", enrolled.agent_row, "agent"),
    ):
        state = enrolled.state(name)
        assert state.stat().st_mode & 0o777 == 0o700
        assert (state / "tunnel.key").stat().st_mode & 0o777 == 0o600
        cert = pki.load_certificates(state / "tunnel.crt")[0]
        identity = pki.identity_from_certificate(cert)
        assert (identity.role, identity.name, identity.org) == (
            role,
            row["id"],
            enrolled.boss.org_id,
        )
        assert cert.public_key() == pki.load_private_key(state / "tunnel.key").public_key()
    assert len(enrolled.boss.audit("enrollment.redeem")) == 2

    enrolled.topo.stop("agent-1")
    enrolled.topo.stop("ingress-1")
    enrolled.start_ingress()
    enrolled.start_agent()
    enrolled.wait_serving()
    assert len(enrolled.boss.audit("enrollment.redeem")) == 2  # no token was needed


def test_a_new_token_enrolls_again_in_the_same_state_directory(enrolled: Enrolled) -> None:
    """Disabled (their certificates revoked) and enabled again, a node and an agent started
    with new tokens over their old state directories get new certificates and serve; without
    that, the revoked certificates would be kept and the node would refuse the agent."""
    enrolled.start_ingress(enrolled.token("ingress"))
    enrolled.start_agent(enrolled.token("agent"))
    enrolled.wait_serving()
    names = ("ingress-1", "agent-1")
    revoked = {name: enrolled.serial(name) for name in names}
    boss = enrolled.boss
    for path in (f"nodes/{enrolled.node_row['id']}", f"agents/{enrolled.agent_row['id']}"):
        boss.client.post(f"{boss.base}/{path}/disable").raise_for_status()
    enrolled.topo.stop("agent-1")
    enrolled.topo.stop("ingress-1")
    for path in (f"nodes/{enrolled.node_row['id']}", f"agents/{enrolled.agent_row['id']}"):
        boss.client.post(f"{boss.base}/{path}/enable").raise_for_status()

    enrolled.start_ingress(enrolled.token("ingress"))
    enrolled.start_agent(enrolled.token("agent"))
    enrolled.wait_serving()
    assert all(enrolled.serial(name) != revoked[name] for name in names)
    assert len(boss.audit("enrollment.redeem")) == 4


def _kokoa(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        kokoa_command(*args), cwd=root, capture_output=True, text=True, timeout=60
    )


def test_starts_that_must_fail(enrolled: Enrolled, tmp_path: Path) -> None:
    root = enrolled.topo.root
    token = enrolled.token("agent")
    agent = ["edge", "run", "--config", "agent-1.yaml"]
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(
        pki.create_ca("not the control plane's CA")[1].public_bytes(serialization.Encoding.PEM)
    )
    untrusted = _kokoa(
        root, *agent, "--control", enrolled.cp.url, "--token", token, "--control-ca", str(other_ca)
    )
    assert untrusted.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
    system_store = _kokoa(root, *agent, "--control", enrolled.cp.url, "--token", token)
    assert system_store.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in system_store.stderr
    plain = _kokoa(root, *agent, "--control", "http://192.0.2.1:8443", "--token", token)
    assert plain.returncode == 1
    assert "plain http is accepted only for a loopback address" in plain.stderr
    without_control = _kokoa(root, *agent, "--token", token)
    assert without_control.returncode == 2
    not_enrolled = _kokoa(root, *agent, *enrolled.control_args())
    assert not_enrolled.returncode == 1
    assert "not enrolled yet" in not_enrolled.stderr

    enrolled.start_agent(token)  # the token is still unused: all the above failed before it
    wait_for(lambda: enrolled.state("agent-1").joinpath("tunnel.crt").exists(), "enrollment")
    again = _kokoa(
        root, *agent, *enrolled.control_args(token), "--state-dir", str(tmp_path / "elsewhere")
    )
    assert again.returncode == 1
    assert "refused (401)" in again.stderr
    clash = _kokoa(
        root, "ingress", "run", "--config", "ingress-1.yaml", *enrolled.control_args(),
        "--state-dir", str(enrolled.state("agent-1")),
    )  # fmt: skip
    assert clash.returncode == 1
    assert "holds the enrollment of an edge agent" in clash.stderr


class EventReader(threading.Thread):
    """Reads a Server-Sent Events response through the tunnel, counting events."""

    def __init__(self, node: Node, count: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.path = f"/sse?count={count}&interval={interval}"
        self.node = node
        self.events = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            conn = http.client.HTTPConnection(LOOPBACK, self.node.http, timeout=30)
            conn.request("GET", self.path, headers={"Host": HOST})
            response = conn.getresponse()
            assert response.status == 200
            while line := response.readline():
                if line.startswith(b"data:"):
                    self.events += 1
            conn.close()
        except BaseException as exc:
            self.error = exc


@pytest.mark.parametrize(
    "enrolled", [{"certificate_lifetime": timedelta(seconds=24)}], indirect=True
)
def test_certificates_renew_in_the_background_and_live_connections_stay(
    enrolled: Enrolled,
) -> None:
    enrolled.start_ingress(enrolled.token("ingress"))
    enrolled.start_agent(enrolled.token("agent"))
    enrolled.wait_serving()
    first = {name: enrolled.serial(name) for name in ("ingress-1", "agent-1")}
    expiry = max(
        pki.load_certificates(enrolled.state(name) / "tunnel.crt")[0].not_valid_after_utc
        for name in first
    )
    stream = EventReader(enrolled.node, count=70, interval=0.5)  # 35 s on one connection
    stream.start()

    def renewed() -> bool:
        return all(enrolled.serial(name) != first[name] for name in first)

    wait_for(renewed, "both certificates renewed", timeout=30, topology=enrolled.topo)
    while time.time() < expiry.timestamp() + 1:  # the first certificates are now expired
        time.sleep(0.2)
    enrolled.topo.assert_alive()
    events_then = stream.events
    stream.join(timeout=40)
    assert stream.error is None, stream.error
    assert stream.events == 70 and events_then < 70  # the same connection carried on

    for name in first:
        assert "tunnel certificate renewed" in enrolled.topo.log(name)
    enrolled.topo.stop("agent-1")  # a new tunnel: both sides present renewed certificates
    enrolled.start_agent()
    enrolled.wait_serving()
    assert len(enrolled.boss.audit("certificate.renew")) >= 2
