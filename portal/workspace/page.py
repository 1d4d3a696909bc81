"""The participant page, decided: from what the workspace loaded (the participant's context,
their records and goals still sealed, the organizations) to the page's sections, the goals it
shows, its notices and the audit events to append.

Pure: no database and no decryption. decide() is asked for each category and source
organization; what it permits is what the caller may open (``PagePlan`` names each record and
goal detail to open, and nothing else), and ``PagePlan.events`` is what the caller appends
before it returns anything (portal/workspace/service.py::participant_page).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from portal.domain import decision as d
from portal.domain import permissions
from portal.domain.audit import AuditAction, NewAuditEvent
from portal.domain.explain import (
    CONSENT_REASONS,
    REASON_ORDER,
    Names,
    Reader,
    leading_reason,
    next_steps,
    reason_text,
    withheld_line,
)
from portal.domain.ports import RolePolicy
from portal.domain.text import N_
from portal.domain.vocabulary import (
    GOAL_DETAIL_CATEGORY,
    Action,
    DataCategory,
    GoalDomain,
    GoalStatus,
    Purpose,
    Role,
    Sector,
)
from portal.kernel.events import StaffRef, decision_detail, staff_event
from portal.kernel.request import RequestMeta

# --- what the page shows --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShownRecord:
    id: str
    title: str | None  # None: could not be decrypted (shown as unavailable)
    body: str | None
    author: str
    effective_date: date


@dataclass(frozen=True, slots=True)
class CategorySection:
    category: DataCategory
    label: str
    records: list[ShownRecord]
    withheld: bool
    withheld_reason: str
    notices: list[str]
    can_create: bool
    withheld_line: str = ""  # explain.Withheld: the one line the section shows
    withheld_next: str = ""  # what the reader can do about it (explain.next_step)


@dataclass(frozen=True, slots=True)
class GoalLine:
    id: str
    summary: str | None  # None: it cannot be decrypted (shown as unavailable)
    status: str
    status_note: str | None  # None: likewise
    owner: str
    urgent: bool
    detail: str | None  # None: withheld (only the status is shared)
    detail_category: DataCategory | None  # None: the line may not say what the goal is about
    can_update: bool = False  # the user's organization owns it and may record progress
    part2: bool = False  # disclosed by a Part 2 program: the 42 CFR 2.32 notice goes with it
    since: datetime | None = None  # when the goal (an immediate need) was set
    # Only "engaged in services": no domain, provider, status or note (decide()'s
    # STATUS_AS_ENGAGEMENT obligation, for a goal about care the reader must never see).
    engagement_only: bool = False
    # Where it goes among immediate needs (urgency_key): the most pressing first.
    order: tuple[int, float] = (4, 0.0)
    # The detail was permitted but could not be decrypted: shown as unavailable (and not
    # counted as disclosed), never as withheld.
    detail_unavailable: bool = False


ENGAGED_IN_SERVICES = N_("Engaged in services")

# How pressing an immediate need is, by what it is about: a bed tonight first, then food,
# then care, then the rest (DESIGN: "a bed tonight, food, utility assistance").
URGENCY: dict[GoalDomain, int] = {
    GoalDomain.SHELTER: 0, GoalDomain.FOOD: 1, GoalDomain.HEALTH: 2,
    GoalDomain.MENTAL_HEALTH: 2, GoalDomain.TREATMENT: 2, GoalDomain.UTILITIES: 3,
}
NOT_URGENT_DOMAIN = 4


def urgency_key(domain: GoalDomain, since: datetime | None) -> tuple[int, float]:
    """Immediate needs in order: the most pressing kind first, and within a kind the newest
    first (a need raised an hour ago is likelier still open tonight than one from last week;
    an older need still open is on the caseload's list either way)."""
    return (URGENCY.get(domain, NOT_URGENT_DOMAIN), -(since.timestamp() if since else 0.0))


# --- what the page is made from ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SealedRecord:
    """A record as loaded, its title and body still sealed."""
    id: str
    category: str
    organization_id: int
    effective_date: date


@dataclass(frozen=True, slots=True)
class SealedGoal:
    """A case-plan goal as loaded, its detail still sealed (``has_detail``: there is one)."""
    id: str
    organization_id: int
    domain: GoalDomain
    summary: str | None  # opened; None when it cannot be decrypted
    status: str
    status_note: str | None
    urgent: bool
    has_detail: bool
    since: datetime | None = None  # when the goal was set


@dataclass(frozen=True, slots=True)
class PageInputs:
    """Everything the page is decided from. The caller has already refused a user whose roles
    see no participant information, and one neither on the care team nor holding a grant."""
    user: StaffRef  # who the audit events name
    user_organization_id: int
    actor: d.Actor
    meta: RequestMeta
    policy: RolePolicy
    participant_id: uuid.UUID
    public_id: str
    context: d.ParticipantContext
    at: datetime
    on_team: bool  # the user's organization is on the care team today
    grant: d.BreakGlassGrant | None  # the user's current emergency access, if any
    organizations: Mapping[int, d.Organization]
    records: Sequence[SealedRecord]  # newest first
    goals: Sequence[SealedGoal]  # urgent first, then oldest first
    # False: decide the sections but show nothing and audit no view (an explanation).
    reveal: bool = True


# --- what the caller does with it ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordToShow:
    """A permitted record: the caller opens it (and only it)."""
    record: SealedRecord
    author: str

    def shown(self, title: str | None, body: str | None) -> ShownRecord:
        return ShownRecord(self.record.id, title, body, self.author, self.record.effective_date)

    def unopened(self) -> ShownRecord:
        return self.shown(None, None)


@dataclass(frozen=True, slots=True)
class SectionPlan:
    category: DataCategory
    label: str
    records: list[RecordToShow]  # newest first
    withheld: bool
    withheld_reason: str
    notices: list[str]
    can_create: bool
    withheld_line: str = ""
    withheld_next: str = ""

    def section(self, records: list[ShownRecord]) -> CategorySection:
        return CategorySection(self.category, self.label, records, self.withheld,
                               self.withheld_reason, self.notices, self.can_create,
                               self.withheld_line, self.withheld_next)


@dataclass(frozen=True, slots=True)
class GoalToShow:
    """A goal whose status is permitted; its detail is opened only if ``detail_permitted``."""
    goal: SealedGoal
    owner: str
    detail_category: DataCategory
    detail_permitted: bool
    can_update: bool
    status_part2: bool  # the status decision carries the 42 CFR 2.32 notice
    detail_part2: bool  # the detail decision does (counts only if the detail is shown)
    engagement_only: bool = False  # decide() permits only "engaged in services"

    def line(self, detail: str | None, *, unavailable: bool = False) -> GoalLine:
        """``detail``: the opened detail, or None (withheld, or it could not be opened:
        ``unavailable``)."""
        goal = self.goal
        if self.engagement_only:
            return GoalLine(goal.id, ENGAGED_IN_SERVICES, "", "", "", False, None, None,
                            part2=self.status_part2, engagement_only=True)
        part2 = self.status_part2 or (detail is not None and self.detail_part2)
        return GoalLine(goal.id, goal.summary, GoalStatus(goal.status).value, goal.status_note,
                        self.owner, goal.urgent, detail, self.detail_category, self.can_update,
                        part2, goal.since, order=urgency_key(goal.domain, goal.since),
                        detail_unavailable=unavailable and detail is None)


@dataclass(frozen=True, slots=True)
class EventPlan:
    """A category's audit event, with what is needed to correct it when something it names
    cannot be opened: which organization disclosed each id, and whether anything was
    withheld."""
    event: NewAuditEvent
    disclosed_by: Mapping[str, str]  # record or goal id -> the organization's slug
    withheld: bool

    def without(self, unavailable: Collection[tuple[str, str]]) -> NewAuditEvent:
        """The event as it must be written when the ids in ``unavailable`` ((category, id)
        pairs that did not decrypt) were not shown: they are not disclosed, so they leave
        ``record_ids`` and, with them, organizations that disclosed nothing else; they are
        named under ``detail["unavailable"]`` (the decrypt-failure event says why)."""
        event = self.event
        gone = [i for i in event.record_ids if (event.category or "", i) in unavailable]
        if not gone:
            return event
        kept = tuple(i for i in event.record_ids if i not in gone)
        disclosers = sorted({self.disclosed_by[i] for i in kept if i in self.disclosed_by}
                            - {event.actor_organization})
        withheld_only = not kept and self.withheld
        return replace(
            event, record_ids=kept,
            action=AuditAction.RECORD_WITHHOLD if withheld_only else event.action,
            decision="deny" if withheld_only else event.decision,
            detail={**event.detail, "disclosers": disclosers, "unavailable": sorted(gone)})


@dataclass(frozen=True, slots=True)
class PagePlan:
    sections: list[SectionPlan]  # in DataCategory order (emergency access: what it opens first)
    goals: list[GoalToShow]  # empty unless revealing
    notices: list[str]  # for the whole page (the care-coordination-only notice)
    planned: list[EventPlan]  # the events, none unless revealing
    break_glass_until: datetime | None
    creatable: list[DataCategory]
    goal_domains: list[GoalDomain]

    @property
    def events(self) -> list[NewAuditEvent]:
        """To append, in order, before returning, when everything shown could be opened."""
        return [p.event for p in self.planned]

    def events_without(self, unavailable: Collection[tuple[str, str]]) -> list[NewAuditEvent]:
        """To append when the (category, id) pairs in ``unavailable`` could not be decrypted:
        shown as unavailable, they are not disclosed (EventPlan.without)."""
        return [p.without(unavailable) for p in self.planned]

    @property
    def shown_ids(self) -> list[str]:
        """The records to open, section by section."""
        return [r.record.id for s in self.sections for r in s.records]


# --- deciding -------------------------------------------------------------------------------


def view_purposes(policy: RolePolicy, actor: d.Actor, category: DataCategory,
                  emergency: bool) -> list[Purpose]:
    """The purposes to ask decide() about: the role's, or emergency treatment only."""
    if emergency:
        return [Purpose.ETREAT]
    return permissions.view_purposes(policy, actor, category)


def decide_source(policy: RolePolicy, actor: d.Actor, participant_id: str,
                  context: d.ParticipantContext, category: DataCategory,
                  source: d.Organization, purposes: list[Purpose],
                  at: datetime, about: DataCategory | None = None
                  ) -> tuple[d.Decision, Purpose]:
    """The first permit among the purposes the user's role may use (one that shows a goal's
    status in full before one that shows only "engaged in services"), else the first deny.
    ``about``: for a goal's status, the goal's own category."""
    first: tuple[d.Decision, Purpose] | None = None
    partial: tuple[d.Decision, Purpose] | None = None
    for purpose in purposes:
        decision = d.decide(d.AccessRequest(actor, participant_id, category, Action.VIEW,
                                            purpose, at, source, about), context, policy)
        if decision.permitted and not decision.engagement_only:
            return decision, purpose
        if decision.permitted:
            partial = partial or (decision, purpose)
        first = first or (decision, purpose)
    assert first is not None
    return partial or first


@dataclass(frozen=True, slots=True)
class _Source:
    """One source organization's decision for one category."""
    organization: d.Organization
    decision: d.Decision
    purpose: Purpose

    @property
    def slug(self) -> str:
        return self.organization.slug


@dataclass(frozen=True, slots=True)
class _Decided:
    category: DataCategory
    purposes: list[Purpose]
    holders: frozenset[str]  # organizations with something in the category (records, goals)
    sources: list[_Source]  # every candidate, by slug

    @property
    def permitted(self) -> list[_Source]:
        return [s for s in self.sources if s.decision.permitted]

    @property
    def withheld(self) -> list[d.Decision]:
        return [s.decision for s in self.sources if not s.decision.permitted]


GoalIds = Mapping[tuple[DataCategory, str], list[str]]


def _goal_ids(inputs: PageInputs) -> GoalIds:
    """A goal's status is its owner's `progress`, its detail the owner's information in the
    goal's own category: showing either is a disclosure by the owner, like a record."""
    ids: dict[tuple[DataCategory, str], list[str]] = {}
    for goal in inputs.goals:
        owner = inputs.organizations[goal.organization_id].slug
        ids.setdefault((DataCategory.PROGRESS, owner), []).append(goal.id)
        if goal.has_detail:
            ids.setdefault((GOAL_DETAIL_CATEGORY[goal.domain], owner), []).append(goal.id)
    return ids


def _records_in(inputs: PageInputs, category: DataCategory) -> list[SealedRecord]:
    return [r for r in inputs.records if r.category == category.value]


def _by_slug(organizations: Mapping[int, d.Organization], slug: str) -> d.Organization:
    return next(o for o in organizations.values() if o.slug == slug)


_AUTHORS: dict[tuple[int, str, Sector, DataCategory], bool] = {}


def sector_may_author(policy: RolePolicy, sector: Sector, category: DataCategory) -> bool:
    """Some role of the sector may add information in this category (the role policy, and
    the Golden Rule): an agency that never can has nothing there to withhold. Remembered per
    policy version (the answer is a fact about the policy files, not about a participant)."""
    key = (id(policy), policy.version, sector, category)
    if key not in _AUTHORS:
        if len(_AUTHORS) > 4096:
            _AUTHORS.clear()
        _AUTHORS[key] = any(permissions.may_create(
            policy, d.Actor(None, d.Organization("any", sector), frozenset({role})), category)
            for role in Role)
    return _AUTHORS[key]


def _candidates(inputs: PageInputs, category: DataCategory,
                holders: frozenset[str]) -> list[str]:
    """The holders and every current team member whose sector may author the category:
    deciding for the team too means "withheld" does not depend on whether anything exists
    (its existence can itself be a disclosure, e.g. Part 2 records). A member that could
    never have written anything here (police and a case plan) is not asked about: saying
    its information is withheld would be noise, and says nothing about records either way."""
    today = inputs.at.date()
    by_slug = {o.slug: o for o in inputs.organizations.values()}
    team = {link.organization_slug for link in inputs.context.care_team if link.current(today)
            if link.organization_slug in by_slug
            and sector_may_author(inputs.policy, by_slug[link.organization_slug].sector,
                                  category)}
    return sorted((holders | team) & set(by_slug))


def _decide_category(inputs: PageInputs, category: DataCategory,
                     goal_ids: GoalIds) -> _Decided:
    purposes = view_purposes(inputs.policy, inputs.actor, category, emergency=not inputs.on_team)
    holders = frozenset(
        {inputs.organizations[r.organization_id].slug for r in _records_in(inputs, category)}
        | {slug for (c, slug) in goal_ids if c is category})
    sources = []
    for slug in _candidates(inputs, category, holders):
        source = _by_slug(inputs.organizations, slug)
        decision, purpose = decide_source(inputs.policy, inputs.actor, str(inputs.participant_id),
                                          inputs.context, category, source, purposes, inputs.at)
        sources.append(_Source(source, decision, purpose))
    return _Decided(category, purposes, holders, sources)


# --- building the page ----------------------------------------------------------------------


def _section_notices(decided: _Decided) -> list[str]:
    """The 42 CFR 2.32 notice, where a Part 2 program's information is disclosed."""
    return sorted({d.Obligation.NOTICE_PART2.text for s in decided.permitted
                   if d.Obligation.NOTICE_PART2 in s.decision.obligations
                   and s.slug in decided.holders})


def _page_notices(decided: _Decided) -> set[str]:
    """The care-coordination-only notice (the LEAD Golden Rule, for justice partners)."""
    return {d.Obligation.NOTICE_CARE_COORDINATION.text for s in decided.permitted
            if d.Obligation.NOTICE_CARE_COORDINATION in s.decision.obligations}


def _records_to_show(inputs: PageInputs, decided: _Decided) -> list[RecordToShow]:
    records = _records_in(inputs, decided.category)
    shown = [RecordToShow(r, s.organization.name) for s in decided.permitted for r in records
             if inputs.organizations[r.organization_id].slug == s.slug]
    return sorted(shown, key=lambda x: (x.record.effective_date, x.record.id), reverse=True)


def _goals_shown_by(decided: _Decided, goal_ids: GoalIds,
                    progress: Mapping[str, d.Decision]) -> dict[str, list[str]]:
    """The goals each permitted source discloses in this category: only with their status."""
    shown: dict[str, list[str]] = {}
    for source in decided.permitted:
        ids = goal_ids.get((decided.category, source.slug), [])
        status = progress.get(source.slug)
        if ids and status is not None and status.permitted:
            shown[source.slug] = ids
    return shown


def reader_of(inputs: PageInputs) -> Reader:
    """Who reads the page, for what a withheld section tells them to do."""
    if not inputs.on_team:
        return Reader.EMERGENCY
    if permissions.may(inputs.policy, inputs.actor, permissions.Permission.CONSENT_CREATE):
        return Reader.CONSENT_TAKER
    if inputs.actor.organization.sector.is_justice:
        return Reader.JUSTICE
    return Reader.TEAM


@dataclass(frozen=True, slots=True)
class _Withheld:
    reason: str  # why, in words (the rule, never the content nor which agency holds what)
    line: str  # Withheld code: the section's one line
    next_step: str  # what the reader can do about it


def _withheld(inputs: PageInputs, decided: _Decided, reader: Reader) -> _Withheld:
    """Why (some of) the category is withheld, and what this reader can do about it, from
    decide()'s reasons (portal.domain.explain). The agencies named (to a case manager only)
    are the care-team members whose decision gave that reason: every member is decided
    whatever exists, so naming them says nothing about records."""
    if not decided.withheld:
        return _Withheld("", "", "")
    def told(why: d.Reason) -> d.Reason:
        # That Part 2 rules are what withholds it would tell anyone but the case manager that
        # a Part 2 program is on the team (42 CFR 2.13(c)): to them it is "no consent".
        return d.Reason.NO_CONSENT if why is d.Reason.PART2_CONSENT_REQUIRED \
            and reader is not Reader.CONSENT_TAKER else why

    reason = told(leading_reason(x.reasons[0] for x in decided.withheld))
    today = inputs.at.date()
    team = {link.organization_slug for link in inputs.context.care_team if link.current(today)}
    actor = inputs.actor
    request = d.AccessRequest(actor, str(inputs.participant_id), decided.category, Action.VIEW,
                              decided.purposes[0], inputs.at, actor.organization)

    def names(why: d.Reason) -> Names:
        # Only the case manager, who builds the care team, is told which agencies: to anyone
        # else that a Part 2 program is on the team would itself disclose treatment (2.12).
        sources = sorted(s.organization.name for s in decided.sources
                         if not s.decision.permitted and told(s.decision.reasons[0]) is why
                         and s.slug in team and s.slug != actor.organization.slug
                         ) if reader is Reader.CONSENT_TAKER else []
        return Names(participant=inputs.public_id,
                     source=_and(sources) if sources else "other agencies on the care team",
                     recipient=actor.organization.name)

    because = reason_text(reason, request, replace(names(reason), source="another agency"))
    # Each consent the participant could give is its own step (a release for some agencies,
    # a Part 2 consent for a Part 2 program's), the leading reason's first.
    others = {told(x.reasons[0]) for x in decided.withheld if told(x.reasons[0]) is not reason
              and x.reasons[0] in CONSENT_REASONS and reason in CONSENT_REASONS}
    reasons = [reason, *sorted(others, key=REASON_ORDER.index)]
    return _Withheld(because, withheld_line(reason, reader).value,
                     next_steps([(why, names(why)) for why in reasons], request, reader))


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def category_event(user: StaffRef, meta: RequestMeta, participant_id: uuid.UUID,
                   policy_version: str, category: DataCategory, purpose: Purpose,
                   shown: list[str], withheld: list[d.Decision],
                   all_decisions: list[d.Decision], disclosed_by: set[str],
                   grant: d.BreakGlassGrant | None, *, decided_at: datetime,
                   context: d.ParticipantContext, view: str | None = None
                   ) -> NewAuditEvent:
    """One event per category: what was shown (records and goals, by id) or withheld, and
    from whom; disclosures to this organization by others feed the accounting of
    disclosures.

    The event is written after the decision (at the end of the page), so it also says when
    the decision was made (``decided_at``), where the audit chain's head was when its
    consents were read (``observed_seq``) and the version of each consent it relied on: a
    decision with ``observed_seq`` below a revocation's seq read the consent before that
    revocation committed, whenever its own event is written."""
    permitted = [x for x in all_decisions if x.permitted]
    consent_ids = sorted({x.consent_id for x in permitted if x.consent_id})
    lead = permitted[0] if permitted else (withheld[0] if withheld else None)
    reasons = sorted({r.value for x in all_decisions for r in x.reasons})
    # Nothing shown and something withheld: audited as withheld, not as a view (and not as a
    # refused attempt: the user asked for the page, which they may open).
    action = AuditAction.RECORD_WITHHOLD if withheld and not shown else AuditAction.RECORD_VIEW
    return staff_event(
        action, user, meta, participant_id=participant_id,
        category=category.value, record_ids=tuple(shown),
        purpose=purpose.value,
        decision="permit" if shown or (permitted and not withheld) else "deny",
        reasons=tuple(reasons),
        consent_ids=tuple(consent_ids),
        policy_version=policy_version,
        detail={"disclosers": sorted(disclosed_by - {user.organization.slug}),
                "policy_rule": lead.policy_rule if lead else None,
                **decision_detail(decided_at, context, consent_ids),
                **({"break_glass_grant": grant.id} if grant else {}),
                **({"view": view} if view else {})})


@dataclass(frozen=True, slots=True)
class _Category:
    section: SectionPlan
    event: EventPlan
    page_notices: set[str]


def _category(inputs: PageInputs, decided: _Decided, goal_ids: GoalIds,
              progress: Mapping[str, d.Decision]) -> _Category:
    """One category's section and its audit event."""
    category = decided.category
    records = _records_to_show(inputs, decided)
    goals = _goals_shown_by(decided, goal_ids, progress)
    shown_ids = [r.record.id for r in records] + [i for ids in goals.values() for i in ids]
    disclosed_by = {inputs.organizations[r.record.organization_id].slug
                    for r in records} | set(goals)
    purpose = next((s.purpose for s in decided.permitted), decided.purposes[0])
    withheld = _withheld(inputs, decided, reader_of(inputs))
    section = SectionPlan(
        category=category, label=category.info.label, records=records,
        withheld=bool(decided.withheld), withheld_reason=withheld.reason,
        withheld_line=withheld.line, withheld_next=withheld.next_step,
        notices=_section_notices(decided),
        can_create=inputs.on_team and permissions.may_create(inputs.policy, inputs.actor,
                                                             category))
    event = category_event(
        inputs.user, inputs.meta, inputs.participant_id, inputs.policy.version, category,
        purpose, shown_ids, decided.withheld, [s.decision for s in decided.sources],
        disclosed_by, inputs.grant, decided_at=inputs.at, context=inputs.context)
    by_id = {r.record.id: inputs.organizations[r.record.organization_id].slug for r in records}
    by_id.update({i: slug for slug, ids in goals.items() for i in ids})
    return _Category(section, EventPlan(event, by_id, bool(decided.withheld)),
                     _page_notices(decided))


StatusDecider = Callable[[d.Organization, DataCategory], d.Decision]


def _goal_to_show(goal: SealedGoal, owner: d.Organization,
                  decisions: Mapping[tuple[DataCategory, str], d.Decision],
                  status_of: StatusDecider, updater_org: int | None) -> GoalToShow | None:
    progress = decisions.get((DataCategory.PROGRESS, owner.slug))
    if progress is None or not progress.permitted:
        return None
    detail_category = GOAL_DETAIL_CATEGORY[goal.domain]
    # The status asked about the goal's own category: decide() says whether the line may
    # say what the goal is about and who provides it.
    status = status_of(owner, detail_category)
    if not status.permitted:
        return None
    if status.engagement_only:
        return GoalToShow(goal, "", detail_category, detail_permitted=False, can_update=False,
                          status_part2=d.Obligation.NOTICE_PART2 in status.obligations,
                          detail_part2=False, engagement_only=True)
    detail = decisions.get((detail_category, owner.slug))
    return GoalToShow(
        goal, owner.name, detail_category,
        detail_permitted=detail is not None and detail.permitted,
        can_update=goal.organization_id == updater_org,
        status_part2=d.Obligation.NOTICE_PART2 in status.obligations,
        detail_part2=detail is not None and d.Obligation.NOTICE_PART2 in detail.obligations)


def _status_decider(inputs: PageInputs) -> StatusDecider:
    """Each goal's status decided with what it is about (one decision per owner and goal
    category)."""
    purposes = view_purposes(inputs.policy, inputs.actor, DataCategory.PROGRESS,
                             emergency=not inputs.on_team)
    cache: dict[tuple[str, DataCategory], d.Decision] = {}

    def status_of(owner: d.Organization, about: DataCategory) -> d.Decision:
        key = (owner.slug, about)
        if key not in cache:
            cache[key] = decide_source(inputs.policy, inputs.actor, str(inputs.participant_id),
                                       inputs.context, DataCategory.PROGRESS, owner, purposes,
                                       inputs.at, about)[0]
        return cache[key]
    return status_of


def _goals(inputs: PageInputs, decisions: Mapping[tuple[DataCategory, str], d.Decision],
           may_update: bool) -> list[GoalToShow]:
    """Goal statuses are `progress`; their details belong to the goal's own category. Only
    the owning organization updates a goal (if the user may record progress). Goals shown
    only as "engaged in services" become one such line (how many there are, and of what
    kind, is not told)."""
    updater = inputs.user_organization_id if may_update else None
    status_of = _status_decider(inputs)
    lines = (_goal_to_show(g, inputs.organizations[g.organization_id], decisions, status_of,
                           updater) for g in inputs.goals)
    shown: list[GoalToShow] = []
    engaged = False
    for line in lines:
        if line is None or (line.engagement_only and engaged):
            continue
        engaged = engaged or line.engagement_only
        shown.append(line)
    return shown


def _decision_order() -> list[DataCategory]:
    """`progress` first: a goal's detail is shown only with its status."""
    return sorted(DataCategory, key=lambda c: c is not DataCategory.PROGRESS)


def _all_decisions(decided: Iterable[_Decided]) -> dict[tuple[DataCategory, str], d.Decision]:
    return {(x.category, s.slug): s.decision for x in decided for s in x.sources}


# Under emergency access the sections it opens come first, what an emergency needs most
# first (current substance use treatment and medications before the rest).
EMERGENCY_ORDER = (DataCategory.SUD_TREATMENT, DataCategory.MENTAL_HEALTH, DataCategory.HEALTH)


def _section_order(inputs: PageInputs) -> Callable[[SectionPlan], tuple[int, int]]:
    """Category order; under emergency access (not on the care team), the sections the grant
    opens first, so the clinician lands on them."""
    emergency = not inputs.on_team

    def key(section: SectionPlan) -> tuple[int, int]:
        index = list(DataCategory).index(section.category)
        if emergency and (section.records or not section.withheld):
            return (0, EMERGENCY_ORDER.index(section.category)
                    if section.category in EMERGENCY_ORDER else len(EMERGENCY_ORDER) + index)
        return (1, index)
    return key


def plan_page(inputs: PageInputs) -> PagePlan:
    """Every category decided per source organization, and from that the page: sections,
    goals, notices, and one audit event per category (in deciding order, `progress` first)."""
    goal_ids = _goal_ids(inputs)
    decided = [_decide_category(inputs, c, goal_ids) for c in _decision_order()]
    progress = {s.slug: s.decision for x in decided if x.category is DataCategory.PROGRESS
                for s in x.sources}
    built = [_category(inputs, x, goal_ids, progress) for x in decided]
    sections = sorted((b.section for b in built), key=_section_order(inputs))
    decisions = _all_decisions(decided)
    policy, actor = inputs.policy, inputs.actor
    may_update_goals = inputs.on_team and permissions.may_create(policy, actor,
                                                                 DataCategory.PROGRESS)
    grant = inputs.grant
    return PagePlan(
        sections=sections,
        goals=_goals(inputs, decisions, may_update_goals) if inputs.reveal else [],
        notices=sorted({notice for b in built for notice in b.page_notices}),
        planned=[b.event for b in built] if inputs.reveal else [],
        break_glass_until=grant.expires_at if grant and not inputs.on_team else None,
        creatable=[s.category for s in sections if s.can_create],
        goal_domains=[g for g in GoalDomain if may_update_goals
                      and permissions.may_create(policy, actor, GOAL_DETAIL_CATEGORY[g])])
