"""Fixtures for the control-plane tests: a migrated database per test on SQLite and on
PostgreSQL (copied from a template migrated once per session), the app and HTTP clients."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from control.db import migrate
from control.db.engine import create_engine
from control.main import create_app, runtime_of
from control.settings import Settings
from tests.control.databases import (
    create_pg_database,
    drop_pg_database,
    postgres_admin_url,
    sqlite_url,
)
from tests.control.helpers import BASE_URL, Clock, test_settings

BACKENDS = ("sqlite", "postgresql")
T = TypeVar("T")
MakeClient = Callable[[], httpx.AsyncClient]


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


def run_in_thread(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on its own loop (session fixtures are not async)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "control.db"
    run_in_thread(_migrate(sqlite_url(path)))
    return path


@pytest.fixture(scope="session")
def pg_template(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(admin URL, name of a migrated template database)."""
    admin = postgres_admin_url(request.config)
    url = run_in_thread(create_pg_database(admin))
    run_in_thread(_migrate(url))
    name = make_url(url).database
    assert name
    return admin, name


@pytest.fixture(params=BACKENDS)
def template(request: pytest.FixtureRequest) -> tuple[str, Any]:
    """Which engine this test runs on, and its migrated template."""
    backend: str = request.param
    fixture = "sqlite_template" if backend == "sqlite" else "pg_template"
    return backend, request.getfixturevalue(fixture)


@pytest.fixture
async def database_url(template: tuple[str, Any], tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    backend, source = template
    if backend == "sqlite":
        path = tmp_path / "control.db"
        shutil.copyfile(source, path)
        yield sqlite_url(path)
        return
    admin, name = source
    url = await create_pg_database(admin, template=name)
    yield url
    await drop_pg_database(admin, url)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override (or parametrize) to change settings for a test."""
    return {}


@pytest.fixture
def settings(database_url: str, tmp_path: Path, settings_overrides: dict[str, Any]) -> Settings:
    return test_settings(database_url, tmp_path, **settings_overrides)


@pytest.fixture
async def app(settings: Settings, clock: Clock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock)
    yield application
    await runtime_of(application).engine.dispose()


@pytest.fixture
async def make_client(app: FastAPI) -> AsyncIterator[MakeClient]:
    """New HTTP clients of the app, each with its own cookie jar (one per browser)."""
    clients: list[httpx.AsyncClient] = []

    def make() -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def client(make_client: MakeClient) -> httpx.AsyncClient:
    return make_client()
