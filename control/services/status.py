"""Status of ingress nodes and edge agents: what their control channels report, judged.

The control channel (control/channel) hands every `status` message to `record_report` and
the end of a subject's last channel on this replica to `channel_closed`; the sweeper
(`sweep`, run by control/services/status_monitor.py) catches subjects that went silent
without a close (a replica died), and the readiness checks (control/services/health_checks.py)
add their verdict. Every path ends in `rejudge`, which applies control/services/status_rules.py
and logs a change of status as an audit event (`node.status.changed`, `agent.status.changed`,
actor: the system), at most `status_events_per_hour` per subject.

Status writes touch no column a snapshot is built from, so they wake no channel
(control/channel/changes.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control import audit
from control.channel.snapshots import may_use
from control.db.models import (
    AgentStatus,
    EdgeAgent,
    IngressNode,
    NodeStatus,
    Service,
    ServiceAgent,
)
from control.runtime import Runtime
from control.schemas.status import StatusReport
from control.services import connection_matrix, traffic
from control.services.context import Actor
from control.services.status_rules import EventBudget, Evidence, judge
from control.services.upsert import insert_missing

SubjectKind = Literal["ingress", "agent"]
Row = IngressNode | EdgeAgent
State = NodeStatus | AgentStatus
SWEEP_BATCH = 500  # silent subjects handled per kind and sweep
ACTOR = Actor.system("kokoa status")


@dataclass(frozen=True)
class ChannelSubject:
    """Who a control channel belongs to, as its handshake proved."""

    kind: SubjectKind
    id: uuid.UUID
    org_id: uuid.UUID
    name: str


@dataclass(frozen=True)
class _Kind:
    model: type[IngressNode] | type[EdgeAgent]
    state: type[NodeStatus] | type[AgentStatus]
    key: str  # the state table's primary key column
    audit_name: str  # "node" | "agent"
    side: connection_matrix.Side


KINDS: dict[SubjectKind, _Kind] = {
    "ingress": _Kind(IngressNode, NodeStatus, "node_id", "node", "node"),
    "agent": _Kind(EdgeAgent, AgentStatus, "agent_id", "agent", "agent"),
}


def stale_after(rt: Runtime) -> timedelta:
    """How long after its last status message a subject counts as silent: 3 intervals."""
    return timedelta(seconds=3 * rt.settings.channel_heartbeat_interval)


async def record_report(
    db: AsyncSession, rt: Runtime, subject: ChannelSubject, report: StatusReport
) -> None:
    """Record one status message of `subject`: last seen, software and snapshot version, the
    connection matrix, traffic deltas, problems; then judge its status."""
    now = rt.now()
    kind = KINDS[subject.kind]
    async with db.begin():
        row = await _row(db, kind, subject.id, subject.org_id)
        if row is None:  # deleted since its channel opened
            return
        state = await load_state(db, kind, subject.id)
        await _chart(db, rt, subject, state, report, now)
        peers = await connection_matrix.replace(
            db,
            side=kind.side,
            subject_id=subject.id,
            org_id=subject.org_id,
            peers=report.connections,
            now=now,
        )
        derived = await _derived_problem(db, rt, row, report, peers, now)
        state.channel_open = True
        state.reported_at = now
        state.started_at = report.started_at
        state.snapshot_version = report.snapshot_version
        state.problems = [*report.problems, *([derived] if derived else [])]
        row.last_seen_at = now
        row.version = report.software[:64] or None
        await rejudge(db, rt, row, state, now)


async def channel_closed(db: AsyncSession, rt: Runtime, subject: ChannelSubject) -> None:
    """The subject's last channel on this replica closed: offline, or degraded while its
    readiness check still passes; `last_seen_at` keeps the last status message's time."""
    now = rt.now()
    kind = KINDS[subject.kind]
    async with db.begin():
        row = await _row(db, kind, subject.id, subject.org_id)
        if row is None:
            return
        state = await load_state(db, kind, subject.id)
        await _silence(db, kind, row, state)
        await rejudge(db, rt, row, state, now)


@dataclass(frozen=True, slots=True)
class SweepResult:
    silenced: int
    pruned: int


async def sweep(rt: Runtime) -> SweepResult:
    """One sweep: subjects silent for `stale_after` lose their heartbeat (at most SWEEP_BATCH
    per kind), and traffic buckets older than the retention go (about traffic.PRUNE_BATCH)."""
    now = rt.now()
    silenced = 0
    for kind in KINDS.values():
        async with rt.sessionmaker() as db, db.begin():
            state_model: Any = kind.state
            query = (
                select(getattr(state_model, kind.key))
                .where(
                    state_model.channel_open.is_(True),
                    state_model.reported_at < now - stale_after(rt),
                )
                .limit(SWEEP_BATCH)
            )
            for subject_id in list((await db.execute(query)).scalars()):
                silenced += await _sweep_one(db, rt, kind, subject_id, now)
    async with rt.sessionmaker() as db, db.begin():
        pruned = await traffic.prune(db, now - rt.settings.status_retention)
    return SweepResult(silenced, pruned)


async def _sweep_one(
    db: AsyncSession, rt: Runtime, kind: _Kind, subject_id: uuid.UUID, now: datetime
) -> int:
    state = await load_state(db, kind, subject_id)  # locked: re-check what the query saw
    silent = state.reported_at is None or now - state.reported_at > stale_after(rt)
    row = cast(Row | None, await db.get(kind.model, subject_id))
    if row is None or not state.channel_open or not silent:
        return 0
    await _silence(db, kind, row, state)
    await rejudge(db, rt, row, state, now)
    return 1


async def _silence(db: AsyncSession, kind: _Kind, row: Row, state: State) -> None:
    state.channel_open = False
    await connection_matrix.forget(db, side=kind.side, subject_id=row.id)


async def load_state(db: AsyncSession, kind: _Kind, subject_id: uuid.UUID) -> Any:
    """The subject's status row, created if missing, locked for this transaction."""
    table: Any = kind.state.__table__
    empty = {"problems": [], "counters": {}, "events_in_window": 0, "events_suppressed": 0}
    if kind.state is NodeStatus:
        empty |= {"health_failures": 0, "health_detail": ""}
    await insert_missing(
        db, table, {kind.key: subject_id, "channel_open": False, **empty}, [kind.key]
    )
    column = getattr(kind.state, kind.key)
    query = select(kind.state).where(column == subject_id).with_for_update()
    return (await db.execute(query.execution_options(populate_existing=True))).scalar_one()


async def _row(
    db: AsyncSession, kind: _Kind, subject_id: uuid.UUID, org_id: uuid.UUID
) -> Row | None:
    row = cast(Row | None, await db.get(kind.model, subject_id))
    return row if row is not None and row.org_id == org_id else None


async def rejudge(db: AsyncSession, rt: Runtime, row: Row, state: State, now: datetime) -> None:
    """Judge `row` from `state` and record its status; a change of status is an event."""
    health = None
    health_detail = ""
    if isinstance(state, NodeStatus) and state.health_url:
        health, health_detail = state.health_ok, state.health_detail
    reported = state.reported_at
    heartbeat = state.channel_open and reported is not None and now - reported <= stale_after(rt)
    silence = f"no status message since {reported:%Y-%m-%d %H:%M:%S} UTC" if reported else ""
    status, detail = judge(
        Evidence(
            heartbeat=heartbeat,
            ever_reported=reported is not None,
            problems=tuple(state.problems or ()),
            health=health,
            health_detail=health_detail,
            silence=silence,
        )
    )
    before = {"status": row.status, "detail": row.status_detail}
    row.status, row.status_detail = status, detail
    if status != before["status"]:
        _event(db, rt, row, state, before, {"status": status, "detail": detail}, now)


def _event(
    db: AsyncSession,
    rt: Runtime,
    row: Row,
    state: State,
    before: dict[str, Any],
    after: dict[str, Any],
    now: datetime,
) -> None:
    budget = EventBudget(state.events_window_start, state.events_in_window, state.events_suppressed)
    logged = budget.spend(now, rt.settings.status_events_per_hour)
    if logged and budget.suppressed:
        after = after | {"suppressed": budget.suppressed}  # changes not logged since the last
        budget.suppressed = 0
    state.events_window_start = budget.window_start
    state.events_in_window = budget.in_window
    state.events_suppressed = budget.suppressed
    if logged:
        name = "node" if isinstance(row, IngressNode) else "agent"
        audit.record(
            db,
            ACTOR,
            f"{name}.status.changed",
            org_id=row.org_id,
            target=audit.Target(name, row.id, row.name),
            before=before,
            after=after,
        )


async def _chart(
    db: AsyncSession,
    rt: Runtime,
    subject: ChannelSubject,
    state: State,
    report: StatusReport,
    now: datetime,
) -> None:
    """Add the report's traffic deltas to the time series; keep its counters as baseline."""
    reported = {service.name: traffic.counters_of(service) for service in report.services}
    in_flight = {service.name: service.in_flight for service in report.services}
    baseline = traffic.Baseline(state.reported_at, state.started_at, state.counters or {})
    deltas = traffic.deltas(baseline, reported, report.started_at, now, stale_after(rt))
    state.counters = {name: list(value) for name, value in reported.items()}
    ids = await _service_ids(db, subject.org_id, list(reported))
    await traffic.add(
        db,
        org_id=subject.org_id,
        reporter_kind=subject.kind,
        reporter_id=subject.id,
        bucket=traffic.bucket_of(now, rt.settings.status_bucket_seconds),
        rows=[
            (ids[name], deltas.get(name, (0, 0, 0, 0)), in_flight[name])
            for name in reported
            if name in ids
        ],
    )


async def _service_ids(
    db: AsyncSession, org_id: uuid.UUID, names: list[str]
) -> dict[str, uuid.UUID]:
    """Services of `org_id` by name (names of other organisations' services match nothing)."""
    if not names:
        return {}
    query = select(Service.name, Service.id).where(
        Service.org_id == org_id, Service.name.in_(names)
    )
    return {str(name): service_id for name, service_id in await db.execute(query)}


async def _derived_problem(
    db: AsyncSession, rt: Runtime, row: Row, report: StatusReport, peers: int, now: datetime
) -> str | None:
    """A problem the report shows without saying so: nobody to carry traffic.

    Only once the process has run for `stale_after` (its peers need a moment to connect)."""
    if peers or now - report.started_at <= stale_after(rt):
        return None
    if isinstance(row, IngressNode):
        routed = await _routed_services(db, row)
        return f"no agent connected, although it routes {routed} service(s)" if routed else None
    usable = await _usable_nodes(db, row)
    return f"connected to none of its {usable} ingress node(s)" if usable else None


async def _routed_services(db: AsyncSession, node: IngressNode) -> int:
    """Enabled services of the node's organisation with an enabled agent that may use it."""
    query = (
        select(Service.id, EdgeAgent)
        .join(ServiceAgent, ServiceAgent.service_id == Service.id)
        .join(EdgeAgent, EdgeAgent.id == ServiceAgent.agent_id)
        .where(
            Service.org_id == node.org_id,
            Service.enabled.is_(True),
            EdgeAgent.org_id == node.org_id,
            EdgeAgent.enabled.is_(True),
        )
    )
    return len(
        {service_id for service_id, agent in await db.execute(query) if may_use(agent, node)}
    )


async def _usable_nodes(db: AsyncSession, agent: EdgeAgent) -> int:
    query = select(IngressNode).where(
        IngressNode.org_id == agent.org_id, IngressNode.enabled.is_(True)
    )
    return sum(1 for node in (await db.execute(query)).scalars() if may_use(agent, node))
