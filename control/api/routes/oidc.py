"""/auth/oidc: sign-in with the configured OpenID providers (docs/control-plane.md).

`login` and `callback` are browser navigations, not API calls: they answer with redirects.
A refused sign-in goes back to the sign-in page with `?oidc_error=<code>`, never to an error
page; only an unknown provider (a wrong URL, not a failed sign-in) is a 404 problem.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Cookie, Path, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from control.api.cookies import set_session_cookie
from control.api.deps import ClientDep, CurrentPrincipal, Db, RuntimeDep
from control.api.problems import error_responses
from control.auth import oidc_state, sessions
from control.auth.oidc import OidcFailed
from control.auth.oidc_settings import OidcProvider
from control.runtime import Runtime
from control.schemas.oidc import OidcLinkIn, OidcLinkOut, OidcProviderOut
from control.services import oidc
from control.services.errors import Forbidden, NotFound, ProviderUnavailable, Throttled

router = APIRouter(prefix="/oidc", tags=["auth"], responses=error_responses())
SIGN_IN_PATH = "/signin"
PROFILE_PATH = "/profile"
LINK_RETRY_AFTER = 60  # seconds, for a throttled link request
MAX_NEXT = 512
MAX_PARAM = 8192  # a code, a state or an error description; longer ones are cut
ProviderSlug = Annotated[str, Path(max_length=32, description="the provider's slug")]
StateCookie = Annotated[str | None, Cookie(alias=oidc_state.COOKIE_NAME, include_in_schema=False)]
SessionCookie = Annotated[str | None, Cookie(alias=sessions.COOKIE_NAME, include_in_schema=False)]
T = TypeVar("T")
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
    _set_state(response, sealed)
    return response


@router.post("/{provider}/link")
async def start_oidc_link(
    provider: ProviderSlug,
    principal: CurrentPrincipal,
    rt: RuntimeDep,
    db: Db,
    client: ClientDep,
    response: Response,
    data: OidcLinkIn,
) -> OidcLinkOut:
    """Link this provider to the signed-in account (a session, not a token): answers the
    provider's sign-in URL for the browser to go to; the callback then links the identity to
    this account if the browser is still signed in as it, and returns to `next`."""
    found = _provider(rt, provider)
    if principal.session_id is None or principal.user_id is None:
        raise Forbidden("linking a provider needs a signed-in browser, not an API token")
    await _checked(oidc.check_throttle(db, rt, client))
    url, sealed = await _checked(
        rt.oidc.start(found, safe_next(data.next), rt.now(), str(principal.user_id))
    )
    _set_state(response, sealed)
    return OidcLinkOut(url=url)


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
    linking = False
    try:
        await oidc.check_throttle(db, rt, client)
        state = rt.oidc.open_state(found, sealed, params, rt.now())
        target, linking = state.next, state.link_user is not None
        identity = await rt.oidc.finish(found, state, params)
        if state.link_user is not None:
            await oidc.link(db, rt, found, identity, old, state.link_user, client)
        else:
            logged_in = await oidc.sign_in(db, rt, found, identity, client, old)
    except OidcFailed as failure:
        await oidc.refused(db, rt, found, failure, client)
        if linking:
            return _back(target, {"oidc_error": failure.code})
        return _to_sign_in(failure.code, target)
    if linking:
        return _back(target, {"oidc_linked": found.slug})
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


async def _checked(work: Awaitable[T]) -> T:
    """For the link API call: a failure to start is a 503 problem, a throttle a 429."""
    try:
        return await work
    except OidcFailed as failure:
        if failure.code == "throttled":
            raise Throttled(LINK_RETRY_AFTER, failure.detail) from None
        raise ProviderUnavailable(failure.detail) from None


def _back(path: str, query: dict[str, str]) -> RedirectResponse:
    """Back to the page that asked to link (the profile), saying how it went."""
    base, _, _ = (path or PROFILE_PATH).partition("?")
    response = RedirectResponse(f"{base}?{urlencode(query)}", status_code=status.HTTP_302_FOUND)
    _clear_state(response)
    return response


def _set_state(response: Response, sealed: str) -> None:
    response.set_cookie(
        oidc_state.COOKIE_NAME,
        sealed,
        max_age=int(oidc_state.STATE_TTL.total_seconds()),
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to us
    )


def _clear_state(response: RedirectResponse) -> None:
    response.delete_cookie(
        oidc_state.COOKIE_NAME, path="/", secure=True, httponly=True, samesite="lax"
    )
