"""Failures of whole processes: an ingress node dies under load, an agent replica dies, and
agents that must not be accepted (foreign CA, foreign service)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common import pki
from common.localrun import LOOPBACK, free_port
from tests.e2e.harness import ServiceSpec, Topology, get

HOST = "app.test"


@pytest.fixture
def topo(tmp_path: Path) -> Iterator[Topology]:
    origin_port = free_port()
    topology = Topology(
        tmp_path,
        services=[
            ServiceSpec(
                "app", (HOST,), f"http://{LOOPBACK}:{origin_port}", agents=("agent-1", "agent-2")
            ),
            ServiceSpec(
                "other", ("other.test",), f"http://{LOOPBACK}:{origin_port}", agents=("agent-9",)
            ),
        ],
    )
    try:
        topology.start_demo_origin(origin_port)
        for name in ("ingress-1", "ingress-2"):
            topology.start_ingress(topology.add_node(name))
        yield topology
    finally:
        topology.stop_all()


class Load:
    """A bounded request loop against one node, in a thread, recording every outcome."""

    def __init__(self, base: str, *, max_requests: int = 5000, max_seconds: float = 60.0) -> None:
        self.base = base
        self.ok = 0
        self.failed: list[str] = []
        self.agents: set[str] = set()
        self._stop = threading.Event()
        self._limits = (max_requests, max_seconds)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self._limits[1]
        for _ in range(self._limits[0]):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            try:
                status, body = get(self.base + "/headers", headers={"Host": HOST}, timeout=10)
            except OSError as exc:
                self.failed.append(repr(exc))
                continue
            if status == 200:
                self.ok += 1
            else:
                self.failed.append(f"{status}: {body[:200]!r}")

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def finish(self, timeout: float = 90.0) -> None:
        """Wait until the loop has run out of requests or time (it is bounded by both)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the load loop did not finish"


def test_killing_one_ingress_node_leaves_the_other_serving(topo: Topology) -> None:
    topo.write_agent("agent-1", services=["app"])
    topo.start_agent("agent-1")
    topo.wait_agents("app", 1)
    first, second = topo.nodes
    with Load(second.base) as load:
        time.sleep(1.0)
        topo.stop(first.name, signal.SIGKILL)
        time.sleep(2.0)
        ok_during = load.ok
    assert load.failed == []
    assert ok_during > 20
    # Restart it on the same ports: the agent is back on it within its backoff cap (1 s),
    # plus the time to notice the old connection died and to start the process.
    topo.start_ingress(first)
    started = time.monotonic()
    topo.wait_agents("app", 1, nodes=[first], timeout=15)
    assert time.monotonic() - started < 15
    assert get(first.base + "/", headers={"Host": HOST})[0] == 200


def test_killing_one_agent_replica_moves_traffic(topo: Topology) -> None:
    for name in ("agent-1", "agent-2"):
        topo.write_agent(name, services=["app"])
        topo.start_agent(name)
    topo.wait_agents("app", 2)
    node = topo.nodes[0]
    topo.stop("agent-1", signal.SIGKILL)
    # The ingress notices (heartbeat/idle timeout) and stops choosing the dead replica.
    topo.wait_agents("app", 1, nodes=[node], timeout=15)
    with Load(node.base, max_requests=200) as load:
        load.finish()
    assert load.failed == []
    assert load.ok == 200


def test_agent_with_certificate_from_another_ca_is_refused(topo: Topology, tmp_path: Path) -> None:
    foreign_key, foreign_ca = pki.create_ca("Foreign CA", days=1)
    key, cert = pki.issue_certificate(foreign_key, foreign_ca, role="agent", name="agent-1", days=1)
    assert key is not None
    pki.write_key(topo.root / "pki" / "intruder.key", key)
    pki.write_certificate(topo.root / "pki" / "intruder.crt", cert)
    topo.write_agent("agent-1", services=["app"], cert_name="intruder", issue=False)
    for node in topo.nodes:
        topo.wait_ready(node)
    topo.start_agent("agent-1")
    time.sleep(3.0)
    topo.assert_alive()
    for node in topo.nodes:
        assert topo.agents_connected(node, "app") == 0
        status, _ = get(node.base + "/", headers={"Host": HOST})
        assert status == 502


def test_agent_cannot_serve_a_service_that_is_not_its_own(topo: Topology) -> None:
    # agent-1 may serve "app" only; it also claims "other" (allowed only for agent-9).
    topo.write_agent("agent-1", services=["app", "other"])
    topo.start_agent("agent-1")
    topo.wait_agents("app", 1)
    for node in topo.nodes:
        assert topo.agents_connected(node, "other") == 0
        assert get(node.base + "/", headers={"Host": "other.test"})[0] == 502
        assert get(node.base + "/", headers={"Host": HOST})[0] == 200


def test_sigterm_stops_every_process_cleanly(topo: Topology) -> None:
    topo.write_agent("agent-1", services=["app"])
    topo.start_agent("agent-1")
    topo.wait_agents("app", 1)
    assert topo.stop("agent-1") == 0
    for node in list(topo.nodes):
        assert topo.stop(node.name) == 0
