"""Repositories: load what decide() needs for one participant in a fixed number of queries."""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import MappingProxyType

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from portal.db import models as m
from portal.domain import decision as d
from portal.domain import public_ids
from portal.domain.consent import (
    ConsentEvent,
    ConsentKind,
    ConsentStatus,
    Directive,
    Provision,
    ProvisionEffect,
    Signature,
    SignatureMethod,
    SignerRelation,
)
from portal.domain.vocabulary import DataCategory, Purpose, Role, Sector, StaffStatus

SEALED = "(stored encrypted)"
AUDIT_CHAIN = "main"  # the chain decisions are recorded on (audit_chain.DEFAULT_CHAIN)


def organization(row: m.Organization) -> d.Organization:
    return d.Organization(slug=row.slug, sector=Sector(row.sector),
                          part2_program=row.part2_program, name=row.name)


def actor(user: m.StaffUser) -> d.Actor:
    return d.Actor(user_id=user.id, organization=organization(user.organization),
                   roles=frozenset(Role(r) for r in user.role_names),
                   active=user.status == StaffStatus.ACTIVE.value)


def directive(row: m.Consent) -> Directive:
    """The domain view of a consent row. Unknown stored values raise (and so deny)."""
    signature = None
    if row.signed_at is not None and row.signature_method and row.signer_name_enc:
        # The decision needs to know that a signer is named, not who: the name stays sealed.
        signature = Signature(method=SignatureMethod(row.signature_method),
                              signer_name=SEALED,
                              signer_relation=SignerRelation(row.signer_relation or "self"),
                              signed_at=row.signed_at, witness_user_id=row.witness_user_id)
    return Directive(
        id=str(row.id), participant_id=str(row.participant_id), kind=ConsentKind(row.kind),
        status=ConsentStatus(row.status),
        provisions=tuple(
            Provision(effect=ProvisionEffect(p.effect), disclosers=frozenset(p.disclosers),
                      recipients=frozenset(p.recipients),
                      categories=frozenset(DataCategory(c) for c in p.categories),
                      purposes=frozenset(Purpose(x) for x in p.purposes),
                      period_start=p.period_start, period_end=p.period_end)
            for p in row.provisions),
        information_description=row.information_description,
        revocation_statement=row.revocation_statement, tpo_statement=row.tpo_statement,
        expires_on=row.expires_on,
        expiry_event=row.expiry_event, signature=signature,
        revocable_after=row.revocable_after, revocable_after_event=row.revocable_after_event,
        revoked_at=row.revoked_at, version=row.version,
        supersedes_id=str(row.supersedes_id) if row.supersedes_id else None)


def load_context(session: Session, participant_id: uuid.UUID, *, user_id: int | None,
                 at: datetime) -> d.ParticipantContext:
    """Care team, consents with provisions, recorded events and the user's break-glass
    grants: six queries (with the audit chain's head)."""
    return load_contexts(session, [participant_id], user_id=user_id, at=at)[participant_id]


def load_contexts(session: Session, participant_ids: Sequence[uuid.UUID], *,
                  user_id: int | None, at: datetime) -> dict[uuid.UUID, d.ParticipantContext]:
    """The decision context of several participants in the same six queries as one.

    The audit chain's head is read first (``observed_seq``): on PostgreSQL each statement
    sees what had committed when it started, so a consent revocation whose event has a seq
    above it had not committed when the consents were read, and one at or below it had
    (and was seen). The accounting of disclosures uses this to order a decision against a
    revocation by commit, not by clock."""
    ids = list(dict.fromkeys(participant_ids))
    observed_seq = session.scalar(select(func.max(m.AuditEvent.seq))
                                  .where(m.AuditEvent.chain == AUDIT_CHAIN))
    links: dict[uuid.UUID, list[d.CareTeamLink]] = defaultdict(list)
    for pid, slug, start, end in session.execute(
            select(m.CareTeamMember.participant_id, m.Organization.slug,
                   m.CareTeamMember.start_date, m.CareTeamMember.end_date)
            .join(m.Organization, m.Organization.id == m.CareTeamMember.organization_id)
            .where(m.CareTeamMember.participant_id.in_(ids))):
        links[pid].append(d.CareTeamLink(slug, start, end))
    consents: dict[uuid.UUID, list[Directive]] = defaultdict(list)
    for consent in session.scalars(
            select(m.Consent).where(m.Consent.participant_id.in_(ids))
            .options(selectinload(m.Consent.provisions))):
        consents[consent.participant_id].append(directive(consent))
    grants: dict[uuid.UUID, list[d.BreakGlassGrant]] = defaultdict(list)
    if user_id is not None:
        for g in session.scalars(select(m.BreakGlassGrant).where(
                m.BreakGlassGrant.participant_id.in_(ids),
                m.BreakGlassGrant.staff_user_id == user_id,
                m.BreakGlassGrant.expires_at > at)):
            grants[g.participant_id].append(
                d.BreakGlassGrant(str(g.id), g.staff_user_id, g.started_at, g.expires_at))
    occurred: dict[uuid.UUID, dict[ConsentEvent, date]] = defaultdict(dict)
    for pid, event, on in session.execute(
            select(m.ParticipantEvent.participant_id, m.ParticipantEvent.event,
                   m.ParticipantEvent.occurred_on)
            .where(m.ParticipantEvent.participant_id.in_(ids))):
        occurred[pid][ConsentEvent(event)] = on
    return {pid: d.ParticipantContext(participant_id=str(pid), care_team=tuple(links[pid]),
                                      consents=tuple(consents[pid]),
                                      break_glass=tuple(grants[pid]),
                                      occurred=MappingProxyType(occurred[pid]),
                                      observed_seq=observed_seq or 0)
            for pid in ids}


def occurred_events(session: Session, participant_id: uuid.UUID) -> dict[ConsentEvent, date]:
    """The events recorded for one participant (exit, disposition...), by day."""
    return {ConsentEvent(event): on for event, on in session.execute(
        select(m.ParticipantEvent.event, m.ParticipantEvent.occurred_on)
        .where(m.ParticipantEvent.participant_id == participant_id))}


@dataclass(frozen=True, slots=True)
class Organizations:
    """All organizations, by id and slug (a small table, loaded once per request)."""

    by_id: dict[int, d.Organization]

    @classmethod
    def load(cls, session: Session) -> Organizations:
        return cls({row.id: organization(row) for row in session.scalars(select(m.Organization))})

    def slug(self, slug: str) -> d.Organization | None:
        return next((o for o in self.by_id.values() if o.slug == slug), None)


def staff_by_email(session: Session, email: str) -> m.StaffUser | None:
    return session.scalar(select(m.StaffUser).where(m.StaffUser.email == email.strip().lower()))


# As stored: older "LP-1001" / "LP-9244U5NL", and grouped "LP-7K3M-XP9F" (portal.domain.public_ids).
PUBLIC_ID = re.compile(r"LP-[0-9A-Z]{1,13}(?:-[0-9A-Z]{4})?")


def participant_by_public_id(session: Session, public_id: str) -> m.Participant | None:
    """The participant an id as a person typed it names (case, spaces and dashes ignored);
    None for anything that is not a well-formed id (never sent to the database)."""
    forms = public_ids.stored_forms(public_id)
    if not forms:
        return None
    return session.scalar(select(m.Participant).where(m.Participant.public_id.in_(forms)))


def source_organizations(session: Session, participant_id: uuid.UUID,
                         category: DataCategory) -> list[int]:
    """Ids of the organizations that authored records in one category for a participant."""
    return list(session.scalars(
        select(m.Record.organization_id).distinct()
        .where(m.Record.participant_id == participant_id, m.Record.category == category.value)
        .order_by(m.Record.organization_id)))
