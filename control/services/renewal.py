"""Renewing a certificate: proof by the current certificate's key, never a shared secret.

1. `challenge()` hands out a nonce: stateless (an HMAC of its expiry and 16 random bytes with
   the server secret, so any replica can check it), valid for five minutes.
2. `renew()` takes the current certificate, a CSR for a new key, the nonce, and the current
   key's signature over (context, nonce, serial, SHA-256 of the CSR) — common/enroll/proof.py.
   It checks, in order: the throttle; the nonce; the certificate chains to one of our CAs,
   is unexpired and holds a kokoa identity of an organisation; the signature; that we issued
   that serial to that subject; that the node or agent still exists and is enabled; that the
   serial is not revoked. Then it issues a certificate for the new key with the same identity.

Disabling or deleting a node or agent revokes its certificates (resource_ops), and enabling
it again does not un-revoke them: it enrolls again with a new token. The control channel's
handshake (control/channel/handshake.py) makes the same checks through `verify_current`,
`issued_record`, `check_holder` and `check_unrevoked`.

A replayed request within the nonce's five minutes only yields another certificate for a key
the replayer does not hold. Refusals are audited and count against the client address.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import uuid
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from common import pki
from common.enroll.messages import Challenge, Credentials, Kind, RenewRequest
from common.enroll.proof import verify_renewal
from common.transport import PeerIdentity
from control import audit
from control.ca import Authority
from control.db.models import IssuedCertificate
from control.runtime import Runtime
from control.services import certificates
from control.services.context import Actor, Client
from control.services.errors import IdentityDisabled, RenewalRefused, Throttled

NONCE_TTL = timedelta(minutes=5)
_NONCE_CONTEXT = b"kokoa renewal nonce v1|"


def challenge(rt: Runtime) -> Challenge:
    expires = rt.now() + NONCE_TTL
    body = struct.pack(">Q", int(expires.timestamp())) + secrets.token_bytes(16)
    return Challenge(nonce=_b64(body + _mac(rt.secret, body)), expires_at=expires)


def _mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, _NONCE_CONTEXT + body, hashlib.sha256).digest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def check_nonce(rt: Runtime, nonce: str) -> None:
    try:
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
    except ValueError:
        raise RenewalRefused("malformed nonce") from None
    body, mac = raw[:24], raw[24:]
    if len(raw) != 40 or not hmac.compare_digest(mac, _mac(rt.secret, body)):
        raise RenewalRefused("the nonce was not issued by this control plane")
    expires = datetime.fromtimestamp(struct.unpack(">Q", body[:8])[0], UTC)
    if expires <= rt.now():
        raise RenewalRefused("the nonce has expired; ask for a new challenge")


async def renew(db: AsyncSession, rt: Runtime, data: RenewRequest, client: Client) -> Credentials:
    """A new certificate for the new key in `data.csr`, with the identity of the current one.

    Raises:
        Throttled: too many failures from this address lately.
        InvalidInput: the CSR is malformed.
        RenewalRefused: bad nonce, certificate or signature; a certificate we did not issue,
            or revoked.
        IdentityDisabled: the node or agent is disabled or deleted.
    """
    wait = await rt.enroll_throttle.retry_after(client.ip)
    if wait is not None:
        raise Throttled(wait)
    csr = certificates.parse_csr(data.csr)
    identity: PeerIdentity | None = None
    try:
        check_nonce(rt, data.nonce)
        authority = await rt.ca.authority()
        cert, identity = verify_current(rt, authority, data.certificate)
        _check_signature(cert, data, csr)
        return await _issue(db, rt, authority, cert, identity, csr, client)
    except (RenewalRefused, IdentityDisabled) as exc:
        await rt.enroll_throttle.failed(client.ip)
        await _audit_failure(db, client, identity, exc.detail)
        raise


def verify_current(
    rt: Runtime, authority: Authority, pem: str
) -> tuple[x509.Certificate, PeerIdentity]:
    """The certificate in `pem` and its identity, if it is unexpired, chains to one of our CAs
    and names a node or agent of an organisation; else RenewalRefused."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
        _check_unexpired(rt, cert)
        role = pki.identity_from_certificate(cert).role
        identity = pki.verify_peer(cert, [], authority.trusted, role=_kind(role), now=rt.now())
    except (ValueError, pki.PkiError) as exc:
        raise RenewalRefused(f"the current certificate is not acceptable: {exc}") from None
    if identity.org is None:
        raise RenewalRefused("the certificate names no organisation")
    return cert, identity


def _check_unexpired(rt: Runtime, cert: x509.Certificate) -> None:
    if cert.not_valid_after_utc <= rt.now():
        raise RenewalRefused(
            f"the current certificate expired at {cert.not_valid_after_utc.isoformat()}: "
            "only a new enrollment token can help now"
        )


def _kind(role: str) -> Kind:
    if role not in ("ingress", "agent"):
        raise RenewalRefused(f"unknown role {role!r}")
    return "ingress" if role == "ingress" else "agent"


def _check_signature(
    cert: x509.Certificate, data: RenewRequest, csr: x509.CertificateSigningRequest
) -> None:
    key = cert.public_key()
    der = csr.public_bytes(serialization.Encoding.DER)
    if not isinstance(key, ec.EllipticCurvePublicKey) or not verify_renewal(
        key, data.signature, data.nonce, cert.serial_number, der
    ):
        raise RenewalRefused("the signature is not the current certificate key's")


async def _issue(
    db: AsyncSession,
    rt: Runtime,
    authority: Authority,
    cert: x509.Certificate,
    identity: PeerIdentity,
    csr: x509.CertificateSigningRequest,
    client: Client,
) -> Credentials:
    serial = certificates.serial_hex(cert)
    async with db.begin():
        record = await issued_record(db, serial)
        holder = await check_holder(db, record, identity)
        check_unrevoked(record)
        credentials, new = certificates.issue(
            db, authority, holder, csr, lifetime=rt.settings.certificate_lifetime,
            now=rt.now(), via="renew", previous_serial=serial,
        )  # fmt: skip
        audit.record(
            db,
            Actor.anonymous(client, label=f"{holder.kind} {holder.id}"),
            "certificate.renew",
            org_id=holder.org_id,
            target=holder.target,
            before={"serial": serial},
            after={"serial": certificates.serial_hex(new)},
        )
    return credentials


async def issued_record(db: AsyncSession, serial: str) -> IssuedCertificate:
    """Our record of issuing `serial` (lowercase hex), or RenewalRefused."""
    query = select(IssuedCertificate).where(IssuedCertificate.serial == serial)
    record = (await db.execute(query)).scalar()
    if record is None:
        raise RenewalRefused("this control plane has no record of issuing that certificate")
    return record


def check_unrevoked(record: IssuedCertificate) -> None:
    if record.revoked_at is not None:
        raise RenewalRefused(
            "the certificate is revoked (its node or agent was disabled or deleted): "
            "enroll again with a new token"
        )


async def check_holder(
    db: AsyncSession, record: IssuedCertificate, identity: PeerIdentity
) -> certificates.Holder:
    """The node or agent `record` was issued to, if it matches `identity`, exists and is
    enabled; else RenewalRefused (a mismatch) or IdentityDisabled."""
    kind = _kind(record.kind)
    if (kind, str(record.subject_id), str(record.org_id)) != (
        identity.role,
        identity.name,
        identity.org,
    ):
        raise RenewalRefused("the certificate does not match our record of it")
    holder = await certificates.load_holder(db, kind, record.subject_id, record.org_id)
    if holder is None or not holder.enabled:
        raise IdentityDisabled(f"the {kind} is disabled or deleted; it cannot renew")
    return holder


async def _audit_failure(
    db: AsyncSession, client: Client, identity: PeerIdentity | None, reason: str
) -> None:
    org_id, target = None, None
    if identity is not None and identity.org is not None:
        org_id = _uuid(identity.org)
        kind = "node" if identity.role == "ingress" else "agent"
        target = audit.Target(kind, identity.name, identity.name)
    async with db.begin():
        audit.record(
            db,
            Actor.anonymous(client),
            "certificate.renew_failed",
            org_id=org_id,
            target=target,
            after={"reason": reason},
        )


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
