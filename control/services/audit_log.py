"""Reading the audit log of an organisation: filters, pages, and CSV/JSON export."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from control.auth.roles import Permission
from control.db.models import AuditEvent
from control.schemas.audit import AuditEventOut
from control.services.context import OrgContext
from control.services.scoped import PageRequest, PageResult, paginate

EXPORT_BATCH = 500
EXPORT_MAX = 100_000
CSV_COLUMNS = list(AuditEventOut.model_fields)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor_id: uuid.UUID | None = None
    action: str | None = None  # exact, or a prefix ending in '*' ("service.*")
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _query(ctx: OrgContext, f: AuditFilter) -> Select[Any]:
    query = select(AuditEvent).where(AuditEvent.org_id == ctx.org_id)
    if f.actor_id is not None:
        query = query.where(AuditEvent.actor_id == f.actor_id)
    if f.action:
        if f.action.endswith("*"):
            prefix = f.action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(AuditEvent.action.like(prefix + "%", escape="\\"))
        else:
            query = query.where(AuditEvent.action == f.action)
    if f.target_type:
        query = query.where(AuditEvent.target_type == f.target_type)
    if f.target_id:
        query = query.where(AuditEvent.target_id == f.target_id)
    if f.since is not None:
        query = query.where(AuditEvent.at >= f.since)
    if f.until is not None:
        query = query.where(AuditEvent.at < f.until)
    return query.order_by(AuditEvent.id.desc())


async def list_events(
    db: AsyncSession, ctx: OrgContext, filters: AuditFilter, page: PageRequest
) -> PageResult:
    ctx.require(Permission.AUDIT_READ)
    async with db.begin():
        result = await paginate(db, _query(ctx, filters), page)
    items = [AuditEventOut.model_validate(row) for row in result.rows]
    return PageResult(items, result.total, result.limit, result.offset)


def authorise_export(ctx: OrgContext) -> None:
    ctx.require(Permission.AUDIT_EXPORT)


async def export(
    db: AsyncSession, ctx: OrgContext, filters: AuditFilter, fmt: str
) -> AsyncIterator[str]:
    """The matching events, newest first, as CSV or JSON text chunks (batched reads)."""
    authorise_export(ctx)
    if fmt == "csv":
        yield _csv_line(CSV_COLUMNS)
    else:
        yield "["
    first = True
    async for event in _events(db, ctx, filters):
        if fmt == "csv":
            yield _csv_line([_cell(getattr(event, c)) for c in CSV_COLUMNS])
        else:
            yield ("" if first else ",") + "\n" + event.model_dump_json()
        first = False
    if fmt != "csv":
        yield "\n]\n"


async def _events(
    db: AsyncSession, ctx: OrgContext, filters: AuditFilter
) -> AsyncIterator[AuditEventOut]:
    last_id: int | None = None
    sent = 0
    while sent < EXPORT_MAX:
        query = _query(ctx, filters)
        if last_id is not None:
            query = query.where(AuditEvent.id < last_id)
        async with db.begin():
            rows = (await db.execute(query.limit(EXPORT_BATCH))).scalars().all()
        if not rows:
            return
        for row in rows:
            yield AuditEventOut.model_validate(row)
        sent += len(rows)
        last_id = rows[-1].id


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    # Spreadsheet formula injection: a cell starting with = + - @ is shown as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()
