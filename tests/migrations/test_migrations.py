"""Migrations on SQLite and PostgreSQL: upgrade → downgrade → upgrade, and no drift from models."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from control.db import migrate
from control.db.engine import create_engine
from control.db.models import Base
from tests.control.databases import (
    create_pg_database,
    drop_pg_database,
    postgres_admin_url,
    sqlite_url,
)

TABLES = {
    "organisations",
    "users",
    "memberships",
    "invitations",
    "user_sessions",
    "api_tokens",
    "services",
    "service_agents",
    "ingress_nodes",
    "edge_agents",
    "audit_events",
    "enrollment_tokens",
    "issued_certificates",
    "certificate_authorities",
    "node_status",
    "agent_status",
    "agent_connections",
    "traffic_buckets",
    "public_certificates",
    "oidc_identities",
}


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        engine = create_engine(sqlite_url(tmp_path / "control.db"))
        yield engine
        await engine.dispose()
        return
    admin = postgres_admin_url(request.config)
    url = await create_pg_database(admin)
    engine = create_engine(url)
    yield engine
    await engine.dispose()
    await drop_pg_database(admin, url)


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        names = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    return set(names) - {"alembic_version"}


def _drift(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_downgrade_upgrade(empty_engine: AsyncEngine) -> None:
    await migrate.upgrade(empty_engine)
    assert await _tables(empty_engine) == TABLES
    assert await migrate.current_revision(empty_engine) == migrate.head_revision()

    await migrate.downgrade(empty_engine, "base")
    assert await _tables(empty_engine) == set()
    assert await migrate.current_revision(empty_engine) is None

    await migrate.upgrade(empty_engine)
    assert await _tables(empty_engine) == TABLES


async def test_models_match_migrations(empty_engine: AsyncEngine) -> None:
    await migrate.upgrade(empty_engine)
    async with empty_engine.connect() as connection:
        drift = await connection.run_sync(_drift)
    assert drift == []


async def test_audit_log_refuses_update_and_delete(empty_engine: AsyncEngine) -> None:
    await migrate.upgrade(empty_engine)
    insert = sa.text(
        "INSERT INTO audit_events (at, actor_type, actor_label, action) "
        "VALUES (CURRENT_TIMESTAMP, 'system', 'test', 'test.event')"
    )
    async with empty_engine.begin() as connection:
        await connection.execute(insert)
    for statement in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with empty_engine.begin() as connection:
                await connection.execute(sa.text(statement))
    async with empty_engine.connect() as connection:
        rows = (await connection.execute(sa.text("SELECT action FROM audit_events"))).all()
    assert [row.action for row in rows] == ["test.event"]
