"""What the control plane and an enrolling process exchange (docs/enrollment.md).

Requests are strict (unknown fields are errors); responses are read leniently, so that a newer
control plane may add fields without breaking older nodes and agents.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["ingress", "agent"]
PEM_MAX = 16384  # a P-256 CSR or certificate is well under 2 KiB; a bundle of a few CAs too


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class EnrollRequest(Request):
    token: str = Field(min_length=1, max_length=200, description="the one-time enrollment token")
    kind: Kind = Field(description="what the caller is; a token for the other kind is refused")
    csr: str = Field(
        min_length=1, max_length=PEM_MAX, description="PEM CSR for the caller's own P-256 key"
    )


class RenewRequest(Request):
    certificate: str = Field(
        min_length=1, max_length=PEM_MAX, description="the current certificate (PEM)"
    )
    csr: str = Field(min_length=1, max_length=PEM_MAX, description="PEM CSR for the new key")
    nonce: str = Field(min_length=1, max_length=200, description="from the renewal challenge")
    signature: str = Field(
        min_length=1,
        max_length=400,
        description="base64url ECDSA-SHA256 signature by the current key (docs/enrollment.md)",
    )


class Challenge(Response):
    nonce: str
    expires_at: datetime


class Subject(Response):
    """Who the certificate was issued to."""

    kind: Kind
    id: uuid.UUID
    org_id: uuid.UUID
    name: str = Field(description="the node's or agent's name in the control plane")
    identity: str = Field(description="the certificate's URI SAN, urn:kokoa:org:…")
    tunnel_address: str | None = Field(default=None, description="ingress: what agents dial")
    public_address: str | None = Field(default=None, description="ingress: the public address")


class Credentials(Response):
    """A new certificate, the CA bundle to trust for the tunnel, and who it was issued to."""

    certificate: str = Field(description="PEM leaf certificate")
    ca_certificates: str = Field(description="PEM CA certificates to trust for the tunnel")
    subject: Subject
    not_after: datetime
    renew_after: datetime = Field(description="when the holder should start renewing")
