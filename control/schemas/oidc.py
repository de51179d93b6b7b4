"""Sign-in with OpenID Connect: what the sign-in page learns about the configured providers."""

from __future__ import annotations

from pydantic import Field

from control.schemas.common import Out


class OidcProviderOut(Out):
    slug: str = Field(description="names the provider in /api/v1/auth/oidc/{provider}/…")
    label: str = Field(description="for the button: 'Sign in with <label>'")
    login_url: str = Field(description="where the browser goes to sign in (a navigation)")
