"""Enrollment: one-time tokens, the certificates the control plane issued, and its CA.

- `EnrollmentToken`: a one-time secret for exactly one ingress node or edge agent; only its
  SHA-256 is stored. It is redeemed by one atomic UPDATE (`used_at IS NULL AND revoked_at IS
  NULL AND expires_at > now`), so of any number of concurrent redemptions one succeeds.
- `IssuedCertificate`: every certificate the CA signed (serial, subject, validity). No foreign
  key to the node or agent: the rows outlive a deleted subject, so a revocation list can still
  name the serials of a deleted agent until they expire.
- `CertificateAuthority`: the CA certificate and its private key, encrypted (PKCS#8, PBES2
  with AES-256). `slot` is "current" (signs), "next" (trusted, staged for rotation),
  "previous" (trusted until its leaves expire) or NULL (retired); at most one row per slot.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from control.db.base import Base, new_id, utcnow

SUBJECT_CHECK = (
    "(kind = 'ingress' AND node_id IS NOT NULL AND agent_id IS NULL) OR "
    "(kind = 'agent' AND agent_id IS NOT NULL AND node_id IS NULL)"
)


class EnrollmentToken(Base):
    __tablename__ = "enrollment_tokens"
    __table_args__ = (CheckConstraint(SUBJECT_CHECK, name="subject"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(8))  # "ingress" | "agent"
    node_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ingress_nodes.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("edge_agents.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(24))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_ip: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None]

    @property
    def subject_id(self) -> uuid.UUID:
        subject = self.node_id if self.kind == "ingress" else self.agent_id
        assert subject is not None  # the check constraint
        return subject


class IssuedCertificate(Base):
    __tablename__ = "issued_certificates"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    serial: Mapped[str] = mapped_column(String(40), unique=True)  # lowercase hex
    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(8))  # "ingress" | "agent"
    subject_id: Mapped[uuid.UUID] = mapped_column(index=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    ca_fingerprint: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(8))  # "enroll" | "renew"
    previous_serial: Mapped[str | None] = mapped_column(String(40))
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class CertificateAuthority(Base):
    __tablename__ = "certificate_authorities"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    slot: Mapped[str | None] = mapped_column(String(8), unique=True)
    certificate: Mapped[str] = mapped_column(Text)  # PEM
    encrypted_key: Mapped[str] = mapped_column(Text)  # PEM, ENCRYPTED PRIVATE KEY
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    not_after: Mapped[datetime]
    retired_at: Mapped[datetime | None]
