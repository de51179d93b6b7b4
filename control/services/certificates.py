"""Issuing tunnel certificates: the subject (an ingress node or an edge agent) as the CA sees
it, the CSR check, and the record of every certificate issued.

The identity is the subject's id in its organisation (`urn:kokoa:org:<org id>:agent:<id>` or
`…:ingress:<id>`), never anything from the CSR; an ingress certificate also names the host of
its tunnel address (DNS name or IP), which is what agents check when they dial it.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from common import pki
from common.enroll.lifetime import renew_after
from common.enroll.messages import Credentials, Kind, Subject
from control import audit
from control.ca import Authority
from control.db.models import EdgeAgent, IngressNode, IssuedCertificate
from control.services.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Holder:
    """The node or agent a certificate is for, as read in the issuing transaction."""

    kind: Kind
    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    enabled: bool
    tunnel_address: str | None = None
    public_address: str | None = None

    @property
    def target(self) -> audit.Target:
        return audit.Target("node" if self.kind == "ingress" else "agent", self.id, self.name)


async def load_holder(
    db: AsyncSession, kind: Kind, subject_id: uuid.UUID, org_id: uuid.UUID
) -> Holder | None:
    """The node or agent `subject_id` of `org_id`, or None if it does not exist (any more)."""
    if kind == "ingress":
        query = select(IngressNode).where(
            IngressNode.id == subject_id, IngressNode.org_id == org_id
        )
        node = (await db.execute(query)).scalar()
        if node is None:
            return None
        return Holder(
            kind, node.id, node.org_id, node.name, node.enabled,
            node.tunnel_address, node.public_address,
        )  # fmt: skip
    agents = select(EdgeAgent).where(EdgeAgent.id == subject_id, EdgeAgent.org_id == org_id)
    agent = (await db.execute(agents)).scalar()
    if agent is None:
        return None
    return Holder(kind, agent.id, agent.org_id, agent.name, agent.enabled)


async def revoke_subject(
    db: AsyncSession, kind: Kind, org_id: uuid.UUID, subject_id: uuid.UUID, now: datetime
) -> int:
    """Mark every unrevoked certificate issued to the node or agent revoked; how many were.

    Called in the transaction that disables or deletes it, so the revocation commits with
    the change: renewals are refused from then on, and ingress snapshots list the serials.
    Re-enabling never clears `revoked_at`: the subject enrolls again with a new token.
    """
    result = await db.execute(
        update(IssuedCertificate)
        .where(
            IssuedCertificate.org_id == org_id,
            IssuedCertificate.kind == kind,
            IssuedCertificate.subject_id == subject_id,
            IssuedCertificate.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def parse_csr(pem: str) -> x509.CertificateSigningRequest:
    """A CSR whose signature is valid (proof of possession) for a P-256 key, or InvalidInput."""
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except ValueError:
        raise InvalidInput("csr is not a PEM certificate signing request") from None
    if not csr.is_signature_valid:
        raise InvalidInput("the CSR's signature does not verify (proof of possession)")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidInput("the CSR's key must be ECDSA P-256")
    return csr


def serial_hex(cert: x509.Certificate) -> str:
    return f"{cert.serial_number:x}"


def issue(
    db: AsyncSession,
    authority: Authority,
    holder: Holder,
    csr: x509.CertificateSigningRequest,
    *,
    lifetime: timedelta,
    now: datetime,
    via: str,
    previous_serial: str | None = None,
) -> tuple[Credentials, x509.Certificate]:
    """Sign a certificate for `holder` with the CSR's key, record it, and build the response.

    Raises:
        InvalidInput: the CSR's key is not acceptable, or the node's tunnel address cannot go
            in a certificate.
    """
    dns, ips = _addresses(holder)
    public_key = csr.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)  # parse_csr checked it
    try:
        _, cert = pki.issue_certificate(
            authority.key, authority.certificate, role=holder.kind, name=str(holder.id),
            org=str(holder.org_id), dns_names=dns, ip_addresses=ips, public_key=public_key,
            valid_for=lifetime,
        )  # fmt: skip
    except pki.PkiError as exc:
        raise InvalidInput(f"cannot issue the certificate: {exc}") from None
    db.add(_record(cert, holder, authority, now, via, previous_serial))
    return _credentials(cert, holder, authority), cert


def _record(
    cert: x509.Certificate,
    holder: Holder,
    authority: Authority,
    now: datetime,
    via: str,
    previous_serial: str | None,
) -> IssuedCertificate:
    return IssuedCertificate(
        serial=serial_hex(cert),
        org_id=holder.org_id,
        kind=holder.kind,
        subject_id=holder.id,
        fingerprint=pki.fingerprint(cert),
        ca_fingerprint=authority.fingerprint,
        via=via,
        previous_serial=previous_serial,
        issued_at=now,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def _credentials(cert: x509.Certificate, holder: Holder, authority: Authority) -> Credentials:
    subject = Subject(
        kind=holder.kind,
        id=holder.id,
        org_id=holder.org_id,
        name=holder.name,
        identity=pki.identity_uri(holder.kind, str(holder.id), str(holder.org_id)),
        tunnel_address=holder.tunnel_address,
        public_address=holder.public_address,
    )
    return Credentials(
        certificate=cert.public_bytes(serialization.Encoding.PEM).decode(),
        ca_certificates=authority.bundle_pem(),
        subject=subject,
        not_after=cert.not_valid_after_utc,
        renew_after=renew_after(cert),
    )


def _addresses(holder: Holder) -> tuple[list[str], list[str]]:
    if holder.kind != "ingress" or not holder.tunnel_address:
        return [], []
    host = holder.tunnel_address.rpartition(":")[0].removeprefix("[").removesuffix("]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return [host], []
    return [], [host]
