"""/auth/oidc: sign-in with the configured OpenID providers (docs/control-plane.md).

`login` and `callback` are browser navigations, not API calls: they answer with redirects.
A refused sign-in goes back to the sign-in page with `?oidc_error=<code>`, never to an error
page; only an unknown provider (a wrong URL, not a failed sign-in) is a 404 problem.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Cookie, Path, Query, Request, status
from fastapi.responses import RedirectResponse

from control.api.cookies import set_session_cookie
from control.api.deps import ClientDep, Db, RuntimeDep
from control.api.problems import error_responses
from control.auth import oidc_state, sessions
from control.auth.oidc import OidcFailed
from control.auth.oidc_settings import OidcProvider
from control.runtime import Runtime
from control.schemas.oidc import OidcProviderOut
from control.services import oidc
from control.services.errors import NotFound

router = APIRouter(prefix="/oidc", tags=["auth"], responses=error_responses())
SIGN_IN_PATH = "/signin"
MAX_NEXT = 512
MAX_PARAM = 8192  # a code, a state or an error description; longer ones are cut
ProviderSlug = Annotated[str, Path(max_length=32, description="the provider's slug")]
StateCookie = Annotated[str | None, Cookie(alias=oidc_state.COOKIE_NAME, include_in_schema=False)]
SessionCookie = Annotated[str | None, Cookie(alias=sessions.COOKIE_NAME, include_in_schema=False)]
REDIRECT: dict[int | str, dict[str, Any]] = {
    status.HTTP_302_FOUND: {"description": "a redirect (browser navigation)"}
}


@router.get("/providers")
async def list_oidc_providers(rt: RuntimeDep) -> list[OidcProviderOut]:
    """The providers the sign-in page offers (none unless configured); needs no login."""
    return [
        OidcProviderOut(slug=p.slug, label=p.label, login_url=_login_path(p.slug))
        for p in rt.oidc.providers
    ]


@router.get(
    "/{provider}/login",
    response_class=RedirectResponse,
    status_code=status.HTTP_302_FOUND,
    responses=REDIRECT,
)
async def oidc_login(
    provider: ProviderSlug,
    rt: RuntimeDep,
    db: Db,
    client: ClientDep,
    next_path: Annotated[
        str | None, Query(alias="next", max_length=MAX_NEXT, description="where to go after")
    ] = None,
) -> RedirectResponse:
    """Go to the provider's sign-in with state, nonce and a PKCE challenge (S256); the attempt
    is remembered in a short-lived sealed cookie bound to this browser."""
    found = _provider(rt, provider)
    target = safe_next(next_path)
    try:
        await oidc.check_throttle(db, rt, client)
        url, sealed = await rt.oidc.start(found, target, rt.now())
    except OidcFailed as failure:
        return _to_sign_in(failure.code, target)
    response = RedirectResponse(url, status_code=status.HTTP_302_FOUND)
    response.set_cookie(
        oidc_state.COOKIE_NAME,
        sealed,
        max_age=int(oidc_state.STATE_TTL.total_seconds()),
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to us
    )
    return response


@router.get(
    "/{provider}/callback",
    response_class=RedirectResponse,
    status_code=status.HTTP_302_FOUND,
    responses=REDIRECT,
)
async def oidc_callback(
    provider: ProviderSlug,
    request: Request,
    rt: RuntimeDep,
    db: Db,
    client: ClientDep,
    sealed: StateCookie = None,
    old: SessionCookie = None,
) -> RedirectResponse:
    """Where the provider sends the browser back: check the state, redeem the code, find the
    user (docs/control-plane.md, the linking policy) and start a session as a login does."""
    found = _provider(rt, provider)
    params = {key: value[:MAX_PARAM] for key, value in request.query_params.items()}
    target = "/"  # until the state says where the sign-in started
    try:
        await oidc.check_throttle(db, rt, client)
        state = rt.oidc.open_state(found, sealed, params, rt.now())
        target = state.next
        identity = await rt.oidc.finish(found, state, params)
        logged_in = await oidc.sign_in(db, rt, found, identity, client, old)
    except OidcFailed as failure:
        await oidc.refused(db, rt, found, failure, client)
        return _to_sign_in(failure.code, target)
    response = RedirectResponse(target, status_code=status.HTTP_302_FOUND)
    set_session_cookie(response, logged_in.session.token, rt.settings)
    _clear_state(response)
    return response


def safe_next(value: str | None) -> str:
    """A path of ours to return to: absolute, not scheme-relative, no backslash tricks."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ch in value for ch in "\\\r\n\t") or len(value) > MAX_NEXT:
        return "/"
    return value


def _provider(rt: Runtime, slug: str) -> OidcProvider:
    found = rt.oidc.get(slug)
    if found is None:
        raise NotFound(f"no OpenID provider {slug!r} is configured")
    return found


def _login_path(slug: str) -> str:
    return f"/api/v1/auth/oidc/{slug}/login"


def _to_sign_in(code: str, next_path: str) -> RedirectResponse:
    query = {"oidc_error": code} | ({"next": next_path} if next_path != "/" else {})
    response = RedirectResponse(
        f"{SIGN_IN_PATH}?{urlencode(query)}", status_code=status.HTTP_302_FOUND
    )
    _clear_state(response)
    return response


def _clear_state(response: RedirectResponse) -> None:
    response.delete_cookie(
        oidc_state.COOKIE_NAME, path="/", secure=True, httponly=True, samesite="lax"
    )
