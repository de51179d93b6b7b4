"""Status as the API shows it: counts, nodes and agents with their status and evidence, the
connection matrix, and status-change events. Every query is filtered by the caller's
organisation, and ids given as filters must be of it (else 404, as for any other id)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from control.auth.roles import Permission
from control.db.models import AgentConnection, AuditEvent, EdgeAgent, IngressNode
from control.runtime import Runtime
from control.schemas.audit import AuditEventOut
from control.schemas.status import (
    AgentStatusOut,
    ConnectionOut,
    ConnectionSide,
    NodeStatusOut,
    StatusCounts,
    StatusSummary,
)
from control.services import health_checks, status
from control.services.context import OrgContext
from control.services.errors import NotFound
from control.services.scoped import PageRequest, PageResult, get_scoped, paginate

STATUS_ACTIONS = ("node.status.changed", "agent.status.changed")
C = AgentConnection


async def summary(db: AsyncSession, rt: Runtime, ctx: OrgContext) -> StatusSummary:
    ctx.require(Permission.STATUS_READ)
    async with db.begin():
        nodes = await _counts(db, IngressNode, ctx.org_id)
        agents = await _counts(db, EdgeAgent, ctx.org_id)
    return StatusSummary(
        heartbeat_interval=rt.settings.channel_heartbeat_interval,
        stale_after=status.stale_after(rt).total_seconds(),
        nodes=nodes,
        agents=agents,
    )


async def _counts(
    db: AsyncSession, model: type[IngressNode] | type[EdgeAgent], org_id: uuid.UUID
) -> StatusCounts:
    query = (
        select(model.enabled, model.status, func.count())
        .where(model.org_id == org_id)
        .group_by(model.enabled, model.status)
    )
    counts: dict[str, int] = {}
    for enabled, state, count in await db.execute(query):
        key = state if enabled else "disabled"
        counts[key] = counts.get(key, 0) + int(count)
    return StatusCounts.model_validate(counts)


async def list_subjects(
    db: AsyncSession,
    ctx: OrgContext,
    kind: status.SubjectKind,
    page: PageRequest,
    state: str | None,
) -> PageResult:
    """Nodes or agents of the organisation with their status, by name."""
    ctx.require(Permission.STATUS_READ)
    spec = status.KINDS[kind]
    model: Any = spec.model
    query = select(model).where(model.org_id == ctx.org_id)
    if state is not None:
        query = query.where(model.status == state)
    async with db.begin():
        result = await paginate(db, query.order_by(model.name, model.id), page)
        ids = [row.id for row in result.rows]
        states = await _states(db, spec, ids)
        peers = await _peer_counts(db, spec.side, ids)
    items = [_subject_out(row, states.get(row.id), peers.get(row.id, 0)) for row in result.rows]
    return PageResult(items, result.total, result.limit, result.offset)


async def _states(db: AsyncSession, spec: Any, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    if not ids:
        return {}
    key = getattr(spec.state, spec.key)
    rows = (await db.execute(select(spec.state).where(key.in_(ids)))).scalars()
    return {getattr(row, spec.key): row for row in rows}


async def _peer_counts(db: AsyncSession, side: str, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not ids:
        return {}
    mine = C.agent_id if side == "agent" else C.node_id
    reported = C.agent_reported_at if side == "agent" else C.node_reported_at
    query = select(mine, func.count()).where(mine.in_(ids), reported.is_not(None)).group_by(mine)
    return {subject_id: int(count) for subject_id, count in await db.execute(query)}


def _subject_out(row: Any, state: Any, peers: int) -> NodeStatusOut | AgentStatusOut:
    fields = {
        "id": row.id,
        "name": row.name,
        "enabled": row.enabled,
        "status": row.status,
        "status_detail": row.status_detail,
        "last_seen_at": row.last_seen_at,
        "software": row.version,
        "started_at": state.started_at if state else None,
        "snapshot_version": state.snapshot_version if state else None,
        "channel_open": bool(state and state.channel_open),
        "problems": list(state.problems) if state and state.channel_open else [],
        "connections": peers,
    }
    if isinstance(row, IngressNode):
        return NodeStatusOut(**fields, health_check=health_checks.view(state))
    return AgentStatusOut(**fields)


async def get_node(db: AsyncSession, ctx: OrgContext, node_id: uuid.UUID) -> NodeStatusOut:
    out = await _get_subject(db, ctx, "ingress", node_id)
    assert isinstance(out, NodeStatusOut)
    return out


async def get_agent(db: AsyncSession, ctx: OrgContext, agent_id: uuid.UUID) -> AgentStatusOut:
    out = await _get_subject(db, ctx, "agent", agent_id)
    assert isinstance(out, AgentStatusOut)
    return out


async def _get_subject(
    db: AsyncSession, ctx: OrgContext, kind: status.SubjectKind, subject_id: uuid.UUID
) -> NodeStatusOut | AgentStatusOut:
    ctx.require(Permission.STATUS_READ)
    spec = status.KINDS[kind]
    what = "ingress node" if kind == "ingress" else "edge agent"
    async with db.begin():
        row = await get_scoped(db, spec.model, ctx.org_id, subject_id, what=what)
        state = await db.get(spec.state, subject_id)
        peers = await _peer_counts(db, spec.side, [subject_id])
    return _subject_out(row, state, peers.get(subject_id, 0))


async def connections(
    db: AsyncSession,
    ctx: OrgContext,
    page: PageRequest,
    node_id: uuid.UUID | None,
    agent_id: uuid.UUID | None,
) -> PageResult:
    """The agent ↔ ingress matrix, by agent name then node name."""
    ctx.require(Permission.STATUS_READ)
    query: Select[AgentConnection, str, str] = (
        select(C, EdgeAgent.name, IngressNode.name)
        .join(EdgeAgent, EdgeAgent.id == C.agent_id)
        .join(IngressNode, IngressNode.id == C.node_id)
        .where(
            C.org_id == ctx.org_id,
            EdgeAgent.org_id == ctx.org_id,
            IngressNode.org_id == ctx.org_id,
        )
    )
    async with db.begin():
        if node_id is not None:
            await get_scoped(db, IngressNode, ctx.org_id, node_id, what="ingress node")
            query = query.where(C.node_id == node_id)
        if agent_id is not None:
            await get_scoped(db, EdgeAgent, ctx.org_id, agent_id, what="edge agent")
            query = query.where(C.agent_id == agent_id)
        total = (await db.execute(select(func.count()).select_from(query.subquery()))).scalar()
        ordered = query.order_by(EdgeAgent.name, IngressNode.name)
        rows = (await db.execute(ordered.limit(page.limit).offset(page.offset))).all()
    items = [_connection_out(row, agent, node) for row, agent, node in rows]
    return PageResult(items, int(total or 0), page.limit, page.offset)


def _connection_out(row: AgentConnection, agent: str, node: str) -> ConnectionOut:
    def side(at: Any, since: Any, rtt: Any) -> ConnectionSide | None:
        return None if at is None else ConnectionSide(reported_at=at, since=since, rtt_ms=rtt)

    return ConnectionOut(
        agent_id=row.agent_id,
        agent_name=agent,
        node_id=row.node_id,
        node_name=node,
        seen_by_agent=side(row.agent_reported_at, row.agent_since, row.agent_rtt_ms),
        seen_by_node=side(row.node_reported_at, row.node_since, row.node_rtt_ms),
    )


async def events(
    db: AsyncSession, ctx: OrgContext, page: PageRequest, subject_id: uuid.UUID | None
) -> PageResult:
    """Status changes of the organisation's nodes and agents, newest first."""
    ctx.require(Permission.STATUS_READ)
    query = select(AuditEvent).where(
        AuditEvent.org_id == ctx.org_id, AuditEvent.action.in_(STATUS_ACTIONS)
    )
    if subject_id is not None:
        query = query.where(AuditEvent.target_id == str(subject_id))
    async with db.begin():
        if subject_id is not None:
            await _check_subject(db, ctx, subject_id)
        result = await paginate(db, query.order_by(AuditEvent.id.desc()), page)
    items = [AuditEventOut.model_validate(row) for row in result.rows]
    return PageResult(items, result.total, result.limit, result.offset)


async def _check_subject(db: AsyncSession, ctx: OrgContext, subject_id: uuid.UUID) -> None:
    """404 unless `subject_id` is a node or an agent of the organisation."""
    found = (
        await db.execute(
            select(IngressNode.id)
            .where(IngressNode.id == subject_id, IngressNode.org_id == ctx.org_id)
            .union_all(
                select(EdgeAgent.id).where(
                    EdgeAgent.id == subject_id, EdgeAgent.org_id == ctx.org_id
                )
            )
        )
    ).first()
    if found is None:
        raise NotFound("no such ingress node or edge agent in this organisation")
