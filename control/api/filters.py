"""Query parameters every resource list takes: q (text search), enabled, label=key=value."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query
from pydantic import StringConstraints

from control.schemas.validators import SearchText
from control.services.resource_ops import ListFilter

LabelSelector = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?=[A-Za-z0-9._-]{0,63}$"),
]
Q = Annotated[SearchText | None, Query(description="case-insensitive text search")]
Enabled = Annotated[bool | None, Query(description="only enabled (true) or disabled (false)")]


def get_filter(q: Q = None, enabled: Enabled = None) -> ListFilter:
    return ListFilter(q=q, enabled=enabled)


def get_labelled_filter(
    q: Q = None,
    enabled: Enabled = None,
    label: Annotated[
        list[LabelSelector],
        Query(max_length=16, description="key=value; repeat to require several labels"),
    ] = [],  # noqa: B006  (FastAPI copies defaults; this is the documented idiom)
) -> ListFilter:
    return ListFilter(q=q, enabled=enabled, labels=tuple(label))


Filter = Annotated[ListFilter, Depends(get_filter)]
LabelledFilter = Annotated[ListFilter, Depends(get_labelled_filter)]
