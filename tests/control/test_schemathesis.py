"""Schemathesis against the live OpenAPI schema, served by a real uvicorn: every operation,
positive and negative examples, authenticated as an organisation owner, with path ids pinned
to real objects in positive mode. No server errors, and every response matches the schema."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from control.auth.sessions import COOKIE_NAME
from tests.control.certificates_support import TestCA
from tests.control.server import serve

API = "/api/v1"
MAX_EXAMPLES = 8
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(API + path, json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def _world(base_url: str) -> tuple[str, dict[str, str]]:
    """An owner with one of everything; returns (bearer token, path parameter values)."""
    with httpx.Client(base_url=base_url) as client:
        response = client.post(
            API + "/auth/signup",
            json={"email": "fuzz@example.com", "password": "correct horse battery staple"},
        )
        assert response.status_code == 201, response.text
        login = response.json()
        # The cookie is __Host- (Secure): over plain http the client keeps it to itself,
        # so pass the session along by hand for the one request that needs it.
        cookie = f"{COOKIE_NAME}={response.cookies[COOKIE_NAME]}"
        client.headers.update({"X-CSRF-Token": login["csrf_token"], "Cookie": cookie})
        token = _post(client, "/me/tokens", {"name": "fuzz"})
        spare = _post(client, "/me/tokens", {"name": "spare"})  # minted from a session only
        del client.headers["Cookie"]
        client.headers["Authorization"] = f"Bearer {token['token']}"
        org = client.get(API + "/orgs").json()[0]["id"]
        base = f"/orgs/{org}"
        agent = _post(client, f"{base}/agents", {"name": "fuzz-agent"})
        node = _post(
            client,
            f"{base}/nodes",
            {
                "name": "fuzz-node",
                "public_address": "198.51.100.1:443",
                "tunnel_address": "198.51.100.1:7844",
            },
        )
        service = _post(
            client,
            f"{base}/services",
            {
                "name": "fuzz",
                "hostname": "fuzz.example.com",
                "origin": "http://127.0.0.1:9",
                "agent_ids": [agent["id"]],
            },
        )
        upload = TestCA().issue("fuzz.example.com").body()
        certificate = _post(client, f"{base}/certificates", upload)
        service_token = _post(client, f"{base}/tokens", {"name": "sa", "role": "viewer"})
        invitation = _post(client, f"{base}/invitations", {"role": "viewer"})
        enrollment = _post(client, f"{base}/agents/{agent['id']}/enrollment-tokens", {})
    ids = {
        "org_id": org,
        "agent_id": agent["id"],
        "node_id": node["id"],
        "service_id": service["id"],
        "certificate_id": certificate["id"],
        "user_id": login["user"]["id"],
        "invitation_id": invitation["id"],
        "session_id": org,
        "enrollment_token_id": enrollment["id"],
    }
    ids["token_id"] = spare["id"]
    ids["provider"] = "fuzz"  # configured below, its issuer unreachable: login says so
    ids["service_token_id"] = service_token["id"]
    return token["token"], ids


def _fuzz(base_url: str) -> list[str]:
    token, ids = _world(base_url)
    schema = schemathesis.openapi.from_url(f"{base_url}/api/openapi.json")
    failures: list[str] = []
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the schema has an invalid operation: {result.err()}"
        operations.append(result.ok())
    # Deletions last, so that the pinned objects exist for everything else.
    for operation in sorted(operations, key=lambda op: op.method.upper() == "DELETE"):
        names = [p.name for p in operation.path_parameters]
        pinned = {name: ids[name] for name in names}
        if "/tokens/" in operation.path and "/orgs/" in operation.path:
            pinned["token_id"] = ids["service_token_id"]
        for mode in GenerationMode:
            if mode is GenerationMode.NEGATIVE and not _has_inputs(operation):
                continue  # nothing to make invalid (POST /enrollment/challenges)
            strategy = operation.as_strategy(
                generation_mode=mode,
                path_parameters=pinned if mode is GenerationMode.POSITIVE else None,
            )

            @given(case=strategy)
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case[Any]) -> None:
                case.call_and_validate(
                    base_url=base_url, checks=CHECKS, headers={"Authorization": f"Bearer {token}"}
                )

            try:
                check()
            except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a group
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    return failures


def _has_inputs(operation: Any) -> bool:
    return any(True for _ in operation.iter_parameters()) or bool(operation.body)


FUZZ_PROVIDER = {
    "slug": "fuzz",
    "label": "Fuzz",
    "issuer": "http://127.0.0.1:9",
    "client_id": "kokoa",
    "client_secret": "fuzz-secret",
}


@pytest.mark.parametrize("settings_overrides", [{"oidc_providers": [FUZZ_PROVIDER]}])
async def test_schemathesis_finds_nothing(app: FastAPI) -> None:
    with serve(app) as base_url:
        failures = await asyncio.to_thread(_fuzz, base_url)
    assert not failures, "\n\n".join(failures)


pytestmark = pytest.mark.slow
