"""Per-service traffic time series: counter deltas into buckets, series out, old buckets pruned.

Nodes and agents report cumulative counters per service (requests, errors, bytes in/out since
their process started) and the current in-flight count. Each report's difference from the
previous one is added to the bucket of the control plane's clock (`status_bucket_seconds`
wide), one row per (service, reporter, bucket); in-flight keeps the highest value seen.

Which differences count (`counts_from`):
- same process (same `started_at`), previous report at most `stale_after` ago: the difference;
  a counter lower than before means a restart that kept `started_at` (or a counter reset), and
  then the new value itself is the delta;
- a new process (another `started_at`) that started at most `stale_after` ago: its whole
  counters (they all happened since it started, i.e. recently);
- otherwise (first report after a longer silence: the control plane or the channel was down):
  nothing. The counters become the new baseline; traffic during the silence is not charted
  rather than piled into one bucket as a spike.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import BigInteger, Table, case, delete, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from control.db.models import TrafficBucket
from control.schemas.status import ServiceCounters
from control.services.upsert import upsert

Counters = tuple[int, int, int, int]  # requests, errors, bytes_in, bytes_out
PRUNE_BATCH = 5000  # buckets deleted per sweep at most (plus those sharing the last bucket)
TABLE = cast(Table, TrafficBucket.__table__)


def counters_of(service: ServiceCounters) -> Counters:
    return (service.requests, service.errors, service.bytes_in, service.bytes_out)


def delta(before: Counters | None, now: Counters) -> Counters:
    """What happened between two cumulative readings (a drop means a restart: take `now`)."""
    if before is None:
        return now
    return tuple(n if n < b else n - b for b, n in zip(before, now, strict=True))  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Baseline:
    """The previous report of one reporter, as its status row keeps it."""

    reported_at: datetime | None
    started_at: datetime | None
    counters: Mapping[str, Any]  # service name -> [requests, errors, bytes_in, bytes_out]


def counts_from(
    baseline: Baseline, started_at: datetime, now: datetime, stale_after: timedelta
) -> str | None:
    """ "previous" (diff against the baseline), "zero" (whole counters) or None (not charted)."""
    if baseline.started_at == started_at:
        recent = baseline.reported_at is not None and now - baseline.reported_at <= stale_after
        return "previous" if recent else None
    return "zero" if now - started_at <= stale_after else None


def deltas(
    baseline: Baseline,
    reported: Mapping[str, Counters],
    started_at: datetime,
    now: datetime,
    stale_after: timedelta,
) -> dict[str, Counters]:
    """The deltas to chart for each reported service name (empty: nothing to chart)."""
    mode = counts_from(baseline, started_at, now, stale_after)
    if mode is None:
        return {}
    found: dict[str, Counters] = {}
    for name, value in reported.items():
        previous = baseline.counters.get(name) if mode == "previous" else None
        before = _counters(previous) if previous is not None else None
        found[name] = delta(before, value)
    return found


def _counters(value: Any) -> Counters | None:
    if isinstance(value, list) and len(value) == 4 and all(isinstance(v, int) for v in value):
        return (value[0], value[1], value[2], value[3])
    return None


def bucket_of(moment: datetime, width: int) -> int:
    seconds = int(moment.timestamp())
    return seconds - seconds % width


async def add(
    db: AsyncSession,
    *,
    org_id: uuid.UUID,
    reporter_kind: str,
    reporter_id: uuid.UUID,
    bucket: int,
    rows: Iterable[tuple[uuid.UUID, Counters, int]],
) -> None:
    """Add (service id, delta, in-flight) rows to `bucket` of one reporter."""
    values = [
        {
            "service_id": service_id,
            "reporter_id": reporter_id,
            "bucket": bucket,
            "reporter_kind": reporter_kind,
            "org_id": org_id,
            "requests": d[0],
            "errors": d[1],
            "bytes_in": d[2],
            "bytes_out": d[3],
            "max_in_flight": in_flight,
        }
        for service_id, d, in_flight in sorted(rows, key=lambda row: row[0])
        if any(d) or in_flight
    ]
    table = TABLE

    def update(new: Any) -> dict[str, Any]:
        summed = {name: table.c[name] + new[name] for name in _SUMMED}
        flight = table.c.max_in_flight
        higher = case((new.max_in_flight > flight, new.max_in_flight), else_=flight)
        return summed | {"max_in_flight": higher}

    await upsert(db, table, values, ("service_id", "reporter_id", "bucket"), update)


_SUMMED = ("requests", "errors", "bytes_in", "bytes_out")


async def prune(db: AsyncSession, before: datetime) -> int:
    """Delete buckets older than `before`, about PRUNE_BATCH at most; returns how many."""
    cutoff = int(before.timestamp())
    boundary_query = (
        select(TrafficBucket.bucket)
        .where(TrafficBucket.bucket < cutoff)
        .order_by(TrafficBucket.bucket)
        .offset(PRUNE_BATCH)
        .limit(1)
    )
    boundary = (await db.execute(boundary_query)).scalar()
    limit = cutoff if boundary is None else min(cutoff, boundary)
    result = await db.execute(delete(TrafficBucket).where(TrafficBucket.bucket < limit))
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True, slots=True)
class Window:
    since: int  # Unix seconds, a multiple of step
    until: int  # exclusive, a multiple of step
    step: int

    @property
    def points(self) -> int:
        return (self.until - self.since) // self.step

    def slots(self) -> range:
        return range(self.since, self.until, self.step)


Point = tuple[int, int, int, int, int]  # requests, errors, bytes_in, bytes_out, max_in_flight


async def series(
    db: AsyncSession,
    org_id: uuid.UUID,
    *,
    source: str,
    group: Any,
    window: Window,
    where: Iterable[Any] = (),
) -> dict[Any, dict[int, Point]]:
    """Per value of `group` (a TrafficBucket column), per step start: the summed traffic.

    In-flight counts are summed across reporters within one bucket first (they are
    concurrent), then the highest bucket of each step is taken.
    """
    t = TrafficBucket
    inner = (
        select(
            group.label("key"),
            t.bucket.label("bucket"),
            *(func.sum(t.__table__.c[name]).label(name) for name in _SUMMED),
            func.sum(t.max_in_flight).label("in_flight"),
        )
        .where(
            t.org_id == org_id,
            t.reporter_kind == source,
            t.bucket >= window.since,
            t.bucket < window.until,
            *where,
        )
        .group_by(group, t.bucket)
        .subquery()
    )
    step = literal(window.step, BigInteger)
    slot = (inner.c.bucket - inner.c.bucket % step).label("slot")
    outer = select(
        inner.c.key,
        slot,
        *(func.sum(inner.c[name]) for name in _SUMMED),
        func.max(inner.c.in_flight),
    ).group_by(inner.c.key, slot)
    found: dict[Any, dict[int, Point]] = {}
    for row in await db.execute(outer):
        key, at, requests, errors, bytes_in, bytes_out, in_flight = tuple(row)
        found.setdefault(key, {})[int(at)] = (
            int(requests),
            int(errors),
            int(bytes_in),
            int(bytes_out),
            int(in_flight or 0),
        )
    return found


def moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
