"""The audit log: what each change records, filters and pages, CSV/JSON export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx

from tests.control.helpers import API, check, first_org, signup

MakeClient = Callable[[], httpx.AsyncClient]


async def _owner(make_client: MakeClient) -> tuple[httpx.AsyncClient, str, str]:
    client = make_client()
    client.headers["User-Agent"] = "kokoa-tests/1"
    me = await signup(client, "owner@example.com")
    return client, f"{API}/orgs/{await first_org(client)}", me.user_id


async def test_a_change_records_who_what_where_and_the_difference(
    make_client: MakeClient,
) -> None:
    client, base, user_id = await _owner(make_client)
    body = {"name": "web", "hostname": "web.example.com", "origin": "http://10.0.0.1:80"}
    service = check(await client.post(f"{base}/services", json=body), 201)
    url = f"{base}/services/{service['id']}"
    check(await client.patch(url, json={"description": "shop", "read_timeout": 30}), 200)
    check(await client.delete(url), 204)
    events = check(await client.get(f"{base}/audit", params={"target_id": service["id"]}), 200)
    deleted, updated, created = events["items"]
    assert [e["action"] for e in events["items"]] == [
        "service.delete",
        "service.update",
        "service.create",
    ]
    for event in events["items"]:
        assert (event["actor_type"], event["actor_id"]) == ("user", user_id)
        assert event["actor_label"] == "owner@example.com"
        assert (event["client_ip"], event["user_agent"]) == ("127.0.0.1", "kokoa-tests/1")
        assert (event["target_type"], event["target_label"]) == ("service", "web")
    assert created["before"] is None and created["after"]["hostname"] == "web.example.com"
    assert updated["before"] == {"description": "", "read_timeout": 60.0}
    assert updated["after"] == {"description": "shop", "read_timeout": 30.0}
    assert deleted["before"]["origin"] == "http://10.0.0.1:80" and deleted["after"] is None


async def test_filters_and_pages(make_client: MakeClient) -> None:
    client, base, user_id = await _owner(make_client)
    for n in range(3):
        check(await client.post(f"{base}/agents", json={"name": f"a{n}"}), 201)

    async def actions(**params: str | int) -> list[str]:
        return [
            e["action"]
            for e in check(await client.get(f"{base}/audit", params=params), 200)["items"]
        ]

    assert await actions(action="agent.create") == ["agent.create"] * 3
    assert await actions(action="member.*") == ["member.add"]
    assert await actions(actor_id=user_id, limit=2) == ["agent.create"] * 2
    page = check(await client.get(f"{base}/audit", params={"limit": 2, "offset": 4}), 200)
    assert page["total"] == 5 and [e["action"] for e in page["items"]] == ["org.create"]
    created = check(await client.get(f"{base}/audit", params={"action": "agent.create"}), 200)
    middle = created["items"][1]
    at = datetime.fromisoformat(middle["at"])
    window = {"since": at.isoformat(), "until": (at + timedelta(microseconds=1)).isoformat()}
    found = check(await client.get(f"{base}/audit", params=window), 200)["items"]
    assert [e["id"] for e in found] == [middle["id"]]
    assert (await client.get(f"{base}/audit", params={"action": "a b"})).status_code == 422


async def test_export_csv_and_json(make_client: MakeClient) -> None:
    client, base, _ = await _owner(make_client)
    body = {"name": "a1", "labels": {"note": "-x"}}
    check(await client.post(f"{base}/agents", json=body), 201)
    listed = check(await client.get(f"{base}/audit"), 200)["items"]
    as_json = await client.get(f"{base}/audit/export", params={"format": "json"})
    assert as_json.headers["content-type"].startswith("application/json")
    assert "attachment" in as_json.headers["content-disposition"]
    assert json.loads(as_json.text) == listed
    as_csv = await client.get(f"{base}/audit/export", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["action"] for r in rows] == [e["action"] for e in listed]
    assert json.loads(rows[0]["after"])["labels"] == {"note": "-x"}
    filtered = await client.get(
        f"{base}/audit/export", params={"format": "csv", "action": "agent.create"}
    )
    assert len(list(csv.DictReader(io.StringIO(filtered.text)))) == 1


async def test_csv_cells_cannot_become_formulas(make_client: MakeClient) -> None:
    client, base, _ = await _owner(make_client)
    check(await client.patch(base, json={"name": "=HYPERLINK(1)"}), 200)
    exported = (await client.get(f"{base}/audit/export", params={"format": "csv"})).text
    row = next(r for r in csv.DictReader(io.StringIO(exported)) if r["action"] == "org.update")
    assert row["target_label"] == "'=HYPERLINK(1)"


async def test_auth_events_are_visible_to_their_user_only(make_client: MakeClient) -> None:
    client, base, _ = await _owner(make_client)
    own = check(await client.get(f"{API}/me/audit"), 200)["items"]
    assert [e["action"] for e in own] == ["user.signup"]
    org_events = check(await client.get(f"{base}/audit"), 200)["items"]
    assert all(e["org_id"] is not None for e in org_events)
