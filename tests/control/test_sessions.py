"""Server-side sessions: the cookie, rotation, logout, timeouts, listing and revoking."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from control.auth.sessions import COOKIE_NAME
from tests.control.helpers import API, PASSWORD, Clock, check, login, signup

MakeClient = Callable[[], httpx.AsyncClient]


def _replay(make_client: MakeClient, value: str) -> httpx.AsyncClient:
    """A client that presents a stolen or stale cookie value."""
    client = make_client()
    client.headers["Cookie"] = f"{COOKIE_NAME}={value}"
    return client


async def test_cookie_is_host_prefixed_httponly_secure_lax(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/auth/signup", json={"email": "owner@example.com", "password": PASSWORD}
    )
    cookie = response.headers["set-cookie"]
    name, _, rest = cookie.partition("=")
    attributes = {part.strip().split("=")[0].lower() for part in rest.split(";")[1:]}
    assert name == "__Host-kokoa_session"
    assert {"httponly", "secure", "path", "max-age", "samesite"} <= attributes
    assert "domain" not in attributes
    assert "Path=/;" in cookie + ";" and "SameSite=lax" in cookie
    assert len(response.cookies[COOKIE_NAME]) >= 43  # 256 random bits, base64url


async def test_login_rotates_the_session_id(make_client: MakeClient) -> None:
    browser = make_client()
    await signup(browser, "owner@example.com")
    before = browser.cookies[COOKIE_NAME]
    await login(browser, "owner@example.com")
    after = browser.cookies[COOKIE_NAME]
    assert after != before
    assert (await _replay(make_client, before).get(f"{API}/me")).status_code == 401
    assert (await _replay(make_client, after).get(f"{API}/me")).status_code == 200


async def test_logout_ends_the_session_on_the_server(make_client: MakeClient) -> None:
    browser = make_client()
    await signup(browser, "owner@example.com")
    stolen = browser.cookies[COOKIE_NAME]
    check(await browser.post(f"{API}/auth/logout"), 204)
    assert (await _replay(make_client, stolen).get(f"{API}/me")).status_code == 401
    assert (await browser.get(f"{API}/me")).status_code == 401


@pytest.mark.parametrize("settings_overrides", [{"session_idle_timeout": 600}])
async def test_idle_timeout(make_client: MakeClient, clock: Clock) -> None:
    browser = make_client()
    await signup(browser, "owner@example.com")
    for _ in range(3):  # activity keeps it alive well past one idle period
        clock.advance(seconds=500)
        check(await browser.get(f"{API}/me"), 200)
    clock.advance(seconds=601)
    response = await browser.get(f"{API}/me")
    assert response.status_code == 401
    assert response.json()["type"] == "urn:kokoa:problem:unauthenticated"


@pytest.mark.parametrize("settings_overrides", [{"session_absolute_timeout": 3600}])
async def test_absolute_timeout_even_when_active(make_client: MakeClient, clock: Clock) -> None:
    browser = make_client()
    await signup(browser, "owner@example.com")
    for _ in range(5):
        clock.advance(seconds=700)
        check(await browser.get(f"{API}/me"), 200)
    clock.advance(seconds=101)
    assert (await browser.get(f"{API}/me")).status_code == 401


async def test_sessions_list_and_revoke(make_client: MakeClient) -> None:
    laptop, phone = make_client(), make_client()
    await signup(laptop, "owner@example.com")
    await login(phone, "owner@example.com")
    listed = check(await laptop.get(f"{API}/me/sessions"), 200)
    assert len(listed) == 2
    assert [s["current"] for s in listed].count(True) == 1
    other = next(s for s in listed if not s["current"])
    check(await laptop.delete(f"{API}/me/sessions/{other['id']}"), 204)
    assert (await phone.get(f"{API}/me")).status_code == 401
    assert (await laptop.delete(f"{API}/me/sessions/{other['id']}")).status_code == 404


@pytest.mark.parametrize("settings_overrides", [{"session_idle_timeout": 600}])
async def test_timed_out_sessions_are_not_listed_and_are_deleted(
    make_client: MakeClient, clock: Clock
) -> None:
    stale, fresh = make_client(), make_client()
    await signup(stale, "owner@example.com")
    clock.advance(seconds=601)  # the first session idles out
    await login(fresh, "owner@example.com")
    listed = check(await fresh.get(f"{API}/me/sessions"), 200)
    assert [s["current"] for s in listed] == [True]
    clock.advance(seconds=300)
    await login(make_client(), "owner@example.com")
    assert len(check(await fresh.get(f"{API}/me/sessions"), 200)) == 2


async def test_sessions_of_others_cannot_be_revoked(make_client: MakeClient) -> None:
    owner = make_client()
    await signup(owner, "owner@example.com")
    mine = check(await owner.get(f"{API}/me/sessions"), 200)[0]["id"]
    token = check(
        await owner.post(
            f"{API}/orgs/{check(await owner.get(f'{API}/orgs'), 200)[0]['id']}/invitations",
            json={"role": "admin"},
        ),
        201,
    )["token"]
    other = make_client()
    await signup(other, "other@example.com", invitation_token=token)
    assert (await other.delete(f"{API}/me/sessions/{mine}")).status_code == 404
    check(await owner.get(f"{API}/me"), 200)


async def test_password_change_ends_other_sessions_and_rotates(make_client: MakeClient) -> None:
    laptop, phone = make_client(), make_client()
    await signup(laptop, "owner@example.com")
    await login(phone, "owner@example.com")
    old_cookie = laptop.cookies[COOKIE_NAME]
    body = {"current_password": PASSWORD, "new_password": "a brand new passphrase"}
    check(await laptop.post(f"{API}/me/password", json=body), 204)
    assert (await phone.get(f"{API}/me")).status_code == 401
    assert (await _replay(make_client, old_cookie).get(f"{API}/me")).status_code == 401
    check(await laptop.get(f"{API}/me"), 200)  # rotated cookie set on the response
    wrong = await make_client().post(
        f"{API}/auth/login", json={"email": "owner@example.com", "password": PASSWORD}
    )
    assert wrong.status_code == 401
    await login(make_client(), "owner@example.com", "a brand new passphrase")


async def test_password_change_needs_the_current_password(client: httpx.AsyncClient) -> None:
    await signup(client, "owner@example.com")
    body = {"current_password": "not my password", "new_password": "a brand new passphrase"}
    assert (await client.post(f"{API}/me/password", json=body)).status_code == 401
    weak = {"current_password": PASSWORD, "new_password": "password1"}
    assert (await client.post(f"{API}/me/password", json=weak)).status_code == 422


async def test_session_endpoint_returns_the_csrf_token(client: httpx.AsyncClient) -> None:
    me = await signup(client, "owner@example.com")
    data = check(await client.get(f"{API}/auth/session"), 200)
    assert data["csrf_token"] == me.csrf
    assert data["user"]["email"] == "owner@example.com"
