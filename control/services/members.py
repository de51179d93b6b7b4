"""Members of an organisation: list, change a role, remove (or leave).

Rules: admins manage non-owners; only owners grant, change or remove the owner role; the last
owner can neither be demoted nor removed; anyone may leave (but the last owner).
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from control import audit
from control.auth.roles import Permission, Role
from control.db.models import Membership, User
from control.schemas.orgs import MemberOut, MemberUpdateIn
from control.services.context import OrgContext
from control.services.errors import Conflict, NotFound
from control.services.scoped import PageRequest, PageResult, like_pattern, paginate


async def list_members(
    db: AsyncSession, ctx: OrgContext, page: PageRequest, q: str | None = None
) -> PageResult:
    ctx.require(Permission.MEMBERS_READ)
    query = (
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.org_id == ctx.org_id)
        .order_by(Membership.created_at, Membership.id)
    )
    if q:
        pattern = like_pattern(q)
        query = query.where(
            func.lower(User.email).like(pattern, escape="\\")
            | func.lower(User.name).like(pattern, escape="\\")
        )
    async with db.begin():
        result = await paginate(db, query.with_only_columns(Membership.id), page)
        rows = await _members(db, list(result.rows))
    return PageResult(rows, result.total, result.limit, result.offset)


async def _members(db: AsyncSession, ids: list[uuid.UUID]) -> list[MemberOut]:
    if not ids:
        return []
    found = await db.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.id.in_(ids))
    )
    by_id = {m.id: _out(m, u) for m, u in found}
    return [by_id[i] for i in ids]


def _out(membership: Membership, user: User) -> MemberOut:
    return MemberOut(
        user_id=user.id,
        email=user.email,
        name=user.name,
        role=Role(membership.role),
        joined_at=membership.created_at,
    )


async def update_role(
    db: AsyncSession, ctx: OrgContext, user_id: uuid.UUID, data: MemberUpdateIn
) -> MemberOut:
    ctx.require(Permission.MEMBERS_MANAGE)
    async with db.begin():
        membership, user = await _find(db, ctx, user_id)
        old = Role(membership.role)
        if Role.OWNER in (old, data.role):
            ctx.require(Permission.OWNERS_MANAGE)
        if old is Role.OWNER and data.role is not Role.OWNER:
            await _keep_an_owner(db, ctx.org_id)
        membership.role = data.role
        audit.record(
            db,
            ctx.actor,
            "member.update",
            org_id=ctx.org_id,
            target=audit.Target("user", user.id, user.email),
            before={"role": old.value},
            after={"role": data.role.value},
        )
    return _out(membership, user)


async def remove(db: AsyncSession, ctx: OrgContext, user_id: uuid.UUID) -> None:
    leaving = ctx.principal.user_id == user_id
    if not leaving:
        ctx.require(Permission.MEMBERS_MANAGE)
    async with db.begin():
        membership, user = await _find(db, ctx, user_id)
        if membership.role == Role.OWNER:
            if not leaving:
                ctx.require(Permission.OWNERS_MANAGE)
            await _keep_an_owner(db, ctx.org_id)
        await db.delete(membership)
        audit.record(
            db,
            ctx.actor,
            "member.leave" if leaving else "member.remove",
            org_id=ctx.org_id,
            target=audit.Target("user", user.id, user.email),
            before={"role": membership.role},
        )


async def _find(db: AsyncSession, ctx: OrgContext, user_id: uuid.UUID) -> tuple[Membership, User]:
    found = (
        await db.execute(
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.org_id == ctx.org_id, Membership.user_id == user_id)
        )
    ).first()
    if found is None:
        raise NotFound("no such member in this organisation")
    membership, user = found
    return membership, user


async def _keep_an_owner(db: AsyncSession, org_id: uuid.UUID) -> None:
    owners = await db.execute(
        select(func.count(Membership.id)).where(
            Membership.org_id == org_id, Membership.role == Role.OWNER
        )
    )
    if owners.scalar_one() <= 1:
        raise Conflict("an organisation needs at least one owner")
