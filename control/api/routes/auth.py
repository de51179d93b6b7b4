"""/auth: sign-up, login, logout and the current session (with its CSRF token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Cookie, Request, Response, status

from control.api.cookies import clear_session_cookie, set_session_cookie
from control.api.deps import ClientDep, CurrentPrincipal, Db, RuntimeDep
from control.api.problems import error_responses
from control.api.routes import oidc
from control.auth import csrf, sessions
from control.schemas.accounts import LoginIn, SessionInfo, SignupIn, UserOut
from control.services import accounts, profile

router = APIRouter(prefix="/auth", tags=["auth"], responses=error_responses())
SessionCookie = Annotated[str | None, Cookie(alias=sessions.COOKIE_NAME, include_in_schema=False)]
router.include_router(oidc.router)  # /auth/oidc/…: sign-in with an OpenID provider


def _info(logged_in: accounts.LoggedIn) -> SessionInfo:
    return SessionInfo(
        user=UserOut.model_validate(logged_in.user),
        csrf_token=logged_in.session.csrf,
        expires_at=logged_in.session.row.expires_at,
    )


@router.post("/signup", status_code=status.HTTP_201_CREATED)
async def signup(
    data: SignupIn,
    request: Request,
    response: Response,
    rt: RuntimeDep,
    db: Db,
    client: ClientDep,
    old: SessionCookie = None,
) -> SessionInfo:
    """Create an account and log in. The first account owns a new organisation; after that,
    sign-up needs an invitation token unless open sign-up is enabled."""
    csrf.check_origin(request.headers, rt.settings.allowed_origins)
    logged_in = await accounts.signup(db, rt, data, client, old)
    set_session_cookie(response, logged_in.session.token, rt.settings)
    return _info(logged_in)


@router.post("/login")
async def login(
    data: LoginIn,
    request: Request,
    response: Response,
    rt: RuntimeDep,
    db: Db,
    client: ClientDep,
    old: SessionCookie = None,
) -> SessionInfo:
    """Start a session (a new id every time) and set the session cookie."""
    csrf.check_origin(request.headers, rt.settings.allowed_origins)
    logged_in = await accounts.login(db, rt, data, client, old)
    set_session_cookie(response, logged_in.session.token, rt.settings)
    return _info(logged_in)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    principal: CurrentPrincipal, response: Response, db: Db, old: SessionCookie = None
) -> None:
    """End the current session on the server and clear the cookie."""
    await accounts.logout(db, principal, old)
    clear_session_cookie(response)


@router.get("/session")
async def get_session(principal: CurrentPrincipal, rt: RuntimeDep, db: Db) -> SessionInfo:
    """The current cookie session and its CSRF token (for a reloaded single-page app)."""
    return await profile.session_info(db, rt, principal)
