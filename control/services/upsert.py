"""INSERT … ON CONFLICT on SQLite and PostgreSQL (both dialects spell it the same way)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

Excluded = Any  # the statement's `excluded` namespace: the row that was refused
SetClause = Callable[[Excluded], dict[str, ColumnElement[Any] | Any]]


def _insert(db: AsyncSession, table: Table) -> Any:
    dialect = db.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


async def upsert(
    db: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    update: SetClause,
) -> None:
    """Insert `rows` into `table`; a row whose `keys` exist already updates it by `update`."""
    if not rows:
        return
    statement = _insert(db, table).values(list(rows))
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_=update(statement.excluded)
    )
    await db.execute(statement)


async def insert_missing(
    db: AsyncSession, table: Table, row: dict[str, Any], keys: Sequence[str]
) -> None:
    """Insert `row` unless a row with its `keys` exists (safe against a concurrent insert)."""
    statement = _insert(db, table).values(row).on_conflict_do_nothing(index_elements=list(keys))
    await db.execute(statement)
