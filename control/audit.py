"""Writing the audit log: one row per state change or auth event, inside the caller's
transaction (the change and its record commit together or not at all)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from control.db.base import utcnow
from control.db.models import AuditEvent
from control.services.context import Actor

MAX_LABEL = 320
MAX_AGENT = 512


@dataclass(frozen=True, slots=True)
class Target:
    type: str
    id: uuid.UUID | str | None
    label: str = ""


def record(
    db: AsyncSession,
    actor: Actor,
    action: str,
    *,
    org_id: uuid.UUID | None = None,
    target: Target | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Add an audit event to the session's current transaction."""
    db.add(
        AuditEvent(
            at=utcnow(),
            org_id=org_id,
            actor_type=actor.kind,
            actor_id=actor.id,
            actor_label=actor.label[:MAX_LABEL],
            action=action,
            target_type=target.type if target else None,
            target_id=str(target.id) if target and target.id is not None else None,
            target_label=target.label[:MAX_LABEL] if target else None,
            client_ip=actor.client.ip,
            user_agent=(actor.client.user_agent or "")[:MAX_AGENT] or None,
            before=_jsonable(before),
            after=_jsonable(after),
        )
    )


def changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields that differ, as (before, after) summaries."""
    keys = [key for key in after if before.get(key) != after.get(key)]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}


def _jsonable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {key: _plain(item) for key, item in value.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return (
            [_plain(v) for v in sorted(value, key=str)]
            if isinstance(value, set | frozenset)
            else [_plain(v) for v in value]
        )
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
