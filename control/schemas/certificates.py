"""Public (HTTPS) certificates: what an upload sends and what the API shows. The private key
goes in and never comes out."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from control.schemas.common import In, Out

MAX_CHAIN_CHARS = 16_384
MAX_KEY_CHARS = 8_192


class CertificateIn(In):
    chain: str = Field(
        min_length=1,
        max_length=MAX_CHAIN_CHARS,
        description="PEM certificates: the server's first, then each issuer in order",
    )
    private_key: str = Field(
        min_length=1,
        max_length=MAX_KEY_CHARS,
        description="the server certificate's unencrypted PEM private key: RSA (2048-8192 "
        "bits), EC (P-256, P-384) or Ed25519; stored encrypted, never returned",
    )


class CertificateOut(Out):
    id: uuid.UUID
    org_id: uuid.UUID
    names: list[str] = Field(description="DNS names of the server's certificate")
    subject: str
    issuer: str
    serial: str = Field(description="lowercase hex")
    fingerprint: str = Field(description="SHA-256 of the server's certificate, lowercase hex")
    key_type: str = Field(examples=["ec-p256", "rsa-2048", "ed25519"])
    not_before: datetime
    not_after: datetime
    chain: str = Field(description="the PEM chain as stored (public)")
    created_at: datetime
    updated_at: datetime
