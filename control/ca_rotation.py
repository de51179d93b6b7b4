"""Rotating the control plane's CA without stopping traffic (docs/pki.md, "Rotating the
control plane's CA"): stage → wait one certificate lifetime → promote → wait again → retire.

- `stage`: a new CA in slot "next". It signs nothing yet, but every certificate issued from
  now on comes with a CA bundle that trusts it, so each node and agent learns it at its next
  renewal.
- `promote`: "next" becomes "current" (it signs from now on), "current" becomes "previous"
  (still trusted, and its certificates may still renew), an older "previous" is retired.
- `retire`: "previous" leaves the bundle; its certificates can no longer renew.
- `rekey`: re-encrypt every stored CA key, and every public certificate's key (which is kept
  under the same passphrase: control/services/public_tls.py), under a new passphrase (when
  `ca_key_passphrase`, or the `secret_key` it is derived from, changes); the certificates do
  not change.

Each step is one transaction, audited in it (`ca.stage`, `ca.promote`, `ca.retire`,
`ca.rekey`; the system is the actor: these run from the command line on the server); the slots
are unique, so two operators cannot stage two CAs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from control import audit
from control.ca import CaError, decrypt_key, encrypt_key, new_authority_row
from control.db.models import CertificateAuthority
from control.services.context import Actor
from control.settings import Settings


class RotationError(Exception):
    """The step does not fit the current state (e.g. promote with nothing staged)."""


@dataclass(frozen=True, slots=True)
class CaInfo:
    slot: str | None
    fingerprint: str
    created_at: datetime
    not_after: datetime
    retired_at: datetime | None


async def show(db: AsyncSession) -> list[CaInfo]:
    """Every CA this control plane has had, newest first."""
    query = select(CertificateAuthority).order_by(CertificateAuthority.created_at.desc())
    async with db.begin():
        rows = (await db.execute(query)).scalars().all()
    return [
        CaInfo(row.slot, row.fingerprint, row.created_at, row.not_after, row.retired_at)
        for row in rows
    ]


async def stage(db: AsyncSession, settings: Settings, passphrase: bytes, now: datetime) -> str:
    """Create the next CA (trusted, not signing); returns its fingerprint."""
    async with db.begin():
        if await _slot(db, "next") is not None:
            raise RotationError("a next CA is already staged: promote it first")
        if await _slot(db, "current") is None:
            raise RotationError("there is no current CA yet: start the control plane once")
        row = new_authority_row(passphrase, settings.ca_lifetime, now, slot="next")
        db.add(row)
        _audit(db, "ca.stage", row.fingerprint)
    return row.fingerprint


async def promote(db: AsyncSession, now: datetime) -> str:
    """Make the staged CA the signing one; returns its fingerprint."""
    async with db.begin():
        staged = await _slot(db, "next")
        if staged is None:
            raise RotationError("no CA is staged: run stage first")
        await _move(db, "previous", None, now)
        await _move(db, "current", "previous", now)
        await _move(db, "next", "current", now)
        _audit(db, "ca.promote", staged.fingerprint)
    return staged.fingerprint


async def retire(db: AsyncSession, now: datetime) -> str:
    """Stop trusting the previous CA; returns its fingerprint."""
    async with db.begin():
        previous = await _slot(db, "previous")
        if previous is None:
            raise RotationError("there is no previous CA to retire")
        await _move(db, "previous", None, now)
        _audit(db, "ca.retire", previous.fingerprint)
    return previous.fingerprint


async def _slot(db: AsyncSession, slot: str) -> CertificateAuthority | None:
    query = select(CertificateAuthority).where(CertificateAuthority.slot == slot)
    return (await db.execute(query)).scalar()


async def _move(db: AsyncSession, source: str, target: str | None, now: datetime) -> None:
    values: dict[str, object] = {"slot": target}
    if target is None:
        values["retired_at"] = now
    statement = (
        update(CertificateAuthority)
        .where(CertificateAuthority.slot == source)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await db.execute(statement)


async def rekey(db: AsyncSession, old: bytes, new: bytes) -> tuple[int, int]:
    """Re-encrypt every stored CA key and public certificate key from passphrase `old` to
    `new`; returns how many of each.

    Raises:
        control.ca.CaError: a key does not decrypt with `old` (nothing is changed then).
    """
    from control.services.public_certificates import reseal_all
    from control.services.public_tls import KeyUnreadable

    async with db.begin():
        rows = (await db.execute(select(CertificateAuthority))).scalars().all()
        for row in rows:
            row.encrypted_key = encrypt_key(decrypt_key(row.encrypted_key, old), new)
        try:
            public = await reseal_all(db, old, new)
        except KeyUnreadable as exc:
            raise CaError(str(exc)) from None
        for row in rows:
            _audit(db, "ca.rekey", row.fingerprint)
    return len(rows), public


def _audit(db: AsyncSession, action: str, fingerprint: str) -> None:
    audit.record(db, Actor.system(), action, target=audit.Target("ca", fingerprint))
