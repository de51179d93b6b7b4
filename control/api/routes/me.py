"""/me: the signed-in user's profile, password, sessions, personal tokens and security events."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from control.api.cookies import set_session_cookie
from control.api.deps import CurrentPrincipal, Db, PageParams, RuntimeDep
from control.api.paging import to_page
from control.api.problems import error_responses
from control.schemas.accounts import MeOut, PasswordChangeIn, SessionOut, UserOut, UserUpdateIn
from control.schemas.audit import AuditEventOut
from control.schemas.common import Page
from control.schemas.oidc import OidcIdentityOut
from control.schemas.tokens import TokenCreated, TokenIn, TokenOut
from control.services import accounts, oidc, profile, tokens

router = APIRouter(prefix="/me", tags=["me"], responses=error_responses())
SessionId = Annotated[uuid.UUID, Path(description="session id (from the sessions list)")]
TokenId = Annotated[uuid.UUID, Path(description="token id")]
Provider = Annotated[str, Path(max_length=32, description="the provider's slug")]


@router.get("")
async def get_me(principal: CurrentPrincipal, db: Db) -> MeOut:
    """The current user and the organisations they belong to, with their role in each."""
    return await profile.me(db, principal)


@router.patch("")
async def update_me(principal: CurrentPrincipal, db: Db, data: UserUpdateIn) -> UserOut:
    return await profile.update_me(db, principal, data)


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    principal: CurrentPrincipal,
    db: Db,
    rt: RuntimeDep,
    data: PasswordChangeIn,
    response: Response,
) -> None:
    """Change the password: every other session ends, this one gets a new id."""
    new = await accounts.change_password(db, rt, principal, data)
    if new is not None:
        set_session_cookie(response, new.token, rt.settings)


@router.get("/oidc-identities")
async def list_my_oidc_identities(principal: CurrentPrincipal, db: Db) -> list[OidcIdentityOut]:
    """The OpenID provider identities linked to this account (link one: POST
    /auth/oidc/{provider}/link)."""
    rows = await oidc.identities(db, profile.user_id_of(principal))
    return [OidcIdentityOut.model_validate(row) for row in rows]


@router.delete("/oidc-identities/{provider}", status_code=status.HTTP_204_NO_CONTENT)
async def unlink_my_oidc_identity(principal: CurrentPrincipal, db: Db, provider: Provider) -> None:
    """Remove your account's link to this provider. 409 `conflict` if it is the account's only
    way to sign in (no password and no other provider linked)."""
    await oidc.unlink(db, principal, provider)


@router.get("/sessions")
async def list_sessions(principal: CurrentPrincipal, db: Db, rt: RuntimeDep) -> list[SessionOut]:
    return await profile.list_sessions(db, rt, principal)


@router.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_session(principal: CurrentPrincipal, db: Db, session_id: SessionId) -> None:
    await profile.revoke_session(db, principal, session_id)


@router.get("/tokens")
async def list_personal_tokens(
    principal: CurrentPrincipal, db: Db, page: PageParams
) -> Page[TokenOut]:
    return to_page(Page[TokenOut], await tokens.list_personal(db, principal, page))


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
async def create_personal_token(
    principal: CurrentPrincipal, db: Db, rt: RuntimeDep, data: TokenIn
) -> TokenCreated:
    """A token that acts as you; `token` is shown only in this response."""
    return await tokens.create_personal(db, rt, principal, data)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_personal_token(
    principal: CurrentPrincipal, db: Db, rt: RuntimeDep, token_id: TokenId
) -> None:
    await tokens.revoke_personal(db, rt, principal, token_id)


@router.get("/audit")
async def list_my_security_events(
    principal: CurrentPrincipal, db: Db, page: PageParams
) -> Page[AuditEventOut]:
    """Logins, failed logins, password changes and other account events of yours."""
    result = await profile.security_events(db, principal, page)
    result.rows[:] = [AuditEventOut.model_validate(row) for row in result.rows]
    return to_page(Page[AuditEventOut], result)
