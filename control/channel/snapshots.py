"""What each ingress node and edge agent is told: full configs read from the database, and
their versions (docs/protocol.md, "Control channel").

Everything here reads one organisation's rows only: the node's or the agent's own. A config is
plain JSON data with every list sorted, so that its canonical form, and so its version, is the
same on every replica for the same content.

`SNAPSHOT_COLUMNS` names the columns the builders read: a committed change to one of them (or a
new or deleted row of these tables) is what wakes the channels (control/channel/changes.py).
Keep it next to the builders: a field added to a snapshot must be added there too.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from control.db.models import EdgeAgent, IngressNode, IssuedCertificate, Service, ServiceAgent

Config = dict[str, Any]
M = TypeVar("M", Service, IngressNode, EdgeAgent)

_SERVICE_COLUMNS = "org_id name hostname origin enabled connect_timeout read_timeout tls_verify"
SNAPSHOT_COLUMNS: Mapping[type, frozenset[str]] = {
    Service: frozenset(_SERVICE_COLUMNS.split()) | {"host_header"},
    ServiceAgent: frozenset({"service_id", "agent_id"}),
    IngressNode: frozenset({"org_id", "name", "tunnel_address", "labels", "enabled"}),
    EdgeAgent: frozenset({"org_id", "name", "enabled", "ingress_mode", "ingress_labels"}),
    IssuedCertificate: frozenset({"revoked_at", "not_after", "subject_id", "kind"}),
}
# A new certificate is in no snapshot (only revoked ones are); new rows of the others are.
INSERTS_MATTER: frozenset[type] = frozenset({Service, ServiceAgent, IngressNode, EdgeAgent})


def canonical(config: Config) -> bytes:
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def version(config: Config) -> str:
    """The snapshot version: SHA-256 (hex) of the canonical JSON of `config`."""
    return hashlib.sha256(canonical(config)).hexdigest()


def message(config: Config, issued_at: datetime) -> dict[str, Any]:
    return {
        "type": "snapshot",
        "version": version(config),
        "issued_at": issued_at.isoformat(),
        "config": config,
    }


def identity(org_id: uuid.UUID, agent_id: uuid.UUID) -> str:
    """How snapshots name an agent: `<org id>/<agent id>`."""
    return f"{org_id}/{agent_id}"


def may_use(agent: EdgeAgent, node: IngressNode) -> bool:
    """Whether `agent` dials `node`: every node, or those carrying all its ingress_labels."""
    if agent.ingress_mode != "labels":
        return True
    labels = node.labels or {}
    return all(labels.get(key) == value for key, value in agent.ingress_labels.items())


def host_of(address: str) -> str:
    """The host of a `host:port` address (brackets of an IPv6 literal removed)."""
    return address.rpartition(":")[0].removeprefix("[").removesuffix("]")


async def ingress_config(db: AsyncSession, node: IngressNode, now: datetime) -> Config:
    """The config of ingress `node`: its organisation's enabled services, each with the
    enabled agents that serve it and may use this node, and the agents' revocations."""
    org = node.org_id
    agents = await _enabled(db, EdgeAgent, org)
    usable = {agent.id for agent in agents if may_use(agent, node)}
    services = await _enabled(db, Service, org)
    links = await _links(db, [service.id for service in services])
    return {
        "node": {"id": str(node.id), "name": node.name, "org_id": str(org)},
        "services": [
            {
                "id": str(service.id),
                "name": service.name,
                "hosts": [service.hostname],
                "path_prefix": "/",
                "strip_prefix": False,
                "agents": sorted(
                    identity(org, agent) for agent in links.get(service.id, ()) if agent in usable
                ),
            }
            for service in services
        ],
        "revoked": await _revoked(db, org, now),
    }


async def agent_config(db: AsyncSession, agent: EdgeAgent) -> Config:
    """The config of edge `agent`: the enabled nodes it may use, and the enabled services of
    its organisation that list it, with their origins."""
    org = agent.org_id
    nodes = [node for node in await _enabled(db, IngressNode, org) if may_use(agent, node)]
    query = (
        select(Service)
        .join(ServiceAgent, ServiceAgent.service_id == Service.id)
        .where(Service.org_id == org, Service.enabled.is_(True), ServiceAgent.agent_id == agent.id)
        .order_by(Service.id)
    )
    services = (await db.execute(query)).scalars().all()
    return {
        "agent": {"id": str(agent.id), "name": agent.name, "org_id": str(org)},
        "ingress": [
            {
                "id": str(node.id),
                "name": node.name,
                "address": node.tunnel_address,
                "server_name": host_of(node.tunnel_address) or None,
            }
            for node in nodes
        ],
        "services": [
            {
                "id": str(service.id),
                "name": service.name,
                "origin": service.origin,
                "host_header": service.host_header,
                "tls_verify": service.tls_verify,
                "connect_timeout": service.connect_timeout,
                "read_timeout": service.read_timeout,
            }
            for service in services
        ],
    }


async def _enabled(db: AsyncSession, model: type[M], org_id: uuid.UUID) -> list[M]:
    query = select(model).where(model.org_id == org_id, model.enabled.is_(True))
    return list((await db.execute(query.order_by(model.id))).scalars().all())


async def _links(
    db: AsyncSession, service_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    links: dict[uuid.UUID, list[uuid.UUID]] = {}
    if service_ids:
        query = select(ServiceAgent.service_id, ServiceAgent.agent_id).where(
            ServiceAgent.service_id.in_(service_ids)
        )
        for service_id, agent_id in await db.execute(query):
            links.setdefault(service_id, []).append(agent_id)
    return links


async def _revoked(db: AsyncSession, org_id: uuid.UUID, now: datetime) -> Config:
    """Unexpired agent certificates of `org_id` that were revoked or whose agent is disabled
    or deleted (serials), and those agents (identities)."""
    query = (
        select(IssuedCertificate.serial, IssuedCertificate.subject_id, EdgeAgent.enabled)
        .outerjoin(
            EdgeAgent,
            (EdgeAgent.id == IssuedCertificate.subject_id) & (EdgeAgent.org_id == org_id),
        )
        .where(
            IssuedCertificate.org_id == org_id,
            IssuedCertificate.kind == "agent",
            IssuedCertificate.not_after > now,
            or_(
                IssuedCertificate.revoked_at.is_not(None),
                EdgeAgent.id.is_(None),
                EdgeAgent.enabled.is_(False),
            ),
        )
    )
    serials, identities = set(), set()
    for serial, subject_id, enabled in await db.execute(query):
        serials.add(serial)
        if not enabled:  # None: deleted
            identities.add(identity(org_id, subject_id))
    return {"serials": sorted(serials), "identities": sorted(identities)}
