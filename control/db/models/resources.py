"""What an organisation publishes and runs: services, ingress nodes, edge agents."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from control.db.base import Base, new_id, utcnow


class Service(Base):
    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(63))
    hostname: Mapped[str] = mapped_column(String(253), unique=True)
    origin: Mapped[str] = mapped_column(String(300))
    protocol: Mapped[str] = mapped_column(String(8), default="http")
    enabled: Mapped[bool] = mapped_column(default=True)
    description: Mapped[str] = mapped_column(String(1000), default="")
    connect_timeout: Mapped[float] = mapped_column(default=5.0)
    read_timeout: Mapped[float] = mapped_column(default=60.0)
    tls_verify: Mapped[bool] = mapped_column(default=True)
    host_header: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ServiceAgent(Base):
    """Which edge agents serve a service (both of the same organisation)."""

    __tablename__ = "service_agents"

    service_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("edge_agents.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class IngressNode(Base):
    __tablename__ = "ingress_nodes"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(63))
    public_address: Mapped[str] = mapped_column(String(300))
    tunnel_address: Mapped[str] = mapped_column(String(300))
    region: Mapped[str] = mapped_column(String(63), default="")
    labels: Mapped[dict[str, str]] = mapped_column(default=dict)
    weight: Mapped[int] = mapped_column(default=100)
    enabled: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    status_detail: Mapped[str] = mapped_column(String(500), default="")
    version: Mapped[str | None] = mapped_column(String(64))
    last_seen_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class EdgeAgent(Base):
    __tablename__ = "edge_agents"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(63))
    enabled: Mapped[bool] = mapped_column(default=True)
    labels: Mapped[dict[str, str]] = mapped_column(default=dict)
    ingress_mode: Mapped[str] = mapped_column(String(16), default="all")  # "all" | "labels"
    ingress_labels: Mapped[dict[str, str]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="unknown")
    status_detail: Mapped[str] = mapped_column(String(500), default="")
    version: Mapped[str | None] = mapped_column(String(64))
    last_seen_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
