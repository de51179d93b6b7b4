"""The one way to read an organisation's rows: always filtered by org, never by id alone.

`get_scoped` answers NotFound both for a missing id and for another organisation's id, so id
guessing learns nothing. `paginate` gives every list the same limit/offset/total envelope.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from control.services.errors import NotFound

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


class OrgOwned(Protocol):
    id: Any
    org_id: Any


M = TypeVar("M", bound=OrgOwned)


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    offset: int = 0


@dataclass(frozen=True, slots=True)
class PageResult:
    rows: list[Any]
    total: int
    limit: int
    offset: int


async def get_scoped(
    db: AsyncSession, model: type[M], org_id: uuid.UUID, row_id: uuid.UUID, *, what: str
) -> M:
    """The row `row_id` of `model` in `org_id`, or NotFound (also for other orgs' rows)."""
    column: InstrumentedAttribute[Any] = model.org_id
    ident: InstrumentedAttribute[Any] = model.id
    row = (await db.execute(select(model).where(ident == row_id, column == org_id))).scalar()
    if row is None:
        raise NotFound(f"no such {what} in this organisation")
    return row


async def paginate(db: AsyncSession, query: Select[Any], page: PageRequest) -> PageResult:
    """Run `query` (already filtered and ordered) for one page, with the total count."""
    total = (await db.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = (await db.execute(query.limit(page.limit).offset(page.offset))).scalars().all()
    return PageResult(list(rows), int(total), page.limit, page.offset)


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, with the wildcards in it taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
