"""The relying party: authorization code flow with PKCE (S256) against each configured provider.

authlib does the protocol: discovery, the authorization URL (state, nonce, code challenge),
the token request (client_secret_basic, with the code verifier) and the ID token's checks —
signature against the provider's JWKS, `iss`, `aud`, `exp`/`iat`, `nonce` and `at_hash`. We add
what authlib leaves to the application: the discovery document's `issuer` must be the one
configured, an `iss` in the authorization response must be it too (RFC 9207, mix-up attacks),
and the userinfo answer must be about the ID token's `sub`.

Every failure becomes an `OidcFailed` with a short code the sign-in page explains; the details
go to the log only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx2
from authlib.common.errors import AuthlibBaseError  # type: ignore[import-untyped]
from authlib.integrations.starlette_client import OAuth  # type: ignore[import-untyped]
from joserfc.errors import JoseError

from control.auth.oidc_settings import OidcProvider
from control.auth.oidc_state import STATE_TTL, LoginState, StateInvalid, StateSealer

log = logging.getLogger(__name__)
CALLBACK_PATH = "/api/v1/auth/oidc/{slug}/callback"
HTTP_TIMEOUT = 10.0


class OidcFailed(Exception):
    """A sign-in that cannot go on; `code` is what the sign-in page shows (docs/api.md)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the provider says signed in: the ID token's claims with the userinfo answer."""

    provider: str
    subject: str
    email: str | None
    email_verified: bool
    name: str
    claims: Mapping[str, Any] = field(repr=False)

    def values(self, claim: str) -> set[str]:
        """The claim's values as strings (a list claim such as `groups`, or a single value)."""
        value = self.claims.get(claim)
        if isinstance(value, list | tuple):
            return {str(item) for item in value}
        return set() if value is None else {str(value)}


class RelyingParty:
    """The configured providers' clients, and the sealer of the sign-in cookie."""

    def __init__(self, providers: tuple[OidcProvider, ...], public_url: str, secret: bytes) -> None:
        self._providers = {provider.slug: provider for provider in providers}
        self._public_url = public_url
        self._oauth = OAuth()
        for provider in providers:
            self._oauth.register(
                name=provider.slug,
                client_id=provider.client_id,
                client_secret=provider.client_secret.get_secret_value(),
                server_metadata_url=provider.discovery_url,
                client_kwargs={
                    "scope": " ".join(provider.scopes),
                    "code_challenge_method": "S256",
                    "token_endpoint_auth_method": "client_secret_basic",
                    "timeout": HTTP_TIMEOUT,
                },
            )
        self.sealer = StateSealer(secret)

    @property
    def providers(self) -> tuple[OidcProvider, ...]:
        return tuple(self._providers.values())

    def get(self, slug: str) -> OidcProvider | None:
        return self._providers.get(slug)

    def redirect_uri(self, slug: str) -> str:
        return self._public_url + CALLBACK_PATH.format(slug=slug)

    async def start(
        self,
        provider: OidcProvider,
        next_path: str,
        now: datetime,
        link_user: str | None = None,
    ) -> tuple[str, str]:
        """(the provider's authorization URL, the sealed cookie that remembers this attempt);
        `link_user`: the attempt links the identity to that signed-in user instead."""
        client = self._oauth.create_client(provider.slug)
        try:
            await self._metadata(provider)
            made = await client.create_authorization_url(self.redirect_uri(provider.slug))
        except (AuthlibBaseError, httpx2.HTTPError, ValueError, RuntimeError) as exc:
            log.warning("oidc %s: cannot start a sign-in: %r", provider.slug, exc)
            raise OidcFailed("unavailable", "the provider cannot be reached") from None
        state = LoginState(
            provider=provider.slug,
            state=made["state"],
            nonce=made["nonce"],
            code_verifier=made["code_verifier"],
            next=next_path,
            expires=(now + STATE_TTL).timestamp(),
            link_user=link_user,
        )
        return str(made["url"]), self.sealer.seal(state)

    def open_state(
        self, provider: OidcProvider, cookie: str | None, params: Mapping[str, str], now: datetime
    ) -> LoginState:
        try:
            return self.sealer.open(
                cookie, provider=provider.slug, state=params.get("state"), now=now
            )
        except StateInvalid as exc:
            raise OidcFailed("state", str(exc)) from None

    async def finish(
        self, provider: OidcProvider, state: LoginState, params: Mapping[str, str]
    ) -> Identity:
        """Exchange the code for tokens, check the ID token and read userinfo."""
        code = _authorization_code(provider, params)
        try:
            metadata = await self._metadata(provider)
            if metadata.get("authorization_response_iss_parameter_supported") and (
                "iss" not in params
            ):
                raise OidcFailed("provider", "the response lacks the iss its provider promises")
            claims, info = await self._exchange(provider, metadata, state, code)
        except OidcFailed:
            raise
        except (
            AuthlibBaseError,
            JoseError,
            httpx2.HTTPError,
            ValueError,
            KeyError,
            RuntimeError,
        ) as exc:
            log.warning("oidc %s: the code exchange failed: %r", provider.slug, exc)
            raise OidcFailed("provider", "the provider's answer was refused") from None
        if info is not None and info.get("sub") != claims.get("sub"):
            raise OidcFailed("provider", "userinfo is about another subject than the ID token")
        return _identity(provider, claims | (info or {}))

    async def _exchange(
        self, provider: OidcProvider, metadata: Mapping[str, Any], state: LoginState, code: str
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The ID token's checked claims, and userinfo's answer (None: no such endpoint)."""
        client = self._oauth.create_client(provider.slug)
        token = await client.fetch_access_token(
            redirect_uri=self.redirect_uri(provider.slug),
            code=code,
            code_verifier=state.code_verifier,
        )
        if "id_token" not in token:
            raise OidcFailed("provider", "the token response has no ID token")
        claims = dict(await client.parse_id_token(token, nonce=state.nonce))
        if not metadata.get("userinfo_endpoint"):
            return claims, None
        return claims, dict(await client.userinfo(token=token))

    async def _metadata(self, provider: OidcProvider) -> Mapping[str, Any]:
        client = self._oauth.create_client(provider.slug)
        metadata: dict[str, Any] = await client.load_server_metadata()
        issuer = metadata.get("issuer")
        if not provider.names_issuer(issuer):
            client.server_metadata.clear()  # read it again next time (`metadata` is this dict)
            raise ValueError(f"discovery names the issuer {issuer!r}, not {provider.issuer!r}")
        return metadata


def _authorization_code(provider: OidcProvider, params: Mapping[str, str]) -> str:
    """The code of a successful authorization response, else why it failed."""
    if "error" in params:
        code = "denied" if params["error"] == "access_denied" else "provider"
        detail = f"{params['error']}: {params.get('error_description', '')}"
        raise OidcFailed(code, f"the provider answered {detail[:300]}")
    if "iss" in params and not provider.names_issuer(params["iss"]):
        raise OidcFailed("provider", f"the response names another issuer: {params['iss'][:200]!r}")
    if not params.get("code"):
        raise OidcFailed("provider", "the provider sent no authorization code")
    return params["code"]


def _identity(provider: OidcProvider, claims: dict[str, Any]) -> Identity:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise OidcFailed("provider", "the ID token has no usable subject")
    email = claims.get("email")
    email = email.strip().lower() if isinstance(email, str) and "@" in email else None
    verified = claims.get("email_verified") in (True, "true") or provider.trust_email
    name = claims.get("name") or claims.get("preferred_username") or ""
    return Identity(
        provider=provider.slug,
        subject=subject,
        email=email if email and len(email) <= 320 else None,
        email_verified=verified,
        name=str(name)[:100],
        claims=claims,
    )
