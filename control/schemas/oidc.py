"""Sign-in with OpenID Connect: what the sign-in page learns about the configured providers."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from control.schemas.common import In, Out


class OidcProviderOut(Out):
    slug: str = Field(description="names the provider in /api/v1/auth/oidc/{provider}/…")
    label: str = Field(description="for the button: 'Sign in with <label>'")
    login_url: str = Field(description="where the browser goes to sign in (a navigation)")


class OidcLinkIn(In):
    next: str = Field(
        default="/profile", max_length=512, description="the app's path to return to after"
    )


class OidcLinkOut(Out):
    url: str = Field(description="the provider's sign-in URL: send the browser there")


class OidcIdentityOut(Out):
    provider: str = Field(description="the provider's slug")
    email: str = Field(description="the address the provider gave when it was linked, or ''")
    created_at: datetime
    last_login_at: datetime
