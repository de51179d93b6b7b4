"""What the control channels report and the readiness checks find (docs/control-plane.md,
"Status and health"). The judged status itself (online / degraded / offline) stays on
`IngressNode.status` and `EdgeAgent.status`; these tables hold the evidence behind it.

- `NodeStatus` / `AgentStatus`: one row per reporting subject (created by its first status
  message, or for a node by setting a readiness check): channel state, the last report's
  software, snapshot version, problems, the cumulative counters the next report's deltas are
  taken from, and how many status-change events were logged this hour. Nodes also keep their
  readiness check (URL and last result).
- `AgentConnection`: the agent ↔ ingress matrix, one row per (agent, node), each side as its own
  reporter saw it in its last report (replaced by every report of that side).
- `TrafficBucket`: per-service traffic deltas in fixed buckets (`bucket` = its start, in Unix
  seconds, so that grouping by any step is integer arithmetic on every engine), per reporter.
  No foreign key on the reporter: the history of a deleted node still counts in its service's
  totals until retention removes it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from control.db.base import Base


class _Reported:
    """Columns a node and an agent share: what their control channel last said."""

    channel_open: Mapped[bool] = mapped_column(default=False)
    reported_at: Mapped[datetime | None]  # control-plane time of the last status message
    started_at: Mapped[datetime | None]  # the process's start, as it reported it
    snapshot_version: Mapped[str | None] = mapped_column(String(64))
    problems: Mapped[list[str]] = mapped_column(JSON, default=list)
    counters: Mapped[dict[str, Any]] = mapped_column(default=dict)  # name -> [req, err, in, out]
    events_window_start: Mapped[datetime | None]
    events_in_window: Mapped[int] = mapped_column(default=0)
    events_suppressed: Mapped[int] = mapped_column(default=0)


class NodeStatus(_Reported, Base):
    __tablename__ = "node_status"

    node_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ingress_nodes.id", ondelete="CASCADE"), primary_key=True
    )
    health_url: Mapped[str | None] = mapped_column(String(300))
    health_ok: Mapped[bool | None]  # None: not checked yet (or no check)
    health_failures: Mapped[int] = mapped_column(default=0)  # consecutive
    health_checked_at: Mapped[datetime | None]
    health_detail: Mapped[str] = mapped_column(String(200), default="")


class AgentStatus(_Reported, Base):
    __tablename__ = "agent_status"

    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("edge_agents.id", ondelete="CASCADE"), primary_key=True
    )


class AgentConnection(Base):
    __tablename__ = "agent_connections"

    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("edge_agents.id", ondelete="CASCADE"), primary_key=True
    )
    node_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ingress_nodes.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    org_id: Mapped[uuid.UUID] = mapped_column(index=True)
    agent_reported_at: Mapped[datetime | None]
    agent_since: Mapped[datetime | None]
    agent_rtt_ms: Mapped[float | None]
    node_reported_at: Mapped[datetime | None]
    node_since: Mapped[datetime | None]
    node_rtt_ms: Mapped[float | None]


class TrafficBucket(Base):
    __tablename__ = "traffic_buckets"
    __table_args__ = (
        Index("ix_traffic_buckets_org_bucket", "org_id", "bucket"),
        Index("ix_traffic_buckets_bucket", "bucket"),
    )

    service_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    reporter_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    reporter_kind: Mapped[str] = mapped_column(String(8))  # "ingress" | "agent"
    org_id: Mapped[uuid.UUID]
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_in: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_out: Mapped[int] = mapped_column(BigInteger, default=0)
    max_in_flight: Mapped[int] = mapped_column(default=0)
