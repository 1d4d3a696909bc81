"""initial schema

Revision ID: 3a75337026a5
Revises:
Create Date: 2026-11-28 02:28:03.471041
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import portal.db.types

revision: str = "3a75337026a5"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_checkpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoint")),
        sa.UniqueConstraint("chain", "seq", name="chain_seq"),
    )
    op.create_table(
        "audit_event",
        sa.Column("chain", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("occurred_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=300), nullable=False),
        sa.Column("actor_organization", sa.String(length=64), nullable=True),
        sa.Column("actor_roles", sa.JSON(), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("participant_id", sa.Uuid(), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("record_ids", sa.JSON(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=True),
        sa.Column("decision", sa.String(length=8), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("consent_ids", sa.JSON(), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "decision IS NULL OR decision IN ('permit', 'deny')",
            name=op.f("ck_audit_event_decision"),
        ),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_audit_event_seq_positive")),
        sa.PrimaryKeyConstraint("chain", "seq", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_action_time", ["action", "occurred_at"], unique=False)
        batch_op.create_index("ix_audit_actor_time", ["actor_user_id", "occurred_at"], unique=False)
        batch_op.create_index(
            "ix_audit_participant_time", ["participant_id", "occurred_at"], unique=False
        )
        batch_op.create_index("ix_audit_time", ["occurred_at"], unique=False)

    op.create_table(
        "organization",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sector", sa.String(length=32), nullable=False),
        sa.Column("part2_program", sa.Boolean(), nullable=False),
        sa.Column("hipaa_covered", sa.Boolean(), nullable=False),
        sa.Column("created_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "sector IN ('case_management', 'sud_treatment', 'mental_health', 'health', 'housing', 'police', 'prosecution', 'court', 'probation', 'defense')",
            name=op.f("ck_organization_sector"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organization")),
        sa.UniqueConstraint("slug", name=op.f("uq_organization_slug")),
    )
    op.create_table(
        "participant",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("public_id", sa.String(length=16), nullable=False),
        sa.Column("given_name", sa.String(length=200), nullable=False),
        sa.Column("family_name", sa.String(length=200), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("enrolled_on", sa.Date(), nullable=True),
        sa.Column("referral_pathway", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("preferred_language", sa.String(length=8), nullable=False),
        sa.Column("created_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "preferred_language IN ('en', 'es')", name=op.f("ck_participant_preferred_language")
        ),
        sa.CheckConstraint(
            "referral_pathway IN ('arrest_diversion', 'social_contact')",
            name=op.f("ck_participant_referral_pathway"),
        ),
        sa.CheckConstraint(
            "status IN ('referred', 'enrolled', 'exited')", name=op.f("ck_participant_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_participant")),
        sa.UniqueConstraint("public_id", name=op.f("uq_participant_public_id")),
    )
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_participant_date_of_birth"), ["date_of_birth"], unique=False
        )
        batch_op.create_index("ix_participant_name", ["family_name", "given_name"], unique=False)

    op.create_table(
        "goal",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("participant_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=32), nullable=False),
        sa.Column("summary", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_note", sa.String(length=300), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("created_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "domain IN ('shelter', 'housing', 'food', 'utilities', 'treatment', 'mental_health', 'health', 'benefits', 'income', 'legal')",
            name=op.f("ck_goal_domain"),
        ),
        sa.CheckConstraint(
            "status IN ('not_started', 'in_progress', 'on_hold', 'achieved', 'closed')",
            name=op.f("ck_goal_status"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_goal_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participant.id"],
            name=op.f("fk_goal_participant_id_participant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_goal")),
    )
    with op.batch_alter_table("goal", schema=None) as batch_op:
        batch_op.create_index("ix_goal_participant", ["participant_id", "urgent"], unique=False)
        batch_op.create_index("ix_goal_urgent_open", ["urgent", "status"], unique=False)

    op.create_table(
        "participant_credential",
        sa.Column("participant_id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=True),
        sa.Column("passphrase_hash", sa.String(length=200), nullable=True),
        sa.Column("totp_secret", sa.String(length=200), nullable=True),
        sa.Column("enrolment_code_hash", sa.String(length=200), nullable=True),
        sa.Column(
            "enrolment_code_expires_at", portal.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", portal.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participant.id"],
            name=op.f("fk_participant_credential_participant_id_participant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("participant_id", name=op.f("pk_participant_credential")),
        sa.UniqueConstraint("username", name=op.f("uq_participant_credential_username")),
    )
    op.create_table(
        "staff_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=300), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("email", sa.String(length=300), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_login_at", portal.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('active', 'suspended')", name=op.f("ck_staff_user_status")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_staff_user_organization_id_organization"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_user")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_user_email")),
        sa.UniqueConstraint("issuer", "subject", name="issuer_subject"),
    )
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_staff_user_organization_id"), ["organization_id"], unique=False
        )

    op.create_table(
        "break_glass_grant",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("staff_user_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("emergency_nature", sa.Text(), nullable=False),
        sa.Column("facility", sa.String(length=200), nullable=False),
        sa.Column("started_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("review_status", sa.String(length=16), nullable=False),
        sa.Column("reviewed_by_user_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", portal.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("review_notes", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "review_status IN ('pending', 'justified', 'not_justified')",
            name=op.f("ck_break_glass_grant_review_status"),
        ),
        sa.CheckConstraint(
            "expires_at > started_at", name=op.f("ck_break_glass_grant_expires_after_start")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_break_glass_grant_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participant.id"],
            name=op.f("fk_break_glass_grant_participant_id_participant"),
        ),
        sa.ForeignKeyConstraint(
            ["reviewed_by_user_id"],
            ["staff_user.id"],
            name=op.f("fk_break_glass_grant_reviewed_by_user_id_staff_user"),
        ),
        sa.ForeignKeyConstraint(
            ["staff_user_id"],
            ["staff_user.id"],
            name=op.f("fk_break_glass_grant_staff_user_id_staff_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_break_glass_grant")),
    )
    with op.batch_alter_table("break_glass_grant", schema=None) as batch_op:
        batch_op.create_index(
            "ix_break_glass_review", ["review_status", "started_at"], unique=False
        )
        batch_op.create_index(
            "ix_break_glass_user_participant",
            ["staff_user_id", "participant_id", "expires_at"],
            unique=False,
        )

    op.create_table(
        "care_team_member",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("staff_user_id", sa.Integer(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "end_date IS NULL OR end_date >= start_date",
            name=op.f("ck_care_team_member_dates_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_care_team_member_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participant.id"],
            name=op.f("fk_care_team_member_participant_id_participant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_user_id"],
            ["staff_user.id"],
            name=op.f("fk_care_team_member_staff_user_id_staff_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_team_member")),
    )
    with op.batch_alter_table("care_team_member", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_care_team_member_participant_id"), ["participant_id"], unique=False
        )
        batch_op.create_index(
            "ix_care_team_org_current",
            ["organization_id", "end_date", "participant_id"],
            unique=False,
        )

    op.create_table(
        "consent",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("participant_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("supersedes_id", sa.Uuid(), nullable=True),
        sa.Column("information_description", sa.Text(), nullable=False),
        sa.Column("revocation_statement", sa.Text(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("expiry_event", sa.String(length=300), nullable=True),
        sa.Column("revocable_after", sa.Date(), nullable=True),
        sa.Column("revocable_after_event", sa.String(length=300), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("text_version", sa.String(length=32), nullable=False),
        sa.Column("signature_method", sa.String(length=16), nullable=True),
        sa.Column("signer_name", sa.String(length=200), nullable=True),
        sa.Column("signer_relation", sa.String(length=32), nullable=True),
        sa.Column("witness_user_id", sa.Integer(), nullable=True),
        sa.Column("signed_at", portal.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", portal.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.Column("revocation_method", sa.String(length=100), nullable=True),
        sa.Column("document_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('roi', 'part2', 'part2_tpo', 'part2_criminal_justice')",
            name=op.f("ck_consent_kind"),
        ),
        sa.CheckConstraint("language IN ('en', 'es')", name=op.f("ck_consent_language")),
        sa.CheckConstraint(
            "signature_method IS NULL OR signature_method IN ('typed', 'drawn', 'wet_ink_scan')",
            name=op.f("ck_consent_signature_method"),
        ),
        sa.CheckConstraint(
            "signer_relation IS NULL OR signer_relation IN ('self', 'guardian', 'authorized_representative')",
            name=op.f("ck_consent_signer_relation"),
        ),
        sa.CheckConstraint(
            "status <> 'revoked' OR revoked_at IS NOT NULL",
            name=op.f("ck_consent_revoked_has_time"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'active', 'revoked', 'expired', 'superseded', 'entered_in_error')",
            name=op.f("ck_consent_status"),
        ),
        sa.CheckConstraint(
            "status NOT IN ('active', 'revoked', 'expired', 'superseded') OR (signed_at IS NOT NULL AND signer_name IS NOT NULL AND (expires_on IS NOT NULL OR expiry_event IS NOT NULL))",
            name=op.f("ck_consent_signed_when_in_force"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_consent_version_positive")),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"],
            ["staff_user.id"],
            name=op.f("fk_consent_created_by_user_id_staff_user"),
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participant.id"],
            name=op.f("fk_consent_participant_id_participant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["supersedes_id"], ["consent.id"], name=op.f("fk_consent_supersedes_id_consent")
        ),
        sa.ForeignKeyConstraint(
            ["witness_user_id"],
            ["staff_user.id"],
            name=op.f("fk_consent_witness_user_id_staff_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent")),
    )
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_participant_status", ["participant_id", "status"], unique=False
        )

    op.create_table(
        "goal_update",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("goal_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=False),
        sa.Column("author_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('not_started', 'in_progress', 'on_hold', 'achieved', 'closed')",
            name=op.f("ck_goal_update_status"),
        ),
        sa.ForeignKeyConstraint(
            ["author_user_id"],
            ["staff_user.id"],
            name=op.f("fk_goal_update_author_user_id_staff_user"),
        ),
        sa.ForeignKeyConstraint(
            ["goal_id"], ["goal.id"], name=op.f("fk_goal_update_goal_id_goal"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_goal_update")),
    )
    with op.batch_alter_table("goal_update", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_goal_update_goal_id"), ["goal_id"], unique=False)

    op.create_table(
        "record",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("participant_id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("author_user_id", sa.Integer(), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("created_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "category IN ('contact', 'case_plan', 'progress', 'housing', 'benefits', 'health', 'mental_health', 'sud_treatment', 'justice')",
            name=op.f("ck_record_category"),
        ),
        sa.ForeignKeyConstraint(
            ["author_user_id"], ["staff_user.id"], name=op.f("fk_record_author_user_id_staff_user")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organization.id"],
            name=op.f("fk_record_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participant.id"],
            name=op.f("fk_record_participant_id_participant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record")),
    )
    with op.batch_alter_table("record", schema=None) as batch_op:
        batch_op.create_index(
            "ix_record_participant_category",
            ["participant_id", "category", "effective_date"],
            unique=False,
        )

    op.create_table(
        "referral",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referring_user_id", sa.Integer(), nullable=False),
        sa.Column("referring_organization_id", sa.Integer(), nullable=False),
        sa.Column("pathway", sa.String(length=32), nullable=False),
        sa.Column("given_name", sa.String(length=200), nullable=False),
        sa.Column("family_name", sa.String(length=200), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("where_to_find", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by_user_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", portal.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decline_reason", sa.String(length=500), nullable=True),
        sa.Column("participant_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "pathway IN ('arrest_diversion', 'social_contact')", name=op.f("ck_referral_pathway")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'accepted', 'declined')", name=op.f("ck_referral_status")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_user_id"],
            ["staff_user.id"],
            name=op.f("fk_referral_decided_by_user_id_staff_user"),
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participant.id"],
            name=op.f("fk_referral_participant_id_participant"),
        ),
        sa.ForeignKeyConstraint(
            ["referring_organization_id"],
            ["organization.id"],
            name=op.f("fk_referral_referring_organization_id_organization"),
        ),
        sa.ForeignKeyConstraint(
            ["referring_user_id"],
            ["staff_user.id"],
            name=op.f("fk_referral_referring_user_id_staff_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral")),
    )
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.create_index("ix_referral_status", ["status", "created_at"], unique=False)

    op.create_table(
        "staff_role",
        sa.Column("staff_user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "role IN ('case_manager', 'counselor', 'clinician', 'housing_navigator', 'police_officer', 'prosecutor', 'probation_officer', 'court_liaison', 'defender', 'compliance_officer', 'org_admin')",
            name=op.f("ck_staff_role_role"),
        ),
        sa.ForeignKeyConstraint(
            ["staff_user_id"],
            ["staff_user.id"],
            name=op.f("fk_staff_role_staff_user_id_staff_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("staff_user_id", "role", name=op.f("pk_staff_role")),
    )
    op.create_table(
        "web_session",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("staff_user_id", sa.Integer(), nullable=True),
        sa.Column("participant_id", sa.Uuid(), nullable=True),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("id_token_hint", sa.Text(), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("created_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(staff_user_id IS NULL) <> (participant_id IS NULL)",
            name=op.f("ck_web_session_one_subject"),
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participant.id"],
            name=op.f("fk_web_session_participant_id_participant"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_user_id"],
            ["staff_user.id"],
            name=op.f("fk_web_session_staff_user_id_staff_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_session")),
    )
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.create_index("ix_web_session_expiry", ["expires_at"], unique=False)
        batch_op.create_index("ix_web_session_staff", ["staff_user_id"], unique=False)

    op.create_table(
        "consent_document",
        sa.Column("consent_id", sa.Uuid(), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", portal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["consent.id"],
            name=op.f("fk_consent_document_consent_id_consent"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("consent_id", name=op.f("pk_consent_document")),
    )
    op.create_table(
        "consent_provision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("consent_id", sa.Uuid(), nullable=False),
        sa.Column("effect", sa.String(length=8), nullable=False),
        sa.Column("disclosers", sa.JSON(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "effect IN ('permit', 'deny')", name=op.f("ck_consent_provision_effect")
        ),
        sa.CheckConstraint(
            "period_end IS NULL OR period_start IS NULL OR period_end >= period_start",
            name=op.f("ck_consent_provision_period_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["consent.id"],
            name=op.f("fk_consent_provision_consent_id_consent"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_provision")),
    )
    with op.batch_alter_table("consent_provision", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_provision_consent_id"), ["consent_id"], unique=False
        )



def downgrade() -> None:
    with op.batch_alter_table("consent_provision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_provision_consent_id"))

    op.drop_table("consent_provision")
    op.drop_table("consent_document")
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.drop_index("ix_web_session_staff")
        batch_op.drop_index("ix_web_session_expiry")

    op.drop_table("web_session")
    op.drop_table("staff_role")
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_status")

    op.drop_table("referral")
    with op.batch_alter_table("record", schema=None) as batch_op:
        batch_op.drop_index("ix_record_participant_category")

    op.drop_table("record")
    with op.batch_alter_table("goal_update", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_goal_update_goal_id"))

    op.drop_table("goal_update")
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_participant_status")

    op.drop_table("consent")
    with op.batch_alter_table("care_team_member", schema=None) as batch_op:
        batch_op.drop_index("ix_care_team_org_current")
        batch_op.drop_index(batch_op.f("ix_care_team_member_participant_id"))

    op.drop_table("care_team_member")
    with op.batch_alter_table("break_glass_grant", schema=None) as batch_op:
        batch_op.drop_index("ix_break_glass_user_participant")
        batch_op.drop_index("ix_break_glass_review")

    op.drop_table("break_glass_grant")
    with op.batch_alter_table("staff_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_user_organization_id"))

    op.drop_table("staff_user")
    op.drop_table("participant_credential")
    with op.batch_alter_table("goal", schema=None) as batch_op:
        batch_op.drop_index("ix_goal_urgent_open")
        batch_op.drop_index("ix_goal_participant")

    op.drop_table("goal")
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.drop_index("ix_participant_name")
        batch_op.drop_index(batch_op.f("ix_participant_date_of_birth"))

    op.drop_table("participant")
    op.drop_table("organization")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_time")
        batch_op.drop_index("ix_audit_participant_time")
        batch_op.drop_index("ix_audit_actor_time")
        batch_op.drop_index("ix_audit_action_time")

    op.drop_table("audit_event")
    op.drop_table("audit_checkpoint")
