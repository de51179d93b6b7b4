"""Services, ingress nodes and edge agents: validation, uniqueness, lists, filters, changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from control.schemas.resources import ServiceIn
from tests.control.helpers import API, check, first_org, signup

MakeClient = Callable[[], httpx.AsyncClient]


@pytest.fixture
async def owner(make_client: MakeClient) -> tuple[httpx.AsyncClient, str]:
    client = make_client()
    await signup(client, "owner@example.com")
    return client, f"{API}/orgs/{await first_org(client)}"


def _service(**fields: Any) -> dict[str, Any]:
    return {
        "name": "web",
        "hostname": "web.example.com",
        "origin": "http://127.0.0.1:8000",
    } | fields


@pytest.mark.parametrize(
    ("hostname", "stored"),
    [
        ("app.example.com", "app.example.com"),
        ("App.Example.COM.", "app.example.com"),
        ("*.apps.example.com", "*.apps.example.com"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("localhost", None),
        ("a..example.com", None),
        ("-a.example.com", None),
        ("a-.example.com", None),
        ("a.*.example.com", None),
        ("ex ample.com", None),
        ("bücher.example", None),
        ("a" * 64 + ".example.com", None),
        (".".join(["a" * 63] * 4) + ".com", None),
    ],
)
def test_hostname_validation(hostname: str, stored: str | None) -> None:
    if stored is None:
        with pytest.raises(ValidationError, match="hostname"):
            ServiceIn.model_validate(_service(hostname=hostname))
    else:
        assert ServiceIn.model_validate(_service(hostname=hostname)).hostname == stored


@pytest.mark.parametrize(
    ("origin", "stored"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("HTTPS://Api.Internal", "https://api.internal:443"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
        ("http://[::zz]:80", None),
        ("http://app/path", None),
        ("http://user:pw@app", None),
        ("ftp://app", None),
        ("http://app:0", None),
        ("http://app:65536", None),
        ("http://app?x=1", None),
    ],
)
def test_origin_validation(origin: str, stored: str | None) -> None:
    if stored is None:
        with pytest.raises(ValidationError, match="origin"):
            ServiceIn.model_validate(_service(origin=origin))
    else:
        assert ServiceIn.model_validate(_service(origin=origin)).origin == stored


async def test_invalid_fields_are_named_in_the_problem(
    owner: tuple[httpx.AsyncClient, str],
) -> None:
    client, base = owner
    response = await client.post(f"{base}/services", json=_service(hostname="a..example.com"))
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "urn:kokoa:problem:validation-error"
    assert problem["errors"][0]["loc"] == ["body", "hostname"]
    assert "host name such as app.example.com" in problem["errors"][0]["msg"]


async def test_hostnames_are_unique_across_organisations(make_client: MakeClient) -> None:
    first = make_client()
    await signup(first, "one@example.com")
    org_a = await first_org(first)
    other = check(await first.post(f"{API}/orgs", json={"name": "B"}), 201)["id"]
    check(await first.post(f"{API}/orgs/{org_a}/services", json=_service()), 201)
    clash = await first.post(f"{API}/orgs/{other}/services", json=_service(name="other"))
    assert clash.status_code == 409
    same_name = await first.post(
        f"{API}/orgs/{org_a}/services", json=_service(hostname="b.example.com")
    )
    assert same_name.status_code == 409
    check(
        await first.post(f"{API}/orgs/{other}/services", json=_service(hostname="b.example.com")),
        201,
    )


async def test_service_agents_must_be_of_the_same_organisation(make_client: MakeClient) -> None:
    client = make_client()
    await signup(client, "one@example.com")
    org_a = await first_org(client)
    org_b = check(await client.post(f"{API}/orgs", json={"name": "B"}), 201)["id"]
    foreign = check(await client.post(f"{API}/orgs/{org_b}/agents", json={"name": "x"}), 201)
    response = await client.post(
        f"{API}/orgs/{org_a}/services", json=_service(agent_ids=[foreign["id"]])
    )
    assert response.status_code == 422
    assert response.json()["type"] == "urn:kokoa:problem:invalid-input"


async def test_service_agents_follow_changes(owner: tuple[httpx.AsyncClient, str]) -> None:
    client, base = owner
    a1 = check(await client.post(f"{base}/agents", json={"name": "a1"}), 201)["id"]
    a2 = check(await client.post(f"{base}/agents", json={"name": "a2"}), 201)["id"]
    service = check(await client.post(f"{base}/services", json=_service(agent_ids=[a1, a1])), 201)
    assert service["agent_ids"] == [a1]
    url = f"{base}/services/{service['id']}"
    assert check(await client.patch(url, json={"agent_ids": [a2, a1]}), 200)["agent_ids"] == sorted(
        [a1, a2]
    )
    served = check(await client.get(f"{base}/services", params={"agent_id": a2}), 200)
    assert [s["id"] for s in served["items"]] == [service["id"]]
    check(await client.delete(f"{base}/agents/{a2}"), 204)
    assert check(await client.get(url), 200)["agent_ids"] == [a1]


async def test_patch_changes_only_what_is_sent(owner: tuple[httpx.AsyncClient, str]) -> None:
    client, base = owner
    made = check(
        await client.post(f"{base}/services", json=_service(host_header="web.internal")), 201
    )
    url = f"{base}/services/{made['id']}"
    changed = check(await client.patch(url, json={"description": "main site"}), 200)
    assert changed["description"] == "main site"
    assert changed["host_header"] == "web.internal" and changed["hostname"] == made["hostname"]
    assert check(await client.patch(url, json={"host_header": None}), 200)["host_header"] is None
    for body in ({"name": None}, {"enabled": False}, {"read_timeout": 0}, {"id": made["id"]}):
        assert (await client.patch(url, json=body)).status_code == 422, body


async def test_enable_disable_is_audited_once(owner: tuple[httpx.AsyncClient, str]) -> None:
    client, base = owner
    node = {
        "name": "n1",
        "public_address": "203.0.113.5:443",
        "tunnel_address": "[2001:db8::5]:7844",
    }
    made = check(await client.post(f"{base}/nodes", json=node), 201)
    url = f"{base}/nodes/{made['id']}"
    assert check(await client.post(f"{url}/disable"), 200)["enabled"] is False
    assert check(await client.post(f"{url}/disable"), 200)["enabled"] is False
    assert check(await client.post(f"{url}/enable"), 200)["enabled"] is True
    events = check(await client.get(f"{base}/audit", params={"target_id": made["id"]}), 200)
    assert [e["action"] for e in events["items"]] == ["node.enable", "node.disable", "node.create"]


async def test_pagination_is_stable_and_complete(owner: tuple[httpx.AsyncClient, str]) -> None:
    client, base = owner
    names = [f"agent-{n}" for n in range(7)]
    for name in names:
        check(await client.post(f"{base}/agents", json={"name": name}), 201)
    seen: list[str] = []
    for offset in (0, 3, 6):
        page = check(await client.get(f"{base}/agents", params={"limit": 3, "offset": offset}), 200)
        assert (page["total"], page["limit"], page["offset"]) == (7, 3, offset)
        seen += [a["name"] for a in page["items"]]
    assert seen == names
    for bad in ({"limit": 0}, {"limit": 201}, {"offset": -1}):
        assert (await client.get(f"{base}/agents", params=bad)).status_code == 422


async def test_filters(owner: tuple[httpx.AsyncClient, str]) -> None:
    client, base = owner
    nodes = [
        ("eu-1", "eu", {"tier": "edge"}),
        ("eu-2", "eu", {"tier": "core"}),
        ("us-1", "us", {"tier": "edge"}),
    ]
    for name, region, labels in nodes:
        body = {
            "name": name,
            "public_address": f"{name}.example.com:443",
            "tunnel_address": f"{name}.example.com:7844",
            "region": region,
            "labels": labels,
        }
        check(await client.post(f"{base}/nodes", json=body), 201)

    async def names(**params: Any) -> list[str]:
        page = check(await client.get(f"{base}/nodes", params=params), 200)
        return [n["name"] for n in page["items"]]

    assert await names(region="eu") == ["eu-1", "eu-2"]
    assert await names(label="tier=edge") == ["eu-1", "us-1"]
    assert await names(label=["tier=edge"], region="us") == ["us-1"]
    assert await names(q="EU-") == ["eu-1", "eu-2"]
    assert await names(q="%") == []  # wildcards are literal
    first = check(await client.get(f"{base}/nodes", params={"q": "us-1"}), 200)["items"][0]
    check(await client.post(f"{base}/nodes/{first['id']}/disable"), 200)
    assert await names(enabled="false") == ["us-1"]
    assert await names(enabled="true") == ["eu-1", "eu-2"]
    assert (await client.get(f"{base}/nodes", params={"label": "Tier"})).status_code == 422


async def test_agent_ingress_selection(owner: tuple[httpx.AsyncClient, str]) -> None:
    client, base = owner
    refused = await client.post(f"{base}/agents", json={"name": "a", "ingress_mode": "labels"})
    assert refused.status_code == 422
    made = check(
        await client.post(
            f"{base}/agents",
            json={
                "name": "a",
                "ingress_mode": "labels",
                "ingress_labels": {"region": "eu"},
                "labels": {"site": "home"},
            },
        ),
        201,
    )
    assert (made["status"], made["last_seen_at"]) == ("unknown", None)
    url = f"{base}/agents/{made['id']}"
    assert (await client.patch(url, json={"ingress_labels": {}})).status_code == 422
    assert (
        check(await client.patch(url, json={"ingress_mode": "all", "ingress_labels": {}}), 200)[
            "ingress_mode"
        ]
        == "all"
    )
    assert (await client.patch(url, json={"status": "online"})).status_code == 422
    duplicate = await client.post(f"{base}/agents", json={"name": "a"})
    assert duplicate.status_code == 409


@pytest.mark.parametrize(
    ("collection", "body", "what"),
    [
        ("nodes", {"public_address": "a.example.com:443", "tunnel_address": "a:4433"}, "node"),
        ("agents", {}, "agent"),
    ],
)
async def test_names_are_unique_on_create_and_rename(
    owner: tuple[httpx.AsyncClient, str], collection: str, body: dict[str, Any], what: str
) -> None:
    client, base = owner
    first = check(await client.post(f"{base}/{collection}", json={"name": "one"} | body), 201)
    second = check(await client.post(f"{base}/{collection}", json={"name": "two"} | body), 201)
    again = await client.post(f"{base}/{collection}", json={"name": "one"} | body)
    assert again.status_code == 409, again.text
    assert again.json()["detail"].endswith("named 'one' already exists"), again.json()
    renamed = await client.patch(f"{base}/{collection}/{second['id']}", json={"name": "one"})
    assert renamed.status_code == 409, renamed.text
    # Keeping one's own name is no clash; the refused rename changed nothing.
    check(await client.patch(f"{base}/{collection}/{first['id']}", json={"name": "one"}), 200)
    assert check(await client.get(f"{base}/{collection}/{second['id']}"), 200)["name"] == "two"
    events = check(await client.get(f"{base}/audit", params={"action": f"{what}.update"}), 200)
    assert [(e["target_id"], e["after"]) for e in events["items"]] == [(first["id"], {})]
