"""Sign-in with OpenID Connect against a real provider (panva's oidc-provider on Node).

The control plane is the app in-process at https://kokoa.test; the provider is a real process
on 127.0.0.1. One httpx client per browser talks to both (a mount per origin), keeps both
sites' cookies, and fills the provider's development login and consent forms.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from control.auth.oidc import OidcFailed
from control.db.models import AuditEvent, Membership, User
from control.main import create_app, runtime_of
from control.settings import Settings
from tests.control.conftest import MakeClient
from tests.control.helpers import (
    API,
    BASE_URL,
    check,
    first_org,
    invite,
    join,
    login,
    signup,
)
from tests.support.oidc.fixture import RunningProvider, authorize, running_provider

CALLBACK = f"{BASE_URL}{API}/auth/oidc/test/callback"
LOGIN = f"{API}/auth/oidc/test/login"
SQLITE_ONLY = pytest.mark.parametrize("template", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def provider() -> Iterator[RunningProvider]:
    with running_provider([CALLBACK]) as running:
        yield running


@pytest.fixture
def settings_overrides(provider: RunningProvider) -> dict[str, Any]:
    return {"oidc_providers": [provider.setting()], "login_limit_ip": "10/minute"}


def browser_of(app: FastAPI) -> httpx.AsyncClient:
    """A browser: our app at https://kokoa.test, anything else over the network."""
    mounts = {BASE_URL: httpx.ASGITransport(app=app), "all://": httpx.AsyncHTTPTransport()}
    return httpx.AsyncClient(mounts=mounts, base_url=BASE_URL, timeout=10)


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_of(app) as client:
        yield client


def sign_out_at_provider(client: httpx.AsyncClient) -> None:
    for cookie in list(client.cookies.jar):
        if cookie.domain != "kokoa.test":
            client.cookies.jar.clear(cookie.domain, cookie.path, cookie.name)


async def callback_url(client: httpx.AsyncClient, login: str, path: str = LOGIN) -> str:
    """Sign in at the provider as `login` (after signing out there: its cookies are dropped)."""
    sign_out_at_provider(client)
    start = await client.get(path)
    assert start.status_code == 302, start.text
    return await authorize(client, start, login)


async def oidc_sign_in(client: httpx.AsyncClient, login: str, path: str = LOGIN) -> httpx.Response:
    """Our login URL → the provider's forms → our callback's answer (a redirect)."""
    response = await client.get(await callback_url(client, login, path))
    assert response.status_code == 302, response.text
    return response


async def link_from_profile(
    client: httpx.AsyncClient, login_name: str, next_path: str = "/profile"
) -> httpx.Response:
    """Signed in here, link the provider as `login_name` there: our link call, the provider's
    forms, our callback's answer (a redirect back to `next_path`)."""
    sign_out_at_provider(client)
    started = await client.post(f"{API}/auth/oidc/test/link", json={"next": next_path})
    url = check(started, 200)["url"]
    response = await client.get(await authorize(client, await client.get(url), login_name))
    assert response.status_code == 302, response.text
    return response


async def link_with_password(app: FastAPI, login_name: str) -> None:
    """`login_name`@example.com signs in with the password and links the provider."""
    async with browser_of(app) as own:
        await login(own, f"{login_name}@example.com")
        back = await link_from_profile(own, login_name)
        assert back.headers["location"] == "/profile?oidc_linked=test", back.headers["location"]


def error_of(response: httpx.Response) -> str | None:
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert location.path == "/signin", response.headers["location"]
    return parse_qs(location.query).get("oidc_error", [None])[0]


async def events(app: FastAPI, action: str) -> list[AuditEvent]:
    async with runtime_of(app).sessionmaker() as db:
        found = await db.execute(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
        return list(found.scalars())


async def signed_in_as(client: httpx.AsyncClient) -> str | None:
    response = await client.get(f"{API}/auth/session")
    return str(response.json()["user"]["email"]) if response.status_code == 200 else None


async def test_a_password_account_links_from_its_profile_then_signs_in(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    owner = await signup(browser, "ann@example.com")
    org_id = await first_org(browser)
    assert (await browser.post(f"{API}/auth/logout")).status_code == 204
    # Signed out, the provider's word for the address does not reach an account with a
    # password: addresses are not verified here, so whoever set it may be someone else.
    assert error_of(await oidc_sign_in(browser, "ann")) == "link_required"
    assert await events(app, "auth.oidc.linked") == []

    # Signed in with the password, ann links the provider from her profile.
    await login(browser, "ann@example.com")
    back = await link_from_profile(browser, "ann")
    assert back.headers["location"] == "/profile?oidc_linked=test"
    assert any(c.startswith('__Host-kokoa_oidc=""') for c in back.headers.get_list("set-cookie"))
    assert await signed_in_as(browser) == "ann@example.com"  # the same session goes on
    found = check(await browser.get(f"{API}/me/oidc-identities"), 200)
    assert [(i["provider"], i["email"]) for i in found] == [("test", "ann@example.com")]
    linked = await events(app, "auth.oidc.linked")
    assert [e.after for e in linked] == [{"provider": "test", "subject": "ann", "by": "profile"}]
    assert (await browser.post(f"{API}/auth/logout")).status_code == 204

    callback = await oidc_sign_in(browser, "ann", f"{LOGIN}?next=/orgs/{org_id}/services")
    assert callback.headers["location"] == f"/orgs/{org_id}/services"
    cookies = callback.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("__Host-kokoa_session="))
    assert "HttpOnly" in session_cookie and "Secure" in session_cookie
    assert any(c.startswith('__Host-kokoa_oidc=""') for c in cookies)  # the attempt is over

    session = check(await browser.get(f"{API}/auth/session"), 200)
    assert session["user"]["id"] == owner.user_id
    # A session like a local one: reads, and writes with its CSRF token.
    assert check(await browser.get(f"{API}/orgs"), 200)[0]["id"] == org_id
    browser.headers["X-CSRF-Token"] = session["csrf_token"]
    body = {"name": "via-oidc", "hostname": "oidc.example.com", "origin": "http://127.0.0.1:9"}
    check(await browser.post(f"{API}/orgs/{org_id}/services", json=body), 201)
    assert (await browser.post(f"{API}/auth/logout")).status_code == 204
    assert await signed_in_as(browser) is None

    logins = await events(app, "auth.login.succeeded")
    assert logins[-1].after == {"method": "oidc", "provider": "test"}
    assert str(logins[-1].actor_id) == owner.user_id
    # Next time too the link is found by (provider, subject), and no new one is made.
    assert (await oidc_sign_in(browser, "ann")).headers["location"] == "/"
    assert await signed_in_as(browser) == "ann@example.com"
    assert len(await events(app, "auth.oidc.linked")) == 1


@SQLITE_ONLY
async def test_whoever_set_a_password_for_an_address_gets_no_identity_through_it(
    app: FastAPI, browser: httpx.AsyncClient, make_client: MakeClient, provider: RunningProvider
) -> None:
    """The takeover this prevents: mallory signs up as ann@example.com (no address is verified
    here); when ann first signs in at the provider, her identity (and what role mappings grant
    it) must not land in mallory's account."""
    mallory = await signup(make_client(), "ann@example.com")
    assert error_of(await oidc_sign_in(browser, "ann")) == "link_required"
    assert await signed_in_as(browser) is None
    assert await events(app, "auth.oidc.linked") == []
    async with runtime_of(app).sessionmaker() as db:
        memberships = (await db.execute(select(Membership.user_id))).scalars().all()
    assert [str(m) for m in memberships] == [mallory.user_id]  # her own organisation only


@SQLITE_ONLY
async def test_linking_needs_the_same_signed_in_browser_and_a_free_identity(
    app: FastAPI, browser: httpx.AsyncClient, make_client: MakeClient
) -> None:
    assert (await browser.post(f"{API}/auth/oidc/test/link", json={})).status_code == 401
    await signup(browser, "ann@example.com")
    await join(browser, await first_org(browser), "viewer", make_client(), "bob@example.com")
    # Signed out between the link call and the callback: nothing is linked.
    sign_out_at_provider(browser)
    started = check(await browser.post(f"{API}/auth/oidc/test/link", json={}), 200)
    url = await authorize(browser, await browser.get(started["url"]), "ann")
    assert (await browser.post(f"{API}/auth/logout")).status_code == 204
    refused = await browser.get(url)
    assert refused.headers["location"] == "/profile?oidc_error=state"
    # Signed in again, ann links; bob cannot then take ann's identity, nor ann a second one.
    await login(browser, "ann@example.com")
    assert (await link_from_profile(browser, "ann")).headers["location"].endswith("linked=test")
    assert (await link_from_profile(browser, "ann")).headers["location"].endswith("linked=test")
    assert (await link_from_profile(browser, "ann#2")).headers["location"] == (
        "/profile?oidc_error=linked"
    )
    async with browser_of(app) as bobs:
        await login(bobs, "bob@example.com")
        taken = await link_from_profile(bobs, "ann")
        assert taken.headers["location"] == "/profile?oidc_error=linked"
        assert check(await bobs.get(f"{API}/me/oidc-identities"), 200) == []
    # An API token is no browser: it cannot start a link.
    made = check(await browser.post(f"{API}/me/tokens", json={"name": "t"}), 201)
    async with browser_of(app) as api:
        api.headers["Authorization"] = f"Bearer {made['token']}"
        by_token = await api.post(f"{API}/auth/oidc/test/link", json={})
        assert by_token.status_code == 403, by_token.text
    reasons = [e.after["reason"] for e in await events(app, "auth.login.failed") if e.after]
    assert reasons == ["state", "linked", "linked"]


@SQLITE_ONLY
async def test_pkce_s256_is_sent_and_the_provider_checks_the_verifier(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    start = await browser.get(f"{LOGIN}?next=//evil.example/")
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [CALLBACK]
    assert query["response_type"] == ["code"]
    assert query["scope"] == ["openid email profile groups"]
    assert query["nonce"] and query["state"]
    rt = runtime_of(app)
    found = rt.oidc.get("test")
    assert found is not None
    sealed = browser.cookies.get("__Host-kokoa_oidc")
    state = rt.oidc.open_state(found, sealed, {"state": query["state"][0]}, rt.now())
    assert state.next == "/"  # a scheme-relative next is not ours
    digest = hashlib.sha256(state.code_verifier.encode()).digest()
    assert query["code_challenge"] == [base64.urlsafe_b64encode(digest).decode().rstrip("=")]
    assert state.code_verifier not in (sealed or "")  # sealed, not just signed

    params = dict(httpx.URL(await authorize(browser, start, "ann")).params)
    wrong = dataclasses.replace(state, code_verifier=state.code_verifier[::-1])
    with pytest.raises(OidcFailed) as refused:
        await rt.oidc.finish(found, wrong, params)
    assert refused.value.code == "provider"


@SQLITE_ONLY
async def test_an_id_token_for_another_nonce_is_refused(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    """The ID token must carry the nonce this browser's attempt sent (a token obtained for
    another attempt, replayed, is not accepted); the same answer with the right one is."""
    start = await browser.get(LOGIN)
    query = parse_qs(urlsplit(start.headers["location"]).query)
    rt = runtime_of(app)
    found = rt.oidc.get("test")
    assert found is not None
    sealed = browser.cookies.get("__Host-kokoa_oidc")
    state = rt.oidc.open_state(found, sealed, {"state": query["state"][0]}, rt.now())
    assert query["nonce"] == [state.nonce]
    params = dict(httpx.URL(await authorize(browser, start, "ann")).params)
    other = dataclasses.replace(state, nonce=state.nonce + "x")
    with pytest.raises(OidcFailed) as refused:
        await rt.oidc.finish(found, other, params)
    assert refused.value.code == "provider"

    start = await browser.get(LOGIN)
    query = parse_qs(urlsplit(start.headers["location"]).query)
    sealed = browser.cookies.get("__Host-kokoa_oidc")
    state = rt.oidc.open_state(found, sealed, {"state": query["state"][0]}, rt.now())
    params = dict(httpx.URL(await authorize(browser, start, "ann")).params)
    identity = await rt.oidc.finish(found, state, params)
    assert (identity.subject, identity.email) == ("ann", "ann@example.com")


@SQLITE_ONLY
async def test_a_tampered_foreign_or_replayed_state_is_refused(
    app: FastAPI, browser: httpx.AsyncClient, make_client: MakeClient, provider: RunningProvider
) -> None:
    await signup(make_client(), "ann@example.com")
    await link_with_password(app, "ann")
    url = httpx.URL(await callback_url(browser, "ann"))
    tampered = url.copy_set_param("state", url.params["state"] + "x")
    refused = await browser.get(tampered)
    assert refused.headers["location"] == "/signin?oidc_error=state"
    # The attempt ended with the refusal (cookie cleared): the genuine answer is too late.
    assert error_of(await browser.get(url)) == "state"

    # Another browser, with the victim's valid callback URL but not its cookie: refused.
    url = httpx.URL(await callback_url(browser, "ann"))
    async with browser_of(app) as other:
        assert error_of(await other.get(url)) == "state"
        assert await signed_in_as(other) is None
    assert (await browser.get(url)).headers["location"] == "/"
    assert error_of(await browser.get(url)) == "state"  # replayed: the attempt is over

    # A response naming another issuer (RFC 9207: a mix-up) is refused before the code is used.
    url = httpx.URL(await callback_url(browser, "ann"))
    assert url.params["iss"] == provider.issuer
    assert error_of(await browser.get(url.copy_set_param("iss", "https://evil.example"))) == (
        "provider"
    )
    # …and so is one without it, from a provider whose discovery promises it.
    url = httpx.URL(await callback_url(browser, "ann"))
    assert error_of(await browser.get(url.copy_remove_param("iss"))) == "provider"
    reasons = [e.after["reason"] for e in await events(app, "auth.login.failed") if e.after]
    assert reasons == ["state"] * 4 + ["provider"] * 2


@SQLITE_ONLY
async def test_refusals_go_back_to_the_sign_in_page_with_a_code(
    app: FastAPI, browser: httpx.AsyncClient, make_client: MakeClient
) -> None:
    owner = await signup(make_client(), "ann@example.com")
    org_id = await first_org(owner.client)
    await link_with_password(app, "ann")
    assert error_of(await oidc_sign_in(browser, "stranger")) == "unknown_user"
    assert error_of(await oidc_sign_in(browser, "unverified-ann")) == "email"
    assert error_of(await oidc_sign_in(browser, "noemail")) == "email"
    assert (await oidc_sign_in(browser, "ann")).headers["location"] == "/"
    # Once ann is linked, another subject with her address is not let in.
    assert error_of(await oidc_sign_in(browser, "ann#2")) == "linked"
    assert await signed_in_as(browser) == "ann@example.com"  # the refused one ended nothing

    # The provider's own refusal (here: the user declined), with a valid state.
    start = await browser.get(f"{LOGIN}?next=/orgs/{org_id}")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    query = urlencode({"error": "access_denied", "state": state, "error_description": "no"})
    denied = await browser.get(f"{CALLBACK}?{query}")
    assert denied.headers["location"] == f"/signin?oidc_error=denied&next=%2Forgs%2F{org_id}"
    assert (await browser.get(LOGIN.replace("test", "nope"))).status_code == 404

    reasons = [e.after["reason"] for e in await events(app, "auth.login.failed") if e.after]
    assert reasons == ["unknown_user", "email", "email", "linked", "denied"]
    async with runtime_of(app).sessionmaker() as db:
        emails = set((await db.execute(select(User.email))).scalars())
    assert emails == {"ann@example.com"}  # no account was made for anyone refused


@SQLITE_ONLY
async def test_a_disabled_user_is_refused(
    app: FastAPI, browser: httpx.AsyncClient, make_client: MakeClient
) -> None:
    owner = await signup(make_client(), "ann@example.com")
    await link_with_password(app, "ann")
    assert (await oidc_sign_in(browser, "ann")).headers["location"] == "/"
    async with runtime_of(app).sessionmaker() as db, db.begin():
        await db.execute(
            update(User).where(User.email == "ann@example.com").values(is_active=False)
        )
    assert await signed_in_as(browser) is None  # the session ended with the account
    assert error_of(await oidc_sign_in(browser, "ann")) == "disabled"
    assert await signed_in_as(owner.client) is None


async def test_an_invited_address_gets_an_account(
    app: FastAPI, browser: httpx.AsyncClient, make_client: MakeClient
) -> None:
    owner = await signup(make_client(), "ann@example.com")
    org_id = await first_org(owner.client)
    await invite(owner.client, org_id, "operator", email="bob@example.com")
    assert (await oidc_sign_in(browser, "bob")).headers["location"] == "/"
    assert await signed_in_as(browser) == "bob@example.com"
    orgs = check(await browser.get(f"{API}/orgs"), 200)
    assert [(o["id"], o["role"]) for o in orgs] == [(org_id, "operator")]
    invitations = check(await owner.client.get(f"{API}/orgs/{org_id}/invitations"), 200)
    assert invitations["items"][0]["accepted_at"] is not None
    # No password: a local login with any password is refused like a wrong one.
    login = await make_client().post(
        f"{API}/auth/login", json={"email": "bob@example.com", "password": "x" * 12}
    )
    assert login.status_code == 401


@SQLITE_ONLY
async def test_provisioning_by_role_mapping(
    settings: Settings, provider: RunningProvider, make_client: MakeClient
) -> None:
    owner = await signup(make_client(), "ann@example.com")
    org_id = await first_org(owner.client)
    mapping = {"claim": "groups", "value": "kokoa-admins", "org_id": org_id, "role": "admin"}
    entry = provider.setting(provision=True, role_mappings=[mapping])
    mapped = create_app(Settings(**settings.model_dump() | {"oidc_providers": [entry]}))
    try:
        async with browser_of(mapped) as browser:
            # groups [kokoa-users]: no mapping admits them, so no account.
            assert error_of(await oidc_sign_in(browser, "carol")) == "unknown_user"
            assert (await oidc_sign_in(browser, "admin-dave")).headers["location"] == "/"
            assert await signed_in_as(browser) == "admin-dave@example.com"
            orgs = check(await browser.get(f"{API}/orgs"), 200)
            assert [(o["id"], o["role"]) for o in orgs] == [(org_id, "admin")]
            # A membership the user has is left alone by the mapping (admins may change it).
            dave = check(await browser.get(f"{API}/auth/session"), 200)["user"]["id"]
            async with runtime_of(mapped).sessionmaker() as db, db.begin():
                mine = Membership.user_id == uuid.UUID(dave)
                await db.execute(update(Membership).where(mine).values(role="viewer"))
            await oidc_sign_in(browser, "admin-dave")
            roles = check(await browser.get(f"{API}/orgs"), 200)
            assert [o["role"] for o in roles] == ["viewer"]
        added = [e.after for e in await events(mapped, "member.add") if e.after]
        assert {"role": "admin", "method": "oidc", "provider": "test"} in added
    finally:
        await runtime_of(mapped).engine.dispose()


@SQLITE_ONLY
async def test_an_unreachable_or_misconfigured_provider_is_unavailable(
    settings: Settings, provider: RunningProvider
) -> None:
    port = urlsplit(provider.issuer).port
    entries = [
        provider.setting(slug="down", issuer="http://127.0.0.1:9"),  # nothing listens
        provider.setting(slug="other", issuer=f"http://localhost:{port}"),  # not its issuer
    ]
    app = create_app(Settings(**settings.model_dump() | {"oidc_providers": entries}))
    try:
        async with browser_of(app) as browser:
            for slug in ("down", "other"):
                response = await browser.get(f"{API}/auth/oidc/{slug}/login?next=/orgs")
                assert response.headers["location"] == "/signin?oidc_error=unavailable&next=%2Forgs"
                assert "__Host-kokoa_oidc" not in browser.cookies
    finally:
        await runtime_of(app).engine.dispose()


@SQLITE_ONLY
async def test_failures_are_throttled_per_address(app: FastAPI, browser: httpx.AsyncClient) -> None:
    for _ in range(10):  # login_limit_ip is 10/minute here
        assert error_of(await browser.get(f"{CALLBACK}?code=x&state=y")) == "state"
    assert error_of(await browser.get(f"{CALLBACK}?code=x&state=y")) == "throttled"
    start = await browser.get(LOGIN)
    assert error_of(start) == "throttled"
    assert len(await events(app, "auth.login.throttled")) == 2


@pytest.mark.parametrize("settings_overrides", [{}])
async def test_no_providers_configured(client: httpx.AsyncClient) -> None:
    assert check(await client.get(f"{API}/auth/oidc/providers"), 200) == []
    assert (await client.get(LOGIN)).status_code == 404
    assert (await client.get(f"{CALLBACK}?code=x&state=y")).status_code == 404


@SQLITE_ONLY
async def test_providers_list_for_the_sign_in_page(client: httpx.AsyncClient) -> None:
    assert check(await client.get(f"{API}/auth/oidc/providers"), 200) == [
        {"slug": "test", "label": "Test IdP", "login_url": LOGIN}
    ]
