"""Server-side sessions: create (at login, always a new id), look up with idle and absolute
timeouts, and end. The cookie holds a 256-bit random secret; the table holds its SHA-256.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from control.auth.tokens import csrf_token, digest, new_secret
from control.db.models import User, UserSession
from control.runtime import Runtime
from control.services.context import Client

COOKIE_NAME = "__Host-kokoa_session"
CSRF_HEADER = "X-CSRF-Token"
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str  # the cookie value: shown to the browser once, never stored
    row: UserSession
    csrf: str


def start(db: AsyncSession, rt: Runtime, user: User, client: Client) -> NewSession:
    """A fresh session for `user` (added to the caller's transaction)."""
    token = new_secret()
    now = rt.now()
    row = UserSession(
        token_hash=digest(token),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + rt.settings.session_absolute_timeout,
        client_ip=client.ip,
        user_agent=(client.user_agent or "")[:512] or None,
    )
    db.add(row)
    return NewSession(token, row, csrf_token(rt.secret, row.token_hash))


async def find(db: AsyncSession, rt: Runtime, token: str) -> tuple[UserSession, User] | None:
    """The live session for a cookie value and its active user; ends it if timed out."""
    found = (
        await db.execute(
            select(UserSession, User)
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.token_hash == digest(token))
        )
    ).first()
    if found is None:
        return None
    session, user = found
    now = rt.now()
    if not user.is_active or expired(rt, session, now):
        await db.delete(session)
        return None
    if now - session.last_seen_at >= min(TOUCH_EVERY, rt.settings.session_idle_timeout / 10):
        session.last_seen_at = now
    return session, user


async def purge_expired(db: AsyncSession, rt: Runtime, user_id: uuid.UUID) -> None:
    """Delete `user_id`'s sessions that have timed out (at login and when listing them)."""
    now = rt.now()
    await db.execute(
        delete(UserSession).where(
            UserSession.user_id == user_id,
            (UserSession.expires_at <= now)
            | (UserSession.last_seen_at <= now - rt.settings.session_idle_timeout),
        )
    )


def expired(rt: Runtime, session: UserSession, now: datetime) -> bool:
    idle_end = session.last_seen_at + rt.settings.session_idle_timeout
    return now >= session.expires_at or now >= idle_end


async def end(db: AsyncSession, token: str | None) -> None:
    """Delete the session a cookie value names, if any (logout, rotation at login)."""
    if token:
        await db.execute(delete(UserSession).where(UserSession.token_hash == digest(token)))


async def end_all(db: AsyncSession, user_id: uuid.UUID, *, keep: uuid.UUID | None = None) -> int:
    """Delete every session of a user (but `keep`); returns how many ended."""
    query = delete(UserSession).where(UserSession.user_id == user_id)
    if keep is not None:
        query = query.where(UserSession.id != keep)
    result = await db.execute(query)
    return int(result.rowcount)  # type: ignore[attr-defined]


def csrf_for(rt: Runtime, session: UserSession) -> str:
    return csrf_token(rt.secret, session.token_hash)
