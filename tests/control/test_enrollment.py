"""Enrollment tokens and redemption against a real server (uvicorn on 127.0.0.1), on SQLite
and PostgreSQL: single use (also under a 50-way race), expiry, revocation, kind and subject
checks, storage as a hash, audit, throttling."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from control.settings import Settings
from tests.control.enroll_support import ENROLL, Owner, enroll_body, owner, query
from tests.control.helpers import API, Clock, check
from tests.control.server import serve


@pytest.fixture
def server(app: FastAPI) -> Iterator[str]:
    with serve(app) as base_url:
        yield base_url


@pytest.fixture
def boss(server: str) -> Iterator[Owner]:
    found = owner(server)
    yield found
    found.client.close()


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_a_token_is_shown_once_expires_in_an_hour_and_lists_without_its_secret(
    boss: Owner,
) -> None:
    agent = boss.agent()
    made = boss.token("agent", agent["id"])
    assert made["token"].startswith("kokoa_ent_") and len(made["token"]) > 50
    assert made["prefix"] == made["token"][:14]
    assert made["kind"] == "agent" and made["agent_id"] == agent["id"] and made["node_id"] is None
    assert _when(made["expires_at"]) - _when(made["created_at"]) == timedelta(hours=1)
    assert f"--token {made['token']}" in made["command"]
    assert made["command"].startswith("kokoa edge run ")
    listed = check(boss.client.get(f"{boss.base}/enrollment-tokens"), 200)
    assert [item["id"] for item in listed["items"]] == [made["id"]]
    assert "token" not in listed["items"][0]
    assert made["token"] not in str(listed)


def test_the_token_is_stored_as_its_sha256_only(settings: Settings, boss: Owner) -> None:
    made = boss.token("ingress", boss.node()["id"])
    stored = query(settings, "SELECT * FROM enrollment_tokens")
    assert [row.token_hash for row in stored] == [
        hashlib.sha256(made["token"].encode()).hexdigest()
    ]
    secret = made["token"].removeprefix("kokoa_ent_")
    assert secret not in str(stored)
    check(boss.client.post(ENROLL, json=enroll_body(made["token"], "ingress")), 201)
    audit = query(settings, "SELECT * FROM audit_events")
    assert secret not in str(audit)


def test_a_token_enrolls_once(server: str, boss: Owner) -> None:
    made = boss.token("agent", boss.agent()["id"])
    with httpx.Client(base_url=server) as anonymous:
        check(anonymous.post(ENROLL, json=enroll_body(made["token"], "agent")), 201)
        again = anonymous.post(ENROLL, json=enroll_body(made["token"], "agent"))
    assert again.status_code == 401
    assert again.json()["type"] == "urn:kokoa:problem:enrollment-refused"
    [failure] = boss.audit("enrollment.failed")
    assert failure["after"] == {"reason": "already used"}
    assert failure["target_id"] == made["id"]
    [redeemed] = boss.audit("enrollment.redeem")
    assert redeemed["after"]["token_id"] == made["id"]
    assert redeemed["client_ip"] == "127.0.0.1"
    used = check(boss.client.get(f"{boss.base}/enrollment-tokens"), 200)["items"][0]
    assert used["used_at"] is not None


@pytest.mark.parametrize("minutes", [None, 5])
def test_an_expired_token_is_refused(
    server: str, boss: Owner, clock: Clock, minutes: int | None
) -> None:
    body = {"expires_in_minutes": minutes} if minutes else {}
    made = boss.token("agent", boss.agent()["id"], **body)
    clock.advance(minutes=(minutes or 60) + 1)
    refused = httpx.post(server + ENROLL, json=enroll_body(made["token"], "agent"))
    assert refused.status_code == 401
    [failure] = boss.audit("enrollment.failed")
    assert failure["after"] == {"reason": "expired"}


def test_a_revoked_or_unknown_token_is_refused(server: str, boss: Owner) -> None:
    made = boss.token("agent", boss.agent()["id"])
    reply = boss.client.delete(f"{boss.base}/enrollment-tokens/{made['id']}")
    assert reply.status_code == 204
    refused = httpx.post(server + ENROLL, json=enroll_body(made["token"], "agent"))
    assert refused.status_code == 401
    unknown = httpx.post(server + ENROLL, json=enroll_body("kokoa_ent_" + "x" * 43, "agent"))
    assert unknown.status_code == 401
    assert [e["after"]["reason"] for e in boss.audit("enrollment.failed")] == ["revoked"]
    assert len(boss.audit("enrollment_token.revoke")) == 1


def test_a_used_token_cannot_be_revoked(server: str, boss: Owner) -> None:
    made = boss.token("agent", boss.agent()["id"])
    check(httpx.post(server + ENROLL, json=enroll_body(made["token"], "agent")), 201)
    reply = boss.client.delete(f"{boss.base}/enrollment-tokens/{made['id']}")
    assert reply.status_code == 409


def test_refusals_that_are_not_the_tokens_fault_keep_it_usable(server: str, boss: Owner) -> None:
    agent = boss.agent()
    made = boss.token("agent", agent["id"])
    token = made["token"]
    with httpx.Client(base_url=server) as anonymous:
        bad_csr = anonymous.post(ENROLL, json={"token": token, "kind": "agent", "csr": "no"})
        assert bad_csr.status_code == 422
        wrong_kind = anonymous.post(ENROLL, json=enroll_body(token, "ingress"))
        assert wrong_kind.status_code == 422
        assert "enrolls an edge agent" in wrong_kind.json()["detail"]
        check(boss.client.post(f"{boss.base}/agents/{agent['id']}/disable"), 200)
        disabled = anonymous.post(ENROLL, json=enroll_body(token, "agent"))
        assert disabled.status_code == 403
        assert disabled.json()["type"] == "urn:kokoa:problem:identity-disabled"
        check(boss.client.post(f"{boss.base}/agents/{agent['id']}/enable"), 200)
        check(anonymous.post(ENROLL, json=enroll_body(token, "agent")), 201)
    reasons = sorted(e["after"]["reason"] for e in boss.audit("enrollment.failed"))
    assert len(reasons) == 2 and "disabled" in reasons[0] + reasons[1]


def test_a_deleted_agents_token_is_gone(server: str, boss: Owner) -> None:
    agent = boss.agent()
    made = boss.token("agent", agent["id"])
    assert boss.client.delete(f"{boss.base}/agents/{agent['id']}").status_code == 204
    refused = httpx.post(server + ENROLL, json=enroll_body(made["token"], "agent"))
    assert refused.status_code == 401


@pytest.mark.parametrize("settings_overrides", [{"enroll_limit_ip": "1000/minute"}])
async def test_fifty_concurrent_redemptions_give_exactly_one_certificate(
    settings: Settings, server: str, boss: Owner
) -> None:
    made = boss.token("agent", boss.agent()["id"])
    bodies = [enroll_body(made["token"], "agent") for _ in range(50)]
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=server, limits=limits, timeout=60) as client:
        replies = await asyncio.gather(*(client.post(ENROLL, json=body) for body in bodies))
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [201] + [401] * 49, statuses
    await asyncio.to_thread(_exactly_one_redeemed, settings, boss)


def _exactly_one_redeemed(settings: Settings, boss: Owner) -> None:
    assert len(query(settings, "SELECT * FROM issued_certificates")) == 1
    assert len(boss.audit("enrollment.redeem")) == 1
    params: dict[str, str | int] = {"action": "enrollment.failed", "limit": 100}
    page = check(boss.client.get(f"{boss.base}/audit", params=params), 200)
    assert page["total"] == 49


@pytest.mark.parametrize("settings_overrides", [{"enroll_limit_ip": "3/minute"}])
def test_failures_are_throttled_per_address(server: str, boss: Owner) -> None:
    made = boss.token("agent", boss.agent()["id"])
    with httpx.Client(base_url=server) as anonymous:
        for _ in range(3):
            wrong = enroll_body("kokoa_ent_wrong", "agent")
            assert anonymous.post(ENROLL, json=wrong).status_code == 401
        throttled = anonymous.post(ENROLL, json=enroll_body(made["token"], "agent"))
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) >= 1
    tokens = check(boss.client.get(f"{boss.base}/enrollment-tokens"), 200)["items"]
    assert tokens[0]["used_at"] is None  # refused before the token was even looked at


def test_enrollment_needs_no_session_but_token_management_does(server: str, boss: Owner) -> None:
    node = boss.node()
    with httpx.Client(base_url=server) as anonymous:
        path = f"{boss.base}/nodes/{node['id']}/enrollment-tokens"
        assert anonymous.post(path).status_code == 401
        assert anonymous.get(f"{boss.base}/enrollment-tokens").status_code == 401
        assert anonymous.post(f"{ENROLL}/challenges").status_code == 201
    created = boss.audit("enrollment_token.create")
    assert created == []  # the refused attempt left no trace of a token
    check(boss.client.post(f"{API}/orgs/{boss.org_id}/nodes/{node['id']}/enrollment-tokens"), 201)
    assert len(boss.audit("enrollment_token.create")) == 1
