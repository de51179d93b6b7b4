"""Organisations and members: owners, admins, leaving, invitations for signed-in users."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.control.helpers import API, BASE_URL, Login, check, first_org, invite, join, signup

MakeClient = Callable[[], httpx.AsyncClient]


async def _org(make_client: MakeClient) -> tuple[Login, str]:
    owner = make_client()
    login = await signup(owner, "owner@example.com")
    return login, await first_org(owner)


async def test_the_last_owner_stays(make_client: MakeClient) -> None:
    owner, org_id = await _org(make_client)
    members = f"{API}/orgs/{org_id}/members"
    demote = await owner.client.patch(f"{members}/{owner.user_id}", json={"role": "admin"})
    assert demote.status_code == 409
    assert (await owner.client.delete(f"{members}/{owner.user_id}")).status_code == 409
    second = await join(owner.client, org_id, "owner", make_client(), "two@example.com")
    check(await owner.client.patch(f"{members}/{owner.user_id}", json={"role": "admin"}), 200)
    check(await second.client.delete(f"{members}/{owner.user_id}"), 204)
    roles = check(await second.client.get(members), 200)["items"]
    assert [(m["email"], m["role"]) for m in roles] == [("two@example.com", "owner")]


async def test_admins_manage_everyone_but_owners(make_client: MakeClient) -> None:
    owner, org_id = await _org(make_client)
    admin = await join(owner.client, org_id, "admin", make_client(), "admin@example.com")
    viewer = await join(owner.client, org_id, "viewer", make_client(), "viewer@example.com")
    members = f"{API}/orgs/{org_id}/members"
    check(await admin.client.patch(f"{members}/{viewer.user_id}", json={"role": "operator"}), 200)
    promote = await admin.client.patch(f"{members}/{viewer.user_id}", json={"role": "owner"})
    assert promote.status_code == 403
    touch_owner = await admin.client.patch(f"{members}/{owner.user_id}", json={"role": "viewer"})
    assert touch_owner.status_code == 403
    assert (await admin.client.delete(f"{members}/{owner.user_id}")).status_code == 403
    assert (
        await admin.client.post(f"{API}/orgs/{org_id}/invitations", json={"role": "owner"})
    ).status_code == 403
    check(await admin.client.post(f"{API}/orgs/{org_id}/invitations", json={"role": "admin"}), 201)
    check(await admin.client.delete(f"{members}/{viewer.user_id}"), 204)
    assert (await viewer.client.get(f"{API}/orgs/{org_id}")).status_code == 404


async def test_anyone_may_leave(make_client: MakeClient) -> None:
    owner, org_id = await _org(make_client)
    viewer = await join(owner.client, org_id, "viewer", make_client(), "viewer@example.com")
    check(await viewer.client.delete(f"{API}/orgs/{org_id}/members/{viewer.user_id}"), 204)
    assert check(await viewer.client.get(f"{API}/orgs"), 200) == []
    events = check(await owner.client.get(f"{API}/orgs/{org_id}/audit"), 200)["items"]
    assert events[0]["action"] == "member.leave"


async def test_signed_in_user_accepts_an_invitation(make_client: MakeClient) -> None:
    owner, org_id = await _org(make_client)
    other_org = check(await owner.client.post(f"{API}/orgs", json={"name": "Second"}), 201)
    member = await join(owner.client, other_org["id"], "viewer", make_client(), "m@example.com")
    made = check(
        await owner.client.post(f"{API}/orgs/{org_id}/invitations", json={"role": "operator"}),
        201,
    )
    assert made["link"] == f"{BASE_URL}/accept-invitation#token={made['token']}"
    joined = check(
        await member.client.post(f"{API}/invitations/accept", json={"token": made["token"]}), 200
    )
    assert (joined["id"], joined["role"]) == (org_id, "operator")
    again = await invite(owner.client, org_id, "viewer")
    response = await member.client.post(f"{API}/invitations/accept", json={"token": again})
    assert response.status_code == 409
    listed = check(await owner.client.get(f"{API}/orgs/{org_id}/invitations"), 200)["items"]
    assert sorted(i["accepted_at"] is None for i in listed) == [False, True]


async def test_revoked_invitation_cannot_be_used(make_client: MakeClient) -> None:
    owner, org_id = await _org(make_client)
    made = check(
        await owner.client.post(f"{API}/orgs/{org_id}/invitations", json={"role": "viewer"}), 201
    )
    check(await owner.client.delete(f"{API}/orgs/{org_id}/invitations/{made['id']}"), 204)
    body = {
        "email": "late@example.com",
        "password": "a long passphrase",
        "invitation_token": made["token"],
    }
    assert (await make_client().post(f"{API}/auth/signup", json=body)).status_code == 400


async def test_create_rename_and_list_organisations(make_client: MakeClient) -> None:
    owner, org_id = await _org(make_client)
    made = check(await owner.client.post(f"{API}/orgs", json={"name": "  Labs  "}), 201)
    assert (made["name"], made["role"]) == ("Labs", "owner")
    check(await owner.client.patch(f"{API}/orgs/{made['id']}", json={"name": "Labs 2"}), 200)
    names = [o["name"] for o in check(await owner.client.get(f"{API}/orgs"), 200)]
    assert sorted(names) == ["Labs 2", "My organisation"]
    assert (await owner.client.post(f"{API}/orgs", json={"name": ""})).status_code == 422
    assert (await owner.client.post(f"{API}/orgs", json={"name": "a\x00b"})).status_code == 422
    me = check(await owner.client.get(f"{API}/me"), 200)
    assert {m["org_id"] for m in me["memberships"]} == {org_id, made["id"]}
