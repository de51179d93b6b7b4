"""The audit log: append-only (database triggers refuse UPDATE and DELETE, see migrations)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from control.db.base import Base, utcnow

# SQLite only auto-increments an INTEGER PRIMARY KEY.
AuditId = BigInteger().with_variant(Integer(), "sqlite")


class AuditEvent(Base):
    """One state change or auth event; no foreign keys so it outlives what it describes."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_org_time", "org_id", "at"),)

    id: Mapped[int] = mapped_column(AuditId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    org_id: Mapped[uuid.UUID | None]
    actor_type: Mapped[str] = mapped_column(String(16))  # user | token | anonymous | system
    actor_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    actor_label: Mapped[str] = mapped_column(String(320), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64), index=True)
    target_label: Mapped[str | None] = mapped_column(String(320))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
