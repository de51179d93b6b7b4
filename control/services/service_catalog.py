"""Services: a public host name routed through the organisation's edge agents to an origin.

Host names are unique across all organisations (one host, one route); the agents serving a
service must belong to the same organisation.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from control import audit
from control.auth.roles import Permission
from control.db.models import EdgeAgent, Service, ServiceAgent
from control.runtime import Runtime
from control.schemas.resources import ServiceIn, ServiceOut, ServicePatch
from control.services import resource_ops as ops
from control.services.context import OrgContext
from control.services.errors import Conflict, InvalidInput
from control.services.scoped import PageRequest, PageResult, get_scoped

FIELDS = (
    "name",
    "hostname",
    "origin",
    "protocol",
    "enabled",
    "description",
    "connect_timeout",
    "read_timeout",
    "tls_verify",
    "host_header",
)


def _summary(row: Service) -> dict[str, Any]:
    return {name: getattr(row, name) for name in FIELDS}


KIND = ops.Kind(
    model=Service,
    what="service",
    audit_name="service",
    read=Permission.SERVICES_READ,
    write=Permission.SERVICES_WRITE,
    toggle=Permission.SERVICES_WRITE,
    summary=_summary,
    search=("name", "hostname", "description"),
)


async def list_services(
    db: AsyncSession,
    ctx: OrgContext,
    filters: ops.ListFilter,
    page: PageRequest,
    agent_id: uuid.UUID | None = None,
) -> PageResult:
    query = ops.list_query(KIND, ctx, filters)
    if agent_id is not None:
        served = select(ServiceAgent.service_id).where(ServiceAgent.agent_id == agent_id)
        query = query.where(Service.id.in_(served))
    result = await ops.list_rows(db, KIND, ctx, filters, page, query)
    async with db.begin():
        items = await _outs(db, result.rows)
    return PageResult(items, result.total, result.limit, result.offset)


async def get(db: AsyncSession, ctx: OrgContext, service_id: uuid.UUID) -> ServiceOut:
    ctx.require(KIND.read)
    async with db.begin():
        row = await get_scoped(db, Service, ctx.org_id, service_id, what="service")
        return (await _outs(db, [row]))[0]


async def create(db: AsyncSession, rt: Runtime, ctx: OrgContext, data: ServiceIn) -> ServiceOut:
    ctx.require(KIND.write)
    now = rt.now()
    values = data.model_dump(exclude={"agent_ids"})
    row = Service(org_id=ctx.org_id, created_at=now, updated_at=now, **values)
    async with db.begin():
        await _check_unique(db, ctx.org_id, data.name, data.hostname, None)
        db.add(row)
        await db.flush()
        agents = await _set_agents(db, ctx.org_id, row.id, data.agent_ids)
        after = _summary(row) | {"agent_ids": agents}
        audit.record(
            db, ctx.actor, "service.create", org_id=ctx.org_id, target=KIND.target(row), after=after
        )
        return (await _outs(db, [row]))[0]


async def update(
    db: AsyncSession, rt: Runtime, ctx: OrgContext, service_id: uuid.UUID, data: ServicePatch
) -> ServiceOut:
    ctx.require(KIND.write)
    changes = data.changes()
    new_agents = changes.pop("agent_ids", None)
    async with db.begin():
        row = await get_scoped(db, Service, ctx.org_id, service_id, what="service")
        before = _summary(row) | {"agent_ids": await _agent_ids(db, row.id)}
        await _check_unique(db, ctx.org_id, changes.get("name"), changes.get("hostname"), row.id)
        for name, value in changes.items():
            setattr(row, name, value)
        if new_agents is not None:
            await _set_agents(db, ctx.org_id, row.id, new_agents)
        row.updated_at = rt.now()
        after = _summary(row) | {"agent_ids": await _agent_ids(db, row.id)}
        old, new = audit.changes(before, after)
        audit.record(
            db,
            ctx.actor,
            "service.update",
            org_id=ctx.org_id,
            target=KIND.target(row),
            before=old,
            after=new,
        )
        return (await _outs(db, [row]))[0]


async def set_enabled(
    db: AsyncSession, rt: Runtime, ctx: OrgContext, service_id: uuid.UUID, enabled: bool
) -> ServiceOut:
    row = await ops.set_enabled(db, KIND, ctx, service_id, enabled, rt.now())
    async with db.begin():
        return (await _outs(db, [row]))[0]


async def remove(db: AsyncSession, ctx: OrgContext, service_id: uuid.UUID) -> None:
    await ops.delete_row(db, KIND, ctx, service_id)


async def _check_unique(
    db: AsyncSession,
    org_id: uuid.UUID,
    name: str | None,
    hostname: str | None,
    exclude: uuid.UUID | None,
) -> None:
    if name is not None and await ops.name_taken(db, KIND, org_id, name, exclude):
        raise Conflict(f"a service named {name!r} already exists in this organisation")
    if hostname is not None:
        query = select(Service.id).where(Service.hostname == hostname)
        if exclude is not None:
            query = query.where(Service.id != exclude)
        if (await db.execute(query)).first():
            raise Conflict(f"the host name {hostname!r} is already in use")


async def _set_agents(
    db: AsyncSession, org_id: uuid.UUID, service_id: uuid.UUID, agent_ids: list[uuid.UUID]
) -> list[uuid.UUID]:
    wanted = list(dict.fromkeys(agent_ids))
    if wanted:
        found = await db.execute(
            select(EdgeAgent.id).where(EdgeAgent.org_id == org_id, EdgeAgent.id.in_(wanted))
        )
        missing = set(wanted) - set(found.scalars())
        if missing:
            raise InvalidInput(f"no such edge agent in this organisation: {sorted(missing)[0]}")
    await db.execute(delete(ServiceAgent).where(ServiceAgent.service_id == service_id))
    db.add_all(ServiceAgent(service_id=service_id, agent_id=agent) for agent in wanted)
    await db.flush()
    return wanted


async def _agent_ids(db: AsyncSession, service_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await db.execute(
        select(ServiceAgent.agent_id)
        .where(ServiceAgent.service_id == service_id)
        .order_by(ServiceAgent.agent_id)
    )
    return list(rows.scalars())


async def _outs(db: AsyncSession, rows: list[Service]) -> list[ServiceOut]:
    agents: dict[uuid.UUID, list[uuid.UUID]] = {row.id: [] for row in rows}
    if rows:
        found = await db.execute(
            select(ServiceAgent.service_id, ServiceAgent.agent_id)
            .where(ServiceAgent.service_id.in_(agents))
            .order_by(ServiceAgent.agent_id)
        )
        for service_id, agent_id in found:
            agents[service_id].append(agent_id)
    return [
        ServiceOut.model_validate(
            _summary(row)
            | {
                "agent_ids": agents[row.id],
                "id": row.id,
                "org_id": row.org_id,
                "created_at": row.created_at,
                "updated_at": row.updated_at,
            }
        )
        for row in rows
    ]
