"""sign-in throttle by address and account; a pending authenticator key kept by the server

Revision ID: 5e7a2c9d4b13
Revises: 5e7a2c9d4b10
Create Date: 2026-12-03 12:30:00

The authenticator-app key is made by the portal and kept (encrypted, like the active one)
until the participant confirms it with a code. Failed sign-ins are counted per client address
and per account in sign_in_throttle (shared by every process), which replaces the credential's
own failure count and lock.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db.types

revision: str = "5e7a2c9d4b13"
down_revision: str | None = "5e7a2c9d4b10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("participant_credential", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_pending_enc", sa.LargeBinary(), nullable=True))
        batch_op.drop_column("failed_attempts")
        batch_op.drop_column("locked_until")
    op.create_table(
        "sign_in_throttle",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", portal.db.types.UTCDateTime(timezone=True),
                  nullable=False),
        sa.Column("blocked_until", portal.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_sign_in_throttle")),
    )
    with op.batch_alter_table("sign_in_throttle", schema=None) as batch_op:
        batch_op.create_index("ix_sign_in_throttle_last_failure", ["last_failure_at"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sign_in_throttle", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_throttle_last_failure")
    op.drop_table("sign_in_throttle")
    with op.batch_alter_table("participant_credential", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failed_attempts", sa.Integer(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("locked_until",
                                      portal.db.types.UTCDateTime(timezone=True),
                                      nullable=True))
        batch_op.drop_column("totp_pending_enc")
