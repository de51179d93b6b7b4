"""PATCH bodies: every field optional; absent means unchanged, and null is refused unless the
field is nullable (`NULLABLE`). The schema shows the non-null type (SkipJsonSchema)."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import model_validator

from control.schemas.common import In


class Patch(In):
    NULLABLE: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _refuse_nulls(self) -> Self:
        for field in self.model_fields_set - self.NULLABLE:
            if getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, with their (validated) values."""
        return {field: getattr(self, field) for field in self.model_fields_set}
