"""What each ingress node and edge agent is told: full configs read from the database, and
their versions (docs/protocol.md, "Control channel").

Everything here reads one organisation's rows only: the node's or the agent's own. A config is
plain JSON data with every list sorted, so that its canonical form, and so its version, is the
same on every replica for the same content.

`SNAPSHOT_COLUMNS` names the columns the builders read: a committed change to one of them (or a
new or deleted row of these tables) is what wakes the channels (control/channel/changes.py).
Keep it next to the builders: a field added to a snapshot must be added there too.

An ingress node's config carries the public (HTTPS) certificates of its organisation that
cover the host names it routes, **with their private keys in clear PEM**: the channel is a
WebSocket over TLS to a node that proved its enrolled key, and the node keeps the snapshot in
a 0600 file of its 0700 state directory. Keys are decrypted through `UnsealedKeys` (PBKDF2
costs ~80 ms a key, so each is decrypted once per app, in a worker thread).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from control.db.models import (
    EdgeAgent,
    IngressNode,
    IssuedCertificate,
    PublicCertificate,
    Service,
    ServiceAgent,
)
from control.services import public_tls

log = logging.getLogger(__name__)

Config = dict[str, Any]
M = TypeVar("M", Service, IngressNode, EdgeAgent)

_SERVICE_COLUMNS = "org_id name hostname origin enabled connect_timeout read_timeout tls_verify"
SNAPSHOT_COLUMNS: Mapping[type, frozenset[str]] = {
    Service: frozenset(_SERVICE_COLUMNS.split()) | {"host_header"},
    ServiceAgent: frozenset({"service_id", "agent_id"}),
    IngressNode: frozenset({"org_id", "name", "tunnel_address", "labels", "enabled"}),
    EdgeAgent: frozenset({"org_id", "name", "enabled", "ingress_mode", "ingress_labels"}),
    IssuedCertificate: frozenset({"revoked_at", "not_after", "subject_id", "kind"}),
    PublicCertificate: frozenset(
        {"org_id", "names", "chain", "encrypted_key", "not_before", "not_after"}
    ),
}
# A newly issued node or agent certificate is in no snapshot (only revoked ones are); new rows
# of the others are, an uploaded public certificate included.
INSERTS_MATTER: frozenset[type] = frozenset(
    {Service, ServiceAgent, IngressNode, EdgeAgent, PublicCertificate}
)
KEY_CACHE = 1024  # decrypted public certificate keys kept by one app


class UnsealedKeys:
    """Public certificates' keys decrypted once and kept (by their encrypted form, so a
    replaced key is a miss), at most `size` of them, the least recently used dropped first.
    One per app (control/channel/route.py), never module-level. Channels that ask for the
    same key while it is being decrypted wait for that one decryption (after a restart every
    node's channel builds its first snapshot at once, each holding a database connection).

    A key re-encrypted by `kokoa control ca rekey` no longer opens with the passphrase this
    process started with; until the replica restarts with the new one (docs/pki.md), the key
    decrypted before for the same certificate row and certificate is used (as the CA's key,
    decrypted once per process, still signs): the certificate did not change, only how its
    key is kept."""

    def __init__(self, passphrase: Callable[[], bytes], size: int = KEY_CACHE) -> None:
        self._passphrase = passphrase
        self._size = size
        self._keys: OrderedDict[str, str] = OrderedDict()
        self._by_certificate: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._pending: dict[str, asyncio.Future[str]] = {}  # decrypting now, by sealed form

    async def unseal(self, sealed: str, certificate: tuple[str, str]) -> str:
        """The PEM of the key `sealed` holds, for `certificate` (its row id and fingerprint).

        Raises:
            public_tls.KeyUnreadable: it does not decrypt with the configured passphrase, and
                no key of that certificate was decrypted before.
        """
        plain = self._keys.get(sealed)
        if plain is None:
            try:
                plain = await asyncio.shield(self._decrypting(sealed))
            except public_tls.KeyUnreadable:
                plain = self._by_certificate.get(certificate)
                if plain is None:
                    raise
                log.warning(
                    "public certificate %s: its key is stored under another passphrase (ca "
                    "rekey?); serving the key decrypted before until this replica restarts",
                    certificate[0],
                )
            _remember(self._keys, sealed, plain, self._size)
        else:
            self._keys.move_to_end(sealed)
        _remember(self._by_certificate, certificate, plain, self._size)
        return plain

    def _decrypting(self, sealed: str) -> asyncio.Future[str]:
        """The decryption of `sealed` in a worker thread: the one running, or a new one. It
        goes on when its callers are cancelled (shielded) and is forgotten once done."""
        pending = self._pending.get(sealed)
        if pending is None:
            loop = asyncio.get_running_loop()
            pending = loop.run_in_executor(None, public_tls.unseal, sealed, self._passphrase())
            self._pending[sealed] = pending

            def done(future: asyncio.Future[str]) -> None:
                self._pending.pop(sealed, None)
                if not future.cancelled():
                    future.exception()  # retrieved, even if every caller went away

            pending.add_done_callback(done)
        return pending


K = TypeVar("K")


def _remember(cache: OrderedDict[K, str], key: K, value: str, size: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > size:
        cache.popitem(last=False)


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


async def ingress_config(
    db: AsyncSession, node: IngressNode, now: datetime, keys: UnsealedKeys
) -> Config:
    """The config of ingress `node`: its organisation's enabled services, each with the
    enabled agents that serve it and may use this node, the agents' revocations, and the
    public certificates for the services' host names (`certificates_for`)."""
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
        "certificates": await _certificates(
            db, org, [service.hostname for service in services], now, keys
        ),
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


def certificates_for(
    hosts: Iterable[str], certificates: Iterable[PublicCertificate], now: datetime
) -> list[PublicCertificate]:
    """Of `certificates`, those a node routing `hosts` may serve: unexpired, with a name that
    covers a host name routed there (`public_tls.serves`). In the order a node prefers them
    for one name (it takes the first: ingress/public/tls.py): valid now before not yet valid,
    then the one valid the longest, then by id (the same on every replica)."""
    wanted = sorted(set(hosts))
    chosen = [
        row
        for row in certificates
        if row.not_after > now
        and any(public_tls.serves(name, host) for name in row.names for host in wanted)
    ]
    chosen.sort(key=lambda row: str(row.id))
    chosen.sort(key=lambda row: row.not_after, reverse=True)
    chosen.sort(key=lambda row: row.not_before > now)
    return chosen


async def _certificates(
    db: AsyncSession, org_id: uuid.UUID, hosts: list[str], now: datetime, keys: UnsealedKeys
) -> list[Config]:
    query = select(PublicCertificate).where(PublicCertificate.org_id == org_id)
    rows = (await db.execute(query)).scalars().all()
    found = []
    for row in certificates_for(hosts, rows, now):
        try:
            key = await keys.unseal(row.encrypted_key, (str(row.id), row.fingerprint))
        except public_tls.KeyUnreadable as exc:  # left out; the others still go
            log.error("public certificate %s left out of snapshots: %s", row.id, exc)
            continue
        found.append(
            {
                "id": str(row.id),
                "names": list(row.names),
                "not_after": row.not_after.isoformat(),
                "chain": row.chain,
                "key": key,
            }
        )
    return found
