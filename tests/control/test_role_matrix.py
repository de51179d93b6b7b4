"""Every API operation × every role (sessions and service-account tokens) × own organisation,
another organisation, and another organisation's ids: allow or deny as docs/control-plane.md
says, and never a foreign id in any response.

The operations come from the OpenAPI schema, so a new endpoint fails this test until it is
added to ORG_OPS or SELF_OPS below. Expectations are written here by hand, not imported from
control.auth.roles, so the test checks the code against the documented table.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.control.certificates_support import TestCA
from tests.control.helpers import API, check, join, unique
from tests.control.world import ROLES, Org, build_org, service_body

RANK = {"viewer": 0, "operator": 1, "admin": 2, "owner": 3}
Body = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class Rule:
    least: str  # the least role allowed
    human: bool = False  # True: service-account tokens are always refused
    body: Body | None = None
    fresh: str | None = None  # a path parameter that needs a new disposable target


def _node() -> dict[str, Any]:
    return {
        "name": unique("node-"),
        "public_address": "198.51.100.9:443",
        "tunnel_address": "198.51.100.9:7844",
    }


def _certificate() -> dict[str, Any]:
    return TestCA().issue(f"{unique('www')}.example.com").body()


ORG_OPS: dict[str, Rule] = {
    "get_org": Rule("viewer"),
    "update_org": Rule("owner", body=lambda: {"name": unique("Renamed ")}),
    "list_members": Rule("viewer"),
    "update_member": Rule("admin", human=True, body=lambda: {"role": "operator"}, fresh="user_id"),
    "remove_member": Rule("admin", human=True, fresh="user_id"),
    "list_invitations": Rule("admin", human=True),
    "create_invitation": Rule("admin", human=True, body=lambda: {"role": "viewer"}),
    "revoke_invitation": Rule("admin", human=True, fresh="invitation_id"),
    "list_service_tokens": Rule("admin", human=True),
    "create_service_token": Rule("admin", human=True, body=lambda: {"name": "t", "role": "viewer"}),
    "revoke_service_token": Rule("admin", human=True, fresh="token_id"),
    "list_services": Rule("viewer"),
    "create_service": Rule("operator", body=service_body),
    "get_service": Rule("viewer"),
    "update_service": Rule("operator", body=lambda: {"description": unique("d")}),
    "delete_service": Rule("operator", fresh="service_id"),
    "enable_service": Rule("operator"),
    "disable_service": Rule("operator"),
    "list_certificates": Rule("viewer"),
    "upload_certificate": Rule("operator", body=_certificate),
    "get_certificate": Rule("viewer"),
    "replace_certificate": Rule("operator", body=_certificate),
    "delete_certificate": Rule("operator", fresh="certificate_id"),
    "list_nodes": Rule("viewer"),
    "create_node": Rule("admin", body=_node),
    "get_node": Rule("viewer"),
    "update_node": Rule("admin", body=lambda: {"weight": 7}),
    "delete_node": Rule("admin", fresh="node_id"),
    "enable_node": Rule("operator"),
    "disable_node": Rule("operator"),
    "list_agents": Rule("viewer"),
    "create_agent": Rule("admin", body=lambda: {"name": unique("agent-")}),
    "get_agent": Rule("viewer"),
    "update_agent": Rule("admin", body=lambda: {"labels": {"zone": "a"}}),
    "delete_agent": Rule("admin", fresh="agent_id"),
    "enable_agent": Rule("operator"),
    "disable_agent": Rule("operator"),
    "create_node_enrollment_token": Rule("admin"),
    "create_agent_enrollment_token": Rule("admin"),
    "list_enrollment_tokens": Rule("admin"),
    "revoke_enrollment_token": Rule("admin", fresh="enrollment_token_id"),
    "list_audit_events": Rule("operator"),
    "export_audit_events": Rule("admin"),
    "get_status_summary": Rule("viewer"),
    "list_node_status": Rule("viewer"),
    "get_node_status": Rule("viewer"),
    "set_node_health_check": Rule("admin", body=lambda: {"url": "http://198.51.100.7:9901/readyz"}),
    "remove_node_health_check": Rule("admin"),
    "list_agent_status": Rule("viewer"),
    "get_agent_status": Rule("viewer"),
    "list_connections": Rule("viewer"),
    "get_traffic": Rule("viewer"),
    "list_status_events": Rule("viewer"),
}
# Operations on the caller's own account, not on an organisation: tested in test_accounts,
# test_sessions and test_tokens; here only that they need authentication.
SELF_OPS = {
    "signup": False,
    "login": False,  # name -> needs authentication
    "logout": True,
    "get_session": True,
    "get_me": True,
    "update_me": True,
    "change_password": True,
    "list_sessions": True,
    "revoke_session": True,
    "list_personal_tokens": True,
    "create_personal_token": True,
    "revoke_personal_token": True,
    "list_my_security_events": True,
    "list_my_oidc_identities": True,
    "unlink_my_oidc_identity": True,
    "start_oidc_link": True,
    "list_orgs": True,
    "create_org": True,
    "accept_invitation": True,
    # Enrollment: the token or the certificate key is the credential (test_enrollment*.py).
    "enroll": False,
    "create_renewal_challenge": False,
    "renew_certificate": False,
    # Sign-in with OpenID Connect: browser navigations before there is a session (test_oidc.py).
    "list_oidc_providers": False,
    "oidc_login": False,
    "oidc_callback": False,
}


@dataclass(frozen=True)
class Operation:
    id: str
    method: str
    path: str

    def url(self, params: dict[str, str]) -> str:
        return API + re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], self.path)

    @property
    def params(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)


def operations(app: FastAPI) -> list[Operation]:
    found = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            found.append(
                Operation(operation["operationId"], method.upper(), path.removeprefix(API))
            )
    return found


async def fresh(kind: str, org: Org, make_client: Callable[[], httpx.AsyncClient]) -> str:
    """A new disposable target of `kind` in `org`, made by its owner."""
    owner, base = org.owner, f"{API}/orgs/{org.id}"
    if kind == "user_id":
        member = await join(owner, org.id, "viewer", make_client(), unique("m") + "@example.com")
        return member.user_id
    path, body = {
        "invitation_id": ("invitations", {"role": "viewer"}),
        "token_id": ("tokens", {"name": "t", "role": "viewer"}),
        "service_id": ("services", service_body()),
        "certificate_id": ("certificates", _certificate()),
        "node_id": ("nodes", _node()),
        "agent_id": ("agents", {"name": unique("agent-")}),
        "enrollment_token_id": (f"agents/{org.ids['agent_id']}/enrollment-tokens", {}),
    }[kind]
    return str(check(await owner.post(f"{base}/{path}", json=body), 201)["id"])


async def audit_total(org: Org) -> int:
    page = check(await org.owner.get(f"{API}/orgs/{org.id}/audit", params={"limit": 1}), 200)
    return int(page["total"])


class Matrix:
    def __init__(self, a: Org, b: Org, make_client: Callable[[], httpx.AsyncClient]) -> None:
        self.a, self.b, self.make_client = a, b, make_client
        self.failures: list[str] = []

    async def call(
        self,
        caller: httpx.AsyncClient,
        op: Operation,
        org: Org,
        ids: dict[str, str],
        rule: Rule,
    ) -> httpx.Response:
        params = {"org_id": org.id, **ids}
        body = rule.body() if rule.body else None
        return await caller.request(op.method, op.url(params), json=body)

    def leaks(self, response: httpx.Response, foreign: set[str], sent: str) -> set[str]:
        return {i for i in foreign if i in response.text and i not in sent}

    async def expect(
        self,
        label: str,
        caller: httpx.AsyncClient,
        op: Operation,
        path_org: Org,
        id_org: Org,
        home: Org,
        allowed: bool,
        deny_status: int,
    ) -> None:
        rule = ORG_OPS[op.id]
        ids = dict(id_org.ids)
        if rule.fresh and allowed:
            ids[rule.fresh] = await fresh(rule.fresh, id_org, self.make_client)
        writes = op.method != "GET" and not allowed
        before = await audit_total(path_org) if writes else 0
        response = await self.call(caller, op, path_org, ids, rule)
        status = response.status_code
        ok = 200 <= status < 300 if allowed else status == deny_status
        if not ok:
            want = "2xx" if allowed else deny_status
            self.failures.append(
                f"{op.id} as {label}: {status}, want {want}: {response.text[:200]}"
            )
        foreign = (self.b if home is self.a else self.a).all_ids()
        if leaked := self.leaks(response, foreign, str(response.request.url)):
            self.failures.append(f"{op.id} as {label}: foreign ids in response {leaked}")
        if writes and await audit_total(path_org) != before:
            self.failures.append(f"{op.id} as {label}: refused, yet the audit log grew")


@pytest.mark.parametrize("settings_overrides", [{"open_signup": True}])
async def test_role_matrix(app: FastAPI, make_client: Callable[[], httpx.AsyncClient]) -> None:
    ops = operations(app)
    assert {op.id for op in ops} == set(ORG_OPS) | set(SELF_OPS), "classify every operation"
    a, b = await build_org(make_client, "a"), await build_org(make_client, "b")
    matrix = Matrix(a, b, make_client)
    anonymous = make_client()
    for op in ops:
        if op.id in SELF_OPS:
            if SELF_OPS[op.id]:
                response = await anonymous.request(
                    op.method, op.url({"session_id": a.id, "token_id": a.id, "provider": "test"})
                )
                if response.status_code != 401:
                    matrix.failures.append(f"{op.id} anonymous: {response.status_code}")
            continue
        await _walk(matrix, op)
    assert not matrix.failures, "\n".join(matrix.failures)


async def _walk(matrix: Matrix, op: Operation) -> None:
    a, b = matrix.a, matrix.b
    rule = ORG_OPS[op.id]
    anonymous = matrix.make_client()
    response = await matrix.call(anonymous, op, a, a.ids, rule)
    if response.status_code != 401:
        matrix.failures.append(f"{op.id} anonymous: {response.status_code}")
    has_ids = len(op.params) > 1
    for role in ROLES:
        allowed = RANK[role] >= RANK[rule.least]
        await matrix.expect(f"{role} (own org)", a.users[role], op, a, a, a, allowed, 403)
        await matrix.expect(f"{role} of B on A", b.users[role], op, a, a, b, False, 404)
        if has_ids:  # B's own org in the path, A's ids: refused by role first, else not found
            await matrix.expect(
                f"{role} of B with A's ids",
                b.users[role],
                op,
                b,
                a,
                b,
                False,
                404 if allowed else 403,
            )
    for role, client in a.tokens.items():
        allowed = RANK[role] >= RANK[rule.least] and not rule.human
        await matrix.expect(f"{role} token (own org)", client, op, a, a, a, allowed, 403)
        await matrix.expect(f"{role} token of B on A", b.tokens[role], op, a, a, b, False, 404)
        if has_ids:
            await matrix.expect(
                f"{role} token of B with A's ids",
                b.tokens[role],
                op,
                b,
                a,
                b,
                False,
                404 if allowed else 403,
            )
