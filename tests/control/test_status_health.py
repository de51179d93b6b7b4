"""Readiness checks of ingress nodes against a real small HTTP(S) server on 127.0.0.1 that the
tests flip between 200 and 503 and then close: the verdicts, their combination with the
heartbeats, the events, and TLS verification (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from fastapi import FastAPI

from control.services import health_checks, status
from tests.control import helpers
from tests.control.helpers import API, Clock, check
from tests.control.test_status import World, aligned, build_world

MakeClient = Callable[[], httpx.AsyncClient]
MAX_HEAD = 16 * 1024


class Readyz:
    """An HTTP/1.1 server whose every GET answers `code` (one request per connection)."""

    def __init__(self) -> None:
        self.code = 200
        self.requests: list[str] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, tls: ssl.SSLContext | None = None) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=tls)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head[:MAX_HEAD].split(b"\r\n", 1)[0].decode())
            body = b'{"ready": %s}\n' % (b"true" if self.code == 200 else b"false")
            writer.write(
                b"HTTP/1.1 %d X\r\ncontent-type: application/json\r\n" % self.code
                + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    def url(self, scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}/readyz"


@pytest.fixture
async def readyz() -> AsyncIterator[Readyz]:
    server = Readyz()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def world(make_client: MakeClient, app: FastAPI, clock: Clock) -> World:
    clock.now = aligned(clock.now)
    return await build_world(make_client, app, clock, "h")


async def check_round(world: World) -> int:
    async with health_checks.make_client(world.rt.settings) as client:
        return await health_checks.check_all(world.rt, client)


async def set_check(world: World, url: str, expect: int = 200) -> Any:
    path = f"{world.base}/nodes/{world.nodes[0]['id']}/health-check"
    return check(await world.client.put(path, json={"url": url}), expect)


async def verdict(world: World) -> tuple[str, str]:
    seen = await world.node_status(0)
    return seen["status"], seen["status_detail"]


@pytest.mark.parametrize("settings_overrides", [{"health_check_failures": 2}])
async def test_heartbeats_and_readiness_combine(world: World, readyz: Readyz) -> None:
    node, agent = world.nodes[0], world.agents[0]
    await world.report(node, peers=[("agent", agent, None)])
    made = await set_check(world, readyz.url())
    assert made == {
        "url": readyz.url(),
        "ok": None,
        "failures": 0,
        "checked_at": None,
        "detail": "",
    }
    assert await check_round(world) == 1
    assert readyz.requests == ["GET /readyz HTTP/1.1"]
    seen = await world.node_status(0)
    assert seen["status"] == "online"
    assert seen["health_check"]["ok"] is True and seen["health_check"]["detail"] == "HTTP 200"

    readyz.code = 503
    await check_round(world)  # one failure is not a verdict yet
    seen = await world.node_status(0)
    assert seen["status"] == "online" and seen["health_check"]["failures"] == 1
    await check_round(world)
    assert await verdict(world) == ("degraded", "readiness check failed: HTTP 503")

    world.clock.advance(seconds=16)  # and the heartbeats stop
    await status.sweep(world.rt)
    state, detail = await verdict(world)
    assert state == "offline" and detail.endswith("; readiness check failed: HTTP 503")

    readyz.code = 200
    await check_round(world)
    state, detail = await verdict(world)
    assert state == "degraded" and detail.endswith("; readiness check passes")

    await readyz.stop()  # nothing listens on its port any more
    for _ in range(2):
        await check_round(world)
    state, detail = await verdict(world)
    assert state == "offline" and detail.endswith("readiness check failed: connection refused")

    events = (await world.get("/events", subject_id=node["id"]))["items"]
    assert [(e["before"]["status"], e["after"]["status"]) for e in reversed(events)] == [
        ("unknown", "online"),
        ("online", "degraded"),
        ("degraded", "offline"),
        ("offline", "degraded"),
        ("degraded", "offline"),
    ]
    audit = check(
        await world.client.get(
            f"{API}/orgs/{world.org_id}/audit", params={"action": "node.health_check.*"}
        ),
        200,
    )
    assert [e["after"]["health_url"] for e in audit["items"]] == [readyz.url()]


async def test_a_node_that_never_reported_is_judged_by_its_check(
    world: World, readyz: Readyz
) -> None:
    await set_check(world, readyz.url())
    await check_round(world)
    assert await verdict(world) == ("degraded", "no control channel; readiness check passes")
    # Removing the check leaves nothing to judge by: back to unknown; removing twice is fine.
    path = f"{world.base}/nodes/{world.nodes[0]['id']}/health-check"
    check(await world.client.delete(path), 204)
    check(await world.client.delete(path), 204)
    seen = await world.node_status(0)
    assert seen["status"] == "unknown" and seen["health_check"] is None
    assert await check_round(world) == 0


async def test_only_enabled_nodes_are_checked(world: World, readyz: Readyz) -> None:
    await set_check(world, readyz.url())
    node_url = f"{API}/orgs/{world.org_id}/nodes/{world.nodes[0]['id']}"
    check(await world.client.post(f"{node_url}/disable"), 200)
    assert await check_round(world) == 0
    assert readyz.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/readyz",
        "http://user:pw@127.0.0.1/readyz",
        "http://127.0.0.1/readyz?x=1",
        "http://127.0.0.1/readyz#x",
        "http:///readyz",
        "http://" + "a" * 300 + ".example/",
        "http://exa mple/",
    ],
)
async def test_bad_urls_are_refused(world: World, url: str) -> None:
    problem = await set_check(world, url, 422)
    assert problem["type"] == "urn:kokoa:problem:validation-error"


async def test_redirects_are_not_followed(world: World, readyz: Readyz) -> None:
    readyz.code = 302
    await set_check(world, readyz.url())
    await check_round(world)
    seen = await world.node_status(0)
    assert seen["health_check"]["detail"] == "HTTP 302" and seen["health_check"]["failures"] == 1


async def test_https_checks_verify_the_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(served)
    readyz = Readyz()
    await readyz.start(tls=served)
    try:
        url = readyz.url("https", "localhost")
        settings = helpers.test_settings("sqlite+aiosqlite:///unused.db", tmp_path)
        async with health_checks.make_client(settings) as client:
            outcome = await health_checks.probe(client, url, 5)
        assert outcome == health_checks.Outcome(False, "TLS certificate not trusted")
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        trusting = helpers.test_settings(
            "sqlite+aiosqlite:///unused.db", tmp_path, health_check_ca_file=tmp_path / "ca.pem"
        )
        async with health_checks.make_client(trusting) as client:
            assert await health_checks.probe(client, url, 5) == health_checks.Outcome(
                True, "HTTP 200"
            )
    finally:
        await readyz.stop()


async def test_a_check_that_hangs_times_out(tmp_path: Path) -> None:
    release = asyncio.Event()
    handlers: list[asyncio.Task[Any]] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await release.wait()  # never answers
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = helpers.test_settings(
            "sqlite+aiosqlite:///unused.db", tmp_path, health_check_timeout=0.2
        )
        async with health_checks.make_client(settings) as client:
            outcome = await health_checks.probe(client, f"http://127.0.0.1:{port}/", 0.2)
        assert outcome == health_checks.Outcome(False, "timed out")
    finally:
        release.set()
        server.close()
        await server.wait_closed()
        async with asyncio.timeout(5):
            await asyncio.gather(*handlers, return_exceptions=True)
