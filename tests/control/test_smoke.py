from __future__ import annotations

import httpx

from tests.control.helpers import API, check, first_org, signup


async def test_first_user_owns_an_organisation(client: httpx.AsyncClient) -> None:
    me = await signup(client, "owner@example.com", organisation_name="Acme")
    org_id = await first_org(client)
    data = check(await client.get(f"{API}/me"), 200)
    assert data["user"]["id"] == me.user_id
    assert data["memberships"] == [{"org_id": org_id, "org_name": "Acme", "role": "owner"}]
