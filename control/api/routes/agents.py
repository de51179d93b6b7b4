"""/orgs/{org_id}/agents: edge agents (register, update, enable/disable, delete, list)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, status

from control.api.deps import Db, OrgCtx, PageParams, RuntimeDep
from control.api.filters import LabelledFilter
from control.api.paging import to_page
from control.api.problems import error_responses
from control.schemas.common import Page
from control.schemas.resources import AgentIn, AgentOut, AgentPatch
from control.services import agents

router = APIRouter(
    prefix="/orgs/{org_id}/agents", tags=["edge agents"], responses=error_responses()
)
AgentId = Annotated[uuid.UUID, Path(description="edge agent id")]


@router.get("")
async def list_agents(
    ctx: OrgCtx, db: Db, page: PageParams, filters: LabelledFilter
) -> Page[AgentOut]:
    return to_page(Page[AgentOut], await agents.list_agents(db, ctx, filters, page))


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_agent(ctx: OrgCtx, db: Db, rt: RuntimeDep, data: AgentIn) -> AgentOut:
    """Register an edge agent."""
    return await agents.create(db, rt, ctx, data)


@router.get("/{agent_id}")
async def get_agent(ctx: OrgCtx, db: Db, agent_id: AgentId) -> AgentOut:
    return await agents.get(db, ctx, agent_id)


@router.patch("/{agent_id}")
async def update_agent(
    ctx: OrgCtx, db: Db, rt: RuntimeDep, agent_id: AgentId, data: AgentPatch
) -> AgentOut:
    return await agents.update(db, rt, ctx, agent_id, data)


@router.delete("/{agent_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_agent(ctx: OrgCtx, db: Db, agent_id: AgentId) -> None:
    await agents.remove(db, ctx, agent_id)


@router.post("/{agent_id}/enable")
async def enable_agent(ctx: OrgCtx, db: Db, rt: RuntimeDep, agent_id: AgentId) -> AgentOut:
    return await agents.set_enabled(db, rt, ctx, agent_id, True)


@router.post("/{agent_id}/disable")
async def disable_agent(ctx: OrgCtx, db: Db, rt: RuntimeDep, agent_id: AgentId) -> AgentOut:
    return await agents.set_enabled(db, rt, ctx, agent_id, False)
