"""The staff workspace's reads and writes: caseload, the participant page (every category
decided by decide() and audited before anything is returned), adding records.

Every piece of participant information shown to staff comes through here. A participant the
user's organization has no relationship with does not exist as far as the caller can tell.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import NoReturn

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import Session, noload

from portal.crypto.vault import DecryptionError, PersonName, Vault
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.types import utcnow
from portal.domain import decision as d
from portal.domain import permissions, public_ids
from portal.domain.audit import AuditAction, NewAuditEvent
from portal.domain.permissions import Permission
from portal.domain.vocabulary import (
    GOAL_DETAIL_CATEGORY,
    DataCategory,
    GoalDomain,
    GoalStatus,
    Purpose,
)
from portal.kernel.access import user_may
from portal.kernel.errors import InvalidInput, NotFound
from portal.kernel.events import refusal_event, staff_event
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services
from portal.workspace import page
from portal.workspace.page import CategorySection as CategorySection
from portal.workspace.page import GoalLine as GoalLine
from portal.workspace.page import ShownRecord as ShownRecord
from portal.workspace.people import find, search_condition

PAGE_SIZE = 25


@dataclass(frozen=True, slots=True)
class UrgentNeed:
    """An open immediate need the user may see (its status is `progress`, decided)."""
    summary: str | None  # opened; None when it cannot be decrypted
    owner: str
    goal_id: str
    owner_slug: str
    decision: d.Decision  # what let the user see it, and under which purpose
    purpose: Purpose
    domain: GoalDomain = GoalDomain.SHELTER
    status: str = GoalStatus.NOT_STARTED.value
    since: datetime | None = None  # when the need was raised

    @property
    def order(self) -> tuple[int, float]:
        return page.urgency_key(self.domain, self.since)


@dataclass(frozen=True, slots=True)
class CaseloadRow:
    public_id: str
    name: PersonName | None
    enrolled_on: date | None
    urgent: list[UrgentNeed]
    # The participant took a consent back in the last two weeks, or asked for a change that
    # waits in a draft: their case manager (a role that may view consents) should know.
    revoked_recently: bool = False
    change_requested: bool = False


@dataclass(frozen=True, slots=True)
class Caseload:
    rows: list[CaseloadRow]
    next_after: str | None
    query: str
    # False: the user's roles see no participant information at all (a compliance officer or
    # an organization admin), so they have no caseload, whatever the care teams say.
    works_with_participants: bool = True
    # The user's roles may view consents: the consent flags (and their filter) are shown.
    shows_consent_flags: bool = False
    # The rows with urgent needs, the most pressing first (UrgentNeed.order).
    urgent_rows: list[CaseloadRow] = field(default_factory=list)


REVOCATION_FLAG_DAYS = 14  # how long "took back a consent" stays on the caseload


def _revoked_recently(at: datetime) -> ColumnElement[bool]:
    return and_(m.Consent.status == "revoked", m.Consent.revoked_by == "participant",
                m.Consent.revoked_at >= at - timedelta(days=REVOCATION_FLAG_DAYS))


def _change_requested() -> ColumnElement[bool]:
    return and_(m.Consent.status == "draft",
                m.Consent.id.in_(select(m.ConsentRequest.consent_id)))


def caseload(session: Session, services: Services, user: m.StaffUser, meta: RequestMeta, *,
             query: str = "", after: str | None = None, urgent_only: bool = False,
             consent_changes_only: bool = False, limit: int = PAGE_SIZE) -> Caseload:
    """The participants on the user's organization's care team, searched and paged by id.
    Their urgent needs are shown only where decide() permits the owning agency's `progress`
    to this user, as on the participant page. ``consent_changes_only``: those who took back
    a consent lately or asked for a change (only for roles that may view consents)."""
    actor = repo.actor(user)
    if not works_with_participants(services, actor):
        services.audit.append(session, staff_event(
            AuditAction.PARTICIPANT_VIEW, user, meta, decision="deny",
            reasons=(d.Reason.NO_ROLE_PERMISSION.value,),
            policy_version=services.policy.version, detail={"view": "caseload"}))
        return Caseload([], None, query, works_with_participants=False)
    vault = services.vault.ready(session)
    at = utcnow()
    today = at.date()
    stmt = (select(m.Participant)
            .join(m.CareTeamMember, m.CareTeamMember.participant_id == m.Participant.id)
            .where(m.CareTeamMember.organization_id == user.organization_id,
                   m.CareTeamMember.current_on(today))
            .distinct().order_by(m.Participant.public_id).limit(limit + 1))
    condition = search_condition(vault, query)
    if condition is not None:
        stmt = stmt.where(condition)  # type: ignore[arg-type]
    if after and repo.PUBLIC_ID.fullmatch(after):
        stmt = stmt.where(m.Participant.public_id > after)
    if urgent_only:  # narrowed here, then to the needs this user may see
        stmt = stmt.where(m.Participant.id.in_(select(m.Goal.participant_id).where(
            m.Goal.urgent, m.Goal.status.not_in(CLOSED_GOALS))))
    consent_flags = _may_view_consents(services, actor)
    if consent_changes_only:
        stmt = stmt.where(m.Participant.id.in_(select(m.Consent.participant_id).where(
            or_(_revoked_recently(at), _change_requested()))) if consent_flags else false())
    scanned = list(session.scalars(stmt))
    more = len(scanned) > limit
    scanned = scanned[:limit]
    urgent, contexts = _visible_urgent_needs(session, services, actor, scanned, at)
    people = [p for p in scanned if urgent[p.id] or not urgent_only]
    recent: set[uuid.UUID] = set()
    requested: set[uuid.UUID] = set()
    if people and consent_flags:
        ids = [p.id for p in people]
        recent = set(session.scalars(select(m.Consent.participant_id).where(
            m.Consent.participant_id.in_(ids), _revoked_recently(at))))
        requested = set(session.scalars(select(m.Consent.participant_id).where(
            m.Consent.participant_id.in_(ids), _change_requested())))
    rows = []
    for p in people:
        try:
            name: PersonName | None = vault.open_participant(p)
        except DecryptionError:
            name = None
        rows.append(CaseloadRow(p.public_id, name, p.enrolled_on, urgent[p.id],
                                p.id in recent, p.id in requested))
    # The urgent list's order: each person by their most pressing need (the table below
    # keeps its order by id, which paging needs).
    rows_by_urgency = sorted((r for r in rows if r.urgent),
                             key=lambda r: (r.urgent[0].order, r.public_id))
    services.audit.append_many(session, [staff_event(
        AuditAction.PARTICIPANT_VIEW, user, meta, decision="permit", reasons=("care_team",),
        record_ids=tuple(r.public_id for r in rows), policy_version=services.policy.version,
        detail={"view": "caseload", "searched": bool(query.strip()), "after": after or "",
                "urgent_only": urgent_only, "consent_changes_only": consent_changes_only,
                "urgent_needs_shown": sum(len(r.urgent) for r in rows)}),
        # The needs shown are goal statuses disclosed by their owners, logged as on the
        # participant page (they feed the accounting of disclosures).
        *(page.category_event(user, meta, p.id, services.policy.version,
                              DataCategory.PROGRESS, needs[0].purpose,
                              [n.goal_id for n in needs], [], [n.decision for n in needs],
                              {n.owner_slug for n in needs}, None, decided_at=at,
                              context=contexts[p.id], view="caseload")
          for p in people if (needs := urgent[p.id]))])
    return Caseload(rows, scanned[-1].public_id if more and scanned else None, query,
                    shows_consent_flags=consent_flags, urgent_rows=rows_by_urgency)


CLOSED_GOALS = ("achieved", "closed")


def _visible_urgent_needs(session: Session, services: Services, actor: d.Actor,
                          people: list[m.Participant], at: datetime
                          ) -> tuple[dict[uuid.UUID, list[UrgentNeed]],
                                     dict[uuid.UUID, d.ParticipantContext]]:
    """Each participant's open urgent goals whose owner's `progress` decide() permits to the
    actor (an urgent goal of a Part 2 program, say, is not shown without a Part 2 consent),
    and the decision contexts they were decided in (for their audit events)."""
    needs: dict[uuid.UUID, list[UrgentNeed]] = defaultdict(list)
    goals = list(session.scalars(
        select(m.Goal).where(m.Goal.participant_id.in_([p.id for p in people]), m.Goal.urgent,
                             m.Goal.status.not_in(CLOSED_GOALS))
        .options(noload(m.Goal.updates), noload(m.Goal.organization))
        .order_by(m.Goal.created_at))) if people else []
    if not goals:
        return needs, {}
    orgs = repo.Organizations.load(session)
    vault = services.vault.ready(session)
    purposes = page.view_purposes(services.policy, actor, DataCategory.PROGRESS,
                                  emergency=False)
    contexts = repo.load_contexts(session, [g.participant_id for g in goals],
                                  user_id=actor.user_id, at=at)
    decided: dict[tuple[uuid.UUID, int, DataCategory], tuple[d.Decision, Purpose]] = {}
    for goal in goals:
        domain = GoalDomain(goal.domain)
        about = GOAL_DETAIL_CATEGORY[domain]
        key = (goal.participant_id, goal.organization_id, about)
        owner = orgs.by_id[goal.organization_id]
        if key not in decided:
            decided[key] = page.decide_source(
                services.policy, actor, str(goal.participant_id),
                contexts[goal.participant_id], DataCategory.PROGRESS, owner, purposes, at,
                about)
        decision, purpose = decided[key]
        # A need whose status may be told only as "engaged in services" (care a justice
        # partner must never learn of) is not listed at all: its urgency would tell.
        if decision.permitted and not decision.engagement_only:
            needs[goal.participant_id].append(UrgentNeed(
                vault.open_or_none(goal, "summary"), owner.name, str(goal.id), owner.slug,
                decision, purpose, domain, goal.status, goal.created_at))
    for listed in needs.values():
        listed.sort(key=lambda n: n.order)
    return needs, contexts


def works_with_participants(services: Services, actor: d.Actor) -> bool:
    """The staff workspace (caseload, participant pages) is only for roles that may view some
    participant information (portal.domain.permissions)."""
    return permissions.works_with_participants(services.policy, actor)


def may_break_glass(services: Services, user: m.StaffUser) -> bool:
    """The role policy lets one of the user's roles start emergency access."""
    return user_may(services.policy, user, Permission.BREAK_GLASS_CREATE)


def _may_view_consents(services: Services, actor: d.Actor) -> bool:
    return permissions.may(services.policy, actor, Permission.CONSENT_VIEW)


# --- the participant page ------------------------------------------------------------------


@dataclass
class ParticipantPage:
    public_id: str
    name: PersonName | None
    enrolled_on: date | None
    sections: list[CategorySection]
    goals: list[GoalLine]
    notices: list[str]
    break_glass_until: datetime | None
    creatable: list[DataCategory] = field(default_factory=list)
    # Goal domains the user may add (their detail category is one the user may create).
    goal_domains: list[GoalDomain] = field(default_factory=list)

    @property
    def goal_statuses(self) -> list[GoalStatus]:
        return list(GoalStatus)

    @property
    def plan_notices(self) -> list[str]:
        return [d.Obligation.NOTICE_PART2.text] if any(g.part2 for g in self.goals) else []

    @property
    def urgent_goals(self) -> list[GoalLine]:
        """Open immediate needs, the most pressing first (page.urgency_key)."""
        return sorted((g for g in self.goals if g.urgent and g.status not in CLOSED_GOALS),
                      key=lambda g: g.order)


def _participant(session: Session, public_id: str) -> m.Participant:
    participant = repo.participant_by_public_id(session, public_id)
    if participant is None:
        raise NotFound(public_id)
    return participant


def participant_page(session: Session, services: Services, user: m.StaffUser,
                     public_id: str, meta: RequestMeta, *,
                     reveal: bool = True) -> ParticipantPage:
    """Everything the user may see about one participant, decided and audited category by
    category in the caller's transaction (before the caller returns anything).

    The deciding is portal.workspace.page.plan_page (pure); here: load what it needs, open
    only what it shows, append its events.

    ``reveal=False`` decides the same sections but opens and returns nothing (no record
    contents, goals or name) and audits no views: for explaining a decision, which discloses
    nothing (a refused attempt is still audited)."""
    at = utcnow()
    vault = services.vault.ready(session)
    participant = _participant(session, public_id)
    actor = repo.actor(user)
    context = repo.load_context(session, participant.id, user_id=user.id, at=at)
    on_team = d.on_care_team(context, actor.organization.slug, at.date())
    grant = next((g for g in context.break_glass if g.user_id == user.id and g.current(at)),
                 None)
    if not works_with_participants(services, actor):
        _refuse(session, services, user, meta, participant, AuditAction.PARTICIPANT_VIEW,
                d.Reason.NO_ROLE_PERMISSION)
    if not on_team and grant is None:
        _refuse(session, services, user, meta, participant, AuditAction.PARTICIPANT_VIEW)
    records, goals = _records_of(session, participant), _goals_of(session, participant)
    # What was permitted but cannot be decrypted is shown as unavailable, is not counted as
    # disclosed, and is audited as a decrypt failure.
    failures: list[DecryptionError] = []
    plan = page.plan_page(page.PageInputs(
        user=user, user_organization_id=user.organization_id, actor=actor, meta=meta,
        policy=services.policy, participant_id=participant.id,
        public_id=participant.public_id, context=context, at=at, on_team=on_team,
        grant=grant, organizations=repo.Organizations.load(session).by_id,
        records=[_sealed_record(r) for r in records.values()],
        goals=[_sealed_goal(vault, g, failures) for g in goals.values()], reveal=reveal))
    # Only the goals this reader is shown count: the others' ids stay out of their events.
    shown_goals = {g.goal.id for g in plan.goals}
    failures = [f for f in failures if str(f.row_id) in shown_goals]
    unavailable: set[tuple[str, str]] = set()
    sections = [s.section([_open_record(vault, records[r.record.id], r, failures, unavailable)
                           if reveal else r.unopened() for r in s.records])
                for s in plan.sections]
    goal_lines = [_goal_line(vault, goals[g.goal.id], g, failures, unavailable)
                  for g in plan.goals]
    # The care-team relationship (or the emergency grant) is what lets staff know who this is.
    name: PersonName | None = None
    if reveal:
        # Appended together (one chain lock, held only until the commit); if that fails,
        # nothing of the page is returned.
        events = plan.events_without(unavailable)
        try:
            name = vault.open_participant(participant)
        except DecryptionError as exc:
            events.append(staff_event(
                AuditAction.CRYPTO_DECRYPT_FAILURE, user, meta, participant_id=participant.id,
                reasons=(exc.reason,), detail={"table": exc.table, "column": exc.column}))
        if failures:
            events.append(decrypt_failure_event(user, meta, participant.id, failures))
        services.audit.append_many(session, events)
    return ParticipantPage(
        public_id=participant.public_id, name=name, enrolled_on=participant.enrolled_on,
        sections=sections, goals=goal_lines, notices=plan.notices,
        break_glass_until=plan.break_glass_until, creatable=plan.creatable,
        goal_domains=plan.goal_domains)


def _records_of(session: Session, participant: m.Participant) -> dict[str, m.Record]:
    """The participant's records, newest first, by id (still sealed)."""
    rows = session.scalars(select(m.Record).where(m.Record.participant_id == participant.id)
                           .options(noload(m.Record.organization))
                           .order_by(m.Record.effective_date.desc(), m.Record.id))
    return {str(r.id): r for r in rows}


def _goals_of(session: Session, participant: m.Participant) -> dict[str, m.Goal]:
    """The participant's goals, urgent first, then oldest first, by id (still sealed)."""
    rows = session.scalars(
        select(m.Goal).where(m.Goal.participant_id == participant.id)
        .options(noload(m.Goal.updates), noload(m.Goal.organization))
        .order_by(m.Goal.urgent.desc(), m.Goal.created_at))
    return {str(g.id): g for g in rows}


def _sealed_record(row: m.Record) -> page.SealedRecord:
    return page.SealedRecord(str(row.id), row.category, row.organization_id,
                             row.effective_date)


def _sealed_goal(vault: Vault, row: m.Goal,
                 failures: list[DecryptionError]) -> page.SealedGoal:
    """The goal's summary and status note opened (None if they cannot be decrypted, with the
    failure noted in ``failures``); its detail stays sealed until decide() permits it."""

    def opened(column: str) -> str | None:
        try:
            return vault.open(row, column) or ""
        except DecryptionError as exc:
            failures.append(exc)
            return None

    return page.SealedGoal(str(row.id), row.organization_id, GoalDomain(row.domain),
                           opened("summary"), row.status, opened("status_note"), row.urgent,
                           has_detail=row.detail_enc is not None, since=row.created_at)


def _open_record(vault: Vault, row: m.Record, item: page.RecordToShow,
                 failures: list[DecryptionError],
                 unavailable: set[tuple[str, str]]) -> ShownRecord:
    """A permitted record, opened; if it cannot be decrypted, shown as unavailable (neither
    title nor body), noted in ``unavailable`` and its failure in ``failures``."""
    try:
        title, body = vault.open(row, "title"), vault.open(row, "body")
    except DecryptionError as exc:
        failures.append(exc)
        unavailable.add((row.category, str(row.id)))
        return item.unopened()
    return item.shown(title, body)


def _goal_line(vault: Vault, row: m.Goal, item: page.GoalToShow,
               failures: list[DecryptionError],
               unavailable: set[tuple[str, str]]) -> GoalLine:
    """A goal's line, its detail opened if permitted; a detail that cannot be decrypted is
    shown as unavailable, noted in ``unavailable`` (under the detail's category) and its
    failure in ``failures``."""
    if not item.detail_permitted:
        return item.line(None)
    try:
        return item.line(vault.open(row, "detail") or "")
    except DecryptionError as exc:
        failures.append(exc)
        unavailable.add((item.detail_category.value, str(row.id)))
        return item.line(None, unavailable=True)


def decrypt_failure_event(user: m.StaffUser, meta: RequestMeta, participant_id: uuid.UUID,
                          failures: list[DecryptionError]) -> NewAuditEvent:
    """One event naming every permitted record or goal on a page that could not be
    decrypted (moved, altered, or under a retired key): shown as unavailable, not disclosed.
    Table, column and reason only: never any content."""
    ids = tuple(dict.fromkeys(str(f.row_id) for f in failures))
    return staff_event(
        AuditAction.CRYPTO_DECRYPT_FAILURE, user, meta, participant_id=participant_id,
        record_ids=ids, reasons=tuple(sorted({f.reason for f in failures})),
        detail={"failures": [{"id": str(f.row_id), "table": f.table, "column": f.column,
                              "reason": f.reason} for f in failures]})


def _may_create(services: Services, actor: d.Actor, category: DataCategory) -> bool:
    return permissions.may_create(services.policy, actor, category)


# --- writes --------------------------------------------------------------------------------


def _refuse(session: Session, services: Services, user: m.StaffUser, meta: RequestMeta,
            participant: m.Participant, action: AuditAction,
            reason: d.Reason = d.Reason.NOT_ON_CARE_TEAM) -> NoReturn:
    """Audit a refused attempt (by default: by an organization with no relationship to the
    participant; the participant may be told of it: policies/accounting.csv), then answer
    "not found"."""
    services.audit.append(session, refusal_event(action, user, meta, participant.id, reason,
                                                 services.policy.version))
    raise NotFound(participant.public_id)


def _team_actor(session: Session, services: Services, user: m.StaffUser, public_id: str,
                at: datetime, meta: RequestMeta,
                action: AuditAction) -> tuple[m.Participant, d.Actor]:
    """The participant and the user as an actor, when the user's organization is on the care
    team today; otherwise the attempt is refused."""
    participant = _participant(session, public_id)
    actor = repo.actor(user)
    context = repo.load_context(session, participant.id, user_id=user.id, at=at)
    if not d.on_care_team(context, actor.organization.slug, at.date()):
        _refuse(session, services, user, meta, participant, action)
    return participant, actor


def add_record(session: Session, services: Services, user: m.StaffUser, public_id: str,
               category_value: str, title: str, body: str, effective: str,
               meta: RequestMeta) -> m.Record:
    at = utcnow()
    participant, actor = _team_actor(session, services, user, public_id, at, meta,
                                     AuditAction.RECORD_CREATE)
    problems = []
    try:
        category = DataCategory(category_value)
    except ValueError:
        raise InvalidInput("Choose a category.") from None
    if not _may_create(services, actor, category):
        raise InvalidInput(f"Your role cannot add {category.info.label.lower()} information.")
    if not title.strip() or len(title) > 200:
        problems.append("Give it a title of at most 200 characters.")
    if not body.strip() or len(body) > 20_000:
        problems.append("Write the note (at most 20,000 characters).")
    try:
        when = date.fromisoformat(effective) if effective else at.date()
    except ValueError:
        problems.append("The date must look like 2026-11-28.")
        when = at.date()
    if when > at.date():
        problems.append("The date cannot be in the future.")
    if problems:
        raise InvalidInput(" ".join(problems))
    record = m.Record(id=uuid.uuid4(), participant_id=participant.id,
                      organization_id=user.organization_id, author_user_id=user.id,
                      category=category.value, effective_date=when, created_at=at)
    services.vault.ready(session).seal(record, {"title": title.strip(), "body": body.strip()})
    session.add(record)
    session.flush()
    services.audit.append(session, staff_event(
        AuditAction.RECORD_CREATE, user, meta, participant_id=participant.id,
        category=category.value, record_ids=(str(record.id),), decision="permit",
        reasons=("own_organization",), policy_version=services.policy.version))
    return record


def add_goal(session: Session, services: Services, user: m.StaffUser, public_id: str,
             domain_value: str, summary: str, detail: str, urgent: bool,
             meta: RequestMeta) -> m.Goal:
    """A new case-plan goal owned by the user's organization. Its summary and status are
    `progress` (what justice partners may see under the multi-party release); the detail is
    sealed and filed under the domain's own category."""
    at = utcnow()
    participant, actor = _team_actor(session, services, user, public_id, at, meta,
                                     AuditAction.GOAL_CREATE)
    try:
        domain = GoalDomain(domain_value)
    except ValueError:
        raise InvalidInput("Choose what the goal is about.") from None
    if not (_may_create(services, actor, DataCategory.PROGRESS)
            and _may_create(services, actor, GOAL_DETAIL_CATEGORY[domain])):
        raise InvalidInput(f"Your role cannot set {domain.value.replace('_', ' ')} goals.")
    problems = []
    if not summary.strip() or len(summary) > 200:
        problems.append("Say in a few words what the goal is (at most 200 characters); "
                        "partners may see this line, so keep treatment details out of it.")
    if len(detail) > 2_000:
        problems.append("Keep the details under 2,000 characters.")
    if problems:
        raise InvalidInput(" ".join(problems))
    goal = m.Goal(id=uuid.uuid4(), participant_id=participant.id,
                  organization_id=user.organization_id, domain=domain.value,
                  status=GoalStatus.NOT_STARTED.value, urgent=urgent,
                  created_at=at, updated_at=at)
    vault = services.vault.ready(session)
    vault.seal(goal, {"summary": summary.strip(), "detail": detail.strip(), "status_note": None})
    first = m.GoalUpdate(status=goal.status, author_user_id=user.id, created_at=at,
                         key_version=goal.key_version)
    goal.updates = [first]
    session.add(goal)
    session.flush()
    seal_update(vault, first, "Goal set")
    services.audit.append(session, staff_event(
        AuditAction.GOAL_CREATE, user, meta, participant_id=participant.id,
        category=DataCategory.PROGRESS.value, record_ids=(str(goal.id),), decision="permit",
        reasons=("own_organization",), policy_version=services.policy.version,
        detail={"domain": domain.value, "urgent": urgent}))
    return goal


def seal_update(vault: Vault, update: m.GoalUpdate, note: str) -> None:
    """A goal update's note, sealed once the row has the id its ciphertext is bound to (the
    caller has flushed it; the change is flushed with the transaction)."""
    vault.seal(update, {"note": note or None}, version=update.key_version)


def update_goal(session: Session, services: Services, user: m.StaffUser, public_id: str,
                goal_id: str, status_value: str, note: str, meta: RequestMeta) -> m.Goal:
    """A status update on a goal the user's organization owns (history kept)."""
    at = utcnow()
    participant, actor = _team_actor(session, services, user, public_id, at, meta,
                                     AuditAction.GOAL_UPDATE)
    try:
        goal = session.get(m.Goal, uuid.UUID(goal_id))
    except ValueError:
        goal = None
    # Another organization's goal, or another participant's, is simply not there.
    if goal is None or goal.participant_id != participant.id \
            or goal.organization_id != user.organization_id:
        raise NotFound(goal_id)
    if not _may_create(services, actor, DataCategory.PROGRESS):
        raise InvalidInput("Your role cannot update goals.")
    try:
        status = GoalStatus(status_value)
    except ValueError:
        raise InvalidInput("Choose the goal's status.") from None
    if len(note) > 300:
        raise InvalidInput("Keep the note under 300 characters.")
    previous = goal.status
    vault = services.vault.ready(session)
    goal.status, goal.updated_at = status.value, at
    # Only the note is resealed: the row's other values stay under its key version.
    vault.seal(goal, {"status_note": note.strip() or None}, version=goal.key_version)
    update = m.GoalUpdate(status=status.value, author_user_id=user.id, created_at=at,
                          key_version=vault.current_version)
    goal.updates.append(update)
    session.flush()
    seal_update(vault, update, note.strip())
    services.audit.append(session, staff_event(
        AuditAction.GOAL_UPDATE, user, meta, participant_id=participant.id,
        category=DataCategory.PROGRESS.value, record_ids=(str(goal.id),), decision="permit",
        reasons=("own_organization",), policy_version=services.policy.version,
        detail={"from": previous, "to": status.value}))
    return goal


def explain_category(session: Session, services: Services, user: m.StaffUser,
                     public_id: str, category_value: str, meta: RequestMeta) -> list[str]:
    """Why a category is (partly) withheld, in sentences that never name withheld content or
    which agency holds it."""
    try:
        category = DataCategory(category_value)
    except ValueError:
        raise NotFound(category_value) from None
    # Decided as the page decides it, but nothing is opened or logged as viewed: an
    # explanation is not a disclosure (45 CFR 164.528, 42 CFR 2.24).
    decided = participant_page(session, services, user, public_id, meta, reveal=False)
    section = next(s for s in decided.sections if s.category is category)
    actor = repo.actor(user)
    lines = []
    if section.withheld:
        lines.append(f"Some {category.info.label.lower()} information is withheld from "
                     f"{actor.organization.name} because {section.withheld_reason}.")
    else:
        lines.append(f"Nothing in {category.info.label.lower()} is withheld from "
                     f"{actor.organization.name}.")
    if section.withheld_next:
        lines.append(section.withheld_next)
    lines.append("Only the rule is shown here, never the withheld information, nor whether "
                 "there is any.")
    services.audit.append(session, staff_event(
        AuditAction.DECISION_EXPLAIN, user, meta,
        participant_id=_participant(session, public_id).id, category=category.value,
        decision="deny" if section.withheld else "permit"))
    return lines


@dataclass(frozen=True, slots=True)
class EmergencyMatch:
    """A person found by the emergency search: the id and, to confirm who it is before asking
    for access, their name and date of birth (nothing else)."""
    public_id: str
    name: PersonName | None  # None: searched by id, or it could not be decrypted


def emergency_search(session: Session, services: Services, user: m.StaffUser, query: str,
                     meta: RequestMeta) -> list[EmergencyMatch]:
    """Exact search across all participants, for emergency access only (audited). A search
    by full name, family name or date of birth shows each match's name and date of birth, so
    the clinician can confirm the person in front of them before asking for access: what they
    typed already identifies someone, and the match adds only what tells two people apart
    (42 CFR 2.51; no information category is opened). A search by portal id shows no name, so
    ids cannot be turned into names."""
    vault = services.vault.ready(session)
    found = find(session, services.vault, query)
    # Anything that can be read as an id, however typed ("lp 7k3m xp9f"), counts as one.
    by_id = bool(public_ids.stored_forms(query))
    matches = []
    events = []
    for participant in found:
        name: PersonName | None = None
        if not by_id:
            try:
                name = vault.open_participant(participant)
            except DecryptionError as exc:
                events.append(staff_event(
                    AuditAction.CRYPTO_DECRYPT_FAILURE, user, meta,
                    participant_id=participant.id, reasons=(exc.reason,),
                    detail={"table": exc.table, "column": exc.column}))
        matches.append(EmergencyMatch(participant.public_id, name))
    services.audit.append_many(session, [staff_event(
        AuditAction.PARTICIPANT_VIEW, user, meta,
        record_ids=tuple(x.public_id for x in matches), decision="permit",
        reasons=("break_glass",),
        detail={"view": "emergency search",
                "identity_shown": [x.public_id for x in matches if x.name is not None]}),
        *events])
    return matches
