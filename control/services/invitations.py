"""Invitations by link: an admin creates one (the token is shown once), the invitee signs up
with it or, already signed in, accepts it. Single use, expiring, optionally bound to an e-mail.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from control import audit
from control.auth.roles import Permission, Role
from control.auth.tokens import digest, new_secret
from control.db.models import Invitation, Membership, User
from control.runtime import Runtime
from control.schemas.orgs import InvitationCreated, InvitationIn, InvitationOut
from control.services.context import Actor, OrgContext, Principal
from control.services.errors import Conflict, InvitationInvalid, UserRequired
from control.services.scoped import PageRequest, PageResult, get_scoped, paginate

ACCEPT_PATH = "/accept-invitation"


async def create(
    db: AsyncSession, rt: Runtime, ctx: OrgContext, data: InvitationIn
) -> InvitationCreated:
    ctx.require(Permission.INVITATIONS_MANAGE)
    if data.role is Role.OWNER:
        ctx.require(Permission.OWNERS_MANAGE)
    token = new_secret()
    ttl = timedelta(hours=data.expires_in_hours) if data.expires_in_hours else None
    now = rt.now()
    row = Invitation(
        org_id=ctx.org_id,
        email=data.email.lower() if data.email else None,
        role=data.role,
        token_hash=digest(token),
        created_by_id=ctx.principal.user_id,
        created_at=now,
        expires_at=now + (ttl or rt.settings.invitation_ttl),
    )
    async with db.begin():
        db.add(row)
        await db.flush()
        summary = {"role": row.role, "email": row.email, "expires_at": row.expires_at}
        target = audit.Target("invitation", row.id, row.email or "")
        audit.record(
            db, ctx.actor, "invitation.create", org_id=ctx.org_id, target=target, after=summary
        )
    # The token travels in the fragment: browsers never send it to a server or in Referer.
    link = f"{rt.settings.public_url}{ACCEPT_PATH}#token={token}"
    return InvitationCreated(**_out(row).model_dump(), token=token, link=link)


async def list_invitations(db: AsyncSession, ctx: OrgContext, page: PageRequest) -> PageResult:
    ctx.require(Permission.INVITATIONS_MANAGE)
    query = (
        select(Invitation)
        .where(Invitation.org_id == ctx.org_id)
        .order_by(Invitation.created_at.desc(), Invitation.id)
    )
    async with db.begin():
        result = await paginate(db, query, page)
    return PageResult([_out(r) for r in result.rows], result.total, result.limit, result.offset)


async def revoke(db: AsyncSession, ctx: OrgContext, invitation_id: uuid.UUID) -> None:
    ctx.require(Permission.INVITATIONS_MANAGE)
    async with db.begin():
        row = await get_scoped(db, Invitation, ctx.org_id, invitation_id, what="invitation")
        await db.delete(row)
        target = audit.Target("invitation", row.id, row.email or "")
        audit.record(
            db,
            ctx.actor,
            "invitation.revoke",
            org_id=ctx.org_id,
            target=target,
            before={"role": row.role, "email": row.email},
        )


async def accept(db: AsyncSession, rt: Runtime, principal: Principal, token: str) -> uuid.UUID:
    """A signed-in user joins the organisation of an invitation; returns its id."""
    if principal.user_id is None:
        raise UserRequired()
    async with db.begin():
        user = await db.get(User, principal.user_id)
        if user is None:
            raise UserRequired()
        return await redeem(db, rt, token, user, principal.actor)


async def redeem(db: AsyncSession, rt: Runtime, token: str, user: User, actor: Actor) -> uuid.UUID:
    """Use an invitation for `user` inside the caller's transaction (single use, atomic)."""
    now = rt.now()
    row = (
        await db.execute(select(Invitation).where(Invitation.token_hash == digest(token)))
    ).scalar()
    if row is None or row.accepted_at is not None or row.expires_at <= now:
        raise InvitationInvalid()
    if row.email and row.email != user.email:
        raise InvitationInvalid("this invitation is for another e-mail address")
    claimed = await db.execute(
        update(Invitation)
        .where(Invitation.id == row.id, Invitation.accepted_at.is_(None))
        .values(accepted_at=now, accepted_by_id=user.id)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        raise InvitationInvalid()
    existing = await db.execute(
        select(Membership.id).where(Membership.org_id == row.org_id, Membership.user_id == user.id)
    )
    if existing.first():
        raise Conflict("you are already a member of this organisation")
    db.add(Membership(org_id=row.org_id, user_id=user.id, role=row.role, created_at=now))
    target = audit.Target("user", user.id, user.email)
    audit.record(
        db,
        actor,
        "invitation.accept",
        org_id=row.org_id,
        target=target,
        after={"role": row.role, "invitation_id": row.id},
    )
    return row.org_id


def _out(row: Invitation) -> InvitationOut:
    return InvitationOut.model_validate(row)
