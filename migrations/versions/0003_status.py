"""Status and health: what the control channels report, readiness checks, the agent ↔ ingress
matrix and per-service traffic time series.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _reported() -> list[sa.Column[object]]:
    """The columns node_status and agent_status share (control.db.models.status._Reported)."""
    return [
        sa.Column("channel_open", sa.Boolean(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("snapshot_version", sa.String(length=64), nullable=True),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("counters", sa.JSON(), nullable=False),
        sa.Column("events_window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("events_in_window", sa.Integer(), nullable=False),
        sa.Column("events_suppressed", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "node_status",
        *_reported(),
        sa.Column("node_id", sa.Uuid(), nullable=False),
        sa.Column("health_url", sa.String(length=300), nullable=True),
        sa.Column("health_ok", sa.Boolean(), nullable=True),
        sa.Column("health_failures", sa.Integer(), nullable=False),
        sa.Column("health_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("health_detail", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["ingress_nodes.id"],
            name=op.f("fk_node_status_node_id_ingress_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_node_status")),
    )
    op.create_table(
        "agent_status",
        *_reported(),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["edge_agents.id"],
            name=op.f("fk_agent_status_agent_id_edge_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_status")),
    )
    op.create_table(
        "agent_connections",
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("node_id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("agent_reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("agent_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("agent_rtt_ms", sa.Double(), nullable=True),
        sa.Column("node_reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("node_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("node_rtt_ms", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["edge_agents.id"],
            name=op.f("fk_agent_connections_agent_id_edge_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["ingress_nodes.id"],
            name=op.f("fk_agent_connections_node_id_ingress_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", "node_id", name=op.f("pk_agent_connections")),
    )
    with op.batch_alter_table("agent_connections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agent_connections_node_id"), ["node_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_agent_connections_org_id"), ["org_id"], unique=False)

    op.create_table(
        "traffic_buckets",
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("reporter_id", sa.Uuid(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("reporter_kind", sa.String(length=8), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("bytes_out", sa.BigInteger(), nullable=False),
        sa.Column("max_in_flight", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_traffic_buckets_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "service_id", "reporter_id", "bucket", name=op.f("pk_traffic_buckets")
        ),
    )
    with op.batch_alter_table("traffic_buckets", schema=None) as batch_op:
        batch_op.create_index("ix_traffic_buckets_bucket", ["bucket"], unique=False)
        batch_op.create_index("ix_traffic_buckets_org_bucket", ["org_id", "bucket"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("traffic_buckets", schema=None) as batch_op:
        batch_op.drop_index("ix_traffic_buckets_org_bucket")
        batch_op.drop_index("ix_traffic_buckets_bucket")

    op.drop_table("traffic_buckets")
    with op.batch_alter_table("agent_connections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_connections_org_id"))
        batch_op.drop_index(batch_op.f("ix_agent_connections_node_id"))

    op.drop_table("agent_connections")
    op.drop_table("agent_status")
    op.drop_table("node_status")
