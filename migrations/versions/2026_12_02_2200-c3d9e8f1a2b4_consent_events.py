"""consent events: participant_event (exit from LEAD, final disposition) and event codes

Revision ID: c3d9e8f1a2b4
Revises: 9b1e4c7d2a61
Create Date: 2026-12-02 22:00:00

A consent's expiry event and a 2.35 consent's revocability event become codes of
portal.domain.consent.ConsentEvent, evaluated by decide() against the participant's recorded
events. Known wordings are converted; any other free text is left as it is, which the portal
treats as no event (fail closed: such a consent is deficient until a new version names one).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db.types

revision: str = "c3d9e8f1a2b4"
down_revision: str | None = "9b1e4c7d2a61"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (code, LIKE patterns of the wordings used before, wording restored by a downgrade)
EVENTS = (
    ("lead_exit", ("%participation in lead%", "%lead participation%", "%exit%lead%"),
     "End of participation in LEAD"),
    ("final_disposition", ("%final disposition%",), "Final disposition of the case"),
    ("treatment_episode_end", ("%treatment episode%",), "End of the treatment episode"),
)

CONSENT = sa.table("consent", sa.column("expiry_event", sa.String),
                   sa.column("revocable_after_event", sa.String))


def upgrade() -> None:
    op.create_table(
        "participant_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("recorded_by_user_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "event IN ('lead_exit', 'final_disposition', 'treatment_episode_end')",
            name=op.f("ck_participant_event_event")),
        sa.ForeignKeyConstraint(["participant_id"], ["participant.id"],
                                name=op.f("fk_participant_event_participant_id_participant"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["recorded_by_user_id"], ["staff_user.id"],
                                name=op.f("fk_participant_event_recorded_by_user_id_staff_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_participant_event")),
        sa.UniqueConstraint("participant_id", "event",
                            name=op.f("uq_participant_event_participant_id")),
    )
    with op.batch_alter_table("participant_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_participant_event_participant_id"),
                              ["participant_id"], unique=False)
    for column in ("expiry_event", "revocable_after_event"):
        col = CONSENT.c[column]
        for code, patterns, _ in EVENTS:
            for pattern in patterns:
                op.execute(sa.update(CONSENT).where(sa.func.lower(col).like(pattern))
                           .values({column: code}))


def downgrade() -> None:
    for column in ("expiry_event", "revocable_after_event"):
        col = CONSENT.c[column]
        for code, _, words in EVENTS:
            op.execute(sa.update(CONSENT).where(col == code).values({column: words}))
    with op.batch_alter_table("participant_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_participant_event_participant_id"))
    op.drop_table("participant_event")
