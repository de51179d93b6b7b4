"""Public TLS from the control plane, end to end: a real control plane (HTTPS), an enrolled
ingress node whose file lists no HTTPS certificate and an enrolled agent, as processes on
loopback. A certificate uploaded through the API is presented by the node to an HTTPS client
(SNI, the test's CA as the only trust root) that gets the origin's answer through the tunnel;
a replaced one is presented instead; a deleted one no more; the node's stored snapshot, which
holds the key, is 0600. The times from the API call to the handshake are logged (see them with
`-o log_cli=true`)."""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from common.localrun import LOOPBACK, free_port
from tests.control.certificates_support import TestCA
from tests.control.enroll_support import Owner
from tests.control.helpers import check
from tests.e2e.control_plane import ControlPlane, control_plane
from tests.e2e.harness import Node, Topology

pytestmark = pytest.mark.e2e
log = logging.getLogger(__name__)
HOST = "shop.test"
BOUND = 2.0  # seconds from the API's answer to the new certificate in a handshake


@dataclass
class Setup:
    cp: ControlPlane
    boss: Owner
    topo: Topology
    node: Node
    https: int

    def start(self, name: str, kind: str, row_id: str) -> None:
        token = str(self.boss.token("ingress" if kind == "ingress" else "agent", row_id)["token"])
        control = ["--control", self.cp.url, "--control-ca", str(self.cp.ca_file)]
        self.topo.start(name, kind, "run", "--config", f"{name}.yaml", *control, "--token", token)

    def exchange(self, trust: TestCA) -> tuple[x509.Certificate, bytes]:
        """One HTTPS request for HOST: the certificate presented, and the response."""
        context = ssl.create_default_context(cadata=trust.pem)
        with (
            socket.create_connection((LOOPBACK, self.https), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=HOST) as tls,
        ):
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            chunks = []
            while chunk := tls.recv(65536):
                chunks.append(chunk)
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der), b"".join(chunks)

    def presented_within(self, trust: TestCA, serial: int, timeout: float = 10.0) -> float:
        """Seconds until a handshake presents the certificate `serial` (polled every 20 ms)."""
        started = time.monotonic()
        while True:
            self.topo.assert_alive()
            try:
                if self.exchange(trust)[0].serial_number == serial:
                    return time.monotonic() - started
            except OSError:  # refused, or a certificate the client does not trust yet
                pass
            assert time.monotonic() - started < timeout, f"certificate {serial:x} not served"
            time.sleep(0.02)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    with control_plane(tmp_path / "control", channel_heartbeat_interval=1.0) as cp:
        boss = cp.owner()
        topo = Topology(tmp_path / "run", services=[])
        try:
            node, https, origin = Node("ingress-1"), free_port(), free_port()
            node_row = boss.node(f"{LOOPBACK}:{node.tunnel}")
            agent_row = boss.agent()
            service = {
                "name": "shop",
                "hostname": HOST,
                "origin": f"http://{LOOPBACK}:{origin}",
                "agent_ids": [agent_row["id"]],
            }
            check(boss.client.post(f"{boss.base}/services", json=service), 201)
            ingress = {
                "tunnel": {"listen": f"{LOOPBACK}:{node.tunnel}"},
                "https": {"listen": f"{LOOPBACK}:{https}"},  # no certificate of its own
                "admin": {"listen": f"{LOOPBACK}:{node.admin}"},
                "limits": {"heartbeat_interval": 1.0},
                "drain_grace": 1,
            }
            agent = {"heartbeat_interval": 1.0, "backoff": {"initial": 0.1, "max": 1.0}}
            (topo.root / "ingress-1.yaml").write_text(yaml.safe_dump(ingress))
            (topo.root / "agent-1.yaml").write_text(yaml.safe_dump(agent))
            topo.start_demo_origin(origin)
            found = Setup(cp, boss, topo, node, https)
            found.start("ingress-1", "ingress", node_row["id"])
            found.start("agent-1", "edge", agent_row["id"])
            topo.wait_ready(node)
            topo.wait_agents("shop", 1, [node])
            yield found
        finally:
            topo.stop_all()
            boss.client.close()


def test_an_uploaded_certificate_is_served_replaced_and_removed(setup: Setup) -> None:
    boss, url = setup.boss, f"{setup.boss.base}/certificates"
    ca = TestCA(intermediate=True)
    first = ca.issue(HOST)
    started = time.monotonic()
    made = check(boss.client.post(url, json=first.body()), 201)
    uploaded = time.monotonic() - started + setup.presented_within(ca, first.cert.serial_number)
    cert, response = setup.exchange(ca)  # verified: chain to the test's root, name HOST
    assert cert == first.cert
    assert response.startswith(b"HTTP/1.1 200 "), response[:200]
    assert b"shop.test" in response  # the demo origin echoes the host it was asked for

    renewed_ca = TestCA("Another Root")
    renewed = renewed_ca.issue(HOST, f"www.{HOST}", kind="rsa")
    started = time.monotonic()
    check(boss.client.put(f"{url}/{made['id']}", json=renewed.body()), 200)
    replaced = time.monotonic() - started
    replaced += setup.presented_within(renewed_ca, renewed.cert.serial_number)
    assert setup.exchange(renewed_ca)[0] == renewed.cert
    log.warning(
        "certificate uploaded → served %.2f s; replaced → served %.2f s", uploaded, replaced
    )
    assert uploaded < BOUND and replaced < BOUND, (uploaded, replaced)

    stored = setup.topo.root / "ingress-1.state" / "snapshot.json"
    assert stored.stat().st_mode & 0o777 == 0o600
    assert stored.parent.stat().st_mode & 0o777 == 0o700
    assert renewed.key.splitlines()[1] in stored.read_text()  # the key, as the doc says

    check(boss.client.delete(f"{url}/{made['id']}"), 204)
    deadline = time.monotonic() + 10
    while True:  # nothing left to serve for HOST: the handshake is refused
        try:
            setup.exchange(renewed_ca)
        except OSError:
            break
        assert time.monotonic() < deadline, "the deleted certificate is still served"
        time.sleep(0.02)
