"""consent.tpo_statement: the 42 CFR 2.31(a)(10) statements a TPO consent shows

Revision ID: 9b1e4c7d2a61
Revises: 4774c4cfa66d
Create Date: 2026-12-02 21:50:00

Existing TPO consents keep an empty statement: they were signed without it, so they are
substantially deficient (42 CFR 2.31(c)) and decide() does not honour them; they are not
back-filled with words their signer never saw.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9b1e4c7d2a61"
down_revision: str | None = "4774c4cfa66d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tpo_statement", sa.Text(), nullable=False,
                                      server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.drop_column("tpo_statement")
