"""Traffic time series for the API: which reports, grouped how, over which window and step.

- `by=service` (default): one series per service, from the ingress nodes' reports (what the
  public sent), optionally of one node (`node_id`) or, from the agents' reports, of one agent
  (`agent_id`);
- `by=node`: one series per ingress node (its reports), optionally of one service;
- `by=agent`: one series per edge agent (its reports), optionally of one service.
A node and an agent both count a request that crosses them, so the two sources are never
added together.

The window: `until` (default now, never later than now) back to `since` (default one hour
earlier, never before the retention), in steps of `step` seconds (rounded up to a multiple of
the bucket width; by default about 120 points). Points are dense (zeros where nothing was
reported) and at most MAX_POINTS per series; series with no traffic in the window are left out,
the rest ordered by requests, the top `limit` returned.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control.auth.roles import Permission
from control.db.models import EdgeAgent, IngressNode, Service, TrafficBucket
from control.runtime import Runtime
from control.schemas.status import GroupBy, TrafficOut, TrafficPoint, TrafficSeries
from control.services import traffic
from control.services.context import OrgContext
from control.services.errors import InvalidInput
from control.services.scoped import get_scoped

MAX_POINTS = 720
DEFAULT_POINTS = 120
DEFAULT_SPAN = timedelta(hours=1)
NAMED: dict[str, Any] = {"service": Service, "node": IngressNode, "agent": EdgeAgent}


@dataclass(frozen=True, slots=True)
class TrafficQuery:
    by: GroupBy = "service"
    service_id: uuid.UUID | None = None
    node_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    step: int | None = None
    limit: int = 10


def window(
    rt: Runtime, since: datetime | None, until: datetime | None, step: int | None
) -> traffic.Window:
    """The aligned window for the query's times, or InvalidInput."""
    now = rt.now()
    oldest = now - rt.settings.status_retention
    end = min(_utc(until), now) if until is not None else now
    if end <= oldest:
        raise InvalidInput("until is older than the retention of the time series")
    start = max(_utc(since), oldest) if since is not None else max(end - DEFAULT_SPAN, oldest)
    if start >= end:
        raise InvalidInput("since must be before until")
    width = rt.settings.status_bucket_seconds
    span = (end - start).total_seconds()
    wanted = step if step is not None else span / DEFAULT_POINTS
    step = max(width, math.ceil(wanted / width) * width)
    first = math.floor(start.timestamp() / step) * step
    last = math.ceil(end.timestamp() / step) * step
    points = (last - first) // step
    if points > MAX_POINTS:
        least = math.ceil(span / MAX_POINTS / width) * width
        raise InvalidInput(f"{points} points per series; at most {MAX_POINTS}: use step ≥ {least}")
    return traffic.Window(first, last, step)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def report(db: AsyncSession, rt: Runtime, ctx: OrgContext, q: TrafficQuery) -> TrafficOut:
    ctx.require(Permission.STATUS_READ)
    source = "agent" if q.by == "agent" or q.agent_id is not None else "ingress"
    if source == "agent" and (q.by == "node" or q.node_id is not None):
        raise InvalidInput("node traffic comes from node reports: no agent with by=node or node_id")
    span = window(rt, q.since, q.until, q.step)
    t = TrafficBucket
    group = t.service_id if q.by == "service" else t.reporter_id
    where: list[Any] = []
    async with db.begin():
        if q.service_id is not None:
            await get_scoped(db, Service, ctx.org_id, q.service_id, what="service")
            where.append(t.service_id == q.service_id)
        for model, subject, what in (
            (IngressNode, q.node_id, "ingress node"),
            (EdgeAgent, q.agent_id, "edge agent"),
        ):
            if subject is not None:
                await get_scoped(db, model, ctx.org_id, subject, what=what)
                where.append(t.reporter_id == subject)
        found = await traffic.series(
            db, ctx.org_id, source=source, group=group, window=span, where=where
        )
        names = await _names(db, ctx.org_id, NAMED[q.by], list(found))
    series = [
        _series(key, names[key], points, span) for key, points in found.items() if key in names
    ]
    series.sort(key=lambda s: (-s.requests, s.name))
    return TrafficOut(
        by=q.by,
        source=source,
        since=traffic.moment(span.since),
        until=traffic.moment(span.until),
        step=span.step,
        total=len(series),
        series=series[: q.limit],
    )


async def _names(db: AsyncSession, org_id: uuid.UUID, model: Any, ids: list[Any]) -> dict[Any, str]:
    """Names of the organisation's rows among `ids` (deleted reporters have none)."""
    if not ids:
        return {}
    query = select(model.id, model.name).where(model.org_id == org_id, model.id.in_(ids))
    return {row_id: str(name) for row_id, name in await db.execute(query)}


def _series(
    key: uuid.UUID, name: str, found: dict[int, traffic.Point], span: traffic.Window
) -> TrafficSeries:
    zero = (0, 0, 0, 0, 0)
    points = [
        TrafficPoint(
            at=traffic.moment(slot),
            requests=value[0],
            errors=value[1],
            bytes_in=value[2],
            bytes_out=value[3],
            max_in_flight=value[4],
        )
        for slot in span.slots()
        for value in (found.get(slot, zero),)
    ]
    return TrafficSeries(id=key, name=name, requests=sum(p.requests for p in points), points=points)
