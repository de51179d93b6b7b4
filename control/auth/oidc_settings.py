"""OpenID Connect providers as the settings describe them (`oidc_providers`, docs/control-plane.md).

Each provider is one confidential client registered at an OpenID provider, found by discovery
(`{issuer}/.well-known/openid-configuration`). A bad entry is refused at start with the field
and the reason, like every other setting.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator

from control.auth.roles import Role

SLUG = r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
DEFAULT_SCOPES = ("openid", "email", "profile")
Scope = Annotated[str, StringConstraints(pattern=r"^[\x21\x23-\x5b\x5d-\x7e]{1,64}$")]
Domain = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.-]{1,253}$")]


class OidcRoleMapping(BaseModel):
    """A claim value that grants a role in an organisation: `groups` contains `value` → role."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    claim: str = Field(default="groups", min_length=1, max_length=100)
    value: str = Field(min_length=1, max_length=256)
    org_id: uuid.UUID
    role: Role = Role.VIEWER


class OidcProvider(BaseModel):
    """One OpenID provider the sign-in page offers ("Sign in with <label>")."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    slug: str = Field(pattern=SLUG, description="in the URLs: /api/v1/auth/oidc/<slug>/…")
    label: str = Field(min_length=1, max_length=64, description="shown on the button")
    issuer: str = Field(description="the issuer URL; discovery is read from it")
    client_id: str = Field(min_length=1, max_length=255)
    client_secret: SecretStr
    scopes: tuple[Scope, ...] = DEFAULT_SCOPES
    provision: bool = Field(
        default=False,
        description="create an account for an unknown user that a role mapping admits",
    )
    trust_email: bool = Field(
        default=False,
        description="take the e-mail address as verified without an email_verified claim",
    )
    allowed_domains: tuple[Domain, ...] = ()
    role_mappings: tuple[OidcRoleMapping, ...] = ()

    @field_validator("issuer")
    @classmethod
    def _check_issuer(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL with a host")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError("must be https:// (plain http only on a loopback address)")
        if parts.query or parts.fragment or parts.username:
            raise ValueError("must have no query, fragment or user name")
        return value.rstrip("/")  # compared without it: `names_issuer`

    @field_validator("client_secret")
    @classmethod
    def _check_secret(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("must not be empty")
        return value

    @field_validator("allowed_domains")
    @classmethod
    def _lower_domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(domain.lower() for domain in value)

    @field_validator("scopes")
    @classmethod
    def _check_scopes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "openid" not in value:
            raise ValueError("must include 'openid'")
        return tuple(dict.fromkeys(value))

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def names_issuer(self, value: object) -> bool:
        """Whether `value` (discovery's `issuer`, a response's `iss`) is this issuer. A
        trailing "/" aside, since it is dropped from the setting: some providers' issuers end
        in one (Auth0's), and the ID token's `iss` is checked against discovery's exact value."""
        return isinstance(value, str) and value.rstrip("/") == self.issuer

    def email_allowed(self, email: str) -> bool:
        if not self.allowed_domains:
            return True
        domain = email.rpartition("@")[2].lower()
        return domain in self.allowed_domains


def unique_slugs(providers: tuple[OidcProvider, ...]) -> tuple[OidcProvider, ...]:
    seen: set[str] = set()
    for provider in providers:
        if provider.slug in seen:
            raise ValueError(f"two providers have the slug {provider.slug!r}")
        seen.add(provider.slug)
    return providers


def valid_slug(slug: str) -> bool:
    return re.fullmatch(SLUG, slug) is not None
