"""An issuer that ends in "/" (Auth0's do: `https://<tenant>.auth0.com/`), against the real
provider: discovery, the ID token's `iss` and RFC 9207's `iss` all carry it, while the setting
drops it (docs/control-plane.md); configured with or without it, the sign-in works."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.control.conftest import MakeClient
from tests.control.helpers import signup
from tests.control.test_oidc import (
    CALLBACK,
    SQLITE_ONLY,
    browser_of,
    error_of,
    link_with_password,
    oidc_sign_in,
    signed_in_as,
)
from tests.support.oidc.fixture import RunningProvider, running_provider


@pytest.fixture(scope="module")
def provider() -> Iterator[RunningProvider]:
    with running_provider([CALLBACK], issuer_slash=True) as running:
        assert running.issuer.endswith("/")
        yield running


@pytest.fixture(params=["as discovery says", "without the slash"])
def settings_overrides(provider: RunningProvider, request: pytest.FixtureRequest) -> dict[str, Any]:
    issuer = provider.issuer if request.param == "as discovery says" else provider.issuer[:-1]
    return {"oidc_providers": [provider.setting(issuer=issuer)]}


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_of(app) as client:
        yield client


@SQLITE_ONLY
async def test_an_issuer_ending_in_a_slash_signs_in(
    app: FastAPI, browser: httpx.AsyncClient, make_client: MakeClient
) -> None:
    await signup(make_client(), "ann@example.com")
    await link_with_password(app, "ann")
    response = await oidc_sign_in(browser, "ann")
    assert response.headers["location"] == "/", error_of(response)
    assert await signed_in_as(browser) == "ann@example.com"
