"""An organisation's public (HTTPS) certificates: upload, replace, list, delete.

An upload is checked whole before anything is stored (control/services/public_tls.py); its
key is kept only encrypted, and no endpoint ever returns it. Every ingress node of the
organisation gets, in its snapshot, the certificates that cover the host names of the
services it routes (control/channel/snapshots.py): a change here wakes the channels
(control/channel/changes.py) like a change of a service does.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from control import audit
from control.auth.roles import Permission
from control.db.models import PublicCertificate
from control.runtime import Runtime
from control.schemas.certificates import CertificateIn, CertificateOut
from control.services import public_tls
from control.services.context import OrgContext
from control.services.errors import Conflict
from control.services.scoped import PageRequest, PageResult, get_scoped, paginate

MAX_PER_ORG = 100  # bounds an ingress node's snapshot (4 MiB per channel message)
WHAT = "certificate"
SHOWN = (
    "id", "org_id", "names", "subject", "issuer", "serial", "fingerprint", "key_type",
    "not_before", "not_after", "chain", "created_at", "updated_at",
)  # fmt: skip


def _out(row: PublicCertificate) -> CertificateOut:
    return CertificateOut.model_validate({name: getattr(row, name) for name in SHOWN})


def _summary(row: PublicCertificate) -> dict[str, Any]:
    """What the audit log records: never the key."""
    return {
        "names": list(row.names),
        "fingerprint": row.fingerprint,
        "serial": row.serial,
        "issuer": row.issuer,
        "not_after": row.not_after,
    }


def _target(row: PublicCertificate) -> audit.Target:
    return audit.Target("public_certificate", row.id, ", ".join(row.names)[:320])


async def list_certificates(db: AsyncSession, ctx: OrgContext, page: PageRequest) -> PageResult:
    """The organisation's certificates, the soonest to expire first."""
    ctx.require(Permission.CERTIFICATES_READ)
    query = (
        select(PublicCertificate)
        .where(PublicCertificate.org_id == ctx.org_id)
        .order_by(PublicCertificate.not_after, PublicCertificate.id)
    )
    async with db.begin():
        result = await paginate(db, query, page)
    return PageResult([_out(row) for row in result.rows], result.total, page.limit, page.offset)


async def get(db: AsyncSession, ctx: OrgContext, certificate_id: uuid.UUID) -> CertificateOut:
    ctx.require(Permission.CERTIFICATES_READ)
    async with db.begin():
        return _out(await get_scoped(db, PublicCertificate, ctx.org_id, certificate_id, what=WHAT))


async def upload(
    db: AsyncSession, rt: Runtime, ctx: OrgContext, data: CertificateIn
) -> CertificateOut:
    """Store a new certificate.

    Raises:
        public_tls.CertificateRejected: the upload is not usable (names the field).
        Conflict: already uploaded, or the organisation holds `MAX_PER_ORG`.
    """
    ctx.require(Permission.CERTIFICATES_WRITE)
    checked, sealed = await _checked(rt, data)
    now = rt.now()
    row = PublicCertificate(org_id=ctx.org_id, created_at=now)
    _fill(row, checked, sealed, rt)
    async with db.begin():
        count = select(func.count()).where(PublicCertificate.org_id == ctx.org_id)
        if (await db.execute(count)).scalar_one() >= MAX_PER_ORG:
            raise Conflict(f"an organisation holds at most {MAX_PER_ORG} certificates")
        await _check_new(db, ctx.org_id, checked.fingerprint, None)
        db.add(row)
        await db.flush()
        audit.record(
            db,
            ctx.actor,
            "public_certificate.upload",
            org_id=ctx.org_id,
            target=_target(row),
            after=_summary(row),
        )
        return _out(row)


async def replace(
    db: AsyncSession, rt: Runtime, ctx: OrgContext, certificate_id: uuid.UUID, data: CertificateIn
) -> CertificateOut:
    """Put a new chain and key in place of a certificate's (a renewal keeps its id).

    Raises:
        public_tls.CertificateRejected: the upload is not usable (names the field).
        NotFound: no such certificate in this organisation.
        Conflict: another certificate of the organisation is this one.
    """
    ctx.require(Permission.CERTIFICATES_WRITE)
    async with db.begin():  # not found before invalid, as elsewhere in the API
        await get_scoped(db, PublicCertificate, ctx.org_id, certificate_id, what=WHAT)
    checked, sealed = await _checked(rt, data)
    async with db.begin():
        row = await get_scoped(db, PublicCertificate, ctx.org_id, certificate_id, what=WHAT)
        await _check_new(db, ctx.org_id, checked.fingerprint, row.id)
        before = _summary(row)
        _fill(row, checked, sealed, rt)
        old, new = audit.changes(before, _summary(row))
        audit.record(
            db,
            ctx.actor,
            "public_certificate.replace",
            org_id=ctx.org_id,
            target=_target(row),
            before=old,
            after=new,
        )
        return _out(row)


async def remove(db: AsyncSession, ctx: OrgContext, certificate_id: uuid.UUID) -> None:
    ctx.require(Permission.CERTIFICATES_WRITE)
    async with db.begin():
        row = await get_scoped(db, PublicCertificate, ctx.org_id, certificate_id, what=WHAT)
        before = _summary(row)
        await db.delete(row)
        audit.record(
            db,
            ctx.actor,
            "public_certificate.delete",
            org_id=ctx.org_id,
            target=_target(row),
            before=before,
        )


async def reseal_all(db: AsyncSession, old: bytes, new: bytes) -> int:
    """Re-encrypt every stored key from passphrase `old` to `new`, in the caller's
    transaction (`kokoa control ca rekey`); returns how many.

    Raises:
        public_tls.KeyUnreadable: a key does not decrypt with `old`.
    """
    rows = (await db.execute(select(PublicCertificate))).scalars().all()
    for row in rows:
        row.encrypted_key = public_tls.reseal(row.encrypted_key, old, new)
    return len(rows)


async def _checked(rt: Runtime, data: CertificateIn) -> tuple[public_tls.Inspected, str]:
    """The upload checked and its key sealed, in a worker thread: parsing an RSA key and the
    key derivation of the encryption take tens of milliseconds, too long for the event loop.

    Raises:
        public_tls.CertificateRejected: the upload is not usable (names the field).
    """

    def work() -> tuple[public_tls.Inspected, str]:
        checked = public_tls.inspect(data.chain, data.private_key, rt.now())
        return checked, public_tls.seal(checked.key, rt.ca.passphrase())

    return await asyncio.to_thread(work)


def _fill(row: PublicCertificate, checked: public_tls.Inspected, sealed: str, rt: Runtime) -> None:
    row.names = list(checked.names)
    row.chain = checked.chain
    row.encrypted_key = sealed
    row.key_type = checked.key_type
    row.subject = checked.subject[:1000]
    row.issuer = checked.issuer[:1000]
    row.serial = checked.serial[:64]
    row.fingerprint = checked.fingerprint
    row.not_before = checked.not_before
    row.not_after = checked.not_after
    row.updated_at = rt.now()


async def _check_new(
    db: AsyncSession, org_id: uuid.UUID, fingerprint: str, exclude: uuid.UUID | None
) -> None:
    query = select(PublicCertificate.id).where(
        PublicCertificate.org_id == org_id, PublicCertificate.fingerprint == fingerprint
    )
    if exclude is not None:
        query = query.where(PublicCertificate.id != exclude)
    found = (await db.execute(query)).scalar()
    if found is not None:
        raise Conflict(f"this certificate is already uploaded as {found}")
