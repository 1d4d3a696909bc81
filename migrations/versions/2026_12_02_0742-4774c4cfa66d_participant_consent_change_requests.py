"""participant consent change requests

Revision ID: 4774c4cfa66d
Revises: d528c0965392
Create Date: 2026-12-02 07:42:27.273748
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db.types

revision: str = "4774c4cfa66d"
down_revision: str | None = "d528c0965392"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consent_request",
        sa.Column("consent_id", sa.Uuid(), nullable=False),
        sa.Column("wish", sa.String(length=8), nullable=False),
        sa.Column("note_enc", sa.LargeBinary(), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("created_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("wish IN ('more', 'less')", name=op.f("ck_consent_request_wish")),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["consent.id"],
            name=op.f("fk_consent_request_consent_id_consent"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("consent_id", name=op.f("pk_consent_request")),
    )
    with op.batch_alter_table("consent_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_request_key_version"), ["key_version"], unique=False
        )



def downgrade() -> None:
    with op.batch_alter_table("consent_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_request_key_version"))

    op.drop_table("consent_request")
