"""Sign-up and login: who may sign up, the password policy, and the login path."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from control.db.models import User
from control.main import runtime_of
from tests.control.helpers import API, PASSWORD, Clock, check, first_org, invite, login, signup

MakeClient = Callable[[], httpx.AsyncClient]


async def test_after_the_first_user_signup_needs_an_invitation(make_client: MakeClient) -> None:
    owner = make_client()
    await signup(owner, "owner@example.com")
    response = await make_client().post(
        f"{API}/auth/signup", json={"email": "late@example.com", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert response.json()["type"] == "urn:kokoa:problem:signup-closed"
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("settings_overrides", [{"open_signup": True}])
async def test_open_signup_gives_everyone_their_own_organisation(make_client: MakeClient) -> None:
    first, second = make_client(), make_client()
    await signup(first, "one@example.com", organisation_name="One")
    await signup(second, "two@example.com", organisation_name="Two")
    assert [o["name"] for o in check(await second.get(f"{API}/orgs"), 200)] == ["Two"]
    assert [o["role"] for o in check(await second.get(f"{API}/orgs"), 200)] == ["owner"]


async def test_invitation_joins_with_its_role_once(make_client: MakeClient) -> None:
    owner = make_client()
    await signup(owner, "owner@example.com")
    org_id = await first_org(owner)
    token = await invite(owner, org_id, "operator")
    member = make_client()
    await signup(member, "member@example.com", invitation_token=token)
    assert check(await member.get(f"{API}/orgs"), 200)[0]["role"] == "operator"
    again = await make_client().post(
        f"{API}/auth/signup",
        json={"email": "other@example.com", "password": PASSWORD, "invitation_token": token},
    )
    assert again.status_code == 400
    assert again.json()["type"] == "urn:kokoa:problem:invitation-invalid"
    emails = await make_client().post(
        f"{API}/auth/signup", json={"email": "other@example.com", "password": PASSWORD}
    )
    assert emails.status_code == 403  # the failed sign-up created no account either


async def test_invitation_bound_to_an_address_and_expiring(
    make_client: MakeClient, clock: Clock
) -> None:
    owner = make_client()
    await signup(owner, "owner@example.com")
    org_id = await first_org(owner)
    bound = await invite(owner, org_id, "viewer", email="Invited@Example.com")
    body = {"email": "intruder@example.com", "password": PASSWORD, "invitation_token": bound}
    assert (await make_client().post(f"{API}/auth/signup", json=body)).status_code == 400
    await signup(make_client(), "invited@example.com", invitation_token=bound)
    expiring = await invite(owner, org_id, "viewer", expires_in_hours=1)
    clock.advance(hours=1, seconds=1)
    body = {"email": "slow@example.com", "password": PASSWORD, "invitation_token": expiring}
    assert (await make_client().post(f"{API}/auth/signup", json=body)).status_code == 400


async def test_duplicate_email_is_a_conflict(make_client: MakeClient) -> None:
    owner = make_client()
    await signup(owner, "owner@example.com")
    token = await invite(owner, await first_org(owner), "viewer")
    body = {"email": "OWNER@example.com", "password": PASSWORD, "invitation_token": token}
    response = await make_client().post(f"{API}/auth/signup", json=body)
    assert response.status_code == 409


@pytest.mark.parametrize(
    ("password", "accepted"),
    [
        ("seven77", False),  # 7 characters
        ("password123", False),  # on the common list
        ("Qwerty123", False),  # on the list, whatever the case
        ("owner@example.com", False),  # the e-mail address
        ("eight888", True),  # 8 is enough, no composition rules
        ("correct horse 🐎 battery", True),  # spaces and any Unicode
        ("x" * 64, True),
        ("Ab1-" * 64, True),  # 256
        ("Ab1-" * 64 + "z", False),  # 257
    ],
)
async def test_password_policy(client: httpx.AsyncClient, password: str, accepted: bool) -> None:
    body = {"email": "owner@example.com", "password": password}
    response = await client.post(f"{API}/auth/signup", json=body)
    assert response.status_code == (201 if accepted else 422), response.text
    if not accepted:
        assert response.json()["type"] == "urn:kokoa:problem:weak-password"


async def test_passwords_are_stored_as_argon2id(app: FastAPI, client: httpx.AsyncClient) -> None:
    await signup(client, "owner@example.com")
    async with runtime_of(app).sessionmaker() as db:
        stored = (await db.execute(select(User.password_hash))).scalar_one()
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_login_succeeds_and_fails_audited(make_client: MakeClient) -> None:
    me = await signup(make_client(), "owner@example.com")
    browser = make_client()
    bad = await browser.post(
        f"{API}/auth/login", json={"email": "owner@example.com", "password": "not it at all"}
    )
    assert bad.status_code == 401
    await login(browser, "owner@example.com")
    events = check(await browser.get(f"{API}/me/audit"), 200)["items"]
    actions = [e["action"] for e in events]
    assert actions[:2] == ["auth.login.succeeded", "auth.login.failed"]
    failed = events[1]
    assert failed["actor_type"] == "anonymous"
    assert failed["target_id"] == me.user_id
    assert failed["client_ip"] == "127.0.0.1"


async def test_unknown_account_answers_like_a_wrong_password(
    app: FastAPI, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await signup(make_client(), "owner@example.com")
    hasher = runtime_of(app).hasher
    calls: list[str] = []
    real_dummy, real_verify = hasher.verify_dummy, hasher.verify

    async def dummy(password: str) -> None:
        calls.append("dummy")
        await real_dummy(password)

    async def verify(password: str, stored: str) -> tuple[bool, str | None]:
        calls.append("verify")
        return await real_verify(password, stored)

    monkeypatch.setattr(hasher, "verify_dummy", dummy)
    monkeypatch.setattr(hasher, "verify", verify)
    client = make_client()
    wrong = await client.post(
        f"{API}/auth/login", json={"email": "owner@example.com", "password": "wrong password"}
    )
    unknown = await client.post(
        f"{API}/auth/login", json={"email": "nobody@example.com", "password": "wrong password"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert {k: v for k, v in wrong.json().items() if k != "instance"} == {
        k: v for k, v in unknown.json().items() if k != "instance"
    }
    assert calls == ["verify", "dummy"]  # an Argon2 verification on both paths
