"""API tokens: shown once, stored hashed, revocable, expiring; service accounts' limits."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from control.db.models import ApiToken
from control.main import runtime_of
from tests.control.helpers import API, Clock, bearer, check, first_org, signup

MakeClient = Callable[[], httpx.AsyncClient]


async def _owner(make_client: MakeClient) -> tuple[httpx.AsyncClient, str]:
    client = make_client()
    await signup(client, "owner@example.com")
    return client, await first_org(client)


async def test_personal_token_shown_once_and_stored_hashed(
    app: FastAPI, make_client: MakeClient
) -> None:
    owner, _ = await _owner(make_client)
    made = check(await owner.post(f"{API}/me/tokens", json={"name": "laptop"}), 201)
    secret = made["token"]
    assert secret.startswith("kokoa_pat_") and secret.startswith(made["prefix"])
    listed = check(await owner.get(f"{API}/me/tokens"), 200)
    assert listed["total"] == 1 and "token" not in listed["items"][0]
    async with runtime_of(app).sessionmaker() as db:
        row = (await db.execute(select(ApiToken))).scalar_one()
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(vars(row))
    me = check(await bearer(make_client(), secret).get(f"{API}/me"), 200)
    assert me["user"]["email"] == "owner@example.com"


async def test_a_token_cannot_mint_personal_tokens(make_client: MakeClient) -> None:
    owner, _ = await _owner(make_client)
    made = check(await owner.post(f"{API}/me/tokens", json={"name": "laptop"}), 201)
    by_token = bearer(make_client(), made["token"])
    refused = await by_token.post(f"{API}/me/tokens", json={"name": "copy"})
    assert refused.status_code == 403
    assert "signed-in session" in refused.json()["detail"]
    listed = check(await by_token.get(f"{API}/me/tokens"), 200)
    assert [t["name"] for t in listed["items"]] == ["laptop"]


async def test_revoked_and_expired_tokens_stop_working(
    make_client: MakeClient, clock: Clock
) -> None:
    owner, _ = await _owner(make_client)
    revoked = check(await owner.post(f"{API}/me/tokens", json={"name": "a"}), 201)
    expiring = check(
        await owner.post(f"{API}/me/tokens", json={"name": "b", "expires_in_days": 1}), 201
    )
    check(await owner.delete(f"{API}/me/tokens/{revoked['id']}"), 204)
    assert (await bearer(make_client(), revoked["token"]).get(f"{API}/me")).status_code == 401
    check(await bearer(make_client(), expiring["token"]).get(f"{API}/me"), 200)
    clock.advance(days=1, seconds=1)
    assert (await bearer(make_client(), expiring["token"]).get(f"{API}/me")).status_code == 401


async def test_malformed_authorization_is_refused_without_cookie_fallback(
    make_client: MakeClient,
) -> None:
    owner, _ = await _owner(make_client)
    for value in ("Basic b3duZXI6cGFzcw==", "Bearer", "Bearer kokoa_pat_nope"):
        response = await owner.get(f"{API}/me", headers={"Authorization": value})
        assert response.status_code == 401, value


async def test_service_account_role_limits(make_client: MakeClient) -> None:
    owner, org_id = await _owner(make_client)
    tokens = f"{API}/orgs/{org_id}/tokens"
    refused = await owner.post(tokens, json={"name": "x", "role": "owner"})
    assert refused.status_code == 403
    made = check(await owner.post(tokens, json={"name": "ci", "role": "operator"}), 201)
    assert made["token"].startswith("kokoa_sat_") and made["org_id"] == org_id
    robot = bearer(make_client(), made["token"])
    orgs = check(await robot.get(f"{API}/orgs"), 200)
    assert [(o["id"], o["role"]) for o in orgs] == [(org_id, "operator")]
    me = await robot.get(f"{API}/me")
    assert me.status_code == 403 and me.json()["type"] == "urn:kokoa:problem:user-required"
    service = {"name": "web", "hostname": "web.example.com", "origin": "http://10.0.0.5:80"}
    check(await robot.post(f"{API}/orgs/{org_id}/services", json=service), 201)
    assert (await robot.post(f"{API}/orgs/{org_id}/agents", json={"name": "a"})).status_code == 403
    events = check(
        await owner.get(f"{API}/orgs/{org_id}/audit", params={"action": "service.create"}), 200
    )["items"]
    assert events[0]["actor_type"] == "token" and events[0]["actor_id"] == made["id"]


async def test_admin_cannot_mint_a_token_above_itself(make_client: MakeClient) -> None:
    owner, org_id = await _owner(make_client)
    token = check(
        await owner.post(f"{API}/orgs/{org_id}/invitations", json={"role": "operator"}), 201
    )["token"]
    operator = make_client()
    await signup(operator, "op@example.com", invitation_token=token)
    response = await operator.post(
        f"{API}/orgs/{org_id}/tokens", json={"name": "x", "role": "viewer"}
    )
    assert response.status_code == 403  # operators do not manage tokens at all
