"""web_session.ended_at / ended_reason: a timed-out session is kept, ended, for an hour

Revision ID: 8d4b2f6a1c07
Revises: 7c2e5a9d1f40
Create Date: 2026-12-03 14:00:00

While its cookie may still arrive, every request is told how the session ended, so that a
form posted from a second tab after another tab found the timeout is kept for re-sign-in.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from portal.db.types import UTCDateTime

revision: str = "8d4b2f6a1c07"
down_revision: str | None = "7c2e5a9d1f40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ended_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("ended_reason", sa.String(length=32), nullable=True))


def downgrade() -> None:
    # Ended sessions sign nobody in; without the columns they would look current again.
    op.execute("DELETE FROM web_session WHERE ended_at IS NOT NULL")
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.drop_column("ended_reason")
        batch_op.drop_column("ended_at")
