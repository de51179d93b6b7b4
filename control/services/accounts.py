"""Sign-up, login, logout and password changes: the account's life, each step audited."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from control import audit
from control.auth import sessions
from control.auth.passwords import WeakPasswordError
from control.auth.roles import Role
from control.db.models import Membership, Organisation, User
from control.runtime import Runtime
from control.schemas.accounts import LoginIn, PasswordChangeIn, SignupIn
from control.services import invitations
from control.services.context import Actor, Client, Principal
from control.services.errors import (
    Conflict,
    InvalidCredentials,
    SignupClosed,
    Throttled,
    UserRequired,
    WeakPassword,
)

SIGNUP_LOCK = 0x6B6F6B6F  # pg_advisory_xact_lock key: one sign-up at a time ("koko")
DEFAULT_ORG_NAME = "My organisation"


@dataclass(frozen=True, slots=True)
class LoggedIn:
    user: User
    session: sessions.NewSession


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_password(rt: Runtime, password: str, email: str) -> None:
    try:
        rt.policy.check(password, email=email)
    except WeakPasswordError as exc:
        raise WeakPassword(str(exc)) from None


async def signup(
    db: AsyncSession, rt: Runtime, data: SignupIn, client: Client, old_token: str | None
) -> LoggedIn:
    """Create an account and log it in; the first account owns a new organisation."""
    email = normalise_email(data.email)
    check_password(rt, data.password, email)
    password_hash = await rt.hasher.hash(data.password)
    async with db.begin():
        if db.get_bind().dialect.name == "postgresql":
            await db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SIGNUP_LOCK})
        if (await db.execute(select(User.id).where(User.email == email))).first():
            raise Conflict("an account with this e-mail address already exists")
        first = (await db.execute(select(func.count(User.id)))).scalar_one() == 0
        user = User(email=email, name=data.name, password_hash=password_hash, created_at=rt.now())
        db.add(user)
        await db.flush()
        actor = Actor("user", user.id, email, client)
        audit.record(db, actor, "user.signup", target=audit.Target("user", user.id, email))
        if data.invitation_token:
            await invitations.redeem(db, rt, data.invitation_token, user, actor)
        elif first or rt.settings.open_signup:
            await create_owned_org(db, rt, user, data.organisation_name or DEFAULT_ORG_NAME, actor)
        else:
            raise SignupClosed("ask an administrator for an invitation link")
        await sessions.end(db, old_token)
        await sessions.purge_expired(db, rt, user.id)
        new = sessions.start(db, rt, user, client)
    return LoggedIn(user, new)


async def create_owned_org(
    db: AsyncSession, rt: Runtime, user: User, name: str, actor: Actor
) -> Organisation:
    org = Organisation(name=name, created_at=rt.now())
    db.add(org)
    await db.flush()
    db.add(Membership(org_id=org.id, user_id=user.id, role=Role.OWNER, created_at=rt.now()))
    target = audit.Target("organisation", org.id, name)
    audit.record(db, actor, "org.create", org_id=org.id, target=target, after={"name": name})
    member = audit.Target("user", user.id, user.email)
    audit.record(db, actor, "member.add", org_id=org.id, target=member, after={"role": "owner"})
    return org


async def login(
    db: AsyncSession, rt: Runtime, data: LoginIn, client: Client, old_token: str | None
) -> LoggedIn:
    """Check the password (same cost for unknown accounts) and start a fresh session."""
    email = normalise_email(data.email)
    await _check_throttle(db, rt, email, client)
    user = await verify_password(db, rt, email, data.password, client)
    async with db.begin():
        await sessions.end(db, old_token)
        await sessions.purge_expired(db, rt, user.id)
        new = sessions.start(db, rt, user, client)
        actor = Actor("user", user.id, email, client)
        audit.record(db, actor, "auth.login.succeeded", target=audit.Target("user", user.id, email))
    return LoggedIn(user, new)


async def _check_throttle(db: AsyncSession, rt: Runtime, email: str, client: Client) -> None:
    wait = await rt.throttle.retry_after(email, client.ip)
    if wait is None:
        return
    async with db.begin():
        audit.record(db, Actor.anonymous(client, email), "auth.login.throttled")
    raise Throttled(wait)


async def verify_password(
    db: AsyncSession, rt: Runtime, email: str, password: str, client: Client
) -> User:
    """The active user with this password, else InvalidCredentials (audited, throttled)."""
    async with db.begin():
        user = (await db.execute(select(User).where(User.email == email))).scalar()
    ok, new_hash = False, None
    if user is not None and user.is_active and user.password_hash:
        ok, new_hash = await rt.hasher.verify(password, user.password_hash)
    else:
        await rt.hasher.verify_dummy(password)
    if user is None or not ok:
        await rt.throttle.failed(email, client.ip)
        async with db.begin():
            target = audit.Target("user", user.id, email) if user else None
            audit.record(db, Actor.anonymous(client, email), "auth.login.failed", target=target)
        raise InvalidCredentials()
    if new_hash:
        async with db.begin():
            user.password_hash = new_hash
            db.add(user)
    return user


async def logout(db: AsyncSession, principal: Principal, token: str | None) -> None:
    async with db.begin():
        if principal.session_id is not None:
            await sessions.end(db, token)
            audit.record(db, principal.actor, "auth.logout")


async def change_password(
    db: AsyncSession, rt: Runtime, principal: Principal, data: PasswordChangeIn
) -> sessions.NewSession | None:
    """New password; every other session ends. Returns the rotated session (cookie login)."""
    user = await _require_user(db, principal)
    await _check_throttle(db, rt, user.email, principal.actor.client)
    await verify_password(db, rt, user.email, data.current_password, principal.actor.client)
    check_password(rt, data.new_password, user.email)
    new_hash = await rt.hasher.hash(data.new_password)
    async with db.begin():
        user.password_hash, user.password_changed_at = new_hash, rt.now()
        db.add(user)
        ended = await sessions.end_all(db, user.id)
        new = sessions.start(db, rt, user, principal.actor.client) if principal.session_id else None
        target = audit.Target("user", user.id, user.email)
        after = {"sessions_ended": ended}
        audit.record(db, principal.actor, "auth.password.changed", target=target, after=after)
    return new


async def _require_user(db: AsyncSession, principal: Principal) -> User:
    if principal.user_id is None:
        raise UserRequired()
    async with db.begin():
        user = await db.get(User, principal.user_id)
    if user is None:
        raise UserRequired()
    return user


async def create_admin(
    db: AsyncSession, rt: Runtime, email: str, password: str, name: str, org_name: str
) -> tuple[User, Organisation]:
    """An owner account and organisation, made from the command line (the system acts)."""
    email = normalise_email(email)
    check_password(rt, password, email)
    password_hash = await rt.hasher.hash(password)
    actor = Actor.system()
    async with db.begin():
        if (await db.execute(select(User.id).where(User.email == email))).first():
            raise Conflict(f"an account for {email} already exists")
        user = User(email=email, name=name, password_hash=password_hash, created_at=rt.now())
        db.add(user)
        await db.flush()
        audit.record(db, actor, "user.create", target=audit.Target("user", user.id, email))
        org = await create_owned_org(db, rt, user, org_name, actor)
    return user, org
