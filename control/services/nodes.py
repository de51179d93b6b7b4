"""Ingress nodes: where the public connects and agents dial in. Status fields are written by
control/services/status.py from the control channel's reports; here they are read-only."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from control import audit
from control.auth.roles import Permission
from control.db.models import IngressNode
from control.runtime import Runtime
from control.schemas.resources import NodeIn, NodeOut, NodePatch
from control.services import resource_ops as ops
from control.services.context import OrgContext
from control.services.errors import Conflict
from control.services.scoped import PageRequest, PageResult, get_scoped

FIELDS = ("name", "public_address", "tunnel_address", "region", "labels", "weight", "enabled")


def _summary(row: IngressNode) -> dict[str, Any]:
    return {name: getattr(row, name) for name in FIELDS}


KIND = ops.Kind(
    model=IngressNode,
    what="ingress node",
    audit_name="node",
    read=Permission.NODES_READ,
    write=Permission.NODES_WRITE,
    toggle=Permission.NODES_TOGGLE,
    summary=_summary,
    search=("name", "public_address", "region"),
    label_column="labels",
    holder="ingress",
)


async def list_nodes(
    db: AsyncSession,
    ctx: OrgContext,
    filters: ops.ListFilter,
    page: PageRequest,
    region: str | None = None,
) -> PageResult:
    query = ops.list_query(KIND, ctx, filters)
    if region is not None:
        query = query.where(IngressNode.region == region)
    result = await ops.list_rows(db, KIND, ctx, filters, page, query)
    items = [NodeOut.model_validate(row) for row in result.rows]
    return PageResult(items, result.total, result.limit, result.offset)


async def get(db: AsyncSession, ctx: OrgContext, node_id: uuid.UUID) -> NodeOut:
    ctx.require(KIND.read)
    async with db.begin():
        row = await get_scoped(db, IngressNode, ctx.org_id, node_id, what=KIND.what)
    return NodeOut.model_validate(row)


async def create(db: AsyncSession, rt: Runtime, ctx: OrgContext, data: NodeIn) -> NodeOut:
    ctx.require(KIND.write)
    now = rt.now()
    row = IngressNode(org_id=ctx.org_id, created_at=now, updated_at=now, **data.model_dump())
    async with db.begin():
        if await ops.name_taken(db, KIND, ctx.org_id, data.name, None):
            raise Conflict(f"an ingress node named {data.name!r} already exists")
        db.add(row)
        await db.flush()
        audit.record(
            db,
            ctx.actor,
            "node.create",
            org_id=ctx.org_id,
            target=KIND.target(row),
            after=_summary(row),
        )
    return NodeOut.model_validate(row)


async def update(
    db: AsyncSession, rt: Runtime, ctx: OrgContext, node_id: uuid.UUID, data: NodePatch
) -> NodeOut:
    ctx.require(KIND.write)
    changes = data.changes()
    async with db.begin():
        row = await get_scoped(db, IngressNode, ctx.org_id, node_id, what=KIND.what)
        name = changes.get("name")
        if name is not None and await ops.name_taken(db, KIND, ctx.org_id, name, row.id):
            raise Conflict(f"an ingress node named {name!r} already exists")
        before = _summary(row)
        for field, value in changes.items():
            setattr(row, field, value)
        row.updated_at = rt.now()
        old, new = audit.changes(before, _summary(row))
        audit.record(
            db,
            ctx.actor,
            "node.update",
            org_id=ctx.org_id,
            target=KIND.target(row),
            before=old,
            after=new,
        )
    return NodeOut.model_validate(row)


async def set_enabled(
    db: AsyncSession, rt: Runtime, ctx: OrgContext, node_id: uuid.UUID, enabled: bool
) -> NodeOut:
    return NodeOut.model_validate(await ops.set_enabled(db, KIND, ctx, node_id, enabled, rt.now()))


async def remove(db: AsyncSession, ctx: OrgContext, node_id: uuid.UUID) -> None:
    await ops.delete_row(db, KIND, ctx, node_id)
