"""The signed-in user's own things: profile, memberships, sessions and security events."""

from __future__ import annotations

import uuid

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from control import audit
from control.auth import sessions
from control.auth.roles import Role
from control.db.models import AuditEvent, Membership, Organisation, User, UserSession
from control.runtime import Runtime
from control.schemas.accounts import (
    MembershipOut,
    MeOut,
    SessionInfo,
    SessionOut,
    UserOut,
    UserUpdateIn,
)
from control.services.context import Principal
from control.services.errors import NotFound, Unauthenticated, UserRequired
from control.services.scoped import PageRequest, PageResult, paginate


def user_id_of(principal: Principal) -> uuid.UUID:
    if principal.user_id is None:
        raise UserRequired()
    return principal.user_id


async def me(db: AsyncSession, principal: Principal) -> MeOut:
    user_id = user_id_of(principal)
    async with db.begin():
        user = await db.get(User, user_id)
        rows = await db.execute(
            select(Membership.org_id, Organisation.name, Membership.role)
            .join(Organisation, Organisation.id == Membership.org_id)
            .where(Membership.user_id == user_id)
            .order_by(Organisation.name, Organisation.id)
        )
    if user is None:
        raise UserRequired()
    memberships = [MembershipOut(org_id=o, org_name=n, role=Role(r)) for o, n, r in rows]
    return MeOut(user=UserOut.model_validate(user), memberships=memberships)


async def session_info(db: AsyncSession, rt: Runtime, principal: Principal) -> SessionInfo:
    if principal.session_id is None or principal.user_id is None:
        raise Unauthenticated("no session: this endpoint is for cookie logins")
    async with db.begin():
        session = await db.get(UserSession, principal.session_id)
        user = await db.get(User, principal.user_id)
    if session is None or user is None:
        raise Unauthenticated("the session has ended")
    return SessionInfo(
        user=UserOut.model_validate(user),
        csrf_token=sessions.csrf_for(rt, session),
        expires_at=session.expires_at,
    )


async def update_me(db: AsyncSession, principal: Principal, data: UserUpdateIn) -> UserOut:
    user_id = user_id_of(principal)
    async with db.begin():
        user = await db.get(User, user_id)
        if user is None:
            raise UserRequired()
        before, user.name = {"name": user.name}, data.name
        target = audit.Target("user", user.id, user.email)
        after = {"name": data.name}
        audit.record(db, principal.actor, "user.update", target=target, before=before, after=after)
    return UserOut.model_validate(user)


async def list_sessions(db: AsyncSession, rt: Runtime, principal: Principal) -> list[SessionOut]:
    """The caller's live sessions (timed-out ones are deleted first, never listed)."""
    user_id = user_id_of(principal)
    async with db.begin():
        await sessions.purge_expired(db, rt, user_id)
        rows = (
            await db.execute(
                select(UserSession)
                .where(UserSession.user_id == user_id)
                .order_by(UserSession.created_at.desc(), UserSession.id)
            )
        ).scalars()
        found = [SessionOut.model_validate(row) for row in rows]
    return [s.model_copy(update={"current": s.id == principal.session_id}) for s in found]


async def revoke_session(db: AsyncSession, principal: Principal, session_id: uuid.UUID) -> None:
    user_id = user_id_of(principal)
    async with db.begin():
        result = await db.execute(
            delete(UserSession).where(UserSession.id == session_id, UserSession.user_id == user_id)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            raise NotFound("no such session")
        target = audit.Target("session", session_id)
        audit.record(db, principal.actor, "auth.session.revoked", target=target)


async def security_events(db: AsyncSession, principal: Principal, page: PageRequest) -> PageResult:
    """Auth events by or about this user that belong to no organisation (logins, …)."""
    user_id = user_id_of(principal)
    about_me = and_(AuditEvent.target_type == "user", AuditEvent.target_id == str(user_id))
    query = (
        select(AuditEvent)
        .where(AuditEvent.org_id.is_(None), or_(AuditEvent.actor_id == user_id, about_me))
        .order_by(AuditEvent.id.desc())
    )
    async with db.begin():
        return await paginate(db, query, page)
