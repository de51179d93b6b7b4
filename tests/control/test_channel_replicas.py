"""Two control-plane replicas on one PostgreSQL: a change made through one reaches channels
open on the other (NOTIFY kokoa_config / LISTEN), also after the LISTEN connection was lost."""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI

from control.channel import ChangeHub
from control.main import create_app
from control.settings import Settings
from tests.control.enroll_support import Owner, owner, query
from tests.control.helpers import check
from tests.control.server import serve
from tests.control.test_channel import channel, closed_with, enroll, receive, service

CHANGES = 10
log = logging.getLogger(__name__)  # the measurements; see them with -o log_cli=true


@pytest.fixture
def template(pg_template: tuple[str, str]) -> tuple[str, Any]:
    return "postgresql", pg_template


@contextmanager
def replicas(settings: Settings) -> Iterator[tuple[FastAPI, str, FastAPI, str]]:
    """Two apps on the same database, served one after the other (the first makes the CA)."""
    first, second = create_app(settings), create_app(settings)
    with serve(first) as a, serve(second) as b:
        yield first, a, second, b


async def listening(app: FastAPI, times: int = 1) -> None:
    """Until the app's hub has made its `times`-th LISTEN connection (10 s at most)."""
    hub: ChangeHub = app.state.channels.hub
    for _ in range(200):
        if hub.listening and hub.listens >= times:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not listening: {hub.listening}, {hub.listens} connections")


async def test_a_change_through_replica_a_reaches_a_channel_on_replica_b(
    settings: Settings,
) -> None:
    with replicas(settings) as (_, a, second, b):
        boss: Owner = owner(a)
        try:
            agent = enroll(boss, "agent", boss.agent())
            node = enroll(boss, "ingress", boss.node())
            await listening(second)
            delays = []
            async with channel(b, node) as at_b:
                for _ in range(CHANGES):
                    start = time.perf_counter()
                    made = service(boss, agent)  # through A
                    seen = await at_b.next_snapshot()
                    delays.append(time.perf_counter() - start)
                    assert made["id"] in {item["id"] for item in seen["config"]["services"]}
                    await at_b.status()
                log.warning(
                    "replica A change to snapshot on replica B, %d changes: p50 %.0f ms, "
                    "max %.0f ms", CHANGES, statistics.median(delays) * 1000,
                    max(delays) * 1000,
                )  # fmt: skip
                assert max(delays) < 5.0

                # and the other way: disabling through B closes A's channel of the agent
                async with channel(a, agent) as at_a:
                    check(
                        boss.client.post(
                            f"{b}/api/v1/orgs/{boss.org_id}/agents/{agent.id}/disable"
                        ),
                        200,
                    )
                    error = await receive(at_a.ws)
                    assert error["code"] == "disabled"
                    assert (await closed_with(at_a.ws))[0] == 4403
        finally:
            boss.client.close()


async def test_a_replica_listens_again_after_losing_its_connection(settings: Settings) -> None:
    with replicas(settings) as (_, a, second, b):
        boss: Owner = owner(a)
        try:
            node = enroll(boss, "ingress", boss.node())
            await listening(second)
            killed = query(
                settings,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'kokoa-control-listen'",
            )
            assert len(killed) == 2  # one per replica
            await listening(second, times=2)
            async with channel(b, node) as at_b:
                made = service(boss)
                seen = await at_b.next_snapshot()
                assert [item["id"] for item in seen["config"]["services"]] == [made["id"]]
        finally:
            boss.client.close()
