"""Who is calling: resolve a bearer token or a session cookie to a Principal.

A request with an `Authorization` header is judged by it alone (no fallback to the cookie).
Cookie-authenticated unsafe requests must pass the CSRF check (control.auth.csrf) first.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from control.auth import sessions
from control.auth.roles import Role
from control.auth.tokens import digest
from control.db.models import ApiToken, User, UserSession
from control.runtime import Runtime
from control.services.context import Actor, Client, Principal
from control.services.errors import Unauthenticated

TOKEN_TOUCH_SECONDS = 60


async def from_bearer(db: AsyncSession, rt: Runtime, token: str, client: Client) -> Principal:
    async with db.begin():
        row = (
            await db.execute(select(ApiToken).where(ApiToken.token_hash == digest(token)))
        ).scalar()
        now = rt.now()
        if row is None or row.revoked_at is not None:
            raise Unauthenticated("unknown or revoked API token")
        if row.expires_at is not None and row.expires_at <= now:
            raise Unauthenticated("the API token has expired")
        if row.kind == "personal" and not await _user_active(db, row):
            raise Unauthenticated("the token's user is disabled")
        if (
            row.last_used_at is None
            or (now - row.last_used_at).total_seconds() > TOKEN_TOUCH_SECONDS
        ):
            row.last_used_at = now
    actor = Actor("token", row.id, f"token:{row.name}", client)
    if row.kind == "personal":
        return Principal(actor=actor, user_id=row.user_id)
    return Principal(
        actor=actor, user_id=None, token_org_id=row.org_id, token_role=Role(row.role or Role.VIEWER)
    )


async def _user_active(db: AsyncSession, token: ApiToken) -> bool:
    user = await db.get(User, token.user_id) if token.user_id else None
    return user is not None and user.is_active


async def from_session(
    db: AsyncSession, rt: Runtime, token: str, client: Client
) -> tuple[Principal, UserSession]:
    async with db.begin():
        found = await sessions.find(db, rt, token)
    if found is None:
        raise Unauthenticated("the session has ended; log in again")
    session, user = found
    actor = Actor("user", user.id, user.email, client)
    return Principal(actor=actor, user_id=user.id, session_id=session.id), session
