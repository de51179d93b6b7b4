"""Turning a service-layer PageResult into the API's `Page[...]` envelope."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from control.services.scoped import PageResult

P = TypeVar("P", bound=BaseModel)


def to_page(page_type: type[P], result: PageResult) -> P:
    return page_type.model_validate(
        {
            "items": result.rows,
            "total": result.total,
            "limit": result.limit,
            "offset": result.offset,
        },
        from_attributes=True,
    )


def page_fields(result: PageResult) -> dict[str, Any]:
    return {"total": result.total, "limit": result.limit, "offset": result.offset}
