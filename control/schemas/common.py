"""Shapes every resource shares: input/output bases, the page envelope, problem details."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field


class In(BaseModel):
    """Request bodies: unknown fields are errors (no mass assignment by a stray key)."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    """Response bodies, built from ORM rows by attribute."""

    model_config = ConfigDict(from_attributes=True)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list: `items`, plus `total` matches and the `limit`/`offset` used."""

    items: list[T]
    total: int
    limit: int
    offset: int


class Problem(BaseModel):
    """RFC 9457 problem details; `type` is stable and listed in docs/api.md."""

    type: str = Field(examples=["urn:kokoa:problem:not-found"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="validation errors: where (loc) and why (msg)"
    )
