"""Enrollment tokens as the API shows them (the enrollment exchange itself is in
common/enroll/messages.py, shared with the nodes and agents that speak it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from control.schemas.common import In, Out


class EnrollmentTokenIn(In):
    expires_in_minutes: int | None = Field(
        default=None,
        ge=1,
        le=1440,
        description="minutes until the token stops working (default: 60, the "
        "enrollment_token_ttl setting)",
    )


class EnrollmentTokenOut(Out):
    id: uuid.UUID
    org_id: uuid.UUID
    kind: Literal["ingress", "agent"]
    node_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    prefix: str = Field(description="the first characters, to recognise the token")
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


class EnrollmentTokenCreated(EnrollmentTokenOut):
    """Returned once, at creation: `token` is never shown again (only its hash is stored)."""

    token: str
    command: str = Field(description="the command that enrolls the node or agent with it")
