"""Login throttling per account and per client address, with no permanent lockout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from tests.control.helpers import API, PASSWORD, check, login, signup

MakeClient = Callable[[], httpx.AsyncClient]


async def _attempt(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post(f"{API}/auth/login", json={"email": email, "password": password})


@pytest.mark.parametrize("settings_overrides", [{"login_limit_account": "3/minute"}])
async def test_account_limit_refuses_even_the_right_password(make_client: MakeClient) -> None:
    owner = make_client()
    await signup(owner, "owner@example.com")
    attacker = make_client()
    for _ in range(3):
        assert (await _attempt(attacker, "owner@example.com", "guess")).status_code == 401
    refused = await _attempt(make_client(), "owner@example.com", PASSWORD)
    assert refused.status_code == 429
    assert refused.json()["type"] == "urn:kokoa:problem:too-many-requests"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert (await _attempt(attacker, "other@example.com", "guess")).status_code == 401
    events = check(await owner.get(f"{API}/me/audit"), 200)["items"]
    assert [e["action"] for e in events].count("auth.login.failed") == 3


@pytest.mark.parametrize("settings_overrides", [{"login_limit_ip": "4/minute"}])
async def test_address_limit_across_accounts(make_client: MakeClient) -> None:
    await signup(make_client(), "owner@example.com")
    attacker = make_client()
    for n in range(4):
        response = await _attempt(attacker, f"user{n}@example.com", "guess")
        assert response.status_code == 401
    assert (await _attempt(attacker, "owner@example.com", PASSWORD)).status_code == 429


@pytest.mark.parametrize("settings_overrides", [{"login_limit_account": "2/second"}])
async def test_no_permanent_lockout(make_client: MakeClient) -> None:
    await signup(make_client(), "owner@example.com")
    client = make_client()
    for _ in range(2):
        await _attempt(client, "owner@example.com", "guess")
    assert (await _attempt(client, "owner@example.com", PASSWORD)).status_code == 429
    await asyncio.sleep(1.1)  # the moving window lets the oldest failures go
    await login(client, "owner@example.com")


@pytest.mark.parametrize(
    "settings_overrides", [{"login_limit_account": "3/minute", "login_limit_ip": "3/minute"}]
)
async def test_successful_logins_are_not_counted(make_client: MakeClient) -> None:
    await signup(make_client(), "owner@example.com")
    for _ in range(5):
        await login(make_client(), "owner@example.com")
