"""Status of nodes and agents: reports as the control channel hands them over (the very
functions it calls), judged and read back through the real API over HTTP, on SQLite and
PostgreSQL. The clock is the app's injected one; the sweeper is called as its loop calls it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from control.db.models import TrafficBucket
from control.main import runtime_of
from control.runtime import Runtime
from control.schemas.status import StatusReport
from control.services import status, traffic
from control.services.status import ChannelSubject, SubjectKind
from tests.control.helpers import API, Clock, check, first_org, signup, unique

MakeClient = Callable[[], httpx.AsyncClient]


def aligned(moment: datetime) -> datetime:
    """The start of `moment`'s minute: buckets of 10 s start there too."""
    return moment.replace(second=0, microsecond=0)


@dataclass
class World:
    """One organisation: its owner (HTTP), two nodes, two agents, two services."""

    app: FastAPI
    clock: Clock
    client: httpx.AsyncClient
    org_id: str
    nodes: list[dict[str, Any]] = field(default_factory=list)
    agents: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(hours=1))

    @property
    def base(self) -> str:
        return f"{API}/orgs/{self.org_id}/status"

    @property
    def rt(self) -> Runtime:
        return runtime_of(self.app)

    def subject(self, row: dict[str, Any]) -> ChannelSubject:
        kind: SubjectKind = "agent" if row in self.agents else "ingress"
        return ChannelSubject(kind, uuid.UUID(row["id"]), uuid.UUID(self.org_id), row["name"])

    async def report(self, row: dict[str, Any], **fields: Any) -> None:
        """Hand `row`'s status message to record_report, as the control channel does; by
        default from a process that started an hour before the world was built."""
        fields.setdefault("started", self.started)
        await send(self.rt, self.subject(row), make_report(self.clock.now, **fields))

    async def get(self, path: str, expect: int = 200, **params: Any) -> Any:
        return check(await self.client.get(f"{self.base}{path}", params=params), expect)

    async def node_status(self, index: int) -> dict[str, Any]:
        return dict(await self.get(f"/nodes/{self.nodes[index]['id']}"))

    async def agent_status(self, name: str) -> dict[str, Any]:
        page = await self.get("/agents")
        return next(item for item in page["items"] if item["name"] == name)


async def send(rt: Runtime, subject: ChannelSubject, report: StatusReport) -> None:
    async with rt.sessionmaker() as db:
        await status.record_report(db, rt, subject, report)


def make_report(
    now: datetime,
    *,
    started: datetime | None = None,
    services: dict[str, tuple[int, int, int, int, int]] | None = None,
    peers: list[tuple[str, dict[str, Any], float | None]] | None = None,
    problems: list[str] | None = None,
    snapshot: str | None = "a" * 64,
) -> StatusReport:
    """A status message; services: name -> (requests, errors, in, out, in_flight)."""
    return StatusReport.model_validate(
        {
            "type": "status",
            "sent_at": now.isoformat(),
            "snapshot_version": snapshot,
            "software": "kokoa 2.0.0",
            "started_at": (started or now - timedelta(hours=1)).isoformat(),
            "services": [
                dict(
                    zip(
                        ("requests", "errors", "bytes_in", "bytes_out", "in_flight"), v, strict=True
                    )
                )
                | {"name": name}
                for name, v in (services or {}).items()
            ],
            "connections": [
                {
                    "kind": kind,
                    "id": peer["id"],
                    "name": peer["name"],
                    "connected_since": (now - timedelta(minutes=5)).isoformat(),
                    "rtt_ms": rtt,
                }
                for kind, peer, rtt in (peers or [])
            ],
            "problems": problems or [],
            "unknown_field": "ignored",
        }
    )


async def build_world(make_client: MakeClient, app: FastAPI, clock: Clock, label: str) -> World:
    client = make_client()
    await signup(client, f"{label}-{unique('o')}@example.com")
    world = World(
        app, clock, client, await first_org(client), started=clock.now - timedelta(hours=1)
    )
    base = f"{API}/orgs/{world.org_id}"
    body: dict[str, Any]
    for _ in range(2):
        body = {"name": unique("agent-")}
        world.agents.append(check(await client.post(f"{base}/agents", json=body), 201))
    for index in range(2):
        body = {
            "name": unique("node-"),
            "public_address": f"198.51.100.{index + 1}:443",
            "tunnel_address": f"198.51.100.{index + 1}:7844",
        }
        world.nodes.append(check(await client.post(f"{base}/nodes", json=body), 201))
    for agent_ids in ([world.agents[0]["id"]], [a["id"] for a in world.agents]):
        name = unique("svc-")
        body = {
            "name": name,
            "hostname": f"{name}.example.com",
            "origin": "http://127.0.0.1:8000",
            "agent_ids": agent_ids,
        }
        world.services.append(check(await client.post(f"{base}/services", json=body), 201))
    return world


@pytest.fixture
async def world(make_client: MakeClient, app: FastAPI, clock: Clock) -> World:
    clock.now = aligned(clock.now)
    return await build_world(make_client, app, clock, "a")


async def test_a_report_makes_a_node_online_with_what_it_said(world: World) -> None:
    node, agent = world.nodes[0], world.agents[0]
    assert (await world.node_status(0))["status"] == "unknown"
    world.clock.advance(seconds=1)
    await world.report(node, peers=[("agent", agent, None)])
    seen = await world.node_status(0)
    assert seen["status"] == "online" and seen["status_detail"] == ""
    assert seen["last_seen_at"] == world.clock.now.isoformat().replace("+00:00", "Z")
    assert seen["software"] == "kokoa 2.0.0"
    assert seen["snapshot_version"] == "a" * 64
    assert seen["channel_open"] is True and seen["connections"] == 1
    assert seen["health_check"] is None
    summary = await world.get("")
    assert summary["nodes"] == {
        "online": 1,
        "degraded": 0,
        "offline": 0,
        "unknown": 1,
        "disabled": 0,
    }
    assert summary["stale_after"] == 15.0
    # The node resource shows the same status (its columns are the ones written here).
    node_page = check(await world.client.get(f"{API}/orgs/{world.org_id}/nodes/{node['id']}"), 200)
    assert node_page["status"] == "online" and node_page["version"] == "kokoa 2.0.0"
    events = (await world.get("/events"))["items"]
    assert [(e["action"], e["before"]["status"], e["after"]["status"]) for e in events] == [
        ("node.status.changed", "unknown", "online")
    ]
    assert events[0]["actor_type"] == "system" and events[0]["target_id"] == node["id"]


async def test_problems_degrade_and_their_end_restores(world: World) -> None:
    node, agent = world.nodes[0], world.agents[0]
    await world.report(node, peers=[("agent", agent, None)], problems=["certificate expires"])
    seen = await world.node_status(0)
    assert (seen["status"], seen["status_detail"]) == ("degraded", "certificate expires")
    assert seen["problems"] == ["certificate expires"]
    world.clock.advance(seconds=5)
    await world.report(node, peers=[("agent", agent, None)])
    assert (await world.node_status(0))["status"] == "online"
    statuses = [e["after"]["status"] for e in (await world.get("/events"))["items"]]
    assert statuses == ["online", "degraded"]  # newest first


async def test_a_node_with_no_agent_or_an_agent_with_no_node_is_degraded(world: World) -> None:
    node, agent = world.nodes[0], world.agents[0]
    # Just started: its agents may not have dialled in yet.
    await world.report(node, started=world.clock.now - timedelta(seconds=2))
    assert (await world.node_status(0))["status"] == "online"
    await world.report(node)  # an hour up, nobody connected, two services with agents
    seen = await world.node_status(0)
    assert seen["status"] == "degraded"
    assert seen["status_detail"] == "no agent connected, although it routes 2 service(s)"
    await world.report(agent)
    found = await world.agent_status(agent["name"])
    assert found["status"] == "degraded"
    assert found["status_detail"] == "connected to none of its 2 ingress node(s)"
    await world.report(agent, peers=[("ingress", world.nodes[1], 3.5)])
    assert (await world.agent_status(agent["name"]))["status"] == "online"


async def test_the_connection_matrix_from_both_sides(world: World) -> None:
    (n1, n2), (a1, a2) = world.nodes, world.agents
    await world.report(a1, peers=[("ingress", n1, 12.5), ("ingress", n2, None)])
    await world.report(n1, peers=[("agent", a1, None), ("agent", a2, 3.0)])
    page = await world.get("/connections")
    pairs = {
        (c["agent_name"], c["node_name"]): (c["seen_by_agent"], c["seen_by_node"])
        for c in page["items"]
    }
    assert set(pairs) == {
        (a1["name"], n1["name"]),
        (a1["name"], n2["name"]),
        (a2["name"], n1["name"]),
    }
    by_agent, by_node = pairs[(a1["name"], n1["name"])]
    assert by_agent["rtt_ms"] == 12.5 and by_node is not None and by_node["rtt_ms"] is None
    assert pairs[(a1["name"], n2["name"])][1] is None  # n2 never reported
    assert pairs[(a2["name"], n1["name"])][0] is None  # a2 never reported
    assert page["total"] == 3
    one = await world.get("/connections", node_id=n2["id"])
    assert [c["agent_id"] for c in one["items"]] == [a1["id"]]
    # The next report of a1 replaces its side: n2 is gone, so is that pair.
    world.clock.advance(seconds=5)
    await world.report(a1, peers=[("ingress", n1, 11.0)])
    page = await world.get("/connections")
    assert {(c["agent_id"], c["node_id"]) for c in page["items"]} == {
        (a1["id"], n1["id"]),
        (a2["id"], n1["id"]),
    }
    assert (await world.node_status(0))["connections"] == 2


async def test_counters_become_deltas_in_per_service_series(world: World) -> None:
    node, other, agent = world.nodes[0], world.nodes[1], world.agents[0]
    s1, s2 = (s["name"] for s in world.services)
    t0 = world.clock.now
    started = t0 - timedelta(hours=1)
    readings = [
        # (seconds after t0, process start, s1 counters)
        (1, started, (100, 5, 1000, 9000, 3)),  # first report of a running process: baseline
        (6, started, (110, 6, 1100, 9900, 7)),  # +10 requests
        (11, started, (115, 6, 1150, 10_400, 2)),  # +5
        (16, started, (4, 1, 40, 400, 1)),  # counters dropped: a reset, +4
        (21, t0 + timedelta(seconds=19), (3, 0, 30, 300, 0)),  # restarted 2 s ago: +3
        (81, t0 + timedelta(seconds=19), (50, 0, 500, 5000, 0)),  # after 60 s of silence: 0
        (86, t0 + timedelta(seconds=19), (52, 0, 520, 5200, 0)),  # +2
    ]
    for offset, process, counters in readings:
        world.clock.now = t0 + timedelta(seconds=offset)
        await world.report(node, started=process, services={s1: counters, s2: (0, 0, 0, 0, 0)})
    # Another node sees the same service: by=service adds them, by=node keeps them apart.
    world.clock.now = t0 + timedelta(seconds=2)
    await world.report(other, services={s1: (7, 0, 70, 700, 4)})
    world.clock.now = t0 + timedelta(seconds=7)
    await world.report(other, services={s1: (9, 1, 90, 900, 5)})
    # An agent's reports are their own source.
    world.clock.now = t0 + timedelta(seconds=8)
    await world.report(agent, services={s1: (1, 0, 1, 1, 0)}, started=t0)
    world.clock.now = t0 + timedelta(minutes=2)

    window: dict[str, Any] = {
        "since": t0.isoformat(),
        "until": (t0 + timedelta(seconds=90)).isoformat(),
    }
    by_service = await world.get("/traffic", step=10, **window)
    assert by_service["source"] == "ingress" and by_service["step"] == 10
    assert by_service["total"] == 1  # s2 had no traffic
    (series,) = by_service["series"]
    assert series["name"] == s1 and len(series["points"]) == 9
    requests = [p["requests"] for p in series["points"]]
    assert requests == [10 + 2, 5 + 4, 3, 0, 0, 0, 0, 0, 2]
    assert series["requests"] == 26
    first = series["points"][0]
    assert first["at"] == t0.isoformat().replace("+00:00", "Z")
    assert (first["errors"], first["bytes_in"], first["bytes_out"]) == (1 + 1, 100 + 20, 900 + 200)
    assert first["max_in_flight"] == 7 + 5  # concurrent on two nodes in one bucket
    by_node = await world.get("/traffic", by="node", step=30, **window)
    totals = {s["name"]: [p["requests"] for p in s["points"]] for s in by_node["series"]}
    assert totals == {node["name"]: [22, 0, 2], other["name"]: [2, 0, 0]}
    one_node = await world.get("/traffic", node_id=other["id"], step=60, **window)
    assert [p["requests"] for p in one_node["series"][0]["points"]] == [2, 0]
    by_agent = await world.get("/traffic", by="agent", step=60, **window)
    assert by_agent["source"] == "agent"
    assert by_agent["series"][0]["name"] == agent["name"]
    assert by_agent["series"][0]["requests"] == 1  # started 8 s ago: all of it


async def test_traffic_windows_are_bounded(world: World) -> None:
    assert (await world.get("/traffic"))["step"] == 30  # 1 h in ~120 points
    assert (await world.get("/traffic", step=7))["step"] == 10  # a multiple of the bucket
    problem = await world.get("/traffic", 422, step=1, since="2000-01-01T00:00:00Z")
    assert problem["type"] == "urn:kokoa:problem:invalid-input"  # 7 days in 10 s steps
    assert "at most 720" in problem["detail"]
    now = world.clock.now
    await world.get("/traffic", 422, since=now.isoformat(), until=now.isoformat())
    await world.get("/traffic", 422, until="2000-01-01T00:00:00Z")  # beyond the retention
    await world.get("/traffic", 422, by="node", agent_id=world.agents[0]["id"])
    naive = (now - timedelta(minutes=10)).replace(tzinfo=None).isoformat()
    assert (await world.get("/traffic", since=naive))["since"].endswith("Z")


async def test_silence_and_a_closed_channel_make_offline(world: World) -> None:
    node, agent = world.nodes[0], world.agents[0]
    await world.report(node, peers=[("agent", agent, None)])
    await world.report(agent, peers=[("ingress", node, 1.0)])
    seen_at = world.clock.now
    world.clock.advance(seconds=14)
    assert (await status.sweep(world.rt)).silenced == 0
    assert (await world.node_status(0))["status"] == "online"
    world.clock.advance(seconds=2)  # 16 s: more than 3 intervals of 5 s
    assert (await status.sweep(world.rt)).silenced == 2
    seen = await world.node_status(0)
    assert seen["status"] == "offline" and seen["channel_open"] is False
    assert seen["last_seen_at"] == seen_at.isoformat().replace("+00:00", "Z")
    assert seen["status_detail"].startswith("no status message since ")
    assert (await world.get("/connections"))["total"] == 0  # neither side reports any more
    assert (await status.sweep(world.rt)).silenced == 0  # nothing more to do
    # Back, then its channel closes: offline at once.
    await world.report(agent, peers=[("ingress", node, 1.0)])
    assert (await world.agent_status(agent["name"]))["status"] == "online"
    async with world.rt.sessionmaker() as db:
        await status.channel_closed(db, world.rt, world.subject(agent))
    assert (await world.agent_status(agent["name"]))["status"] == "offline"
    events = (await world.get("/events", subject_id=agent["id"]))["items"]
    assert [e["after"]["status"] for e in events] == ["offline", "online", "offline", "online"]


LONG_SESSIONS = {"session_idle_timeout": timedelta(hours=3)}  # the tests move the clock by hours


@pytest.mark.parametrize("settings_overrides", [{"status_events_per_hour": 2} | LONG_SESSIONS])
async def test_flapping_is_counted_not_logged(world: World) -> None:
    node, agent = world.nodes[0], world.agents[0]
    for flip in range(6):
        problems = ["flap"] if flip % 2 else []
        await world.report(node, peers=[("agent", agent, None)], problems=problems)
        world.clock.advance(seconds=1)
    assert (await world.node_status(0))["status"] == "degraded"  # the status itself is exact
    assert (await world.get("/events"))["total"] == 2
    world.clock.advance(hours=1)
    await world.report(node, peers=[("agent", agent, None)])
    newest = (await world.get("/events"))["items"][0]
    assert newest["after"] == {"status": "online", "detail": "", "suppressed": 4}


@pytest.mark.parametrize(
    "settings_overrides", [{"status_retention": timedelta(hours=1)} | LONG_SESSIONS]
)
async def test_retention_prunes_old_buckets_in_bounded_batches(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = world.nodes[0]
    name = world.services[0]["name"]
    start = world.clock.now
    for index in range(6):  # six buckets, a minute apart, one request each
        world.clock.now = start + timedelta(minutes=index)
        fresh = world.clock.now - timedelta(seconds=1)  # a new process each time: all counts
        await world.report(node, started=fresh, services={name: (1, 0, 0, 0, 0)})
    assert await _buckets(world.rt) == 6
    world.clock.now = start + timedelta(hours=1, minutes=2, seconds=30)  # 3 are too old
    monkeypatch.setattr(traffic, "PRUNE_BATCH", 2)
    assert (await status.sweep(world.rt)).pruned == 2
    assert (await status.sweep(world.rt)).pruned == 1
    assert (await status.sweep(world.rt)).pruned == 0
    assert await _buckets(world.rt) == 3
    page = await world.get("/traffic", step=60)
    assert page["series"][0]["requests"] == 3  # minutes 3, 4, 5 (+1 each)


async def _buckets(rt: Runtime) -> int:
    async with rt.sessionmaker() as db:
        return int((await db.execute(select(func.count()).select_from(TrafficBucket))).scalar_one())


async def test_a_report_of_a_deleted_subject_is_dropped(world: World) -> None:
    node = world.nodes[0]
    subject = world.subject(node)
    url = f"{API}/orgs/{world.org_id}/nodes/{node['id']}"
    check(await world.client.delete(url), 204)
    await send(world.rt, subject, make_report(world.clock.now))
    async with world.rt.sessionmaker() as db:
        await status.channel_closed(db, world.rt, subject)
    assert (await world.get("/nodes"))["total"] == 1


@pytest.mark.parametrize("settings_overrides", [{"open_signup": True}])
async def test_another_organisation_sees_nothing_and_its_ids_are_refused(
    world: World, make_client: MakeClient
) -> None:
    other = await build_world(make_client, world.app, world.clock, "b")
    mine, theirs = world.nodes[0], other.nodes[0]
    their_service = other.services[0]["name"]
    # Our node claims their agent and reports their service's name: neither is recorded.
    await world.report(
        mine,
        peers=[("agent", other.agents[0], 1.0), ("agent", world.agents[0], 2.0)],
        services={their_service: (5, 0, 5, 5, 1)},
    )
    await other.report(theirs, peers=[("agent", other.agents[0], 1.0)])
    mine_page = await world.get("/connections")
    assert [c["agent_id"] for c in mine_page["items"]] == [world.agents[0]["id"]]
    assert (await world.get("/traffic"))["series"] == []
    theirs_page = await other.get("/connections")
    assert [c["node_id"] for c in theirs_page["items"]] == [theirs["id"]]
    # Guessing their ids from our organisation: 404, as for ids that do not exist.
    for path, params in [
        (f"/nodes/{theirs['id']}", {}),
        ("/connections", {"node_id": theirs["id"]}),
        ("/connections", {"agent_id": other.agents[0]["id"]}),
        ("/traffic", {"service_id": other.services[0]["id"]}),
        ("/traffic", {"node_id": theirs["id"]}),
        ("/events", {"subject_id": theirs["id"]}),
        (f"/nodes/{uuid.uuid4()}", {}),
    ]:
        problem = await world.get(path, 404, **params)
        assert problem["type"] == "urn:kokoa:problem:not-found"
    url = f"{world.base}/nodes/{theirs['id']}/health-check"
    check(await world.client.put(url, json={"url": "http://127.0.0.1:9/readyz"}), 404)
    # Their organisation's path with our session: not a member.
    check(await world.client.get(f"{other.base}/nodes"), 404)
    everything = "".join(
        [
            str(await world.get(path))
            for path in ("", "/nodes", "/agents", "/connections", "/traffic", "/events")
        ]
    )
    for foreign in [other.org_id, *(row["id"] for row in other.nodes + other.agents)]:
        assert foreign not in everything


async def test_report_parsing_bounds() -> None:
    now = datetime.now(UTC)
    good = make_report(now).model_dump(mode="json")
    bad_fields: list[dict[str, Any]] = [
        {"problems": ["x"] * 21},
        {"problems": ["x" * 201]},
        {"services": [{"name": "s", "requests": -1}]},
        {"services": [{"name": "s", "requests": 2**63}]},
        {"services": [{"name": ""}]},
        {"started_at": "2026-01-01T00:00:00"},  # no time zone
        {"connections": [{"kind": "moon", "id": str(uuid.uuid4()), "connected_since": now}]},
        {"snapshot_version": "f" * 65},
    ]
    for bad in bad_fields:
        with pytest.raises(ValueError):
            StatusReport.model_validate(good | bad)
