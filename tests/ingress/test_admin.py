"""The admin listener over real HTTP on loopback: health, readiness, metrics."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from ingress.admin import AdminApp, AdminServer, Readiness


@dataclass
class State:
    readiness: Readiness


@pytest.fixture
def state() -> State:
    return State(Readiness("ingress-a", True, {"tunnel": True, "http": True}, agents=2))


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("kokoa_test_things", "Things", ["kind"], registry=registry).labels(kind="a").inc(3)
    return registry


@pytest.fixture
async def admin(
    state: State, registry: CollectorRegistry
) -> AsyncIterator[tuple[AdminServer, httpx.AsyncClient]]:
    server = AdminServer(AdminApp(registry, lambda: state.readiness), "127.0.0.1", 0)
    server.bind()
    async with asyncio.TaskGroup() as group:
        group.create_task(server.serve())
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            yield server, client
        server.stop()


async def test_healthz(admin: tuple[AdminServer, httpx.AsyncClient]) -> None:
    response = await admin[1].get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"
    assert "server" not in response.headers


async def test_readyz_when_ready_and_not(
    admin: tuple[AdminServer, httpx.AsyncClient], state: State
) -> None:
    response = await admin[1].get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "ready": True,
        "node": "ingress-a",
        "config_loaded": True,
        "listeners": {"tunnel": True, "http": True},
        "agents": 2,
    }
    state.readiness = Readiness("ingress-a", True, {"tunnel": True, "http": False})
    response = await admin[1].get("/readyz")
    assert response.status_code == 503
    assert response.json()["ready"] is False
    assert response.json()["listeners"] == {"tunnel": True, "http": False}
    state.readiness = Readiness("ingress-a", False, {"tunnel": True, "http": True})
    assert (await admin[1].get("/readyz")).status_code == 503


async def test_metrics_in_prometheus_and_openmetrics(
    admin: tuple[AdminServer, httpx.AsyncClient],
) -> None:
    response = await admin[1].get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'kokoa_test_things_total{kind="a"} 3.0' in response.text
    response = await admin[1].get(
        "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


async def test_unknown_path_and_method(admin: tuple[AdminServer, httpx.AsyncClient]) -> None:
    assert (await admin[1].get("/nope")).status_code == 404
    response = await admin[1].post("/metrics", content=b"x")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    head = await admin[1].head("/healthz")
    assert head.status_code == 200


async def test_uvicorn_leaves_signals_and_logging_alone(registry: CollectorRegistry) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    handlers = list(logging.getLogger().handlers)
    server = AdminServer(AdminApp(registry, lambda: Readiness("n", True)), "127.0.0.1", 0)
    server.bind()
    async with asyncio.TaskGroup() as group:
        group.create_task(server.serve())
        async with asyncio.timeout(5):
            while not server.started:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert {sig: signal.getsignal(sig) for sig in before} == before
        assert logging.getLogger().handlers == handlers
        server.stop()
    # Stopped: the port is released.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


async def test_a_port_in_use_is_an_oserror_at_bind(registry: CollectorRegistry) -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        port = taken.getsockname()[1]
        server = AdminServer(AdminApp(registry, lambda: Readiness("n", True)), "127.0.0.1", port)
        with pytest.raises(OSError):
            server.bind()
    finally:
        taken.close()
