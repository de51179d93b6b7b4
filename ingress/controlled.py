"""An ingress node in control mode (`kokoa ingress run --control URL`): the control plane's
snapshots decide its services, the agent certificates it refuses and HTTPS certificates it
serves (with the file's); its file decides the rest (listeners, limits, logs;
docs/enrollment.md).

- `build(settings, config)`: the node's next `Snapshot` — the file's settings with the
  snapshot's services, validated exactly as a file's would be, its revocations and its
  certificates. Anything invalid (a bad host name, two services on one route, a serial that is
  not hex) refuses the whole snapshot with `SnapshotRejected`: the control plane gets a nack,
  the node keeps what it runs.
- `load_certificates(snapshot, reuse, scratch)`: the snapshot's HTTPS certificates loaded for
  SNI (those already in `reuse` taken from it, the others through files in `scratch`); one
  that does not load (not PEM, no DNS name, a key that does not match) refuses the whole
  snapshot the same way.
- `report(…)`: the node's part of a status message: per-service counters and the agents
  connected now.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path

from common.channel import IngressConfig, SnapshotRejected
from common.channel.status import PeerConnection, ServiceCounters, StatusParts
from common.config import ConfigError
from ingress.control_stream import AgentSession
from ingress.metrics import IngressMetrics
from ingress.node import Revocations, Snapshot
from ingress.public.tls import Issued, Loaded, load_issued
from ingress.settings import IngressSettings, with_services


def service_entries(config: IngressConfig) -> list[dict[str, object]]:
    """The snapshot's services as the `services:` entries of a configuration file."""
    return [
        {
            "name": service.name,
            "hosts": list(service.hosts),
            "path_prefix": service.path_prefix,
            "strip_prefix": service.strip_prefix,
            "agents": list(service.agents),
        }
        for service in config.services
    ]


def revocations(config: IngressConfig) -> Revocations:
    """The agent certificates `config` revokes.

    Raises:
        SnapshotRejected: a serial is not hexadecimal.
    """
    revoked = config.revoked
    return Revocations(revoked.serial_numbers(), frozenset(revoked.identities))


def certificates(config: IngressConfig) -> tuple[Issued, ...]:
    """The HTTPS certificates of `config`, each labelled as a nack names it."""
    return tuple(
        Issued(f"certificates.{index} ({item.id})", item.chain, item.key)
        for index, item in enumerate(config.certificates)
    )


def load_certificates(
    snapshot: Snapshot, reuse: Loaded | None = None, scratch: Path | None = None
) -> Loaded:
    """The snapshot's HTTPS certificates, loaded for the listener's SNI table; those with the
    same chain and key as one of `reuse` use its context, the others go through `scratch`
    (the node's: `tls-tmp` in its state directory; None: the system's temporary directory).
    Blocking (~1.5 ms a certificate loaded): the node runs it in a worker thread.

    Raises:
        SnapshotRejected: one is not a PEM certificate with DNS names, or its key does not
            load or match it (named by its place and id).
    """
    try:
        return load_issued(snapshot.certificates, scratch=scratch, reuse=reuse or Loaded())
    except (ValueError, OSError) as exc:  # ssl.SSLError is an OSError
        raise SnapshotRejected(str(exc)) from None


def build(settings: IngressSettings, config: IngressConfig) -> Snapshot:
    """`settings` with the services, revocations and certificates of `config`, ready to swap
    in (the certificates still to load: `load_certificates`).

    Raises:
        SnapshotRejected: the services do not validate (each problem named).
    """
    try:
        new = with_services(settings, service_entries(config))
        return Snapshot.build(new, revocations(config), certificates(config))
    except ConfigError as exc:
        raise SnapshotRejected("; ".join(f"{f}: {r}" for f, r in exc.problems)) from None
    except ValueError as exc:  # two services claim one host and path prefix
        raise SnapshotRejected(str(exc)) from None


def report(
    metrics: IngressMetrics, sessions: Iterable[AgentSession], services: Iterable[str]
) -> StatusParts:
    """Counters of every configured service (and of any other that had requests), and the
    agents connected now (those enrolled with the control plane: ids are uuids)."""
    counted = {service.name: service for service in metrics.services()}
    counters = []
    for name in sorted(set(services) | set(counted)):
        m = counted.get(name)
        if m is None:
            counters.append(ServiceCounters(name))
        else:
            counters.append(
                ServiceCounters(name, m.requests, m.errors, m.received, m.sent, m.active)
            )
    connections = []
    for session in sessions:
        since = session.connected_at
        if session.agent is None or since is None or not _is_uuid(session.peer.name):
            continue
        rtt = session.conn.rtt
        connections.append(PeerConnection("agent", session.peer.name, "", since, rtt))
    return StatusParts(counters, connections)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
