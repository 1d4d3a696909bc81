"""Participants' own view: who may see what about them, taking a consent back, asking for a
change, and who has looked. A participant only ever reaches their own information."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.consents.service import ChangeRequest, change_requests, reference_names
from portal.db import audit_chain as audit_service
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.types import utcnow
from portal.domain import permissions
from portal.domain.audit import AuditAction
from portal.domain.consent import (
    ConsentError,
    ConsentKind,
    ConsentStatus,
    Directive,
    Occurred,
    revoke,
)
from portal.domain.consent_text import (
    CATEGORY_WORDS,
    REVOCATION_STATEMENT,
    SHARED_WORDS,
    revocable_when,
    sentences,
    shared_sentence,
)
from portal.domain.decision import AccessRequest, Actor, decide
from portal.domain.permissions import current_links
from portal.domain.vocabulary import Action, DataCategory, Role
from portal.kernel.errors import InvalidInput, NotFound
from portal.kernel.events import participant_event
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services

ACCOUNTING_YEARS = 6
ROLE_VALUES = frozenset(r.value for r in Role)


@dataclass(frozen=True, slots=True)
class MyConsent:
    id: str
    status: str
    sentences: list[str]
    kind: ConsentKind
    revocable_from: str | None
    revocable_now: bool
    when: datetime | None
    # What the participant asked for, in their own words, when this draft is their request.
    request: ChangeRequest | None = None
    has_provisions: bool = True  # False: a request not filled in yet (nothing to read)


@dataclass(frozen=True, slots=True)
class Shared:
    """One agency may see one category of the participant's information from another today,
    because decide() permits it under this consent."""

    recipient: str  # organization slug
    source: str
    category: DataCategory
    consent_id: str


@dataclass(frozen=True, slots=True)
class MySharing:
    active: list[MyConsent]
    drafts: list[MyConsent]
    history: list[MyConsent]
    not_shared: list[str]
    # What decide() permits today, in sentences (one per recipient and source).
    today: list[str] = field(default_factory=list)
    shared: list[Shared] = field(default_factory=list)


def shared_today(session: Session, services: Services, participant: m.Participant,
                 at: datetime) -> list[Shared]:
    """For each organization on the care team now and each category: what ``decide()``
    permits it to see from each other care-team organization today, for the purposes its
    staff's roles may use, and under which consent. Information an agency wrote itself needs
    no consent and is not listed. This is the participant's "who can see what": computed by
    the decision, never restated from a consent's provisions."""
    context = repo.load_context(session, participant.id, user_id=None, at=at)
    orgs = repo.Organizations.load(session)
    team_slugs = sorted({link.organization_slug for link in current_links(context, at.date())})
    team = [o for o in (orgs.slug(s) for s in team_slugs) if o is not None]
    roles: dict[str, set[Role]] = {o.slug: set() for o in team}
    for user in session.scalars(select(m.StaffUser).join(m.Organization).where(
            m.Organization.slug.in_(team_slugs), m.StaffUser.status == "active")):
        roles[user.organization.slug] |= {Role(r) for r in user.role_names if r in ROLE_VALUES}
    shared = []
    for recipient in team:
        actor = Actor(None, recipient, frozenset(roles[recipient.slug]))
        for category in DataCategory:
            purposes = permissions.view_purposes(services.policy, actor, category)
            for source in team:
                if source.slug == recipient.slug:
                    continue
                for purpose in purposes:
                    decision = decide(AccessRequest(
                        actor, str(participant.id), category, Action.VIEW, purpose, at,
                        source), context, services.policy)
                    if decision.permitted and decision.consent_id:
                        shared.append(Shared(recipient.slug, source.slug, category,
                                             decision.consent_id))
                        break
    return shared


def _today_sentences(session: Session, shared: list[Shared], consents: dict[str, Directive],
                     lang: str) -> list[str]:
    names = {o.slug: o.name for o in session.scalars(select(m.Organization))}
    grouped: dict[tuple[str, str, str], list[DataCategory]] = defaultdict(list)
    for s in shared:
        grouped[(s.recipient, s.source, s.consent_id)].append(s.category)
    lines = [shared_sentence(names[recipient], categories, names[source],
                             consents[consent_id], lang)
             for (recipient, source, consent_id), categories in sorted(
                 grouped.items(), key=lambda item: (names[item[0][0]], names[item[0][1]]))]
    return [*lines, SHARED_WORDS[lang if lang in SHARED_WORDS else "en"]["own"]] \
        if lines else []


def _can_revoke_now(d: Directive, at: datetime, occurred: Occurred) -> bool:
    try:
        revoke(d, at, occurred)
    except ConsentError:
        return False
    return True


def my_sharing(session: Session, services: Services, participant: m.Participant, lang: str,
               meta: RequestMeta) -> MySharing:
    at = utcnow()
    names = reference_names(session, lang)
    occurred = repo.occurred_events(session, participant.id)
    rows = session.scalars(select(m.Consent).where(m.Consent.participant_id == participant.id)
                           .order_by(m.Consent.created_at.desc())).all()
    active, drafts, history = [], [], []
    requests = change_requests(session, services, [r.id for r in rows
                                                   if r.status == ConsentStatus.DRAFT.value])
    for row in rows:
        d = repo.directive(row)
        status = d.status_at(at, occurred)
        item = MyConsent(str(row.id), status.value,
                         sentences(d, names, lang, at.date(), occurred),
                         d.kind, revocable_when(d, lang)
                         if d.kind is ConsentKind.PART2_CRIMINAL_JUSTICE else None,
                         _can_revoke_now(d, at, occurred),
                         row.revoked_at or row.signed_at or row.created_at,
                         requests.get(row.id), bool(d.provisions))
        if status is ConsentStatus.ACTIVE:
            active.append(item)
        elif status is ConsentStatus.DRAFT:
            drafts.append(item)
        else:
            history.append(item)
    shared = shared_today(session, services, participant, at)
    covered = {s.category for s in shared}
    words = CATEGORY_WORDS[lang if lang in CATEGORY_WORDS else "en"]
    not_shared = [words[c] for c in DataCategory if c not in covered]
    directives = {str(r.id): repo.directive(r) for r in rows}
    services.audit.append(session, participant_event(
        AuditAction.CONSENT_VIEW, participant, meta, consent_ids=tuple(str(r.id) for r in rows)))
    return MySharing(active, drafts, history, not_shared,
                     _today_sentences(session, shared, directives, lang), shared)


def _mine(session: Session, participant: m.Participant, consent_id: str) -> m.Consent:
    try:
        row = session.get(m.Consent, uuid.UUID(consent_id))
    except ValueError:
        raise NotFound() from None
    if row is None or row.participant_id != participant.id:
        raise NotFound()
    return row


def consent_for_revocation(session: Session, participant: m.Participant, consent_id: str,
                           lang: str) -> MyConsent:
    row = _mine(session, participant, consent_id)
    d = repo.directive(row)
    at = utcnow()
    occurred = repo.occurred_events(session, participant.id)
    return MyConsent(str(row.id), d.status_at(at, occurred).value,
                     sentences(d, reference_names(session, lang), lang, at.date(), occurred),
                     d.kind,
                     revocable_when(d, lang) if d.kind is ConsentKind.PART2_CRIMINAL_JUSTICE
                     else None, _can_revoke_now(d, at, occurred), row.signed_at)


def revoke_mine(session: Session, services: Services, participant: m.Participant,
                consent_id: str, meta: RequestMeta) -> None:
    """Takes effect for the very next access: decisions read the status every time."""
    row = _mine(session, participant, consent_id)
    now = utcnow()
    try:
        revoke(repo.directive(row), now, repo.occurred_events(session, participant.id))
    except ConsentError as exc:
        raise InvalidInput(" ".join(exc.problems)) from None
    row.status = ConsentStatus.REVOKED.value
    row.revoked_at = now
    row.revoked_by = "participant"
    row.revocation_method = "self-service portal"
    services.audit.append(session, participant_event(
        AuditAction.CONSENT_REVOKE, participant, meta, consent_ids=(str(row.id),),
        detail={"by": "participant"}))


def ask_for_change(session: Session, services: Services, participant: m.Participant,
                   wish: str, text: str, meta: RequestMeta) -> m.Consent:
    """The request becomes a draft consent for the case manager to complete with them."""
    text = text.strip()
    if wish not in ("more", "less"):
        raise InvalidInput("choose")
    if not text or len(text) > 1000:
        raise InvalidInput("describe")
    row = m.Consent(id=uuid.uuid4(), participant_id=participant.id, kind=ConsentKind.ROI.value,
                    status=ConsentStatus.DRAFT.value, language=participant.preferred_language,
                    revocation_statement=REVOCATION_STATEMENT, created_at=utcnow())
    session.add(row)
    session.flush()
    # Their own words can say anything (a diagnosis, a fear): sealed like a record's body.
    request = m.ConsentRequest(consent_id=row.id, wish=wish)
    services.vault.ready(session).seal(request, {"note": text})
    session.add(request)
    session.flush()
    services.audit.append(session, participant_event(
        AuditAction.CONSENT_CREATE, participant, meta, consent_ids=(str(row.id),),
        detail={"requested": wish}))
    return row


@dataclass(frozen=True, slots=True)
class Look:
    when: datetime
    organization: str
    roles: list[str]
    category: DataCategory | None
    # consent | break_glass | unrecorded | refused_break_glass | refused_not_on_team
    basis: str
    actor: str = ""  # who looked (their sign-in address): to group their visits, never shown
    person: str | None = None  # their name, where policies/named_recipients.csv names them
    seq: int = 0  # the event's place in the audit chain: the order looks are told in
    # Under a consent the participant has since taken back: decided before that took effect
    # but logged after it (the request was in flight when the revocation committed).
    before_revocation: bool = False


EMERGENCY_BASES = frozenset({"break_glass", "refused_break_glass"})
# Looks by the same person, on the same basis, this close together are one visit.
VISIT_GAP = timedelta(minutes=30)


@dataclass(slots=True)
class Visit:
    """One sitting: a person's looks (or refused attempts) on one basis, each within
    ``VISIT_GAP`` of the one before."""

    organization: str
    person: str | None
    roles: list[str]
    basis: str
    started: datetime
    ended: datetime
    categories: list[DataCategory] = field(default_factory=list)
    whole: bool = False  # their information in general (their page), not one kind
    views: int = 1
    before_revocation: bool = False  # some look was decided before a revocation took effect
    last_seq: int = 0  # the audit chain position of its latest look

    @property
    def emergency(self) -> bool:
        return self.basis in EMERGENCY_BASES


@dataclass(frozen=True, slots=True)
class Accounting:
    """What "Who has looked" shows: emergency access first, then each agency's visits."""

    emergency: list[Visit]
    agencies: list[tuple[str, list[Visit]]]  # most recent first, and so within each agency

    @property
    def empty(self) -> bool:
        return not self.emergency and not self.agencies


def group_looks(looks: list[Look]) -> Accounting:
    """Fold single looks into visits, newest first (in audit chain order, the order they
    were committed): emergency access (used or refused) apart, everything else by agency."""
    visits: list[Visit] = []
    current: dict[tuple[str, str, str], Visit] = {}
    for look in sorted(looks, key=lambda look: look.seq):
        key = (look.actor, look.organization, look.basis)
        visit = current.get(key)
        if visit is None or look.when - visit.ended > VISIT_GAP:
            visit = Visit(look.organization, look.person, look.roles, look.basis, look.when,
                          look.when, views=0)
            visits.append(visit)
            current[key] = visit
        visit.ended = max(visit.ended, look.when)
        visit.last_seq = look.seq
        visit.views += 1
        visit.before_revocation = visit.before_revocation or look.before_revocation
        if look.category is None:
            visit.whole = True
        elif look.category not in visit.categories:
            visit.categories.append(look.category)
    newest = sorted(visits, key=lambda visit: visit.last_seq, reverse=True)
    agencies: dict[str, list[Visit]] = {}
    for visit in newest:
        if not visit.emergency:
            agencies.setdefault(visit.organization, []).append(visit)
    return Accounting([visit for visit in newest if visit.emergency], list(agencies.items()))


def who_looked(session: Session, services: Services, participant: m.Participant,
               meta: RequestMeta) -> list[Look]:
    """The accounting of disclosures (HIPAA 164.528, 42 CFR 2.24), plus the refused attempts
    the policy says participants are told about, newest first by audit chain position (the
    order of commit, never the clock); a look decided before a revocation of the consent it
    relied on took effect says so."""
    since = utcnow() - timedelta(days=365 * ACCOUNTING_YEARS - 2)
    orgs = {o.slug: o for o in session.scalars(select(m.Organization))}
    disclosures = audit_service.disclosures(session, participant.id, since=since)
    # Refused attempts, where the policy says participants are told (policies/accounting.csv).
    shown = services.policy.refusals_shown
    refused = [e for e in session.scalars(select(m.AuditEvent).where(
                   m.AuditEvent.participant_id == participant.id,
                   m.AuditEvent.decision == "deny",
                   m.AuditEvent.action.in_(sorted({action for action, _ in shown})),
                   m.AuditEvent.occurred_at >= since))
               if any((e.action, r) in shown for r in e.reasons)]
    emails = {d.recipient for d in disclosures} | {e.actor for e in refused}
    names = {u.email: u.display_name for u in session.scalars(
        select(m.StaffUser).where(m.StaffUser.email.in_(sorted(emails))))}
    named = services.policy.named_recipients

    def person(actor: str, organization: str | None, roles: list[str]) -> str | None:
        org = orgs.get(organization or "")
        if org is None or not any((org.sector, role) in named for role in roles):
            return None
        return names.get(actor)

    def org_name(slug: str | None, unknown: str) -> str:
        org = orgs.get(slug or "")
        return org.name if org is not None else unknown

    looks = [Look(d.occurred_at, org_name(d.recipient_organization, d.recipient_organization
                                          or ""),
                  list(d.recipient_roles), DataCategory(d.category) if d.category else None,
                  d.basis, d.recipient,
                  person(d.recipient, d.recipient_organization, list(d.recipient_roles)),
                  d.seq, d.in_flight_at_revocation)
             for d in disclosures]
    looks += [Look(e.occurred_at, org_name(e.actor_organization, ""), list(e.actor_roles),
                   None, "refused_break_glass" if e.action.startswith("break_glass:")
                   else "refused_not_on_team", e.actor,
                   person(e.actor, e.actor_organization, list(e.actor_roles)), e.seq)
              for e in refused]
    services.audit.append(session, participant_event(
        AuditAction.AUDIT_DISCLOSURES_VIEW, participant, meta))
    return sorted(looks, key=lambda look: look.seq, reverse=True)
