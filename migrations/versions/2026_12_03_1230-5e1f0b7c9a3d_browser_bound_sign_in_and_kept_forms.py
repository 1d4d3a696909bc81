"""browser-bound sign-in state, and forms kept across an expired session

Revision ID: 5e1f0b7c9a3d
Revises: 5e7a2c9d4b13
Create Date: 2026-12-03 12:30:00

oidc_login_state.browser_hash binds a sign-in in flight to the browser that started it (RFC 9700
section 4.7). Sign-ins in flight when this runs (ten minutes at most) are dropped: they carry no
binding, so their callbacks could not be accepted anyway.

kept_form holds a form posted after its session ended, encrypted, for the same person in the
same browser, until they sign in again (an hour at most).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db.types

revision: str = "5e1f0b7c9a3d"
down_revision: str | None = "5e7a2c9d4b13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(sa.text("DELETE FROM oidc_login_state"))
    with op.batch_alter_table("oidc_login_state") as batch:
        batch.add_column(sa.Column("browser_hash", sa.String(64), nullable=False,
                                   server_default=""))
    with op.batch_alter_table("oidc_login_state") as batch:
        batch.alter_column("browser_hash", server_default=None)
    op.create_table(
        "kept_form",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("staff_user_id", sa.Integer,
                  sa.ForeignKey("staff_user.id", ondelete="CASCADE",
                                name=op.f("fk_kept_form_staff_user_id_staff_user")),
                  nullable=False),
        sa.Column("action", sa.String(500), nullable=False),
        sa.Column("page", sa.String(500), nullable=False),
        sa.Column("fields_enc", sa.LargeBinary, nullable=False),
        sa.Column("created_at", portal.db.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", portal.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kept_form")),
    )
    op.create_index("ix_kept_form_expiry", "kept_form", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_kept_form_expiry", table_name="kept_form")
    op.drop_table("kept_form")
    with op.batch_alter_table("oidc_login_state") as batch:
        batch.drop_column("browser_hash")
