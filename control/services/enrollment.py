"""Redeeming an enrollment token: the caller's CSR in, a certificate out.

No session: the token is the credential. Order of work, so that nothing is lost on a refusal:

1. the client address must not be throttled (failures only count, like login throttling);
2. the CSR must parse, carry a valid self-signature and a P-256 key (else 422, token kept);
3. one atomic UPDATE marks the token used if it is unused, unrevoked and unexpired — of any
   number of concurrent redemptions exactly one gets the row back;
4. the token must be for the kind of process asking, and its node or agent must exist and be
   enabled — else the transaction rolls back and the token stays usable;
5. the certificate is issued and recorded, and the redemption audited, in that transaction.

Every refusal is audited (with the reason, never the token) in a transaction of its own and
counts against the client address.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common.enroll.messages import Credentials, EnrollRequest, Kind
from control import audit
from control.auth.tokens import digest
from control.db.models import EnrollmentToken
from control.runtime import Runtime
from control.services import certificates
from control.services.context import Actor, Client
from control.services.errors import (
    DomainError,
    EnrollmentRefused,
    IdentityDisabled,
    InvalidInput,
    Throttled,
)


async def enroll(db: AsyncSession, rt: Runtime, data: EnrollRequest, client: Client) -> Credentials:
    """Redeem `data.token` for a certificate of `data.csr`'s key.

    Raises:
        Throttled: too many failures from this address lately.
        InvalidInput: a bad CSR, or a token for the other kind of process.
        EnrollmentRefused: unknown, used, revoked or expired token.
        IdentityDisabled: the token's node or agent is disabled or gone.
    """
    wait = await rt.enroll_throttle.retry_after(client.ip)
    if wait is not None:
        raise Throttled(wait)
    csr = certificates.parse_csr(data.csr)
    authority = await rt.ca.authority()
    token_hash = digest(data.token)
    now = rt.now()
    try:
        async with db.begin():
            token = await _redeem(db, token_hash, now, client.ip)
            holder = await _holder(db, token, data)
            credentials, cert = certificates.issue(
                db, authority, holder, csr,
                lifetime=rt.settings.certificate_lifetime, now=now, via="enroll",
            )  # fmt: skip
            audit.record(
                db,
                _actor(client, token),
                "enrollment.redeem",
                org_id=token.org_id,
                target=holder.target,
                after={"token_id": token.id, "serial": certificates.serial_hex(cert)},
            )
    except (EnrollmentRefused, IdentityDisabled, InvalidInput) as exc:
        await rt.enroll_throttle.failed(client.ip)
        await _audit_failure(db, rt, token_hash, client, exc)
        raise
    return credentials


async def _redeem(
    db: AsyncSession, token_hash: str, now: datetime, ip: str | None
) -> EnrollmentToken:
    statement = (
        update(EnrollmentToken)
        .where(
            EnrollmentToken.token_hash == token_hash,
            EnrollmentToken.used_at.is_(None),
            EnrollmentToken.revoked_at.is_(None),
            EnrollmentToken.expires_at > now,
        )
        .values(used_at=now, used_by_ip=ip)
        .returning(EnrollmentToken.id)
        .execution_options(synchronize_session=False)
    )
    token_id = (await db.execute(statement)).scalar()
    token = await db.get(EnrollmentToken, token_id) if token_id is not None else None
    if token is None:
        raise EnrollmentRefused()
    return token


async def _holder(
    db: AsyncSession, token: EnrollmentToken, data: EnrollRequest
) -> certificates.Holder:
    kind: Kind = "ingress" if token.kind == "ingress" else "agent"
    if kind != data.kind:
        what = "an ingress node" if kind == "ingress" else "an edge agent"
        raise InvalidInput(f"this token enrolls {what}, not a {data.kind}")
    holder = await certificates.load_holder(db, kind, token.subject_id, token.org_id)
    if holder is None or not holder.enabled:
        raise IdentityDisabled(f"the {token.kind} this token is for is disabled or deleted")
    return holder


def _actor(client: Client, token: EnrollmentToken) -> Actor:
    return Actor.anonymous(client, label=f"enrollment token {token.prefix}")


async def _audit_failure(
    db: AsyncSession, rt: Runtime, token_hash: str, client: Client, exc: DomainError
) -> None:
    async with db.begin():
        token = (
            await db.execute(
                select(EnrollmentToken).where(EnrollmentToken.token_hash == token_hash)
            )
        ).scalar()
        reason = _reason(token, exc, rt)
        audit.record(
            db,
            _actor(client, token) if token else Actor.anonymous(client),
            "enrollment.failed",
            org_id=token.org_id if token else None,
            target=audit.Target("enrollment_token", token.id, token.prefix) if token else None,
            after={"reason": reason},
        )


def _reason(token: EnrollmentToken | None, exc: DomainError, rt: Runtime) -> str:
    if token is None:
        return "unknown token"
    if not isinstance(exc, EnrollmentRefused):
        return exc.detail
    if token.revoked_at is not None:
        return "revoked"
    if token.used_at is not None:
        return "already used"
    if token.expires_at <= rt.now():
        return "expired"
    return "refused"
