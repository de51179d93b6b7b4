"""Whole topologies as real processes on loopback: PKI, config files, start/stop by PID.

Every process is a real `kokoa …` child (python -m common.cli) with its own config file; the
test process only plays the external client and, where a test needs one, a recording origin.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common import pki
from common.localrun import LOOPBACK, free_port, kokoa_command


@dataclass
class Pki:
    """A CA in `root` and certificates issued on demand."""

    root: Path
    ca_key: Any = None
    ca_cert: Any = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.ca_key, self.ca_cert = pki.create_ca("Kokoa test CA", days=2)
        pki.write_key(self.root / "ca.key", self.ca_key)
        pki.write_certificate(self.root / "ca.crt", self.ca_cert)

    def issue(self, role: str, name: str) -> tuple[Path, Path]:
        key, cert = pki.issue_certificate(
            self.ca_key,
            self.ca_cert,
            role=role,  # type: ignore[arg-type]
            name=name,
            ip_addresses=[LOOPBACK] if role == "ingress" else [],
            days=1,
        )
        assert key is not None
        pki.write_key(self.root / f"{name}.key", key)
        pki.write_certificate(self.root / f"{name}.crt", cert)
        return self.root / f"{name}.crt", self.root / f"{name}.key"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    hosts: tuple[str, ...]
    origin: str
    agents: tuple[str, ...] = ("agent-1",)
    path_prefix: str = "/"
    strip_prefix: bool = False


@dataclass
class Node:
    name: str
    tunnel: int = field(default_factory=lambda: free_port(socket.SOCK_DGRAM))
    http: int = field(default_factory=free_port)
    admin: int = field(default_factory=free_port)

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self.http}"


@dataclass
class Topology:
    """Config writer and process owner for one test topology."""

    root: Path
    services: list[ServiceSpec]
    nodes: list[Node] = field(default_factory=list)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    pki: Pki = field(init=False)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        self.pki = Pki(self.root / "pki")

    # ---- config files -------------------------------------------------------------------

    def add_node(self, name: str) -> Node:
        node = Node(name)
        self.pki.issue("ingress", name)
        self.nodes.append(node)
        self.write_ingress(node)
        return node

    def write_ingress(self, node: Node, **extra: Any) -> Path:
        config: dict[str, Any] = {
            "node": node.name,
            "tunnel": {
                "listen": f"{LOOPBACK}:{node.tunnel}",
                "cert": f"pki/{node.name}.crt",
                "key": f"pki/{node.name}.key",
                "ca": "pki/ca.crt",
            },
            "http": {"listen": f"{LOOPBACK}:{node.http}"},
            "admin": {"listen": f"{LOOPBACK}:{node.admin}"},
            "services": [
                {
                    "name": s.name,
                    "hosts": list(s.hosts),
                    "path_prefix": s.path_prefix,
                    "strip_prefix": s.strip_prefix,
                    "agents": list(s.agents),
                }
                for s in self.services
            ],
            "limits": {"heartbeat_interval": 1.0},
            "log": {"level": "info", "format": "json"},
        }
        config.update(extra)
        path = self.root / f"{node.name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def write_agent(
        self,
        name: str,
        *,
        services: Sequence[str] | None = None,
        cert_name: str | None = None,
        ca: str = "pki/ca.crt",
        issue: bool = True,
    ) -> Path:
        if issue:
            self.pki.issue("agent", cert_name or name)
        wanted = [s for s in self.services if services is None or s.name in services]
        config = {
            "agent": name,
            "tls": {
                "cert": f"pki/{cert_name or name}.crt",
                "key": f"pki/{cert_name or name}.key",
                "ca": ca,
            },
            "ingress": [
                {
                    "name": n.name,
                    "address": f"{LOOPBACK}:{n.tunnel}",
                    "server_name": LOOPBACK,
                    "identity": pki.identity_uri("ingress", n.name),
                }
                for n in self.nodes
            ],
            "services": [{"name": s.name, "origin": s.origin} for s in wanted],
            "heartbeat_interval": 1.0,
            "backoff": {"initial": 0.1, "max": 1.0},
            "drain_grace": 5,
            "log": {"level": "info", "format": "json"},
        }
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    # ---- processes ----------------------------------------------------------------------

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.root / "logs" / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            kokoa_command(*args), stdout=log, stderr=subprocess.STDOUT, cwd=self.root
        )
        log.close()
        self.procs[name] = proc
        return proc

    def start_ingress(self, node: Node) -> subprocess.Popen[bytes]:
        return self.start(node.name, "ingress", "run", "--config", f"{node.name}.yaml")

    def start_agent(self, name: str) -> subprocess.Popen[bytes]:
        return self.start(name, "edge", "run", "--config", f"{name}.yaml")

    def start_demo_origin(self, port: int) -> subprocess.Popen[bytes]:
        return self.start("origin", "demo", "origin", "--host", LOOPBACK, "--port", str(port))

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(
                f"{name} did not stop within {timeout}s after signal {sig}"
            ) from None

    def stop_all(self) -> None:
        for name in list(self.procs)[::-1]:
            try:
                self.stop(name, timeout=10)
            except AssertionError:
                pass

    def log(self, name: str) -> str:
        return (self.root / "logs" / f"{name}.log").read_text(errors="replace")

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    # ---- observing ----------------------------------------------------------------------

    def metric(self, node: Node, name: str, **labels: str) -> float:
        """Sum of a Prometheus sample on a node's admin listener matching the labels."""
        body = get(f"http://{LOOPBACK}:{node.admin}/metrics")[1].decode()
        total = 0.0
        for line in body.splitlines():
            match = re.match(rf"^{re.escape(name)}(\{{.*\}})? (\S+)$", line)
            if not match:
                continue
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(match.group(2))
        return total

    def wait_ready(self, node: Node, timeout: float = 20.0) -> None:
        """Until the node's admin listener says every listener is up (GET /readyz → 200)."""

        def ready() -> bool:
            return get(f"http://{LOOPBACK}:{node.admin}/readyz")[0] == 200

        wait_for(ready, f"{node.name} ready", timeout, self)

    def agents_connected(self, node: Node, service: str) -> int:
        return int(self.metric(node, "kokoa_ingress_agents_connected", service=service))

    def wait_agents(
        self, service: str, count: int, nodes: Sequence[Node] | None = None, timeout: float = 20.0
    ) -> None:
        for node in nodes or self.nodes:

            def connected(node: Node = node) -> bool:
                return self.agents_connected(node, service) == count

            wait_for(connected, f"{count} agent(s) for {service} on {node.name}", timeout, self)

    def assert_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise AssertionError(
                    f"{name} exited with {proc.returncode}:\n{self.log(name)[-3000:]}"
                )


def get(
    url: str, *, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for(
    probe: Callable[[], bool], what: str, timeout: float = 20.0, topology: Topology | None = None
) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if topology is not None:
            topology.assert_alive()
        try:
            if probe():
                return
        except (OSError, ValueError) as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last})")
