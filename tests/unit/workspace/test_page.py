"""The participant page, decided without a database (portal/workspace/page.py): inputs are
plain dataclasses and domain objects; the role policy is the real one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, timedelta

import pytest

from portal.domain.audit import AuditAction, NewAuditEvent
from portal.domain.consent import ConsentKind
from portal.domain.decision import BreakGlassGrant, Obligation, Organization
from portal.domain.vocabulary import DataCategory, GoalDomain, Purpose, Role
from portal.kernel.request import RequestMeta
from portal.policy.casbin_policy import CasbinRolePolicy, default_policies_dir
from portal.workspace.page import (
    GoalToShow,
    PageInputs,
    PagePlan,
    SealedGoal,
    SealedRecord,
    SectionPlan,
    plan_page,
)
from tests.unit.domain.factories import (
    CEDAR,
    HARBOR,
    HOPE,
    NORTHSIDE,
    NOW,
    ORGS,
    PID,
    POLICE,
    PROBATION,
    TODAY,
    actor,
    consent,
    context,
    provision,
)

C = DataCategory
POLICY = CasbinRolePolicy(default_policies_dir())
ORG_IDS = {org.slug: number for number, org in enumerate(ORGS, start=1)}
META = RequestMeta("someone", session_id="s-1", client_address="203.0.113.9", request_id="r-1")

HOUSING_ROI = consent(provision(disclosers=(HARBOR,), recipients=(HOPE,),
                                categories=(C.HOUSING, C.PROGRESS)), cid="roi-hope")
HOUSING_ONLY = consent(provision(disclosers=(HARBOR,), recipients=(HOPE,),
                                 categories=(C.HOUSING,)), cid="roi-housing")
PART2 = consent(provision(disclosers=(CEDAR,), recipients=(HARBOR,),
                          categories=(C.SUD_TREATMENT, C.PROGRESS),
                          purposes=(Purpose.CAREMGT, Purpose.TREAT)),
                kind=ConsentKind.PART2, cid="p2")
CJ = consent(provision(disclosers=(CEDAR,), recipients=(PROBATION,), categories=(C.PROGRESS,),
                       purposes=(Purpose.LEADMON,)),
             kind=ConsentKind.PART2_CRIMINAL_JUSTICE, cid="cj",
             revocable_after=TODAY + timedelta(days=90))
PROGRESS_TO_PROBATION = consent(provision(disclosers=(HARBOR,), recipients=(PROBATION,),
                                          categories=(C.PROGRESS,)), cid="roi-prob")


@dataclass(frozen=True)
class OrgRef:
    slug: str


@dataclass(frozen=True)
class Staff:
    """Stands in for a StaffUser row: what the audit events name."""
    id: int
    email: str
    organization: OrgRef
    role_names: list[str]


def record(org: Organization, category: DataCategory, days_ago: int = 1,
           rid: str | None = None) -> SealedRecord:
    return SealedRecord(rid or str(uuid.uuid4()), category.value, ORG_IDS[org.slug],
                        TODAY - timedelta(days=days_ago))


def goal(org: Organization, domain: GoalDomain = GoalDomain.HOUSING, *, urgent: bool = False,
         has_detail: bool = True) -> SealedGoal:
    return SealedGoal(str(uuid.uuid4()), ORG_IDS[org.slug], domain, "Working toward housing",
                      "in_progress", "", urgent, has_detail)


def inputs(viewer: Organization, *consents: object, records: tuple[SealedRecord, ...] = (),
           goals: tuple[SealedGoal, ...] = (), role: Role | None = None, user_id: int = 1,
           team: tuple[Organization, ...] | None = None,
           grant: BreakGlassGrant | None = None, reveal: bool = True) -> PageInputs:
    who = actor(viewer, role, user_id=user_id)
    ctx = context(*consents, **({"team": team} if team is not None else {}),  # type: ignore[arg-type]
                  break_glass=(grant,) if grant else ())
    on_team = any(link.organization_slug == viewer.slug for link in ctx.care_team)
    return PageInputs(
        user=Staff(user_id, f"user{user_id}@{viewer.slug}.example", OrgRef(viewer.slug),
                   sorted(r.value for r in who.roles)),
        user_organization_id=ORG_IDS[viewer.slug], actor=who, meta=META, policy=POLICY,
        participant_id=uuid.UUID(PID), public_id="LP-7Q2M9", context=ctx, at=NOW,
        on_team=on_team, grant=grant, organizations={n: o for o in ORGS
                                                     if (n := ORG_IDS[o.slug])},
        records=sorted(records, key=lambda r: r.effective_date, reverse=True),
        goals=list(goals), reveal=reveal)


def section(plan: PagePlan, category: DataCategory) -> SectionPlan:
    return next(s for s in plan.sections if s.category is category)


def event(plan: PagePlan, category: DataCategory) -> NewAuditEvent:
    return next(e for e in plan.events if e.category == category.value)


def test_a_permitted_category_shows_its_records_and_is_audited_as_a_view() -> None:
    shared = record(HARBOR, C.HOUSING, rid="r-housing")
    plan = plan_page(inputs(HOPE, HOUSING_ROI, records=(shared,), team=(HARBOR, HOPE)))
    housing = section(plan, C.HOUSING)
    assert [r.record.id for r in housing.records] == ["r-housing"]
    assert housing.records[0].author == HARBOR.name
    assert not housing.withheld and housing.withheld_reason == ""
    assert plan.shown_ids == ["r-housing"]
    view = event(plan, C.HOUSING)
    assert view.action is AuditAction.RECORD_VIEW and view.decision == "permit"
    assert view.record_ids == ("r-housing",)
    assert view.consent_ids == ("roi-hope",)
    assert view.detail["disclosers"] == [HARBOR.slug]
    assert view.actor == "user1@hope-housing.example" and view.actor_organization == HOPE.slug
    assert view.participant_id == uuid.UUID(PID) and view.policy_version == POLICY.version
    assert view.request_id == "r-1" and view.session_id == "s-1"


def test_a_denied_category_shows_nothing_and_says_why_without_naming_the_holder() -> None:
    secret = record(HARBOR, C.HOUSING, rid="r-secret")
    plan = plan_page(inputs(HOPE, records=(secret,)))  # no consent at all
    housing = section(plan, C.HOUSING)
    assert housing.records == [] and "r-secret" not in plan.shown_ids
    assert housing.withheld
    assert housing.withheld_reason.startswith("no consent from LP-7Q2M9 shares housing")
    assert "another agency" in housing.withheld_reason and HARBOR.name not in \
        housing.withheld_reason
    withheld = event(plan, C.HOUSING)
    assert withheld.action is AuditAction.RECORD_WITHHOLD and withheld.decision == "deny"
    assert withheld.record_ids == () and "no_consent" in withheld.reasons
    assert withheld.detail["disclosers"] == []


def test_records_of_a_source_without_consent_are_withheld_next_to_permitted_ones() -> None:
    shared = record(HARBOR, C.HOUSING, days_ago=3, rid="r-harbor")
    other = record(NORTHSIDE, C.HOUSING, days_ago=1, rid="r-northside")
    plan = plan_page(inputs(HOPE, HOUSING_ROI, records=(shared, other)))
    housing = section(plan, C.HOUSING)
    assert [r.record.id for r in housing.records] == ["r-harbor"]
    assert housing.withheld  # Northside's is withheld (the consent names Harbor only)
    assert plan.shown_ids == ["r-harbor"]
    view = event(plan, C.HOUSING)
    # Something shown: a view, permitted, though part of the category is withheld.
    assert view.action is AuditAction.RECORD_VIEW and view.decision == "permit"
    assert view.record_ids == ("r-harbor",)
    assert {"consent", "no_consent"} <= set(view.reasons)


def test_withheld_does_not_depend_on_whether_anything_exists() -> None:
    """Existence can itself be a disclosure (a Part 2 program's records): a team member with
    nothing in the category is decided, and reported, like one with something."""
    empty = plan_page(inputs(HOPE, HOUSING_ROI))
    holding = plan_page(inputs(HOPE, HOUSING_ROI, records=(record(CEDAR, C.SUD_TREATMENT),)))
    a, b = section(empty, C.SUD_TREATMENT), section(holding, C.SUD_TREATMENT)
    assert (a.withheld, a.withheld_reason, a.records) == (b.withheld, b.withheld_reason,
                                                          b.records)
    assert a.withheld
    ea, eb = event(empty, C.SUD_TREATMENT), event(holding, C.SUD_TREATMENT)
    assert (ea.action, ea.decision, ea.reasons, ea.record_ids) == (
        eb.action, eb.decision, eb.reasons, eb.record_ids)


def test_a_justice_user_gets_the_care_coordination_only_notice() -> None:
    progress = record(CEDAR, C.PROGRESS, rid="r-progress")
    plan = plan_page(inputs(PROBATION, CJ, records=(progress,)))
    assert plan.notices == [Obligation.NOTICE_CARE_COORDINATION.text]
    section_progress = section(plan, C.PROGRESS)
    assert [r.record.id for r in section_progress.records] == ["r-progress"]
    # Cedar is a Part 2 program and disclosed something: the 42 CFR 2.32 notice goes with it.
    assert section_progress.notices == [Obligation.NOTICE_PART2.text]
    view = event(plan, C.PROGRESS)
    assert view.purpose == Purpose.LEADMON.value and view.consent_ids == ("cj",)
    # Health never reaches a justice partner, whatever exists.
    assert section(plan, C.HEALTH).withheld


def test_no_care_coordination_notice_for_treatment_staff() -> None:
    plan = plan_page(inputs(HARBOR, PART2, records=(record(CEDAR, C.SUD_TREATMENT),)))
    assert plan.notices == []
    assert section(plan, C.SUD_TREATMENT).notices == [Obligation.NOTICE_PART2.text]


def test_the_part2_notice_only_where_a_part2_program_holds_something() -> None:
    # Permitted, but Cedar has nothing to disclose.
    plan = plan_page(inputs(HARBOR, PART2, team=(HARBOR, CEDAR)))
    assert section(plan, C.SUD_TREATMENT).notices == []
    assert not section(plan, C.SUD_TREATMENT).withheld


def test_break_glass_access_is_emergency_treatment_only_and_names_the_grant() -> None:
    grant = BreakGlassGrant("bg-1", 7, NOW - timedelta(minutes=5), NOW + timedelta(minutes=55))
    sud = record(CEDAR, C.SUD_TREATMENT, rid="r-sud")
    plan = plan_page(inputs(NORTHSIDE, records=(sud,), user_id=7, team=(HARBOR, CEDAR),
                            grant=grant))
    assert [r.record.id for r in section(plan, C.SUD_TREATMENT).records] == ["r-sud"]
    view = event(plan, C.SUD_TREATMENT)
    assert view.action is AuditAction.RECORD_VIEW and view.decision == "permit"
    assert view.purpose == Purpose.ETREAT.value and "break_glass" in view.reasons
    assert all(e.detail["break_glass_grant"] == "bg-1" for e in plan.events)
    assert all(e.purpose == Purpose.ETREAT.value for e in plan.events)
    assert plan.break_glass_until == grant.expires_at
    # Not on the team: nothing may be added, no goal set.
    assert plan.creatable == [] and plan.goal_domains == []


def test_no_break_glass_details_for_a_team_member() -> None:
    plan = plan_page(inputs(HOPE, HOUSING_ROI, records=(record(HARBOR, C.HOUSING),)))
    assert plan.break_glass_until is None
    assert all("break_glass_grant" not in e.detail for e in plan.events)


def test_a_team_member_holding_a_grant_is_not_told_of_an_emergency_expiry() -> None:
    grant = BreakGlassGrant("bg-2", 1, NOW - timedelta(minutes=5), NOW + timedelta(minutes=55))
    plan = plan_page(inputs(HOPE, HOUSING_ROI, grant=grant))
    assert plan.break_glass_until is None  # on the team: the grant changes nothing shown
    # ... but the events still name it, and the routine purposes are used.
    assert all(e.detail["break_glass_grant"] == "bg-2" for e in plan.events)
    assert event(plan, C.HOUSING).purpose == Purpose.CAREMGT.value


def test_one_event_per_category_progress_first_sections_in_category_order() -> None:
    plan = plan_page(inputs(HOPE, HOUSING_ROI, records=(record(HARBOR, C.HOUSING),)))
    others = [c.value for c in DataCategory if c is not C.PROGRESS]
    assert [e.category for e in plan.events] == [C.PROGRESS.value, *others]
    assert [s.category for s in plan.sections] == list(DataCategory)


def test_records_are_shown_newest_first_across_sources() -> None:
    old = record(HARBOR, C.HOUSING, days_ago=30, rid="r-old")
    new = record(HOPE, C.HOUSING, days_ago=2, rid="r-new")
    plan = plan_page(inputs(HOPE, HOUSING_ROI, records=(old, new)))
    assert [r.record.id for r in section(plan, C.HOUSING).records] == ["r-new", "r-old"]
    # Its own record is no disclosure to itself.
    assert event(plan, C.HOUSING).detail["disclosers"] == [HARBOR.slug]


def test_explaining_reveals_nothing_and_audits_no_view() -> None:
    shared = record(HARBOR, C.HOUSING, rid="r-housing")
    plan_goal = goal(HARBOR)
    shown = plan_page(inputs(HOPE, HOUSING_ROI, records=(shared,), goals=(plan_goal,)))
    quiet = plan_page(inputs(HOPE, HOUSING_ROI, records=(shared,), goals=(plan_goal,),
                             reveal=False))
    assert shown.events and shown.goals
    assert quiet.events == [] and quiet.goals == []
    # The same decisions, so the same sections (what an explanation is about).
    assert [(s.category, s.withheld, s.withheld_reason) for s in quiet.sections] == \
        [(s.category, s.withheld, s.withheld_reason) for s in shown.sections]


def test_a_goal_status_is_shared_without_its_detail_under_a_progress_consent() -> None:
    housing_goal = goal(HARBOR, GoalDomain.HOUSING)
    plan = plan_page(inputs(PROBATION, PROGRESS_TO_PROBATION, goals=(housing_goal,)))
    [line] = plan.goals
    assert line.goal.id == housing_goal.id and not line.detail_permitted
    assert line.line(None).detail is None and line.line(None).owner == HARBOR.name
    assert event(plan, C.PROGRESS).record_ids == (housing_goal.id,)
    assert housing_goal.id not in event(plan, C.HOUSING).record_ids
    assert event(plan, C.HOUSING).action is AuditAction.RECORD_WITHHOLD


def test_a_goal_detail_is_never_shown_without_its_status() -> None:
    housing_goal = goal(HARBOR, GoalDomain.HOUSING)
    # Housing is shared, progress (the goal's status) is not.
    plan = plan_page(inputs(HOPE, HOUSING_ONLY, goals=(housing_goal,), team=(HARBOR, HOPE)))
    assert plan.goals == []
    assert housing_goal.id not in event(plan, C.HOUSING).record_ids
    assert housing_goal.id not in event(plan, C.PROGRESS).record_ids
    # Housing itself is permitted from Harbor (a permit, nothing shown): not a withhold.
    assert event(plan, C.HOUSING).action is AuditAction.RECORD_VIEW


def test_goal_detail_and_part2_notice_with_a_part2_consent() -> None:
    treatment = goal(CEDAR, GoalDomain.TREATMENT)
    plan = plan_page(inputs(HARBOR, PART2, goals=(treatment,)))
    [line] = plan.goals
    assert line.detail_permitted and line.detail_category is C.SUD_TREATMENT
    assert line.line("attends group twice a week").part2
    assert event(plan, C.SUD_TREATMENT).record_ids == (treatment.id,)
    assert event(plan, C.PROGRESS).record_ids == (treatment.id,)
    assert not line.can_update  # Cedar's goal: only Cedar updates it


def test_own_organization_may_add_and_update_its_own_goals() -> None:
    own = goal(HARBOR, GoalDomain.HOUSING)
    theirs = goal(CEDAR, GoalDomain.TREATMENT)
    plan = plan_page(inputs(HARBOR, PART2, goals=(own, theirs)))
    assert [(g.goal.id, g.can_update) for g in plan.goals] == [(own.id, True),
                                                               (theirs.id, False)]
    assert C.PROGRESS in plan.creatable and GoalDomain.HOUSING in plan.goal_domains
    assert plan.creatable == [s.category for s in plan.sections if s.can_create]


@pytest.mark.parametrize("has_detail", [True, False])
def test_a_goal_without_detail_is_not_disclosed_in_its_detail_category(has_detail: bool) -> None:
    treatment = goal(CEDAR, GoalDomain.TREATMENT, has_detail=has_detail)
    plan = plan_page(inputs(HARBOR, PART2, goals=(treatment,)))
    assert (treatment.id in event(plan, C.SUD_TREATMENT).record_ids) is has_detail


def test_a_suspended_user_sees_nothing_but_the_events_still_say_so() -> None:
    page_inputs = inputs(HOPE, HOUSING_ROI, records=(record(HARBOR, C.HOUSING),))
    suspended = replace(page_inputs, actor=replace(page_inputs.actor, active=False))
    plan = plan_page(suspended)
    assert plan.shown_ids == [] and plan.goals == [] and plan.creatable == []
    assert all(e.action is AuditAction.RECORD_WITHHOLD for e in plan.events)
    assert all("account_suspended" in e.reasons for e in plan.events)


def test_an_ended_provision_period_withholds_again() -> None:
    lapsed = consent(provision(disclosers=(HARBOR,), recipients=(HOPE,),
                               categories=(C.HOUSING,),
                               period_end=date(2026, 11, 1)), cid="lapsed")
    plan = plan_page(inputs(HOPE, lapsed, records=(record(HARBOR, C.HOUSING),)))
    assert section(plan, C.HOUSING).withheld and plan.shown_ids == []


def test_the_part2_notice_of_a_goal_detail_counts_only_when_the_detail_is_shown() -> None:
    item = GoalToShow(goal(CEDAR, GoalDomain.TREATMENT), CEDAR.name, C.SUD_TREATMENT,
                      detail_permitted=True, can_update=False, status_part2=False,
                      detail_part2=True)
    assert item.line("two groups a week").part2
    assert not item.line(None).part2  # could not be opened: nothing of it is disclosed
    assert item.line(None).detail is None and item.line("").detail == ""


# --- goal statuses that would reveal health care (issue 20, item 11) ----------------------------

STATUS_TO_PROBATION = consent(provision(disclosers=(HARBOR, NORTHSIDE), recipients=(PROBATION,),
                                        categories=(C.PROGRESS,)), cid="roi-status")
CJ_NORTHSIDE = consent(provision(disclosers=(NORTHSIDE,), recipients=(PROBATION,),
                                 categories=(C.PROGRESS,), purposes=(Purpose.LEADMON,)),
                       kind=ConsentKind.PART2_CRIMINAL_JUSTICE, cid="cj-northside",
                       revocable_after=TODAY + timedelta(days=90))


def test_a_justice_user_sees_health_goals_only_as_engaged_in_services() -> None:
    therapy = replace(goal(NORTHSIDE, GoalDomain.MENTAL_HEALTH), summary="Weekly therapy")
    meds = replace(goal(NORTHSIDE, GoalDomain.HEALTH), summary="Blood pressure check")
    housing = goal(HARBOR, GoalDomain.HOUSING)
    plan = plan_page(inputs(PROBATION, STATUS_TO_PROBATION, goals=(therapy, meds, housing)))
    lines = [g.line(None) for g in plan.goals]
    engaged = [x for x in lines if x.engagement_only]
    # One line however many such goals there are: neither count nor kind is told.
    assert len(engaged) == 1
    [line] = engaged
    assert (line.summary, line.status, line.status_note, line.owner, line.detail,
            line.detail_category, line.urgent) == ("Engaged in services", "", "", "", None,
                                                   None, False)
    text = repr(lines)
    for secret in ("Weekly therapy", "Blood pressure", NORTHSIDE.name, "mental_health"):
        assert secret not in text
    # The housing goal is shown as it is.
    assert [x.summary for x in lines if not x.engagement_only] == ["Working toward housing"]


def test_a_2_35_consent_from_the_program_shows_its_goal_statuses_in_full() -> None:
    therapy = replace(goal(NORTHSIDE, GoalDomain.MENTAL_HEALTH), summary="Weekly therapy")
    plan = plan_page(inputs(PROBATION, STATUS_TO_PROBATION, CJ_NORTHSIDE, goals=(therapy,)))
    [line] = [g.line(None) for g in plan.goals]
    assert not line.engagement_only
    assert (line.summary, line.owner) == ("Weekly therapy", NORTHSIDE.name)


def test_care_staff_see_health_goal_statuses_as_they_are() -> None:
    therapy = replace(goal(NORTHSIDE, GoalDomain.MENTAL_HEALTH), summary="Weekly therapy")
    plan = plan_page(inputs(HARBOR, consent(provision(
        disclosers=(NORTHSIDE,), recipients=(HARBOR,), categories=(C.PROGRESS,)), cid="r"),
        goals=(therapy,)))
    [line] = [g.line(None) for g in plan.goals]
    assert (line.summary, line.owner, line.engagement_only) == ("Weekly therapy",
                                                               NORTHSIDE.name, False)


# --- immediate needs in order (issue 18) ---------------------------------------------------------


def test_immediate_needs_go_most_pressing_first_then_newest() -> None:
    def need(domain: GoalDomain, hours_ago: int, summary: str) -> SealedGoal:
        return replace(goal(HARBOR, domain, urgent=True), summary=summary,
                       since=NOW - timedelta(hours=hours_ago))
    needs = (need(GoalDomain.UTILITIES, 1, "Power shut-off notice"),
             need(GoalDomain.FOOD, 30, "Food box"),
             need(GoalDomain.SHELTER, 200, "Shelter last week"),
             need(GoalDomain.SHELTER, 2, "A bed tonight"),
             need(GoalDomain.BENEFITS, 0, "ID replacement"))
    plan = plan_page(inputs(HARBOR, goals=needs))
    lines = sorted((g.line(None) for g in plan.goals), key=lambda x: x.order)
    assert [x.summary for x in lines] == ["A bed tonight", "Shelter last week", "Food box",
                                          "Power shut-off notice", "ID replacement"]
    assert all(x.since is not None and x.status == "in_progress" for x in lines)


# --- what a withheld section says to whom (issue 18) ----------------------------------------------


def test_a_freshly_accepted_participant_shows_the_case_manager_nothing_withheld() -> None:
    """Accepted a minute ago, on Harbor's team alone (with the referring police): Harbor's own
    categories are not "withheld", and police, who never write a case plan, are not asked."""
    plan = plan_page(inputs(HARBOR, team=(HARBOR, POLICE)))
    withheld = {s.category for s in plan.sections if s.withheld}
    # Police may write contact details and justice information: those would need consent.
    assert withheld == {C.CONTACT, C.JUSTICE}
    alone = plan_page(inputs(HARBOR, team=(HARBOR,)))
    assert not any(s.withheld for s in alone.sections)


def test_the_case_manager_is_told_which_consent_to_ask_the_participant_for() -> None:
    plan = plan_page(inputs(HARBOR, team=(HARBOR, CEDAR, HOPE)))
    sud = section(plan, C.SUD_TREATMENT)
    assert sud.withheld_line == "consent"
    assert sud.withheld_next.startswith(
        "To see it, ask LP-7Q2M9 whether they want to sign a Part 2 consent (42 CFR Part 2) "
        "that lets Cedar Recovery Services")
    assert "share substance use treatment information with Harbor LEAD Case Management for " \
        "LEAD care coordination" in sud.withheld_next
    assert "case manager" not in sud.withheld_next
    housing = section(plan, C.HOUSING)
    # One sentence names each consent that could be asked for.
    assert housing.withheld_next == (
        "To see it, ask LP-7Q2M9 whether they want to sign a release of information that lets "
        "Hope Housing Collaborative share housing information with Harbor LEAD Case "
        "Management for LEAD care coordination, and a Part 2 consent (42 CFR Part 2) that "
        "lets Cedar Recovery Services share it too. It is their choice, and refusing costs "
        "them nothing.")


def test_other_team_staff_are_sent_to_the_case_manager() -> None:
    plan = plan_page(inputs(HOPE, team=(HARBOR, HOPE, CEDAR)))
    housing = section(plan, C.HOUSING)
    assert housing.withheld_line == "consent"
    assert housing.withheld_next.startswith("If you need it, ask LP-7Q2M9's case manager")
    # Which agencies is the case manager's to know: that a Part 2 program is on the team
    # would itself tell a housing navigator of treatment.
    assert "Cedar" not in housing.withheld_next and "Harbor" not in housing.withheld_next
    sud = section(plan, C.SUD_TREATMENT)  # not the housing navigator's to see at all
    assert sud.withheld_line == "role" and sud.withheld_next.startswith("No consent changes")


def test_justice_partners_are_told_the_golden_rule_or_the_release() -> None:
    plan = plan_page(inputs(PROBATION, team=(HARBOR, PROBATION, NORTHSIDE)))
    health = section(plan, C.MENTAL_HEALTH)
    assert health.withheld_line == "golden_rule"
    assert health.withheld_next.startswith("No consent can change this")
    progress = section(plan, C.PROGRESS)
    assert progress.withheld_line == "consent"
    assert "release for care coordination" in progress.withheld_next


@pytest.mark.parametrize("viewer", [PROBATION, HOPE])
def test_only_the_case_manager_learns_that_part2_rules_withhold_it(
        viewer: Organization) -> None:
    """Progress held by a Part 2 program is withheld from probation (no 2.35 consent) and
    from the housing navigator (no Part 2 consent): they read "no consent", never that a
    Part 2 program is on the team (42 CFR 2.13(c))."""
    team = (HARBOR, CEDAR, viewer)
    plan = plan_page(inputs(viewer, PROGRESS_TO_PROBATION, team=team))
    progress = section(plan, C.PROGRESS)
    assert progress.withheld
    said = f"{progress.withheld_reason} {progress.withheld_next}"
    assert "Part 2" not in said and "substance use" not in said and "Cedar" not in said
    assert progress.withheld_reason.startswith("no consent from LP-7Q2M9")
    # The case manager is told, to ask for the right consent.
    manager = section(plan_page(inputs(HARBOR, team=(HARBOR, CEDAR))), C.PROGRESS)
    assert "Part 2 consent" in manager.withheld_next and "Cedar" in manager.withheld_next


def test_emergency_access_says_what_it_does_not_cover() -> None:
    grant = BreakGlassGrant("bg-3", 7, NOW - timedelta(minutes=5), NOW + timedelta(minutes=55))
    plan = plan_page(inputs(NORTHSIDE, user_id=7, team=(HARBOR, CEDAR), grant=grant))
    housing = section(plan, C.HOUSING)
    assert housing.withheld_line == "emergency"
    assert "Emergency access covers only" in housing.withheld_next


def test_what_a_withheld_section_says_does_not_depend_on_records() -> None:
    empty = plan_page(inputs(HARBOR, team=(HARBOR, CEDAR, HOPE)))
    holding = plan_page(inputs(HARBOR, team=(HARBOR, CEDAR, HOPE),
                               records=(record(CEDAR, C.SUD_TREATMENT),
                                        record(HOPE, C.HOUSING))))
    assert [(s.withheld, s.withheld_line, s.withheld_reason, s.withheld_next)
            for s in empty.sections] == [(s.withheld, s.withheld_line, s.withheld_reason,
                                          s.withheld_next) for s in holding.sections]


def test_emergency_access_puts_the_sections_it_opens_first() -> None:
    grant = BreakGlassGrant("bg-4", 7, NOW - timedelta(minutes=5), NOW + timedelta(minutes=55))
    plan = plan_page(inputs(NORTHSIDE, user_id=7, team=(HARBOR, CEDAR), grant=grant,
                            records=(record(CEDAR, C.SUD_TREATMENT),)))
    order = [s.category for s in plan.sections]
    assert order[:3] == [C.SUD_TREATMENT, C.MENTAL_HEALTH, C.HEALTH]
    assert all(s.withheld and not s.records for s in plan.sections[3:])
    # On the care team, the usual order.
    usual = plan_page(inputs(HARBOR))
    assert [s.category for s in usual.sections] == list(DataCategory)


def test_what_cannot_be_decrypted_leaves_the_event_and_is_not_disclosed() -> None:
    a = record(HARBOR, C.HOUSING, days_ago=2, rid="r-a")
    b = record(HARBOR, C.HOUSING, days_ago=1, rid="r-b")
    own = record(HOPE, C.HOUSING, days_ago=3, rid="r-own")
    plan = plan_page(inputs(HOPE, HOUSING_ROI, records=(a, b, own), team=(HARBOR, HOPE)))
    view = event(plan, C.HOUSING)
    assert view.detail["decided_at"] == "2026-11-28T15:00:00.000000Z"  # inputs.at
    assert view.detail["consent_versions"] == {"roi-hope": 1}
    # Nothing unavailable: the events as planned.
    assert plan.events_without(set()) == plan.events
    # One of Harbor's two records did not decrypt: Harbor still disclosed the other.
    (one,) = [e for e in plan.events_without({("housing", "r-a")}) if e.category == "housing"]
    assert one.record_ids == ("r-b", "r-own") and one.detail["disclosers"] == [HARBOR.slug]
    assert one.detail["unavailable"] == ["r-a"] and one.decision == "permit"
    # Neither did: Harbor disclosed nothing; the agency's own record is still a view.
    (both,) = [e for e in plan.events_without({("housing", "r-a"), ("housing", "r-b")})
               if e.category == "housing"]
    assert both.record_ids == ("r-own",) and both.detail["disclosers"] == []
    assert both.action is AuditAction.RECORD_VIEW
    # The same id under another category is another thing (a goal's status, say).
    assert plan.events_without({("progress", "r-a")}) == plan.events


def test_a_section_whose_only_shown_record_did_not_decrypt_is_audited_as_withheld() -> None:
    shared = record(HARBOR, C.HOUSING, rid="r-harbor")
    other = record(NORTHSIDE, C.HOUSING, rid="r-northside")  # withheld: no consent
    plan = plan_page(inputs(HOPE, HOUSING_ROI, records=(shared, other)))
    (housing,) = [e for e in plan.events_without({("housing", "r-harbor")})
                  if e.category == "housing"]
    assert housing.action is AuditAction.RECORD_WITHHOLD and housing.decision == "deny"
    assert housing.record_ids == () and housing.detail["disclosers"] == []
