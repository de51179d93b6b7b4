"""Edge agents: which ingress nodes each may use (all enabled ones, or those matching labels).
Status fields are written by control/services/status.py from the control channel's reports;
here they are read-only."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from control.auth.roles import Permission
from control.db.models import EdgeAgent
from control.runtime import Runtime
from control.schemas.resources import AgentIn, AgentOut, AgentPatch
from control.services import resource_ops as ops
from control.services.context import OrgContext
from control.services.errors import InvalidInput
from control.services.scoped import PageRequest, PageResult

FIELDS = ("name", "enabled", "labels", "ingress_mode", "ingress_labels")


def _summary(row: EdgeAgent) -> dict[str, Any]:
    return {name: getattr(row, name) for name in FIELDS}


KIND = ops.Kind(
    model=EdgeAgent,
    what="edge agent",
    audit_name="agent",
    read=Permission.AGENTS_READ,
    write=Permission.AGENTS_WRITE,
    toggle=Permission.AGENTS_TOGGLE,
    summary=_summary,
    label_column="labels",
    holder="agent",
)


def _check_selector(mode: str, labels: dict[str, str]) -> None:
    if mode == "labels" and not labels:
        raise InvalidInput("ingress_mode 'labels' needs at least one entry in ingress_labels")


async def list_agents(
    db: AsyncSession, ctx: OrgContext, filters: ops.ListFilter, page: PageRequest
) -> PageResult:
    result = await ops.list_rows(db, KIND, ctx, filters, page)
    items = [AgentOut.model_validate(row) for row in result.rows]
    return PageResult(items, result.total, result.limit, result.offset)


async def get(db: AsyncSession, ctx: OrgContext, agent_id: uuid.UUID) -> AgentOut:
    return AgentOut.model_validate(await ops.get_row(db, KIND, ctx, agent_id))


async def create(db: AsyncSession, rt: Runtime, ctx: OrgContext, data: AgentIn) -> AgentOut:
    ctx.require(KIND.write)
    _check_selector(data.ingress_mode, data.ingress_labels)
    now = rt.now()
    row = EdgeAgent(org_id=ctx.org_id, created_at=now, updated_at=now, **data.model_dump())
    return AgentOut.model_validate(await ops.create_row(db, KIND, ctx, row))


async def update(
    db: AsyncSession, rt: Runtime, ctx: OrgContext, agent_id: uuid.UUID, data: AgentPatch
) -> AgentOut:
    def check(row: EdgeAgent) -> None:
        _check_selector(row.ingress_mode, row.ingress_labels)

    row = await ops.update_row(db, KIND, ctx, agent_id, data.changes(), rt.now(), check)
    return AgentOut.model_validate(row)


async def set_enabled(
    db: AsyncSession, rt: Runtime, ctx: OrgContext, agent_id: uuid.UUID, enabled: bool
) -> AgentOut:
    row = await ops.set_enabled(db, KIND, ctx, agent_id, enabled, rt.now())
    return AgentOut.model_validate(row)


async def remove(db: AsyncSession, ctx: OrgContext, agent_id: uuid.UUID) -> None:
    await ops.delete_row(db, KIND, ctx, agent_id)
