"""Status end to end: a real uvicorn whose lifespan runs the sweeper and the readiness checks,
an enrolled node sending `status` over the real control channel, the API read over HTTP."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from tests.control.enroll_support import Owner, owner
from tests.control.helpers import Clock, check
from tests.control.server import serve
from tests.control.test_channel import channel, enroll
from tests.control.test_status_health import Readyz

DEADLINE = 10.0


@pytest.fixture
def server(app: FastAPI) -> Iterator[str]:
    with serve(app) as base_url:
        yield base_url


@pytest.fixture
def boss(server: str) -> Iterator[Owner]:
    found = owner(server)
    yield found
    found.client.close()


async def until(boss: Owner, path: str, ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Poll `path` until `ok` (at most DEADLINE seconds); returns the last answer."""
    deadline = time.monotonic() + DEADLINE
    while True:
        found: dict[str, Any] = check(boss.client.get(f"{boss.base}/status{path}"), 200)
        if ok(found) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


def message(snapshot: str, started: str, requests: int) -> str:
    return json.dumps(
        {
            "type": "status",
            "sent_at": started,
            "snapshot_version": snapshot,
            "software": "kokoa 2.0.0",
            "started_at": started,
            "services": [{"name": "web", "requests": requests, "bytes_out": 10 * requests}],
            "connections": [],
            "problems": [],
        }
    )


@pytest.mark.parametrize(
    "settings_overrides",
    [
        {
            "status_sweep_interval": 0.05,
            "health_check_interval": 0.1,
            "health_check_failures": 1,
        }
    ],
)
async def test_status_over_the_channel_with_the_monitor_running(
    server: str, boss: Owner, clock: Clock
) -> None:
    node = boss.node()
    agent = boss.agent()
    body = {
        "name": "web",
        "hostname": "web.example.com",
        "origin": "http://127.0.0.1:8000",
        "agent_ids": [agent["id"]],
    }
    check(boss.client.post(f"{boss.base}/services", json=body), 201)
    got = enroll(boss, "ingress", node)
    path = f"/nodes/{node['id']}"
    started = (clock.now - timedelta(hours=1)).isoformat()
    readyz = Readyz()
    await readyz.start()
    try:
        async with channel(server, got) as opened:
            version = opened.snapshot["version"]
            await opened.ws.send(message(version, started, 100))
            seen = await until(boss, path, lambda s: s["status"] != "unknown")
            # Online, except that no agent is connected although it routes "web".
            assert seen["status"] == "degraded", seen
            assert seen["status_detail"].startswith("no agent connected")
            assert seen["snapshot_version"] == version and seen["software"] == "kokoa 2.0.0"
            await opened.ws.send(message(version, started, 130))
            traffic = await until(boss, "/traffic", lambda t: bool(t["series"]))
            assert traffic["series"][0]["requests"] == 30

            readyz.code = 503
            url = f"{boss.base}/status{path}/health-check"
            check(boss.client.put(url, json={"url": readyz.url()}), 200)
            seen = await until(boss, path, lambda s: "HTTP 503" in s["status_detail"])
            assert seen["status"] == "degraded" and seen["health_check"]["ok"] is False
        # The channel closed: with the check failing too, offline.
        seen = await until(boss, path, lambda s: s["status"] == "offline")
        assert seen["status"] == "offline" and not seen["channel_open"], seen
        readyz.code = 200
        seen = await until(boss, path, lambda s: s["status"] == "degraded")
        assert seen["status_detail"].endswith("readiness check passes"), seen
    finally:
        await readyz.stop()
    events = check(boss.client.get(f"{boss.base}/status/events"), 200)["items"]
    assert [e["after"]["status"] for e in reversed(events)] == ["degraded", "offline", "degraded"]


@pytest.mark.parametrize("settings_overrides", [{"status_sweep_interval": 0.05}])
async def test_the_sweeper_notices_a_channel_gone_silent(
    server: str, boss: Owner, clock: Clock
) -> None:
    agent = boss.agent()
    got = enroll(boss, "agent", agent)
    path = f"/agents/{agent['id']}"
    async with channel(server, got) as opened:
        version = opened.snapshot["version"]
        await opened.ws.send(message(version, clock.now.isoformat(), 0))
        seen = await until(boss, path, lambda s: s["status"] == "online")
        assert seen["status"] == "online" and seen["channel_open"], seen
        assert seen["snapshot_version"] == version and seen["software"] == "kokoa 2.0.0"
        listed = check(boss.client.get(f"{boss.base}/status/agents"), 200)["items"]
        assert listed == [seen]  # one agent's status is its row of the list
        # The app's clock jumps past 3 heartbeats while the channel stays open (as on a
        # replica that stopped hearing from it): the sweeper, not the channel, says offline.
        clock.advance(seconds=16)
        seen = await until(boss, path, lambda s: s["status"] == "offline")
        assert seen["status"] == "offline"
        assert seen["status_detail"].startswith("no status message since")
    # An id that is no agent of this organisation (a node's, a random one) is not found.
    for other in (boss.node()["id"], str(uuid.uuid4())):
        missing = boss.client.get(f"{boss.base}/status/agents/{other}")
        assert missing.status_code == 404, missing.text
        assert missing.json()["type"] == "urn:kokoa:problem:not-found", missing.json()
