"""Two first sign-ins at once for the same new identity, through the real provider (the helpers
and fixtures of test_oidc.py): both browsers are signed in, neither gets an error page.

On PostgreSQL both callbacks find no link, both make the account (or the link), and the second
hits a unique constraint when the first commits; it is tried again and finds what the first
made. SQLite's writers queue (BEGIN IMMEDIATE), so there the race cannot happen: run on both.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from control.db.engine import is_sqlite
from control.db.models import OidcIdentity, User
from control.main import runtime_of
from control.settings import Settings
from tests.control.conftest import MakeClient
from tests.control.helpers import API, check, first_org, invite, signup
from tests.control.test_oidc import (  # noqa: F401 (the fixtures)
    browser_of,
    callback_url,
    events,
    provider,
    settings_overrides,
    signed_in_as,
)

ROUNDS = 4


async def test_two_first_sign_ins_at_once_both_get_in(
    app: FastAPI, settings: Settings, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="control.services.oidc")
    owner = await signup(make_client(), "ann@example.com")
    org_id = await first_org(owner.client)
    for round_ in range(ROUNDS):
        login = f"racer{round_}"
        email = f"{login}@example.com"
        await invite(owner.client, org_id, "operator", email=email)
        async with browser_of(app) as one, browser_of(app) as two:
            urls = [await callback_url(one, login), await callback_url(two, login)]
            answers = await asyncio.gather(one.get(urls[0]), two.get(urls[1]))
            for answer in answers:
                assert answer.status_code == 302, answer.text
                assert answer.headers["location"] == "/", answer.headers["location"]
            assert [await signed_in_as(one), await signed_in_as(two)] == [email, email]
            orgs = check(await two.get(f"{API}/orgs"), 200)
            assert [(o["id"], o["role"]) for o in orgs] == [(org_id, "operator")]
        async with runtime_of(app).sessionmaker() as db:
            users = await db.scalar(select(func.count()).where(User.email == email))
            links = await db.scalar(select(func.count()).where(OidcIdentity.subject == login))
        assert (users, links) == (1, 1)
    assert await events(app, "auth.login.failed") == []
    assert len(await events(app, "auth.login.succeeded")) >= 2 * ROUNDS
    retried = [r for r in caplog.records if "concurrent first sign-in" in r.getMessage()]
    assert all("trying again" in r.getMessage() for r in retried)
    if not is_sqlite(settings.effective_database_url):  # the race did happen (and was won)
        assert retried
