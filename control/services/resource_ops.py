"""What services, ingress nodes and edge agents share: list filters, enable/disable, delete.

Each resource module describes itself with a `Kind` (its model, names and permissions); the
functions here do the rest the same way for all three, so lists, filters and pagination
behave identically everywhere.

Disabling or deleting a node or an agent (a Kind with `holder`) revokes every certificate
issued to it in the same transaction (docs/enrollment.md, "Revocation"); the control channel
learns of the commit on its own (control/channel/changes.py) and closes its channels.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from common.enroll.messages import Kind as HolderKind
from control import audit
from control.auth.roles import Permission
from control.db.base import utcnow
from control.db.models import EdgeAgent, IngressNode, Service
from control.services import certificates
from control.services.context import OrgContext
from control.services.errors import Conflict, InvalidInput
from control.services.scoped import PageRequest, PageResult, get_scoped, like_pattern, paginate

R = TypeVar("R", Service, IngressNode, EdgeAgent)


@dataclass(frozen=True)
class Kind(Generic[R]):
    model: type[R]
    what: str  # "service", "ingress node", …
    audit_name: str  # "service", "node", "agent"
    read: Permission
    write: Permission
    toggle: Permission
    summary: Callable[[R], dict[str, Any]]
    search: tuple[str, ...] = ("name",)
    label_column: str | None = None
    holder: HolderKind | None = None  # nodes and agents hold certificates

    async def revoke(self, db: AsyncSession, row: R, now: datetime) -> None:
        if self.holder is not None:
            await certificates.revoke_subject(db, self.holder, row.org_id, row.id, now)

    def target(self, row: R) -> audit.Target:
        return audit.Target(self.audit_name, row.id, row.name)


@dataclass(frozen=True, slots=True)
class ListFilter:
    q: str | None = None
    enabled: bool | None = None
    labels: tuple[str, ...] = ()


def parse_labels(selectors: tuple[str, ...]) -> list[tuple[str, str]]:
    pairs = []
    for selector in selectors:
        key, sep, value = selector.partition("=")
        if not sep or not key:
            raise InvalidInput(f"label filter {selector!r} is not key=value")
        pairs.append((key, value))
    return pairs


def list_query(kind: Kind[R], ctx: OrgContext, filters: ListFilter) -> Select[Any]:
    model = kind.model
    query = select(model).where(model.org_id == ctx.org_id)
    if filters.q:
        pattern = like_pattern(filters.q)
        columns = [func.lower(getattr(model, name)) for name in kind.search]
        query = query.where(or_(*(column.like(pattern, escape="\\") for column in columns)))
    if filters.enabled is not None:
        query = query.where(model.enabled.is_(filters.enabled))
    if kind.label_column:
        labels = getattr(model, kind.label_column)
        for key, value in parse_labels(filters.labels):
            query = query.where(labels[key].as_string() == value)
    return query.order_by(model.name, model.id)


async def list_rows(
    db: AsyncSession,
    kind: Kind[R],
    ctx: OrgContext,
    filters: ListFilter,
    page: PageRequest,
    query: Select[Any] | None = None,
) -> PageResult:
    ctx.require(kind.read)
    async with db.begin():
        return await paginate(
            db, query if query is not None else list_query(kind, ctx, filters), page
        )


async def get_row(db: AsyncSession, kind: Kind[R], ctx: OrgContext, row_id: uuid.UUID) -> R:
    ctx.require(kind.read)
    async with db.begin():
        return await get_scoped(db, kind.model, ctx.org_id, row_id, what=kind.what)


async def create_row(db: AsyncSession, kind: Kind[R], ctx: OrgContext, row: R) -> R:
    """Add `row` (built by the caller, of the caller's organisation) if its name is free."""
    ctx.require(kind.write)
    async with db.begin():
        await _check_name(db, kind, ctx.org_id, row.name, None)
        db.add(row)
        await db.flush()
        audit.record(
            db,
            ctx.actor,
            f"{kind.audit_name}.create",
            org_id=ctx.org_id,
            target=kind.target(row),
            after=kind.summary(row),
        )
    return row


async def update_row(
    db: AsyncSession,
    kind: Kind[R],
    ctx: OrgContext,
    row_id: uuid.UUID,
    changes: dict[str, Any],
    now: datetime,
    check: Callable[[R], None] | None = None,
) -> R:
    """Apply `changes` (field -> value); `check` sees the changed row before the commit."""
    ctx.require(kind.write)
    async with db.begin():
        row = await get_scoped(db, kind.model, ctx.org_id, row_id, what=kind.what)
        name = changes.get("name")
        if name is not None:
            await _check_name(db, kind, ctx.org_id, name, row.id)
        before = kind.summary(row)
        for field, value in changes.items():
            setattr(row, field, value)
        if check is not None:
            check(row)
        row.updated_at = now
        old, new = audit.changes(before, kind.summary(row))
        audit.record(
            db,
            ctx.actor,
            f"{kind.audit_name}.update",
            org_id=ctx.org_id,
            target=kind.target(row),
            before=old,
            after=new,
        )
    return row


async def _check_name(
    db: AsyncSession, kind: Kind[R], org_id: uuid.UUID, name: str, exclude: uuid.UUID | None
) -> None:
    if await name_taken(db, kind, org_id, name, exclude):
        article = "an" if kind.what[0] in "aeiou" else "a"
        raise Conflict(f"{article} {kind.what} named {name!r} already exists")


async def set_enabled(
    db: AsyncSession,
    kind: Kind[R],
    ctx: OrgContext,
    row_id: uuid.UUID,
    enabled: bool,
    now: datetime,
) -> R:
    ctx.require(kind.toggle)
    async with db.begin():
        row = await get_scoped(db, kind.model, ctx.org_id, row_id, what=kind.what)
        if row.enabled != enabled:
            row.enabled, row.updated_at = enabled, now
            if not enabled:
                await kind.revoke(db, row, now)
            verb = "enable" if enabled else "disable"
            audit.record(
                db,
                ctx.actor,
                f"{kind.audit_name}.{verb}",
                org_id=ctx.org_id,
                target=kind.target(row),
                before={"enabled": not enabled},
                after={"enabled": enabled},
            )
    return row


async def delete_row(db: AsyncSession, kind: Kind[R], ctx: OrgContext, row_id: uuid.UUID) -> None:
    ctx.require(kind.write)
    async with db.begin():
        row = await get_scoped(db, kind.model, ctx.org_id, row_id, what=kind.what)
        before = kind.summary(row)
        await kind.revoke(db, row, utcnow())
        await db.delete(row)
        audit.record(
            db,
            ctx.actor,
            f"{kind.audit_name}.delete",
            org_id=ctx.org_id,
            target=kind.target(row),
            before=before,
        )


async def name_taken(
    db: AsyncSession, kind: Kind[R], org_id: uuid.UUID, name: str, exclude: uuid.UUID | None
) -> bool:
    model = kind.model
    query = select(model.id).where(model.org_id == org_id, model.name == name)
    if exclude is not None:
        query = query.where(model.id != exclude)
    return (await db.execute(query)).first() is not None
