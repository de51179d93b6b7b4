"""API tokens: personal ones and organisation service accounts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from control.auth.roles import Role
from control.schemas.common import In, Out
from control.schemas.validators import DisplayName

ExpiryDays = Field(default=90, ge=1, le=365, description="days until the token stops working")


class TokenIn(In):
    name: DisplayName = Field(min_length=1)
    expires_in_days: int = ExpiryDays


class ServiceTokenIn(TokenIn):
    role: Role = Role.VIEWER


class TokenOut(Out):
    id: uuid.UUID
    name: str
    kind: Literal["personal", "service"]
    prefix: str = Field(description="the first characters, to recognise the token")
    org_id: uuid.UUID | None
    role: Role | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    """Returned once, at creation: `token` is never shown again (only its hash is stored)."""

    token: str
