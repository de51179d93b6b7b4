"""Audit events as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from control.schemas.common import Out


class AuditEventOut(Out):
    id: int
    at: datetime
    org_id: uuid.UUID | None
    actor_type: Literal["user", "token", "anonymous", "system"]
    actor_id: uuid.UUID | None
    actor_label: str
    action: str
    target_type: str | None
    target_id: str | None
    target_label: str | None
    client_ip: str | None
    user_agent: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
