"""audit verification results (compliance console)

Revision ID: d528c0965392
Revises: 1113c9a6da69
Create Date: 2026-11-28 03:53:46.059742
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db.types

revision: str = "d528c0965392"
down_revision: str | None = "1113c9a6da69"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_verification",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("started_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", portal.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_by_user_id", sa.Integer(), nullable=True),
        sa.Column("started_by", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=True),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("first_bad_seq", sa.Integer(), nullable=True),
        sa.Column("damage", sa.String(length=32), nullable=True),
        sa.Column("chain", sa.String(length=32), nullable=True),
        sa.Column("checkpoints", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'done', 'failed')", name=op.f("ck_audit_verification_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_verification")),
    )
    with op.batch_alter_table("audit_verification", schema=None) as batch_op:
        batch_op.create_index("ix_audit_verification_started", ["started_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_verification", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_verification_started")

    op.drop_table("audit_verification")
