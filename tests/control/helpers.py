"""Helpers for the control-plane tests: settings, a settable clock, and API conveniences."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from control.settings import PasswordHashSettings, Settings

BASE_URL = "https://kokoa.test"
API = "/api/v1"
PASSWORD = "correct horse battery staple"
# Argon2id made cheap for tests only (production defaults stay pwdlib's recommendation).
FAST_HASH = PasswordHashSettings(time_cost=1, memory_cost=1024, parallelism=1)
_counter = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


def test_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "mode": "production",
        "secret_key": "test-secret-key-that-is-long-enough-0123456789",
        "database_url": database_url,
        "data_dir": data_dir,
        "public_url": BASE_URL,
        "password_hash": FAST_HASH,
        "login_limit_account": "1000/minute",
        "login_limit_ip": "1000/minute",
    }
    return Settings(**(values | overrides))


class Clock:
    """A clock the tests move by hand (sessions, invitations and tokens read it)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Login:
    client: httpx.AsyncClient
    email: str
    user_id: str
    csrf: str
    orgs: dict[str, str] = field(default_factory=dict)  # org id -> role


def check(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
    )
    return response.json() if response.content else None


async def signup(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: Any
) -> Login:
    """Sign up (and so log in); later requests of `client` carry the CSRF token."""
    body = {"email": email, "password": password} | extra
    data = check(await client.post(f"{API}/auth/signup", json=body), 201)
    client.headers["X-CSRF-Token"] = data["csrf_token"]
    return Login(client, email, data["user"]["id"], data["csrf_token"])


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> Login:
    data = check(
        await client.post(f"{API}/auth/login", json={"email": email, "password": password}), 200
    )
    client.headers["X-CSRF-Token"] = data["csrf_token"]
    return Login(client, email, data["user"]["id"], data["csrf_token"])


async def first_org(client: httpx.AsyncClient) -> str:
    orgs = check(await client.get(f"{API}/orgs"), 200)
    return str(orgs[0]["id"])


async def invite(client: httpx.AsyncClient, org_id: str, role: str, **extra: Any) -> str:
    body = {"role": role} | extra
    data = check(await client.post(f"{API}/orgs/{org_id}/invitations", json=body), 201)
    return str(data["token"])


async def join(
    owner: httpx.AsyncClient, org_id: str, role: str, client: httpx.AsyncClient, email: str
) -> Login:
    """A new account that joins `org_id` with `role` through an invitation."""
    token = await invite(owner, org_id, role)
    return await signup(client, email, invitation_token=token)


def bearer(client: httpx.AsyncClient, token: str) -> httpx.AsyncClient:
    client.headers["Authorization"] = f"Bearer {token}"
    return client
