"""An edge agent in control mode (`kokoa edge run --control URL`): the control plane's
snapshots decide which ingress nodes it dials and which services (origins) it serves; its file
decides the rest (limits, backoff, logs; docs/enrollment.md).

- `settings_for(settings, config)`: the file's settings with the snapshot's nodes and services,
  validated as a file's would be; anything invalid refuses the whole snapshot
  (`SnapshotRejected` → nack; the agent keeps what it runs). An agent with no service dials no
  node: every node would refuse a HELLO that claims nothing.
- `report(…)`: the agent's part of a status message: per-service counters, the nodes it is
  connected to with the round-trip time of their heartbeats, and nodes failing repeatedly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from common import pki
from common.channel import AgentConfig, SnapshotRejected
from common.channel.status import PeerConnection, ServiceCounters, StatusParts
from common.config import ConfigError
from edge.counters import Counters
from edge.settings import ControlledEdgeSettings
from edge.supervisor import NodeState, NodeStatus

FAILING_AFTER = 3  # failed attempts in a row before a node counts as a problem


def ingress_entries(config: AgentConfig) -> list[dict[str, object]]:
    """The snapshot's nodes as the `ingress:` entries of a configuration file, each with the
    identity its certificate must carry: the control plane issues a node's certificate for
    `urn:kokoa:org:<org id>:ingress:<node id>` (control/services/certificates.py)."""
    org = str(config.agent.org_id)
    return [
        {
            "name": node.name,
            "address": node.address,
            "server_name": node.server_name,
            "identity": pki.identity_uri("ingress", str(node.id), org),
        }
        for node in config.ingress
    ]


def service_entries(config: AgentConfig) -> list[dict[str, object]]:
    """The snapshot's services as the `services:` entries of a configuration file."""
    return [
        {
            "name": service.name,
            "origin": service.origin,
            "host_header": service.host_header,
            "tls_verify": service.tls_verify,
            "connect_timeout": service.connect_timeout,
            "read_timeout": service.read_timeout,
        }
        for service in config.services
    ]


def settings_for(settings: ControlledEdgeSettings, config: AgentConfig) -> ControlledEdgeSettings:
    """`settings` with the nodes and services of `config`.

    Raises:
        SnapshotRejected: an entry does not validate (each problem named).
    """
    nodes = ingress_entries(config) if config.services else []
    try:
        return settings.with_control(nodes, service_entries(config))
    except ConfigError as exc:
        raise SnapshotRejected("; ".join(f"{f}: {r}" for f, r in exc.problems)) from None


def report(
    nodes: Iterable[NodeStatus],
    node_ids: Mapping[str, str],
    counters: Counters,
    services: Sequence[str],
) -> StatusParts:
    """Counters per service, the connected nodes (by their id in the control plane), and a
    problem for each node that failed `FAILING_AFTER` attempts in a row."""
    stats = counters.stats()
    per_service = []
    for name in sorted(set(services) | set(stats)):
        s = stats.get(name)
        if s is None:
            per_service.append(ServiceCounters(name))
        else:
            per_service.append(
                ServiceCounters(name, s.requests, s.errors, s.bytes_in, s.bytes_out, s.in_flight)
            )
    connections, problems = [], []
    for node in nodes:
        node_id = node_ids.get(node.name)
        live = node.state in (NodeState.CONNECTED, NodeState.DRAINING)
        if live and node.connected_since is not None and node_id is not None:
            connections.append(
                PeerConnection("ingress", node_id, node.name, node.connected_since, node.rtt)
            )
        elif node.attempt >= FAILING_AFTER and node.last_error:
            problems.append(f"ingress {node.name}: {node.last_error}")
    return StatusParts(per_service, connections, problems)
