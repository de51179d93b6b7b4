"""CSRF: cookie-authenticated unsafe requests need the token and must not come cross-site."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.control.helpers import API, BASE_URL, PASSWORD, bearer, check, first_org, signup

MakeClient = Callable[[], httpx.AsyncClient]


async def _owner(make_client: MakeClient) -> tuple[httpx.AsyncClient, str]:
    client = make_client()
    await signup(client, "owner@example.com")
    return client, await first_org(client)


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, True),
        ({"Origin": BASE_URL}, True),
        ({"Origin": BASE_URL, "Sec-Fetch-Site": "same-origin"}, True),
        ({"X-CSRF-Token": ""}, False),
        ({"X-CSRF-Token": "0" * 64}, False),
        ({"Origin": "https://evil.example"}, False),
        ({"Origin": "null"}, False),
        ({"Sec-Fetch-Site": "cross-site"}, False),
        ({"Sec-Fetch-Site": "same-site"}, False),
    ],
)
async def test_unsafe_cookie_requests(
    make_client: MakeClient, headers: dict[str, str], allowed: bool
) -> None:
    client, org_id = await _owner(make_client)
    response = await client.post(
        f"{API}/orgs/{org_id}/agents", json={"name": "a1"}, headers=headers
    )
    assert response.status_code == (201 if allowed else 403), response.text
    agents = check(await client.get(f"{API}/orgs/{org_id}/agents"), 200)
    assert agents["total"] == (1 if allowed else 0)
    if not allowed:
        assert response.json()["type"] == "urn:kokoa:problem:csrf-failed"


async def test_safe_requests_need_no_token(make_client: MakeClient) -> None:
    client, org_id = await _owner(make_client)
    del client.headers["X-CSRF-Token"]
    check(await client.get(f"{API}/orgs/{org_id}/agents"), 200)


async def test_token_of_another_session_is_refused(make_client: MakeClient) -> None:
    client, org_id = await _owner(make_client)
    other = make_client()
    response = await other.post(
        f"{API}/auth/login", json={"email": "owner@example.com", "password": PASSWORD}
    )
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    refused = await client.post(f"{API}/orgs/{org_id}/agents", json={"name": "a1"})
    assert refused.status_code == 403


async def test_bearer_requests_need_no_csrf_token(make_client: MakeClient) -> None:
    client, org_id = await _owner(make_client)
    token = check(await client.post(f"{API}/me/tokens", json={"name": "ci"}), 201)["token"]
    robot = bearer(make_client(), token)
    robot.headers["Origin"] = "https://evil.example"  # irrelevant without cookies
    check(await robot.post(f"{API}/orgs/{org_id}/agents", json={"name": "a1"}), 201)


async def test_login_from_another_site_is_refused(make_client: MakeClient) -> None:
    await _owner(make_client)
    response = await make_client().post(
        f"{API}/auth/login",
        json={"email": "owner@example.com", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
