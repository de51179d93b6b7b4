"""Public (HTTPS) certificates of organisations, their keys encrypted at rest.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "public_certificates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("chain", sa.Text(), nullable=False),
        sa.Column("encrypted_key", sa.Text(), nullable=False),
        sa.Column("key_type", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=1000), nullable=False),
        sa.Column("issuer", sa.String(length=1000), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organisations.id"],
            name=op.f("fk_public_certificates_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_public_certificates")),
        sa.UniqueConstraint(
            "org_id", "fingerprint", name=op.f("uq_public_certificates_org_id_fingerprint")
        ),
    )
    with op.batch_alter_table("public_certificates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_public_certificates_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("public_certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_public_certificates_org_id"))
    op.drop_table("public_certificates")
