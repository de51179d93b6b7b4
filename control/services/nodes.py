"""Ingress nodes: where the public connects and agents dial in. Status fields are written by
control/services/status.py from the control channel's reports; here they are read-only."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from control.auth.roles import Permission
from control.db.models import IngressNode
from control.runtime import Runtime
from control.schemas.resources import NodeIn, NodeOut, NodePatch
from control.services import resource_ops as ops
from control.services.context import OrgContext
from control.services.scoped import PageRequest, PageResult

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
    return NodeOut.model_validate(await ops.get_row(db, KIND, ctx, node_id))


async def create(db: AsyncSession, rt: Runtime, ctx: OrgContext, data: NodeIn) -> NodeOut:
    now = rt.now()
    row = IngressNode(org_id=ctx.org_id, created_at=now, updated_at=now, **data.model_dump())
    return NodeOut.model_validate(await ops.create_row(db, KIND, ctx, row))


async def update(
    db: AsyncSession, rt: Runtime, ctx: OrgContext, node_id: uuid.UUID, data: NodePatch
) -> NodeOut:
    row = await ops.update_row(db, KIND, ctx, node_id, data.changes(), rt.now())
    return NodeOut.model_validate(row)


async def set_enabled(
    db: AsyncSession, rt: Runtime, ctx: OrgContext, node_id: uuid.UUID, enabled: bool
) -> NodeOut:
    return NodeOut.model_validate(await ops.set_enabled(db, KIND, ctx, node_id, enabled, rt.now()))


async def remove(db: AsyncSession, ctx: OrgContext, node_id: uuid.UUID) -> None:
    await ops.delete_row(db, KIND, ctx, node_id)
