"""/orgs/{org_id}/status: who is online, the agent ↔ ingress matrix, traffic time series,
status-change events, and the ingress nodes' readiness checks (docs/control-plane.md,
"Status and health")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status

from control.api.deps import Db, OrgCtx, PageParams, RuntimeDep
from control.api.paging import to_page
from control.api.problems import error_responses
from control.schemas.audit import AuditEventOut
from control.schemas.common import Page
from control.schemas.resources import Status
from control.schemas.status import (
    AgentStatusOut,
    ConnectionOut,
    GroupBy,
    HealthCheckIn,
    HealthCheckOut,
    NodeStatusOut,
    StatusSummary,
    TrafficOut,
)
from control.services import health_checks, status_views, traffic_series

router = APIRouter(prefix="/orgs/{org_id}/status", tags=["status"], responses=error_responses())
NodeId = Annotated[uuid.UUID, Path(description="ingress node id")]
AgentId = Annotated[uuid.UUID, Path(description="edge agent id")]
StatusFilter = Annotated[Status | None, Query(description="only this status")]


@router.get("")
async def get_status_summary(ctx: OrgCtx, db: Db, rt: RuntimeDep) -> StatusSummary:
    """How many nodes and agents are online, degraded, offline, unknown or disabled."""
    return await status_views.summary(db, rt, ctx)


@router.get("/nodes")
async def list_node_status(
    ctx: OrgCtx, db: Db, page: PageParams, status: StatusFilter = None
) -> Page[NodeStatusOut]:
    """Ingress nodes with their status, last status message and readiness check, by name."""
    result = await status_views.list_subjects(db, ctx, "ingress", page, status)
    return to_page(Page[NodeStatusOut], result)


@router.get("/nodes/{node_id}")
async def get_node_status(ctx: OrgCtx, db: Db, node_id: NodeId) -> NodeStatusOut:
    return await status_views.get_node(db, ctx, node_id)


@router.put("/nodes/{node_id}/health-check")
async def set_node_health_check(
    ctx: OrgCtx, db: Db, rt: RuntimeDep, node_id: NodeId, data: HealthCheckIn
) -> HealthCheckOut:
    """Check this node's readiness URL from the control plane (replaces any earlier one)."""
    return await health_checks.set_check(db, rt, ctx, node_id, data.url)


@router.delete("/nodes/{node_id}/health-check", status_code=status.HTTP_204_NO_CONTENT)
async def remove_node_health_check(ctx: OrgCtx, db: Db, rt: RuntimeDep, node_id: NodeId) -> None:
    """Stop checking this node's readiness (it is judged by its heartbeats alone)."""
    await health_checks.remove_check(db, rt, ctx, node_id)


@router.get("/agents")
async def list_agent_status(
    ctx: OrgCtx, db: Db, page: PageParams, status: StatusFilter = None
) -> Page[AgentStatusOut]:
    """Edge agents with their status and last status message, by name."""
    result = await status_views.list_subjects(db, ctx, "agent", page, status)
    return to_page(Page[AgentStatusOut], result)


@router.get("/agents/{agent_id}")
async def get_agent_status(ctx: OrgCtx, db: Db, agent_id: AgentId) -> AgentStatusOut:
    return await status_views.get_agent(db, ctx, agent_id)


@router.get("/connections")
async def list_connections(
    ctx: OrgCtx,
    db: Db,
    page: PageParams,
    node_id: Annotated[uuid.UUID | None, Query(description="only this ingress node")] = None,
    agent_id: Annotated[uuid.UUID | None, Query(description="only this edge agent")] = None,
) -> Page[ConnectionOut]:
    """Which agent is connected to which ingress node, as each side last reported it."""
    result = await status_views.connections(db, ctx, page, node_id, agent_id)
    return to_page(Page[ConnectionOut], result)


def get_traffic_query(
    by: Annotated[GroupBy, Query(description="one series per service, node or agent")] = "service",
    service_id: Annotated[uuid.UUID | None, Query(description="only this service")] = None,
    node_id: Annotated[uuid.UUID | None, Query(description="only this ingress node")] = None,
    agent_id: Annotated[
        uuid.UUID | None, Query(description="only this edge agent (its own reports)")
    ] = None,
    since: Annotated[
        datetime | None, Query(description="from (ISO 8601; default until - 1 h)")
    ] = None,
    until: Annotated[datetime | None, Query(description="to (ISO 8601; default now)")] = None,
    step: Annotated[
        int | None,
        Query(ge=1, le=7 * 86400, description="seconds per point (default: ~120 points)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=50, description="series at most (top by requests)")] = 10,
) -> traffic_series.TrafficQuery:
    return traffic_series.TrafficQuery(by, service_id, node_id, agent_id, since, until, step, limit)


@router.get("/traffic")
async def get_traffic(
    ctx: OrgCtx,
    db: Db,
    rt: RuntimeDep,
    query: Annotated[traffic_series.TrafficQuery, Depends(get_traffic_query)],
) -> TrafficOut:
    """Requests, errors, bytes and in-flight per step, per service, node or agent."""
    return await traffic_series.report(db, rt, ctx, query)


@router.get("/events")
async def list_status_events(
    ctx: OrgCtx,
    db: Db,
    page: PageParams,
    subject_id: Annotated[
        uuid.UUID | None, Query(description="only this ingress node or edge agent")
    ] = None,
) -> Page[AuditEventOut]:
    """Status changes of nodes and agents (from the audit log), newest first."""
    return to_page(Page[AuditEventOut], await status_views.events(db, ctx, page, subject_id))
