"""oidc login state

Revision ID: 3c041bcefa23
Revises: 3a75337026a5
Create Date: 2026-11-28 02:55:17.291158
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db.types

revision: str = "3c041bcefa23"
down_revision: str | None = "3a75337026a5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oidc_login_state",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("created_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_oidc_login_state")),
    )
    with op.batch_alter_table("oidc_login_state", schema=None) as batch_op:
        batch_op.create_index("ix_oidc_login_state_expiry", ["expires_at"], unique=False)



def downgrade() -> None:
    with op.batch_alter_table("oidc_login_state", schema=None) as batch_op:
        batch_op.drop_index("ix_oidc_login_state_expiry")

    op.drop_table("oidc_login_state")
