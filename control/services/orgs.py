"""Organisations: which ones a caller is in (the OrgContext every org route starts from),
creating one, reading and renaming it."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control import audit
from control.auth.roles import Permission, Role
from control.db.models import Membership, Organisation, User
from control.runtime import Runtime
from control.schemas.orgs import OrgIn, OrgOut
from control.services import accounts
from control.services.context import OrgContext, Principal
from control.services.errors import NotFound, UserRequired


async def context(db: AsyncSession, principal: Principal, org_id: uuid.UUID) -> OrgContext:
    """The caller's role in `org_id`; NotFound when they are not in it (existence not told)."""
    if principal.is_service_account:
        if principal.token_org_id != org_id or principal.token_role is None:
            raise NotFound("no such organisation")
        return OrgContext(org_id, principal.token_role, principal)
    async with db.begin():
        role = (
            await db.execute(
                select(Membership.role).where(
                    Membership.org_id == org_id, Membership.user_id == principal.user_id
                )
            )
        ).scalar()
    if role is None:
        raise NotFound("no such organisation")
    return OrgContext(org_id, Role(role), principal)


async def list_mine(db: AsyncSession, principal: Principal) -> list[OrgOut]:
    async with db.begin():
        if principal.is_service_account:
            org = await db.get(Organisation, principal.token_org_id)
            pairs = [(org, principal.token_role)] if org else []
        else:
            rows = await db.execute(
                select(Organisation, Membership.role)
                .join(Membership, Membership.org_id == Organisation.id)
                .where(Membership.user_id == principal.user_id)
                .order_by(Organisation.name, Organisation.id)
            )
            pairs = [(org, Role(role)) for org, role in rows]
    return [_out(org, Role(role)) for org, role in pairs if role]


async def create(db: AsyncSession, rt: Runtime, principal: Principal, data: OrgIn) -> OrgOut:
    """Any user may start an organisation; they become its owner."""
    if principal.user_id is None:
        raise UserRequired()
    async with db.begin():
        user = await db.get(User, principal.user_id)
        if user is None:
            raise UserRequired()
        org = await accounts.create_owned_org(db, rt, user, data.name, principal.actor)
    return _out(org, Role.OWNER)


async def get(db: AsyncSession, ctx: OrgContext) -> OrgOut:
    ctx.require(Permission.ORG_READ)
    async with db.begin():
        org = await db.get(Organisation, ctx.org_id)
    if org is None:
        raise NotFound("no such organisation")
    return _out(org, ctx.role)


async def update(db: AsyncSession, ctx: OrgContext, data: OrgIn) -> OrgOut:
    ctx.require(Permission.ORG_UPDATE)
    async with db.begin():
        org = await db.get(Organisation, ctx.org_id)
        if org is None:
            raise NotFound("no such organisation")
        before, org.name = {"name": org.name}, data.name
        audit.record(
            db,
            ctx.actor,
            "org.update",
            org_id=org.id,
            target=audit.Target("organisation", org.id, org.name),
            before=before,
            after={"name": org.name},
        )
    return _out(org, ctx.role)


def _out(org: Organisation, role: Role) -> OrgOut:
    return OrgOut(id=org.id, name=org.name, created_at=org.created_at, role=role)
