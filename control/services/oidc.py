"""Sign-in with an OpenID provider: who the identity is here, then a session like a local login.

The linking policy (docs/control-plane.md, "Sign-in with OpenID Connect"):

1. An identity seen before — (provider, `sub`) in `oidc_identities` — is its linked user.
2. Else the provider must vouch for the e-mail address (`email_verified` true, or the provider's
   `trust_email`), in the provider's `allowed_domains` if it has any, and:
   a. an account with that address gets linked if it has no password (it was made through a
      provider or an invitation) and is not linked to another subject at the same provider (an
      address given to someone else at the provider must not take over the account); an
      account with a password is refused (`link_required`): local addresses are not verified,
      so whoever set that password may not be the address's owner — its user links the
      provider from their profile while signed in (`link`, below);
   b. else pending invitations bound to that address make the account, which joins their
      organisations with their roles;
   c. else, when the provider has `provision` on and a role mapping admits the identity, the
      account is made with the mapped memberships;
   d. else nobody is let in (`unknown_user`): no account without an organisation.
   Two first sign-ins at once for one identity: the second finds what the first made (a unique
   constraint makes it try again), or is refused (`conflict`) if it loses again.
3. A disabled account is refused whatever links it.
4. At every sign-in, role mappings add the memberships the user lacks (never change or remove
   one: that stays with the organisation's admins).

Linking from the profile (`POST …/oidc/{provider}/link`, then the same callback): the browser
must still be signed in as the user who asked, and the identity must not be linked to anyone
else, nor the user to another subject at that provider. No e-mail is needed: the user proved
both sides. Two links of one identity at once: the second sees it linked after the unique
constraint (or is refused as `conflict`).

Unlinking (`DELETE /me/oidc-identities/{provider}`): refused while the link is the account's
only way to sign in (no password, no other link).

Each step is audited; a refusal is audited and counted by the address's throttle.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from control import audit
from control.auth import sessions
from control.auth.oidc import Identity, OidcFailed
from control.auth.oidc_settings import OidcProvider
from control.db.models import Invitation, Membership, OidcIdentity, Organisation, User
from control.runtime import Runtime
from control.services.accounts import LoggedIn
from control.services.context import Actor, Client, Principal
from control.services.errors import Conflict, NotFound
from control.services.profile import user_id_of

log = logging.getLogger(__name__)
T = TypeVar("T")
METHOD = "oidc"


async def check_throttle(db: AsyncSession, rt: Runtime, client: Client) -> None:
    if await rt.oidc_throttle.retry_after(client.ip) is None:
        return
    async with db.begin():
        audit.record(db, Actor.anonymous(client), "auth.login.throttled", after={"method": METHOD})
    raise OidcFailed("throttled", "too many failed sign-ins from this address")


async def sign_in(
    db: AsyncSession,
    rt: Runtime,
    provider: OidcProvider,
    identity: Identity,
    client: Client,
    old_token: str | None,
) -> LoggedIn:
    """The identity's user, signed in with a fresh session (one transaction).

    Two first sign-ins at once for the same new identity (two tabs, a double click on the
    provider's consent) both find no link and both make it, or the account; the one that
    commits second hits the unique constraint. It is tried once more and then finds what the
    first made; if that loses a race again, it is refused as `conflict`.
    """
    return await _twice(
        lambda: _sign_in(db, rt, provider, identity, client, old_token), provider, "first sign-in"
    )


async def _sign_in(
    db: AsyncSession,
    rt: Runtime,
    provider: OidcProvider,
    identity: Identity,
    client: Client,
    old_token: str | None,
) -> LoggedIn:
    async with db.begin():
        link = (
            await db.execute(
                select(OidcIdentity).where(
                    OidcIdentity.provider == provider.slug,
                    OidcIdentity.subject == identity.subject,
                )
            )
        ).scalar()
        if link is None:
            link = await _first_link(db, rt, provider, identity, client)
        user = await db.get(User, link.user_id)
        if user is None or not user.is_active:
            raise OidcFailed("disabled", "this account is disabled")
        actor = Actor("user", user.id, user.email, client)
        await _map_roles(db, rt, provider, identity, user, actor)
        link.last_login_at = rt.now()
        await sessions.end(db, old_token)
        await sessions.purge_expired(db, rt, user.id)
        new = sessions.start(db, rt, user, client)
        target = audit.Target("user", user.id, user.email)
        after = {"method": METHOD, "provider": provider.slug}
        audit.record(db, actor, "auth.login.succeeded", target=target, after=after)
    return LoggedIn(user, new)


async def refused(
    db: AsyncSession, rt: Runtime, provider: OidcProvider, failure: OidcFailed, client: Client
) -> None:
    """Audit a refused sign-in and count it against the client's address."""
    log.info("oidc %s: sign-in refused (%s): %s", provider.slug, failure.code, failure.detail)
    if failure.code == "throttled":
        return  # audited as such, and not counted again
    await rt.oidc_throttle.failed(client.ip)
    async with db.begin():
        after = {"method": METHOD, "provider": provider.slug, "reason": failure.code}
        audit.record(db, Actor.anonymous(client), "auth.login.failed", after=after)


async def _first_link(
    db: AsyncSession, rt: Runtime, provider: OidcProvider, identity: Identity, client: Client
) -> OidcIdentity:
    email = identity.email
    if email is None or not identity.email_verified:
        raise OidcFailed("email", "the provider did not vouch for an e-mail address")
    if not provider.email_allowed(email):
        raise OidcFailed("domain", f"{email.rpartition('@')[2]} is not an allowed domain")
    user = (await db.execute(select(User).where(User.email == email))).scalar()
    if user is not None:
        await _check_unlinked(db, provider, identity, user)
        if user.password_hash is not None:
            raise OidcFailed(
                "link_required",
                "the account has a password: sign in with it and link the provider there",
            )
    else:
        user = await _new_account(db, rt, provider, identity, email, client)
    row = _add_link(db, rt, provider, identity, user, client, "email")
    await db.flush()
    return row


async def link(
    db: AsyncSession,
    rt: Runtime,
    provider: OidcProvider,
    identity: Identity,
    session_token: str | None,
    user_id: str,
    client: Client,
) -> None:
    """Link `identity` to the user who asked from their profile, if this browser is still
    signed in as them.

    Two links of the same identity at once (two tabs of the profile) both find none and both
    add it; the one that commits second hits the unique constraint. It is checked once more
    and then sees it linked (to this user: done) or is refused as `conflict`.
    """
    await _twice(
        lambda: _link(db, rt, provider, identity, session_token, user_id, client), provider, "link"
    )


async def _twice(work: Callable[[], Awaitable[T]], provider: OidcProvider, what: str) -> T:
    """`work` (one transaction), once more if a concurrent one for the same identity made the
    link or account first (a unique constraint); `conflict` if that happens again."""
    for attempt in range(2):
        try:
            return await work()
        except IntegrityError as exc:
            log.info(
                "oidc %s: a concurrent %s made the link or account (%s)",
                provider.slug,
                what,
                "trying again" if attempt == 0 else "refused",
                extra={"error": str(exc.orig)},
            )
    raise OidcFailed("conflict", f"another {what} for this identity was under way: try again")


async def _link(
    db: AsyncSession,
    rt: Runtime,
    provider: OidcProvider,
    identity: Identity,
    session_token: str | None,
    user_id: str,
    client: Client,
) -> None:
    async with db.begin():
        found = await sessions.find(db, rt, session_token) if session_token else None
        if found is None or str(found[1].id) != user_id:
            raise OidcFailed("state", "this browser is no longer signed in as who asked to link")
        user = found[1]
        existing = (
            await db.execute(
                select(OidcIdentity).where(
                    OidcIdentity.provider == provider.slug,
                    OidcIdentity.subject == identity.subject,
                )
            )
        ).scalar()
        if existing is not None:
            if existing.user_id != user.id:
                raise OidcFailed("linked", "this identity is linked to another account")
            return  # linked already
        await _check_unlinked(db, provider, identity, user)
        _add_link(db, rt, provider, identity, user, client, "profile")
        await db.flush()


async def unlink(db: AsyncSession, principal: Principal, provider: str) -> None:
    """Remove the caller's link to `provider` (configured or not any more), unless the account
    would be left with no way to sign in: no password and no other link (one transaction)."""
    user_id = user_id_of(principal)
    async with db.begin():
        # Locked (PostgreSQL): two unlinks at once of a password-less account's last two links
        # must not both see the other one left.
        user = (
            await db.execute(select(User).where(User.id == user_id).with_for_update())
        ).scalar_one()
        links = list(
            (
                await db.execute(select(OidcIdentity).where(OidcIdentity.user_id == user_id))
            ).scalars()
        )
        row = next((link for link in links if link.provider == provider), None)
        if row is None:
            raise NotFound(f"your account is not linked to {provider!r}")
        if user.password_hash is None and len(links) == 1:
            raise Conflict(
                f"{provider!r} is this account's only way to sign in (it has no password and "
                "no other provider linked): link another provider first"
            )
        await db.delete(row)
        target = audit.Target("user", user.id, user.email)
        after = {"provider": row.provider, "subject": row.subject}
        audit.record(db, principal.actor, "auth.oidc.unlinked", target=target, after=after)


async def identities(db: AsyncSession, user_id: uuid.UUID) -> list[OidcIdentity]:
    """The provider identities linked to a user, by provider."""
    async with db.begin():
        query = select(OidcIdentity).where(OidcIdentity.user_id == user_id)
        return list((await db.execute(query.order_by(OidcIdentity.provider))).scalars())


async def _check_unlinked(
    db: AsyncSession, provider: OidcProvider, identity: Identity, user: User
) -> None:
    """Refuse if the user is linked to another subject at the provider. A link to this very
    subject is not another: a concurrent sign-in or link committed it since this transaction
    looked (PostgreSQL reads each statement afresh); adding it again hits the unique constraint
    and the retry finds it."""
    other = await db.execute(
        select(OidcIdentity.id).where(
            OidcIdentity.provider == provider.slug,
            OidcIdentity.user_id == user.id,
            OidcIdentity.subject != identity.subject,
        )
    )
    if other.first():
        raise OidcFailed("linked", "the account is linked to another identity there")


def _add_link(
    db: AsyncSession,
    rt: Runtime,
    provider: OidcProvider,
    identity: Identity,
    user: User,
    client: Client,
    by: str,
) -> OidcIdentity:
    row = OidcIdentity(
        provider=provider.slug,
        subject=identity.subject,
        user_id=user.id,
        email=identity.email or "",
        created_at=rt.now(),
        last_login_at=rt.now(),
    )
    db.add(row)
    actor = Actor("user", user.id, user.email, client)
    target = audit.Target("user", user.id, user.email)
    after = {"provider": provider.slug, "subject": identity.subject, "by": by}
    audit.record(db, actor, "auth.oidc.linked", target=target, after=after)
    return row


async def _new_account(
    db: AsyncSession,
    rt: Runtime,
    provider: OidcProvider,
    identity: Identity,
    email: str,
    client: Client,
) -> User:
    now = rt.now()
    invitations = (
        (
            await db.execute(
                select(Invitation).where(
                    Invitation.email == email,
                    Invitation.accepted_at.is_(None),
                    Invitation.expires_at > now,
                )
            )
        )
        .scalars()
        .all()
    )
    if not invitations and not (provider.provision and _mapped(provider, identity)):
        raise OidcFailed("unknown_user", f"no account or invitation for {email}")
    user = User(email=email, name=identity.name, password_hash=None, created_at=now)
    db.add(user)
    await db.flush()
    actor = Actor("user", user.id, email, client)
    after = {"method": METHOD, "provider": provider.slug}
    audit.record(db, actor, "user.signup", target=audit.Target("user", user.id, email), after=after)
    for invitation in invitations:
        await _accept(db, rt, invitation, user, actor)
    return user


async def _accept(
    db: AsyncSession, rt: Runtime, invitation: Invitation, user: User, actor: Actor
) -> None:
    """Use an e-mail-bound invitation for the new account (single use, as in invitations.py)."""
    claimed = await db.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.accepted_at.is_(None))
        .values(accepted_at=rt.now(), accepted_by_id=user.id)
    )
    if not claimed.rowcount or await _member(db, invitation.org_id, user):  # type: ignore[attr-defined]
        return
    db.add(
        Membership(
            org_id=invitation.org_id, user_id=user.id, role=invitation.role, created_at=rt.now()
        )
    )
    audit.record(
        db,
        actor,
        "invitation.accept",
        org_id=invitation.org_id,
        target=audit.Target("user", user.id, user.email),
        after={"role": invitation.role, "invitation_id": invitation.id, "method": METHOD},
    )


def _mapped(provider: OidcProvider, identity: Identity) -> bool:
    return any(m.value in identity.values(m.claim) for m in provider.role_mappings)


async def _map_roles(
    db: AsyncSession,
    rt: Runtime,
    provider: OidcProvider,
    identity: Identity,
    user: User,
    actor: Actor,
) -> None:
    """Add the memberships the provider's role mappings grant and the user lacks."""
    await db.flush()
    for mapping in provider.role_mappings:
        if mapping.value not in identity.values(mapping.claim):
            continue
        if await _member(db, mapping.org_id, user):
            continue
        if await db.get(Organisation, mapping.org_id) is None:
            log.warning("oidc %s: a role mapping names no organisation", provider.slug)
            continue
        db.add(
            Membership(
                org_id=mapping.org_id, user_id=user.id, role=mapping.role, created_at=rt.now()
            )
        )
        await db.flush()
        audit.record(
            db,
            actor,
            "member.add",
            org_id=mapping.org_id,
            target=audit.Target("user", user.id, user.email),
            after={"role": mapping.role, "method": METHOD, "provider": provider.slug},
        )


async def _member(db: AsyncSession, org_id: uuid.UUID, user: User) -> bool:
    found = await db.execute(
        select(Membership.id).where(Membership.org_id == org_id, Membership.user_id == user.id)
    )
    return found.first() is not None
