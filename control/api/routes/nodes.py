"""/orgs/{org_id}/nodes: ingress nodes (register, update, enable/disable, delete, list)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from control.api.deps import Db, OrgCtx, PageParams, RuntimeDep
from control.api.filters import LabelledFilter
from control.api.paging import to_page
from control.api.problems import error_responses
from control.schemas.common import Page
from control.schemas.resources import NodeIn, NodeOut, NodePatch
from control.schemas.validators import Name
from control.services import nodes

router = APIRouter(
    prefix="/orgs/{org_id}/nodes", tags=["ingress nodes"], responses=error_responses()
)
NodeId = Annotated[uuid.UUID, Path(description="ingress node id")]


@router.get("")
async def list_nodes(
    ctx: OrgCtx,
    db: Db,
    page: PageParams,
    filters: LabelledFilter,
    region: Annotated[Name | None, Query(description="only this region")] = None,
) -> Page[NodeOut]:
    return to_page(Page[NodeOut], await nodes.list_nodes(db, ctx, filters, page, region))


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_node(ctx: OrgCtx, db: Db, rt: RuntimeDep, data: NodeIn) -> NodeOut:
    """Register an ingress node."""
    return await nodes.create(db, rt, ctx, data)


@router.get("/{node_id}")
async def get_node(ctx: OrgCtx, db: Db, node_id: NodeId) -> NodeOut:
    return await nodes.get(db, ctx, node_id)


@router.patch("/{node_id}")
async def update_node(
    ctx: OrgCtx, db: Db, rt: RuntimeDep, node_id: NodeId, data: NodePatch
) -> NodeOut:
    return await nodes.update(db, rt, ctx, node_id, data)


@router.delete("/{node_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_node(ctx: OrgCtx, db: Db, node_id: NodeId) -> None:
    await nodes.remove(db, ctx, node_id)


@router.post("/{node_id}/enable")
async def enable_node(ctx: OrgCtx, db: Db, rt: RuntimeDep, node_id: NodeId) -> NodeOut:
    return await nodes.set_enabled(db, rt, ctx, node_id, True)


@router.post("/{node_id}/disable")
async def disable_node(ctx: OrgCtx, db: Db, rt: RuntimeDep, node_id: NodeId) -> NodeOut:
    return await nodes.set_enabled(db, rt, ctx, node_id, False)
