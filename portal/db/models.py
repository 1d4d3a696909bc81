"""SQLAlchemy 2 models for the whole domain (DESIGN section 3).

Closed vocabularies are stored as strings guarded by CHECK constraints generated from the domain
enums, so the database refuses a value the domain does not know. Identifiers of people-facing
entities are UUIDs so that ids in URLs cannot be enumerated and so that encryption can bind a
value to its row before the row is inserted.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    and_,
    or_,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from portal.db.types import UTCDateTime, utcnow
from portal.domain.consent import (
    ConsentEvent,
    ConsentKind,
    ConsentStatus,
    ProvisionEffect,
    SignatureMethod,
    SignerRelation,
)
from portal.domain.decision import CareTeamLink
from portal.domain.vocabulary import (
    BreakGlassReview,
    DataCategory,
    GoalDomain,
    GoalStatus,
    Language,
    ParticipantStatus,
    ReferralPathway,
    ReferralStatus,
    Role,
    Sector,
    StaffStatus,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def one_of(column: str, enum: type[StrEnum], name: str | None = None) -> CheckConstraint:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return CheckConstraint(f"{column} IN ({values})", name=name or column)


def one_of_nullable(column: str, enum: type[StrEnum]) -> CheckConstraint:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return CheckConstraint(f"{column} IS NULL OR {column} IN ({values})", name=column)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class Organization(Base):
    __tablename__ = "organization"
    __table_args__ = (one_of("sector", Sector),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    sector: Mapped[str] = mapped_column(String(32))
    # 42 CFR 2.11: a federally assisted program holding itself out as providing SUD treatment.
    part2_program: Mapped[bool] = mapped_column(Boolean, default=False)
    hipaa_covered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffUser(Base):
    __tablename__ = "staff_user"
    __table_args__ = (
        UniqueConstraint("issuer", "subject", name="issuer_subject"),
        one_of("status", StaffStatus),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issuer: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(300))
    email: Mapped[str] = mapped_column(String(300), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=StaffStatus.ACTIVE.value)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization] = relationship(lazy="joined")
    roles: Mapped[list[StaffRole]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="StaffRole.role"
    )

    @property
    def role_names(self) -> list[str]:
        return [r.role for r in self.roles]


class StaffRole(Base):
    """A role held by a staff user, as mapped from the identity provider's groups."""

    __tablename__ = "staff_role"
    __table_args__ = (one_of("role", Role),)

    staff_user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(32), primary_key=True)


class Participant(Base):
    __tablename__ = "participant"
    __table_args__ = (
        one_of("referral_pathway", ReferralPathway),
        one_of("status", ParticipantStatus),
        one_of("preferred_language", Language),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # Pseudonymous id shown to staff and used in URLs (never a name).
    public_id: Mapped[str] = mapped_column(String(16), unique=True)
    # Identifiers are encrypted at rest (portal.crypto); search goes through blind indexes of
    # the full name, the family name and the date of birth (exact match only).
    given_name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    family_name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    date_of_birth_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(Integer, index=True)
    name_bidx: Mapped[str] = mapped_column(String(64), index=True)
    family_bidx: Mapped[str] = mapped_column(String(64), index=True)
    dob_bidx: Mapped[str | None] = mapped_column(String(64), index=True)
    enrolled_on: Mapped[date | None] = mapped_column(Date)
    referral_pathway: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=ParticipantStatus.ENROLLED.value)
    preferred_language: Mapped[str] = mapped_column(String(8), default=Language.EN.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ParticipantEvent(Base):
    """Something that happened to a participant that ends consents or unlocks revocation
    (their exit from LEAD, the final disposition of their case), recorded once, audited."""

    __tablename__ = "participant_event"
    __table_args__ = (
        one_of("event", ConsentEvent),
        UniqueConstraint("participant_id", "event"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    occurred_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(300), default="")
    recorded_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CareTeamMember(Base):
    """An organization (and optionally a named staff member) working with a participant."""

    __tablename__ = "care_team_member"
    __table_args__ = (
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="dates_ordered"),
        # Caseload by organization: the organization's current links.
        Index("ix_care_team_org_current", "organization_id", "end_date", "participant_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    participant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), index=True
    )
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)

    organization: Mapped[Organization] = relationship(lazy="joined")

    def current(self, day: date) -> bool:
        """On the care team on this day: the domain's one predicate (start inclusive, end
        exclusive); ``current_on`` is the same predicate in a query."""
        return CareTeamLink("", self.start_date, self.end_date).current(day)

    @classmethod
    def current_on(cls, day: date) -> ColumnElement[bool]:
        return and_(cls.start_date <= day, or_(cls.end_date.is_(None), cls.end_date > day))


class Record(Base):
    """One item of shared information, in exactly one data category."""

    __tablename__ = "record"
    __table_args__ = (
        one_of("category", DataCategory),
        # Records by participant and category, newest first.
        Index("ix_record_participant_category", "participant_id", "category", "effective_date"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    participant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE")
    )
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    category: Mapped[str] = mapped_column(String(32))
    title_enc: Mapped[bytes] = mapped_column(LargeBinary)
    body_enc: Mapped[bytes] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(Integer, index=True)
    effective_date: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization] = relationship(lazy="joined")


class Goal(Base):
    """A case-plan goal. Its status is `progress`; its detail belongs to its own category."""

    __tablename__ = "goal"
    __table_args__ = (
        one_of("domain", GoalDomain),
        one_of("status", GoalStatus),
        Index("ix_goal_participant", "participant_id", "urgent"),
        Index("ix_goal_urgent_open", "urgent", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    participant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE")
    )
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    domain: Mapped[str] = mapped_column(String(32))
    # What a justice partner may see under the multi-party release ("working toward housing").
    # Sealed like the detail (what a partner may see is decided, not stored in the clear).
    summary_enc: Mapped[bytes] = mapped_column(LargeBinary)
    detail_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(16), default=GoalStatus.NOT_STARTED.value)
    # The latest update's note, sealed (None: no note).
    status_note_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Immediate needs (a bed tonight, food, utilities) come first.
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization] = relationship(lazy="joined")
    updates: Mapped[list[GoalUpdate]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="GoalUpdate.created_at"
    )


class GoalUpdate(Base):
    __tablename__ = "goal_update"
    __table_args__ = (one_of("status", GoalStatus),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    goal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("goal.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    # Sealed once the row has its id (the ciphertext is bound to it): see Vault.seal.
    note_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(Integer, index=True)
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Consent(Base):
    """A consent directive. Active consents are immutable; a change is a new version."""

    __tablename__ = "consent"
    __table_args__ = (
        one_of("kind", ConsentKind),
        one_of("status", ConsentStatus),
        one_of("language", Language),
        one_of_nullable("signature_method", SignatureMethod),
        one_of_nullable("signer_relation", SignerRelation),
        CheckConstraint("version >= 1", name="version_positive"),
        # 42 CFR 2.31(a): an active consent is signed and dated, and expires (date or event).
        CheckConstraint(
            "status NOT IN ('active', 'revoked', 'expired', 'superseded') OR "
            "(signed_at IS NOT NULL AND signer_name_enc IS NOT NULL "
            "AND (expires_on IS NOT NULL OR expiry_event IS NOT NULL))",
            name="signed_when_in_force",
        ),
        CheckConstraint(
            "status <> 'revoked' OR revoked_at IS NOT NULL", name="revoked_has_time"
        ),
        Index("ix_consent_participant_status", "participant_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    participant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20), default=ConsentStatus.DRAFT.value)
    version: Mapped[int] = mapped_column(Integer, default=1)
    supersedes_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("consent.id"))
    # 42 CFR 2.31(a)(3): how much and what kind of information, SUD stated explicitly.
    information_description: Mapped[str] = mapped_column(Text, default="")
    # 42 CFR 2.31(a)(6): the right to revoke, how, and its limits, as shown to the signer.
    revocation_statement: Mapped[str] = mapped_column(Text, default="")
    # 42 CFR 2.31(a)(10), for a TPO consent (2.33): redisclosure may end Part 2 protection, and
    # what refusing to sign means; as shown to the signer.
    tpo_statement: Mapped[str] = mapped_column(Text, default="", server_default="")
    expires_on: Mapped[date | None] = mapped_column(Date)
    expiry_event: Mapped[str | None] = mapped_column(String(300))
    # 42 CFR 2.35(c)(2): criminal-justice consents may be irrevocable until a time or event.
    revocable_after: Mapped[date | None] = mapped_column(Date)
    revocable_after_event: Mapped[str | None] = mapped_column(String(300))
    language: Mapped[str] = mapped_column(String(8), default=Language.EN.value)
    text_version: Mapped[str] = mapped_column(String(32), default="")
    signature_method: Mapped[str | None] = mapped_column(String(16))
    signer_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_version: Mapped[int | None] = mapped_column(Integer, index=True)
    signer_relation: Mapped[str | None] = mapped_column(String(32))
    witness_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(200))
    revocation_method: Mapped[str | None] = mapped_column(String(100))
    document_sha256: Mapped[str | None] = mapped_column(String(64))
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    provisions: Mapped[list[ConsentProvision]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="ConsentProvision.id"
    )


class ConsentProvision(Base):
    """A permit or deny rule over disclosers, recipients, categories, purposes and a period.

    Disclosers and recipients are lists of ``org:<slug>`` or ``sector:<sector>`` references.
    """

    __tablename__ = "consent_provision"
    __table_args__ = (
        one_of("effect", ProvisionEffect),
        CheckConstraint(
            "period_end IS NULL OR period_start IS NULL OR period_end >= period_start",
            name="period_ordered",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("consent.id", ondelete="CASCADE"), index=True
    )
    effect: Mapped[str] = mapped_column(String(8))
    disclosers: Mapped[list[str]] = mapped_column(JSON)
    recipients: Mapped[list[str]] = mapped_column(JSON)
    categories: Mapped[list[str]] = mapped_column(JSON)
    purposes: Mapped[list[str]] = mapped_column(JSON)
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)


class ConsentDocument(Base):
    """The rendered, printable copy (PDF) or uploaded wet-ink scan kept with a consent."""

    __tablename__ = "consent_document"

    consent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("consent.id", ondelete="CASCADE"), primary_key=True
    )
    media_type: Mapped[str] = mapped_column(String(64))
    content_enc: Mapped[bytes] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(Integer, index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def id(self) -> uuid.UUID:
        """The row id that encryption binds values to."""
        return self.consent_id


class ConsentRequest(Base):
    """A participant's own request to share more or less, in their words (sealed), attached to
    the draft consent it opened for their case manager."""

    __tablename__ = "consent_request"
    __table_args__ = (CheckConstraint("wish IN ('more', 'less')", name="wish"),)

    consent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("consent.id", ondelete="CASCADE"), primary_key=True
    )
    wish: Mapped[str] = mapped_column(String(8))
    note_enc: Mapped[bytes] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def id(self) -> uuid.UUID:
        """The row id that encryption binds values to."""
        return self.consent_id


class Referral(Base):
    """The LEAD front door: a police referral with the minimum needed to find the person."""

    __tablename__ = "referral"
    __table_args__ = (
        one_of("pathway", ReferralPathway),
        one_of("status", ReferralStatus),
        Index("ix_referral_status", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    referring_user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    referring_organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    pathway: Mapped[str] = mapped_column(String(32))
    given_name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    family_name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    date_of_birth_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(Integer, index=True)
    where_to_find_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default=ReferralStatus.PENDING.value)
    decided_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decline_reason_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    participant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("participant.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BreakGlassGrant(Base):
    """Emergency access under 42 CFR 2.51, time-boxed and queued for compliance review."""

    __tablename__ = "break_glass_grant"
    __table_args__ = (
        one_of("review_status", BreakGlassReview),
        CheckConstraint("expires_at > started_at", name="expires_after_start"),
        Index("ix_break_glass_user_participant", "staff_user_id", "participant_id", "expires_at"),
        Index("ix_break_glass_review", "review_status", "started_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id"))
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    participant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("participant.id"))
    # Sealed (AES-GCM, bound to the row): the reason and, under 42 CFR 2.51(c), the nature of
    # the emergency and the facility; the audit event refers to the grant instead.
    reason_enc: Mapped[bytes] = mapped_column(LargeBinary)
    emergency_nature_enc: Mapped[bytes] = mapped_column(LargeBinary)
    facility_enc: Mapped[bytes] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(Integer, index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    review_status: Mapped[str] = mapped_column(String(16), default=BreakGlassReview.PENDING.value)
    reviewed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_notes_enc: Mapped[bytes | None] = mapped_column(LargeBinary)


class AuditEvent(Base):
    """One append-only, hash-chained audit event (DESIGN section 5).

    The sequence is gapless per chain and comes from the chain head, never from a database
    sequence. Deliberately no foreign keys: the evidence must outlive what it describes.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        CheckConstraint("seq >= 1", name="seq_positive"),
        CheckConstraint("decision IS NULL OR decision IN ('permit', 'deny')", name="decision"),
        Index("ix_audit_participant_time", "participant_id", "occurred_at"),
        Index("ix_audit_actor_time", "actor_user_id", "occurred_at"),
        Index("ix_audit_time", "occurred_at"),
        Index("ix_audit_action_time", "action", "occurred_at"),
    )

    chain: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(64))
    actor_user_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(300), default="")
    actor_organization: Mapped[str | None] = mapped_column(String(64))
    actor_roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    session_id: Mapped[str | None] = mapped_column(String(64))
    client_address: Mapped[str | None] = mapped_column(String(64))
    participant_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    category: Mapped[str | None] = mapped_column(String(32))
    record_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    purpose: Mapped[str | None] = mapped_column(String(16))
    decision: Mapped[str | None] = mapped_column(String(8))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    consent_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    policy_version: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """An Ed25519 signature over (chain, seq, head hash, time), for keeping elsewhere."""

    __tablename__ = "audit_checkpoint"
    __table_args__ = (UniqueConstraint("chain", "seq", name="chain_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))


class ParticipantCredential(Base):
    """A participant's self-service sign-in: one-time enrolment code, passphrase, optional TOTP."""

    __tablename__ = "participant_credential"

    participant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE"), primary_key=True
    )
    # A keyed hash of the username (people often choose their own name): lookup only.
    username_bidx: Mapped[str | None] = mapped_column(String(64), unique=True)
    passphrase_hash: Mapped[str | None] = mapped_column(String(200))
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # A key the portal made and showed, not yet confirmed with a code from the app.
    totp_pending_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_version: Mapped[int | None] = mapped_column(Integer)
    enrolment_code_hash: Mapped[str | None] = mapped_column(String(200))
    enrolment_code_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def id(self) -> uuid.UUID:
        """The row id that encryption binds values to."""
        return self.participant_id


class SignInThrottle(Base):
    """Failed sign-ins counted per client address and per account (both as keyed hashes), for
    waits that grow with each failure. In the database, so every process sees one count."""

    __tablename__ = "sign_in_throttle"
    __table_args__ = (Index("ix_sign_in_throttle_last_failure", "last_failure_at"),)

    # "address", "account" (a username, known or not) or "enrol" (a participant id).
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A server-side session; the cookie carries a random token whose SHA-256 is the id."""

    __tablename__ = "web_session"
    __table_args__ = (
        CheckConstraint(
            "(staff_user_id IS NULL) <> (participant_id IS NULL)", name="one_subject"
        ),
        Index("ix_web_session_staff", "staff_user_id"),
        Index("ix_web_session_expiry", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE")
    )
    participant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("participant.id", ondelete="CASCADE")
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    provider_id: Mapped[str | None] = mapped_column(String(64))
    id_token_hint: Mapped[str | None] = mapped_column(Text)
    client_address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A timed-out session is kept, ended, while its cookie may still arrive (an hour), so that
    # every request in that time is told how it ended (a form posted in a second tab is kept
    # for re-sign-in too); it signs nobody in.
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_reason: Mapped[str | None] = mapped_column(String(32))


class ShownOnce(Base):
    """Something a page shows once after a redirect (post-redirect-get), held for the one
    session that asked for it: sealed, taken (deleted) by the first page that shows it, and
    useless after ``expires_at``. Its id is SHA-256 of the session id and the purpose."""

    __tablename__ = "shown_once"
    __table_args__ = (Index("ix_shown_once_expiry", "expires_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    web_session_id: Mapped[str] = mapped_column(
        ForeignKey("web_session.id", ondelete="CASCADE"), index=True)
    payload_enc: Mapped[bytes] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OidcLoginState(Base):
    """A sign-in in flight: state (hashed), nonce and PKCE verifier; single use, short-lived."""

    __tablename__ = "oidc_login_state"
    __table_args__ = (Index("ix_oidc_login_state_expiry", "expires_at"),)

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(String(128))
    code_verifier: Mapped[str] = mapped_column(String(128))
    # SHA-256 of the random value in the browser's sign-in cookie (RFC 9700 section 4.7): the
    # callback is accepted only from the browser that started the sign-in.
    browser_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class KeptForm(Base):
    """A form posted after its session ended, kept (encrypted, short-lived) for the same person
    in the same browser until they sign in again. The browser's cookie holds a random token
    whose SHA-256 is the id; the form is never submitted again by itself."""

    __tablename__ = "kept_form"
    __table_args__ = (Index("ix_kept_form_expiry", "expires_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(500))
    page: Mapped[str] = mapped_column(String(500))
    fields_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DataKey(Base):
    """A data key, stored only wrapped by the key-encryption key (portal.crypto.keys)."""

    __tablename__ = "data_key"
    __table_args__ = (CheckConstraint("purpose IN ('field', 'blind_index')", name="purpose"),)

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    purpose: Mapped[str] = mapped_column(String(16))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    kek_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A retired key no longer decrypts anything (every value was re-encrypted first).
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditVerification(Base):
    """One verification of the audit log started from the compliance console, and its result.

    Progress while it runs lives in the memory of the process running it; the outcome is kept
    here, so that the last result survives restarts and every process shows it. No foreign
    keys, like the log itself: the evidence outlives what it describes.
    """

    __tablename__ = "audit_verification"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'done', 'failed')", name="status"),
        Index("ix_audit_verification_started", "started_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_by_user_id: Mapped[int | None] = mapped_column(Integer)
    started_by: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default="running")
    ok: Mapped[bool | None] = mapped_column(Boolean)
    events: Mapped[int] = mapped_column(Integer, default=0)
    first_bad_seq: Mapped[int | None] = mapped_column(Integer)
    damage: Mapped[str | None] = mapped_column(String(32))
    chain: Mapped[str | None] = mapped_column(String(32))
    checkpoints: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(300))
