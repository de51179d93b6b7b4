"""Enrollment: one-time tokens, the certificates the CA issued, and the CA itself.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 20:01:07.427669
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "certificate_authorities",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slot", sa.String(length=8), nullable=True),
        sa.Column("certificate", sa.Text(), nullable=False),
        sa.Column("encrypted_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificate_authorities")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_certificate_authorities_fingerprint")),
        sa.UniqueConstraint("slot", name=op.f("uq_certificate_authorities_slot")),
    )
    op.create_table(
        "issued_certificates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("ca_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("via", sa.String(length=8), nullable=False),
        sa.Column("previous_serial", sa.String(length=40), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_issued_certificates_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issued_certificates")),
        sa.UniqueConstraint("serial", name=op.f("uq_issued_certificates_serial")),
    )
    with op.batch_alter_table("issued_certificates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issued_certificates_org_id"), ["org_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_issued_certificates_subject_id"), ["subject_id"], unique=False
        )

    op.create_table(
        "enrollment_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("node_id", sa.Uuid(), nullable=True),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=24), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_by_ip", sa.String(length=64), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(kind = 'ingress' AND node_id IS NOT NULL AND agent_id IS NULL) OR "
            "(kind = 'agent' AND agent_id IS NOT NULL AND node_id IS NULL)",
            name=op.f("ck_enrollment_tokens_subject"),
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["edge_agents.id"],
            name=op.f("fk_enrollment_tokens_agent_id_edge_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_enrollment_tokens_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["ingress_nodes.id"],
            name=op.f("fk_enrollment_tokens_node_id_ingress_nodes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_enrollment_tokens_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollment_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_enrollment_tokens_token_hash")),
    )
    with op.batch_alter_table("enrollment_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_enrollment_tokens_agent_id"), ["agent_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_enrollment_tokens_node_id"), ["node_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_enrollment_tokens_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("enrollment_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrollment_tokens_org_id"))
        batch_op.drop_index(batch_op.f("ix_enrollment_tokens_node_id"))
        batch_op.drop_index(batch_op.f("ix_enrollment_tokens_agent_id"))

    op.drop_table("enrollment_tokens")
    with op.batch_alter_table("issued_certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issued_certificates_subject_id"))
        batch_op.drop_index(batch_op.f("ix_issued_certificates_org_id"))

    op.drop_table("issued_certificates")
    op.drop_table("certificate_authorities")
