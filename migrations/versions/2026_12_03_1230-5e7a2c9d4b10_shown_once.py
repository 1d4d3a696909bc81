"""shown once: a value a page shows once after a redirect (a participant's new sign-in code)

Revision ID: 5e7a2c9d4b10
Revises: c3d9e8f1a2b4
Create Date: 2026-12-03 12:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db.types

revision: str = "5e7a2c9d4b10"
down_revision: str | None = "c3d9e8f1a2b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shown_once",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("web_session_id", sa.String(length=64), nullable=False),
        sa.Column("payload_enc", sa.LargeBinary(), nullable=False),
        sa.Column("key_version", sa.Integer(), nullable=False),
        sa.Column("expires_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["web_session_id"], ["web_session.id"],
                                name=op.f("fk_shown_once_web_session_id_web_session"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shown_once")),
    )
    with op.batch_alter_table("shown_once", schema=None) as batch_op:
        batch_op.create_index("ix_shown_once_expiry", ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_shown_once_web_session_id"), ["web_session_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("shown_once", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shown_once_web_session_id"))
        batch_op.drop_index("ix_shown_once_expiry")
    op.drop_table("shown_once")
