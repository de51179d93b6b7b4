"""Where the processes of `kokoa local up` live and listen."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from common.localrun_procs import LOOPBACK, free_port, port_or_free

DEMO_HOST = "demo.localhost"


@dataclass(frozen=True, slots=True)
class NodePorts:
    name: str
    tunnel: int
    http: int
    admin: int


@dataclass(frozen=True, slots=True)
class Layout:
    """Where everything lives and listens."""

    root: Path
    origin_port: int
    nodes: tuple[NodePorts, ...]
    agent: str = "agent-1"
    service: str = "demo"
    host: str = DEMO_HOST
    control_port: int = 0  # the control plane's HTTP port; 0: none (standalone)

    @classmethod
    def choose(cls, root: Path, *, nodes: int = 2, fixed: bool = True) -> Layout:
        """Default ports when free (8080, 8081…), otherwise any free ones."""
        pick = port_or_free if fixed else (lambda _p, k=socket.SOCK_STREAM: free_port(k))
        node_ports = tuple(
            NodePorts(
                name=f"ingress-{i + 1}",
                tunnel=pick(7844 + i, socket.SOCK_DGRAM),
                http=pick(8080 + i),
                admin=pick(9901 + i),
            )
            for i in range(nodes)
        )
        return cls(root=root, origin_port=pick(8000), nodes=node_ports, control_port=pick(8090))

    def public_url(self, node: NodePorts) -> str:
        return f"http://{self.host}:{node.http}/"

    def metrics_url(self, node: NodePorts) -> str:
        return f"http://{LOOPBACK}:{node.admin}/metrics"

    @property
    def origin(self) -> str:
        return f"http://{LOOPBACK}:{self.origin_port}"
