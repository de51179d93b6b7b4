"""Two organisations with a member of every role, a service-account token of each allowed
role, and one of each resource: the cast of the role-matrix and leak tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from tests.control.certificates_support import TestCA
from tests.control.helpers import API, bearer, check, join, signup, unique

ROLES = ("owner", "admin", "operator", "viewer")
TOKEN_ROLES = ("admin", "operator", "viewer")


@dataclass
class Org:
    id: str
    users: dict[str, httpx.AsyncClient] = field(default_factory=dict)  # role -> session client
    user_ids: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, httpx.AsyncClient] = field(default_factory=dict)  # role -> bearer client
    ids: dict[str, str] = field(default_factory=dict)  # path parameter -> an existing id

    @property
    def owner(self) -> httpx.AsyncClient:
        return self.users["owner"]

    def all_ids(self) -> set[str]:
        return {self.id, *self.user_ids.values(), *self.ids.values()}


async def create_resources(owner: httpx.AsyncClient, org_id: str) -> dict[str, str]:
    """One agent, node, service, public certificate, service token, pending invitation and
    enrollment token; returns their ids."""
    base = f"{API}/orgs/{org_id}"
    agent = check(await owner.post(f"{base}/agents", json={"name": unique("agent-")}), 201)
    node_body = {
        "name": unique("node-"),
        "public_address": "198.51.100.7:443",
        "tunnel_address": "198.51.100.7:7844",
    }
    node = check(await owner.post(f"{base}/nodes", json=node_body), 201)
    service = check(await owner.post(f"{base}/services", json=service_body(agent["id"])), 201)
    upload = TestCA().issue(service["hostname"]).body()
    certificate = check(await owner.post(f"{base}/certificates", json=upload), 201)
    token = check(await owner.post(f"{base}/tokens", json={"name": "ci", "role": "viewer"}), 201)
    invitation = check(await owner.post(f"{base}/invitations", json={"role": "viewer"}), 201)
    enrollment = check(await owner.post(f"{base}/agents/{agent['id']}/enrollment-tokens"), 201)
    return {
        "enrollment_token_id": enrollment["id"],
        "agent_id": agent["id"],
        "node_id": node["id"],
        "service_id": service["id"],
        "certificate_id": certificate["id"],
        "token_id": token["id"],
        "invitation_id": invitation["id"],
    }


def service_body(agent_id: str | None = None) -> dict[str, object]:
    name = unique("svc-")
    return {
        "name": name,
        "hostname": f"{name}.example.com",
        "origin": "http://127.0.0.1:8000",
        "agent_ids": [agent_id] if agent_id else [],
    }


async def build_org(make_client: Callable[[], httpx.AsyncClient], label: str) -> Org:
    """An organisation (its owner signs up: first user, or open sign-up) with every role."""
    owner = make_client()
    login = await signup(owner, f"{label}-owner@example.com", organisation_name=f"Org {label}")
    org_id = str(check(await owner.get(f"{API}/orgs"), 200)[0]["id"])
    org = Org(org_id, users={"owner": owner}, user_ids={"owner": login.user_id})
    for role in ROLES[1:]:
        member = await join(owner, org_id, role, make_client(), f"{label}-{role}@example.com")
        org.users[role], org.user_ids[role] = member.client, member.user_id
    for role in TOKEN_ROLES:
        body = {"name": f"{label}-{role}", "role": role}
        made = check(await owner.post(f"{API}/orgs/{org_id}/tokens", json=body), 201)
        org.tokens[role] = bearer(make_client(), made["token"])
    org.ids = await create_resources(owner, org_id)
    target = await join(owner, org_id, "viewer", make_client(), f"{label}-target@example.com")
    org.user_ids["target"] = org.ids["user_id"] = target.user_id  # acted on, never acting
    return org
