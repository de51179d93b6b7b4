"""Run the alembic migrations in `migrations/` on an engine, inside the caller's event loop."""

from __future__ import annotations

from importlib.resources import files
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic Config pointing at the `migrations` package, optionally bound to a connection."""
    config = Config()
    config.set_main_option("script_location", str(files("migrations")))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _run(engine, "upgrade", revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    await _run(engine, "downgrade", revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def _run(engine: AsyncEngine, verb: Literal["upgrade", "downgrade"], revision: str) -> None:
    def run(connection: Connection) -> None:
        config = alembic_config(connection)
        if verb == "upgrade":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)
