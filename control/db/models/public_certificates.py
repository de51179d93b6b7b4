"""Public (HTTPS) certificates an organisation uploads for its services' host names.

The chain is public and kept as PEM; the private key only encrypted (PKCS#8, PBES2 with
AES-256, under the CA key's passphrase: control/services/public_tls.py). `names` are the DNS
names of the server's certificate, which the snapshot builder matches against the services'
host names (control/channel/snapshots.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from control.db.base import Base, new_id, utcnow


class PublicCertificate(Base):
    __tablename__ = "public_certificates"
    __table_args__ = (UniqueConstraint("org_id", "fingerprint"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    names: Mapped[list[str]] = mapped_column(JSON, default=list)  # DNS names, lowercase, sorted
    chain: Mapped[str] = mapped_column(Text)  # PEM, the server's certificate first
    encrypted_key: Mapped[str] = mapped_column(Text)  # PEM, ENCRYPTED PRIVATE KEY
    key_type: Mapped[str] = mapped_column(String(16))  # "rsa-2048", "ec-p256", "ed25519", …
    subject: Mapped[str] = mapped_column(String(1000))
    issuer: Mapped[str] = mapped_column(String(1000))
    serial: Mapped[str] = mapped_column(String(64))  # lowercase hex
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the server's certificate
    not_before: Mapped[datetime]
    not_after: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
