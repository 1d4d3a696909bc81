"""decide(): the one function that permits or denies every access to participant information.

DESIGN section 4. It permits only when all of these hold, and denies otherwise:

1. role policy: the role, in its organization's sector, may do this action on this category for
   this purpose (casbin files in policies/, behind the RolePolicy port);
2. relationship: the organization is on the participant's care team now, or the user holds an
   unexpired break-glass grant (42 CFR 2.51) and asks for emergency treatment;
3. source: the information is the user's own organization's, or an active, valid, unexpired
   consent permits its disclosure to this organization for this category and purpose, and no
   deny provision of any consent in force matches. Part 2 information needs a Part 2 consent,
   and reaches justice agencies only through a 42 CFR 2.35 consent for monitoring.

A goal's status is `progress`, but its domain and its provider say what kind of care the
participant gets. Asked about a goal (``AccessRequest.about``, the goal's own category) by a
reader who must never see that category (the Golden Rule for justice agencies, or a deny row
of the role policy, as for defenders and health), a permitted status carries the obligation
``STATUS_AS_ENGAGEMENT``: it is shown as "engaged in services", with no domain, provider, status
or note, unless a 42 CFR 2.35 consent from that program permits it (monitoring).

Any exception or unknown value is a deny with reason ``error``. The result does not depend on
the order of consents or provisions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from portal.domain.consent import (
    NOTHING_OCCURRED,
    NOTICE_PART2,
    ConsentKind,
    ConsentStatus,
    Directive,
    Occurred,
    Provision,
    ProvisionEffect,
    missing_elements,
)
from portal.domain.ports import PolicyVerdict, RolePolicy
from portal.domain.vocabulary import (
    HEALTH_CATEGORIES,
    PART2_CATEGORIES,
    Action,
    DataCategory,
    Purpose,
    Role,
    Sector,
    parse,
)

NOTICE_CARE_COORDINATION = (
    "For LEAD care coordination only. Not for use as the basis of any adverse action "
    "(arrest, charge, violation or sentence)."
)


class Reason(StrEnum):
    """Stable machine codes explaining a decision (kept sorted)."""

    ACCOUNT_SUSPENDED = "account_suspended"
    BREAK_GLASS = "break_glass"
    CONSENT = "consent"
    CONSENT_EXPIRED = "consent_expired"
    CONSENT_INVALID = "consent_invalid"
    CONSENT_REVOKED = "consent_revoked"
    DENIED_BY_PROVISION = "denied_by_provision"
    ERROR = "error"
    GOLDEN_RULE = "golden_rule"
    NO_CONSENT = "no_consent"
    NO_ROLE_PERMISSION = "no_role_permission"
    NOT_ON_CARE_TEAM = "not_on_care_team"
    OWN_ORGANIZATION = "own_organization"
    PART2_CONSENT_REQUIRED = "part2_consent_required"


class Obligation(StrEnum):
    AUDIT = "audit"
    NOTICE_PART2 = "notice_part2"  # 42 CFR 2.32 notice accompanies each disclosure
    NOTICE_CARE_COORDINATION = "notice_care_coordination"  # LEAD Golden Rule
    # A goal status that would reveal health care: show only "engaged in services".
    STATUS_AS_ENGAGEMENT = "status_as_engagement"

    @property
    def text(self) -> str:
        return {Obligation.NOTICE_PART2: NOTICE_PART2,
                Obligation.NOTICE_CARE_COORDINATION: NOTICE_CARE_COORDINATION}.get(self, "")


@dataclass(frozen=True, slots=True)
class Organization:
    slug: str
    sector: Sector
    part2_program: bool = False
    name: str = ""

    @property
    def refs(self) -> frozenset[str]:
        """How consents may name this organization: by itself or by its sector."""
        return frozenset({f"org:{self.slug}", f"sector:{self.sector.value}"})


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: int | None
    organization: Organization
    roles: frozenset[Role]
    active: bool = True


@dataclass(frozen=True, slots=True)
class CareTeamLink:
    organization_slug: str
    start: date
    end: date | None = None

    def current(self, day: date) -> bool:
        # The end date is exclusive: ending a link today takes effect at once.
        return self.start <= day and (self.end is None or day < self.end)


@dataclass(frozen=True, slots=True)
class BreakGlassGrant:
    id: str
    user_id: int
    started_at: datetime
    expires_at: datetime

    def current(self, at: datetime) -> bool:
        return self.started_at <= at < self.expires_at


@dataclass(frozen=True, slots=True)
class ParticipantContext:
    """What the repository loads for one participant (bounded queries, see db/repositories)."""

    participant_id: str
    care_team: tuple[CareTeamLink, ...] = ()
    consents: tuple[Directive, ...] = ()
    break_glass: tuple[BreakGlassGrant, ...] = ()
    # Recorded events (exit from LEAD, final disposition...) that end or unlock consents.
    occurred: Occurred = field(default_factory=lambda: NOTHING_OCCURRED)
    # The audit chain's head as read just before the consents were (None: not read). A
    # consent change committed before that read has a seq at most this, and was seen; one
    # whose event has a greater seq committed after the decision read the consents.
    observed_seq: int | None = None


@dataclass(frozen=True, slots=True)
class AccessRequest:
    actor: Actor
    participant_id: str
    category: DataCategory
    action: Action
    purpose: Purpose
    at: datetime
    # The organization that authored the information asked about.
    source: Organization
    # For a goal's status (`progress`): the goal's own category (GOAL_DETAIL_CATEGORY), which
    # its domain and provider reveal.
    about: DataCategory | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    decision: str  # "permit" | "deny"
    reasons: tuple[Reason, ...]
    policy_rule: str | None = None
    consent_id: str | None = None
    provision: int | None = None  # index of the deciding provision within its consent
    break_glass_grant: str | None = None
    obligations: tuple[Obligation, ...] = (Obligation.AUDIT,)
    policy_version: str | None = None
    detail: str = ""  # for an error: what went wrong (never record content)
    consulted: tuple[str, ...] = field(default=())  # consent ids that were considered

    @property
    def permitted(self) -> bool:
        return self.decision == "permit"

    @property
    def engagement_only(self) -> bool:
        """Permitted, but only as "engaged in services" (a goal status about health care)."""
        return self.permitted and Obligation.STATUS_AS_ENGAGEMENT in self.obligations


def _deny(reason: Reason, **kwargs: object) -> Decision:
    return Decision("deny", (reason,), **kwargs)  # type: ignore[arg-type]


def role_verdict(policy: RolePolicy, sector: Sector, roles: Iterable[Role], resource: str,
                 action: str, purpose: Purpose) -> PolicyVerdict:
    """The role policy over all of a user's roles: a matching deny row of any role wins;
    otherwise the first allow (roles in name order); otherwise default deny."""
    allow: PolicyVerdict | None = None
    for role in sorted(roles):
        verdict = policy.check(sector, role, resource, action, purpose)
        if not verdict.allowed and verdict.rule is not None:
            return verdict
        if verdict.allowed and allow is None:
            allow = verdict
    return allow or PolicyVerdict(allowed=False, rule=None)


def is_part2_information(category: DataCategory, source: Organization) -> bool:
    """SUD records, or anything from a Part 2 program that would identify a patient (2.11, 2.12)."""
    return category in PART2_CATEGORIES or source.part2_program


def on_care_team(context: ParticipantContext, organization_slug: str, day: date) -> bool:
    """The organization is on the participant's care team on this day: the one predicate for
    "current care-team member" (start inclusive, end exclusive; ``CareTeamLink.current``)."""
    return any(link.organization_slug == organization_slug and link.current(day)
               for link in context.care_team)


def decide(request: AccessRequest, context: ParticipantContext, policy: RolePolicy) -> Decision:
    """Permit or deny one access; never raises (any error is a deny with reason ``error``)."""
    try:
        return _decide(request, context, policy)
    except Exception as exc:  # noqa: BLE001 - fail closed on anything at all
        return _deny(Reason.ERROR, detail=f"{type(exc).__name__}: {exc}"[:300])


def _decide(request: AccessRequest, context: ParticipantContext, policy: RolePolicy) -> Decision:
    actor = request.actor
    # Parse everything again: a caller that built the request from strings fails closed here.
    category = parse(DataCategory, request.category)
    action = parse(Action, request.action)
    purpose = parse(Purpose, request.purpose)
    sector = parse(Sector, actor.organization.sector)
    parse(Sector, request.source.sector)
    if request.about is not None:
        parse(DataCategory, request.about)
    roles = sorted(parse(Role, r) for r in actor.roles)
    if request.at.tzinfo is None:
        raise ValueError("decision time must be timezone-aware")
    if context.participant_id != request.participant_id:
        raise ValueError("context loaded for another participant")
    version = policy.version
    if not actor.active:
        return _deny(Reason.ACCOUNT_SUSPENDED, policy_version=version)

    # The Golden Rule, independent of the policy files: justice never sees health detail.
    if sector.is_justice and category in HEALTH_CATEGORIES:
        return _deny(Reason.GOLDEN_RULE, policy_version=version)

    # 1. Role policy: deny rows win over any role's allow.
    verdict = role_verdict(policy, sector, roles, category.value, action, purpose)
    if not verdict.allowed:
        return _deny(Reason.NO_ROLE_PERMISSION, policy_rule=verdict.rule, policy_version=version)
    allow_rule = verdict.rule

    obligations = [Obligation.AUDIT]
    part2 = is_part2_information(category, request.source)
    if sector.is_justice:
        obligations.append(Obligation.NOTICE_CARE_COORDINATION)

    # 2. Relationship.
    day = request.at.date()
    on_team = on_care_team(context, actor.organization.slug, day)
    grant = None
    if not on_team:
        grants = sorted((g for g in context.break_glass
                         if g.user_id == actor.user_id and g.current(request.at)),
                        key=lambda g: g.id)
        if not grants or purpose is not Purpose.ETREAT:
            return _deny(Reason.NOT_ON_CARE_TEAM, policy_rule=allow_rule, policy_version=version)
        grant = grants[0]

    # 3. Source: own organization's information needs no consent.
    if request.source.slug == actor.organization.slug:
        return Decision("permit", (Reason.OWN_ORGANIZATION,), policy_rule=allow_rule,
                        obligations=tuple(obligations), policy_version=version)
    if _status_reveals_kept_category(request, category, sector, roles, purpose, policy):
        obligations.append(Obligation.STATUS_AS_ENGAGEMENT)
    if grant is not None:
        # 42 CFR 2.51: disclosure to medical personnel in a bona fide medical emergency.
        if part2:
            obligations.append(Obligation.NOTICE_PART2)
        return Decision("permit", (Reason.BREAK_GLASS,), policy_rule=allow_rule,
                        break_glass_grant=grant.id, obligations=tuple(obligations),
                        policy_version=version)
    return _by_consent(request, context, category, purpose, part2, sector, allow_rule,
                       obligations, version)


def _status_reveals_kept_category(request: AccessRequest, category: DataCategory,
                                  sector: Sector, roles: list[Role], purpose: Purpose,
                                  policy: RolePolicy) -> bool:
    """A goal status about a category this reader must never see: justice agencies and health
    (the Golden Rule), or an explicit deny row of the role policy (defenders and health). A
    category merely not granted (no row) does not count: that is minimum necessary, not a
    prohibition, and the status line is the case plan's ordinary summary."""
    if category is not DataCategory.PROGRESS or request.about is None:
        return False
    about = parse(DataCategory, request.about)
    if sector.is_justice and about in HEALTH_CATEGORIES:
        return True
    verdict = role_verdict(policy, sector, roles, about.value, Action.VIEW, purpose)
    return not verdict.allowed and verdict.rule is not None


def _by_consent(request: AccessRequest, context: ParticipantContext, category: DataCategory,
                purpose: Purpose, part2: bool, sector: Sector, allow_rule: str | None,
                obligations: list[Obligation], version: str) -> Decision:
    day = request.at.date()
    recipient_refs = request.actor.organization.refs
    discloser_refs = request.source.refs

    def matches(p: Provision) -> bool:
        return (bool(p.disclosers & discloser_refs) and bool(p.recipients & recipient_refs)
                and category in p.categories and purpose in p.purposes and p.in_period(day))

    permits: list[tuple[str, int]] = []
    denies: list[tuple[str, int]] = []
    near_miss: set[Reason] = set()
    consulted = tuple(sorted(c.id for c in context.consents))
    for consent in context.consents:
        if consent.participant_id != request.participant_id:
            continue
        hits = [(i, p) for i, p in enumerate(consent.provisions) if matches(p)]
        if not hits:
            continue
        status = consent.status_at(request.at, context.occurred)
        if status is not ConsentStatus.ACTIVE:
            if status is ConsentStatus.REVOKED:
                near_miss.add(Reason.CONSENT_REVOKED)
            elif status is ConsentStatus.EXPIRED:
                near_miss.add(Reason.CONSENT_EXPIRED)
            continue
        # A restriction in force always applies, even in a consent that could not permit.
        denies.extend((consent.id, i) for i, p in hits if p.effect is ProvisionEffect.DENY)
        permit_hits = [i for i, p in hits if p.effect is ProvisionEffect.PERMIT]
        if not permit_hits:
            continue
        # 42 CFR 2.31(c): a substantially deficient consent is no consent at all.
        if missing_elements(consent):
            near_miss.add(Reason.CONSENT_INVALID)
        elif _kind_serves(consent.kind, part2, sector, purpose):
            permits.extend((consent.id, i) for i in permit_hits)
        else:
            near_miss.add(Reason.PART2_CONSENT_REQUIRED)
    if denies:
        consent_id, index = min(denies)
        return _deny(Reason.DENIED_BY_PROVISION, policy_rule=allow_rule, consent_id=consent_id,
                     provision=index, policy_version=version, consulted=consulted)
    if permits:
        consent_id, index = min(permits)
        if Obligation.STATUS_AS_ENGAGEMENT in obligations:
            # 42 CFR 2.35: a criminal-justice consent from the program itself lets the justice
            # agency monitor that treatment's progress, so the status is shown as it is.
            kinds = {c.id: c.kind for c in context.consents}
            monitoring = sorted(p for p in permits
                                if kinds[p[0]] is ConsentKind.PART2_CRIMINAL_JUSTICE)
            if monitoring:
                consent_id, index = monitoring[0]
                obligations.remove(Obligation.STATUS_AS_ENGAGEMENT)
        if part2:
            obligations.append(Obligation.NOTICE_PART2)
        return Decision("permit", (Reason.CONSENT,), policy_rule=allow_rule,
                        consent_id=consent_id, provision=index, obligations=tuple(obligations),
                        policy_version=version, consulted=consulted)
    for reason in (Reason.PART2_CONSENT_REQUIRED, Reason.CONSENT_REVOKED,
                   Reason.CONSENT_EXPIRED, Reason.CONSENT_INVALID):
        if reason in near_miss:
            return _deny(reason, policy_rule=allow_rule, policy_version=version,
                         consulted=consulted)
    reason = Reason.PART2_CONSENT_REQUIRED if part2 else Reason.NO_CONSENT
    return _deny(reason, policy_rule=allow_rule, policy_version=version, consulted=consulted)


def _kind_serves(kind: ConsentKind, part2: bool, sector: Sector, purpose: Purpose) -> bool:
    """Which consent kinds may carry this disclosure."""
    if kind is ConsentKind.PART2_CRIMINAL_JUSTICE:
        # 42 CFR 2.35: only justice recipients, only to monitor progress.
        return sector.is_justice and purpose is Purpose.LEADMON
    if part2:
        # Part 2 information reaches justice agencies only through a 2.35 consent.
        return kind.is_part2 and not sector.is_justice
    return True


def never_honoured(kind: ConsentKind, disclosers: Iterable[Organization],
                   recipients: Iterable[Organization], categories: Iterable[DataCategory],
                   purposes: Iterable[Purpose]) -> list[str]:
    """Why decide() would never honour a permit provision of this shape, in words a case
    manager understands (empty when it could be honoured). The consent form refuses such a
    provision rather than let the participant read that it shares what it cannot."""
    disclosers, recipients = list(disclosers), list(recipients)
    categories, purposes = set(categories), set(purposes)
    problems = []
    justice = sorted(o.name for o in recipients if o.sector.is_justice)
    health = sorted(c.info.label.lower() for c in categories & HEALTH_CATEGORIES)
    if justice and health:
        problems.append(f"{', '.join(justice)} would never see {', '.join(health)} "
                        "information: justice agencies never do (the LEAD Golden Rule). Take "
                        "those kinds of information out, or name only non-justice agencies.")
    part2 = [o.name for o in disclosers if o.part2_program]
    if (categories & PART2_CATEGORIES or part2) and not kind.is_part2:
        source = f" or anything from {', '.join(part2)}" if part2 else ""
        problems.append(f"Substance use treatment information{source} is protected by 42 CFR "
                        "Part 2 and needs a Part 2 consent: choose a Part 2 kind of consent.")
    elif (categories & PART2_CATEGORIES or part2) and justice \
            and kind is not ConsentKind.PART2_CRIMINAL_JUSTICE:
        problems.append(f"Part 2 information reaches {', '.join(justice)} only through a "
                        "42 CFR 2.35 criminal-justice consent for monitoring progress.")
    if kind is ConsentKind.PART2_CRIMINAL_JUSTICE and purposes - {Purpose.LEADMON}:
        problems.append("A criminal-justice consent (42 CFR 2.35) is used only to monitor "
                        "progress for the court or probation: choose only that purpose.")
    return problems


def decide_all(requests: Iterable[AccessRequest], context: ParticipantContext,
               policy: RolePolicy) -> list[Decision]:
    return [decide(r, context, policy) for r in requests]
