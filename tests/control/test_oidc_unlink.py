"""Removing a provider link from the profile (DELETE /me/oidc-identities/{provider}), and two
links of the same identity at once, through the real provider (the helpers and fixtures of
test_oidc.py).

On PostgreSQL two callbacks linking the same identity both find no link and both add it; the
second hits the unique constraint when the first commits, is checked again and sees it linked.
SQLite's writers queue (BEGIN IMMEDIATE), so there the race cannot happen: run on both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from control.db.engine import is_sqlite
from control.db.models import OidcIdentity
from control.main import runtime_of
from control.settings import Settings
from tests.control.conftest import MakeClient
from tests.control.helpers import API, check, first_org, invite, join, login, signup
from tests.control.test_oidc import (  # noqa: F401 (the fixtures)
    browser_of,
    error_of,
    events,
    link_from_profile,
    link_with_password,
    oidc_sign_in,
    provider,
    settings_overrides,
    sign_out_at_provider,
    signed_in_as,
)
from tests.support.oidc.fixture import authorize

UNLINK = f"{API}/me/oidc-identities/test"
ROUNDS = 4


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_of(app) as client:
        yield client


async def linked(client: httpx.AsyncClient) -> list[str]:
    return [row["provider"] for row in check(await client.get(f"{API}/me/oidc-identities"), 200)]


async def test_a_password_account_unlinks_and_the_provider_no_longer_signs_it_in(
    app: FastAPI, browser: httpx.AsyncClient, make_client: MakeClient
) -> None:
    assert (await make_client().delete(UNLINK)).status_code == 401
    await signup(browser, "ann@example.com")
    org_id = await first_org(browser)
    await join(browser, org_id, "viewer", make_client(), "bob@example.com")
    await link_with_password(app, "ann")
    await link_with_password(app, "bob")
    assert await linked(browser) == ["test"]
    # ann unlinks with a personal token (like the other /me operations); bob's link stays.
    made = check(await browser.post(f"{API}/me/tokens", json={"name": "t"}), 201)
    async with browser_of(app) as api:
        api.headers["Authorization"] = f"Bearer {made['token']}"
        assert (await api.delete(UNLINK)).status_code == 204
        again = await api.delete(UNLINK)
        assert again.status_code == 404, again.text
        assert again.json()["type"] == "urn:kokoa:problem:not-found"
    assert await linked(browser) == []
    unlinked = await events(app, "auth.oidc.unlinked")
    assert [(e.target_label, e.after) for e in unlinked] == [
        ("ann@example.com", {"provider": "test", "subject": "ann"})
    ]
    async with browser_of(app) as bobs:
        await login(bobs, "bob@example.com")
        assert await linked(bobs) == ["test"]
        assert (await oidc_sign_in(bobs, "bob")).headers["location"] == "/"
    # The provider's word for ann's address reaches her account no more: it has a password.
    async with browser_of(app) as other:
        assert error_of(await oidc_sign_in(other, "ann")) == "link_required"
        assert await signed_in_as(other) is None
    # She can link it again (another subject there too, now that the old one is gone).
    back = await link_from_profile(browser, "ann#2")
    assert back.headers["location"] == "/profile?oidc_linked=test"
    async with runtime_of(app).sessionmaker() as db:
        subjects = await db.scalars(select(OidcIdentity.subject).order_by(OidcIdentity.subject))
        assert list(subjects) == ["ann#2", "bob"]


async def test_the_only_way_to_sign_in_is_not_unlinked(
    app: FastAPI, browser: httpx.AsyncClient, make_client: MakeClient
) -> None:
    owner = await signup(make_client(), "ann@example.com")
    await invite(owner.client, await first_org(owner.client), "operator", email="bob@example.com")
    assert (await oidc_sign_in(browser, "bob")).headers["location"] == "/"
    session = check(await browser.get(f"{API}/auth/session"), 200)
    browser.headers["X-CSRF-Token"] = session["csrf_token"]
    # bob has no password: his only link stays.
    refused = await browser.delete(UNLINK)
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["type"] == "urn:kokoa:problem:conflict"
    assert "only way to sign in" in problem["detail"]
    assert await linked(browser) == ["test"]
    assert await events(app, "auth.oidc.unlinked") == []
    # With another provider's link (one that is no longer configured), this one can go.
    async with runtime_of(app).sessionmaker() as db, db.begin():
        mine = (await db.scalars(select(OidcIdentity).where(OidcIdentity.subject == "bob"))).one()
        db.add(
            OidcIdentity(
                provider="old",
                subject="bob-at-old",
                user_id=mine.user_id,
                email="bob@example.com",
                created_at=mine.created_at,
                last_login_at=mine.last_login_at,
            )
        )
    assert (await browser.delete(UNLINK)).status_code == 204
    assert await linked(browser) == ["old"]
    refused = await browser.delete(f"{API}/me/oidc-identities/old")
    assert refused.status_code == 409, refused.text
    # Without a password and unlinked, the provider's address links bob again at his next
    # sign-in (the linking policy, 2a): unlinking is no lock-out of a password-less account.
    assert (await oidc_sign_in(browser, "bob")).headers["location"] == "/"
    assert sorted(await linked(browser)) == ["old", "test"]
    relinked = [e.after for e in await events(app, "auth.oidc.linked")]
    assert relinked[-1] == {"provider": "test", "subject": "bob", "by": "email"}
    assert [e.after for e in await events(app, "auth.oidc.unlinked")] == [
        {"provider": "test", "subject": "bob"}
    ]


async def test_two_links_of_one_identity_at_once_both_end_linked(
    app: FastAPI, settings: Settings, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Two browsers signed in as ann link the provider as the same login at once."""
    caplog.set_level(logging.INFO, logger="control.services.oidc")
    await signup(make_client(), "ann@example.com")
    async with browser_of(app) as one, browser_of(app) as two:
        for client in (one, two):
            await login(client, "ann@example.com")
        for _ in range(ROUNDS):
            urls = []
            for client in (one, two):
                sign_out_at_provider(client)
                started = check(await client.post(f"{API}/auth/oidc/test/link", json={}), 200)
                urls.append(await authorize(client, await client.get(started["url"]), "ann"))
            answers = await asyncio.gather(one.get(urls[0]), two.get(urls[1]))
            for answer in answers:
                assert answer.status_code == 302, answer.text
                assert answer.headers["location"] == "/profile?oidc_linked=test"
            async with runtime_of(app).sessionmaker() as db:
                links = await db.scalar(select(func.count()).select_from(OidcIdentity))
            assert links == 1
            assert (await one.delete(UNLINK)).status_code == 204
    assert await events(app, "auth.login.failed") == []
    assert len(await events(app, "auth.oidc.linked")) == ROUNDS
    retried = [r for r in caplog.records if "concurrent link" in r.getMessage()]
    assert all("trying again" in r.getMessage() for r in retried)
    if not is_sqlite(settings.effective_database_url):  # the race did happen (and was won)
        assert retried


async def test_two_unlinks_at_once_leave_a_way_to_sign_in(
    app: FastAPI, browser: httpx.AsyncClient, make_client: MakeClient
) -> None:
    """A password-less account unlinks both its providers at once: one goes, one is refused (on
    PostgreSQL both would see the other link left without the lock on the user's row)."""
    owner = await signup(make_client(), "ann@example.com")
    await invite(owner.client, await first_org(owner.client), "operator", email="bob@example.com")
    assert (await oidc_sign_in(browser, "bob")).headers["location"] == "/"
    session = check(await browser.get(f"{API}/auth/session"), 200)
    browser.headers["X-CSRF-Token"] = session["csrf_token"]
    for _ in range(ROUNDS):
        async with runtime_of(app).sessionmaker() as db, db.begin():
            rows = list(await db.scalars(select(OidcIdentity)))
            assert len(rows) == 1
            missing = "old" if rows[0].provider == "test" else "test"
            db.add(
                OidcIdentity(
                    provider=missing,
                    subject="bob",
                    user_id=rows[0].user_id,
                    email="bob@example.com",
                    created_at=rows[0].created_at,
                    last_login_at=rows[0].last_login_at,
                )
            )
        answers = await asyncio.gather(
            browser.delete(UNLINK), browser.delete(f"{API}/me/oidc-identities/old")
        )
        assert sorted(a.status_code for a in answers) == [204, 409], [a.text for a in answers]
        assert len(await linked(browser)) == 1
