"""decide(): the table of important cases, and properties over generated consents and requests."""

from __future__ import annotations

import ast
import random
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain.consent import (
    ConsentKind,
    ConsentStatus,
    Directive,
    Provision,
    ProvisionEffect,
)
from portal.domain.decision import (
    AccessRequest,
    BreakGlassGrant,
    Decision,
    Obligation,
    Organization,
    Reason,
    decide,
)
from portal.domain.vocabulary import (
    HEALTH_CATEGORIES,
    JUSTICE_SECTORS,
    Action,
    DataCategory,
    Purpose,
    Role,
    Sector,
)
from portal.policy.casbin_policy import CasbinRolePolicy, default_policies_dir
from tests.unit.domain.factories import (
    CEDAR,
    HARBOR,
    HOPE,
    NORTHSIDE,
    NOW,
    ORGS,
    OUTSIDER,
    PID,
    POLICE,
    PROBATION,
    TEAM,
    TODAY,
    actor,
    consent,
    context,
    provision,
    request,
)

C = DataCategory
POLICY = CasbinRolePolicy(default_policies_dir())

HOUSING_ROI = consent(provision(disclosers=(HARBOR,), recipients=(HOPE,),
                                categories=(C.HOUSING, C.PROGRESS)))
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


TEAM_WITH_DEFENDER = (*TEAM, Organization("riverton-defender", Sector.DEFENSE))


def check(dec: Decision, verdict: str, reason: Reason) -> None:
    assert (dec.decision, dec.reasons) == (verdict, (reason,)), dec


@pytest.mark.parametrize(
    ("who", "category", "source", "purpose", "consents", "verdict", "reason"),
    [
        # Own organization's information needs no consent.
        (HARBOR, C.CASE_PLAN, HARBOR, Purpose.CAREMGT, (), "permit", Reason.OWN_ORGANIZATION),
        # Another organization's information needs a consent covering it.
        (HOPE, C.HOUSING, HARBOR, Purpose.CAREMGT, (), "deny", Reason.NO_CONSENT),
        (HOPE, C.HOUSING, HARBOR, Purpose.CAREMGT, (HOUSING_ROI,), "permit", Reason.CONSENT),
        (HOPE, C.BENEFITS, HARBOR, Purpose.CAREMGT, (HOUSING_ROI,), "deny", Reason.NO_CONSENT),
        # Wrong purpose for the consent.
        (HOPE, C.HOUSING, HARBOR, Purpose.TREAT, (HOUSING_ROI,), "deny",
         Reason.NO_ROLE_PERMISSION),
        # Part 2: SUD records need a Part 2 consent.
        (HARBOR, C.SUD_TREATMENT, CEDAR, Purpose.CAREMGT, (PART2,), "permit", Reason.CONSENT),
        (HARBOR, C.SUD_TREATMENT, CEDAR, Purpose.CAREMGT,
         (replace(PART2, kind=ConsentKind.ROI),), "deny", Reason.PART2_CONSENT_REQUIRED),
        # Progress authored by a Part 2 program is Part 2 information too.
        (HARBOR, C.PROGRESS, CEDAR, Purpose.CAREMGT, (replace(PART2, kind=ConsentKind.ROI),),
         "deny", Reason.PART2_CONSENT_REQUIRED),
        # 42 CFR 2.35: justice agencies get Part 2 progress only for monitoring.
        (PROBATION, C.PROGRESS, CEDAR, Purpose.LEADMON, (CJ,), "permit", Reason.CONSENT),
        (PROBATION, C.PROGRESS, CEDAR, Purpose.CAREMGT, (CJ,), "deny",
         Reason.PART2_CONSENT_REQUIRED),
        (HARBOR, C.PROGRESS, CEDAR, Purpose.LEADMON, (CJ,), "deny", Reason.NO_ROLE_PERMISSION),
        # A plain Part 2 consent naming probation still cannot carry SUD progress to justice.
        (PROBATION, C.PROGRESS, CEDAR, Purpose.CAREMGT,
         (consent(provision(disclosers=(CEDAR,), recipients=(PROBATION,),
                            categories=(C.PROGRESS,)), kind=ConsentKind.PART2),),
         "deny", Reason.PART2_CONSENT_REQUIRED),
        # Case management's own progress summary to probation under the release.
        (PROBATION, C.PROGRESS, HARBOR, Purpose.CAREMGT, (PROGRESS_TO_PROBATION,), "permit",
         Reason.CONSENT),
        # Revoked and expired consents never permit.
        (HOPE, C.HOUSING, HARBOR, Purpose.CAREMGT,
         (replace(HOUSING_ROI, status=ConsentStatus.REVOKED, revoked_at=NOW),), "deny",
         Reason.CONSENT_REVOKED),
        (HOPE, C.HOUSING, HARBOR, Purpose.CAREMGT,
         (replace(HOUSING_ROI, expires_on=TODAY - timedelta(days=1)),), "deny",
         Reason.CONSENT_EXPIRED),
        (HOPE, C.HOUSING, HARBOR, Purpose.CAREMGT,
         (replace(HOUSING_ROI, status=ConsentStatus.DRAFT),), "deny", Reason.NO_CONSENT),
        # A deficient consent is no consent (42 CFR 2.31(c)).
        (HOPE, C.HOUSING, HARBOR, Purpose.CAREMGT,
         (replace(HOUSING_ROI, revocation_statement=""),), "deny", Reason.CONSENT_INVALID),
        # Deny provisions win over permits, even from another consent.
        (HOPE, C.HOUSING, HARBOR, Purpose.CAREMGT,
         (HOUSING_ROI, consent(provision("deny", disclosers=(HARBOR,), recipients=(HOPE,)),
                               cid="d")), "deny", Reason.DENIED_BY_PROVISION),
        # The Golden Rule: justice never sees health detail, whatever the consent.
        (POLICE, C.SUD_TREATMENT, CEDAR, Purpose.CAREMGT,
         (consent(provision(disclosers=(CEDAR,), recipients=(POLICE,),
                            categories=(C.SUD_TREATMENT,)), kind=ConsentKind.PART2),),
         "deny", Reason.GOLDEN_RULE),
        (PROBATION, C.MENTAL_HEALTH, NORTHSIDE, Purpose.LEADMON, (), "deny", Reason.GOLDEN_RULE),
        (PROBATION, C.HEALTH, PROBATION, Purpose.CAREMGT, (), "deny", Reason.GOLDEN_RULE),
        # Role policy: minimum necessary.
        (HOPE, C.SUD_TREATMENT, CEDAR, Purpose.CAREMGT, (PART2,), "deny",
         Reason.NO_ROLE_PERMISSION),
        (PROBATION, C.HOUSING, HOPE, Purpose.CAREMGT, (), "deny", Reason.NO_ROLE_PERMISSION),
        # No care-team link, no access, even with a consent naming the organization.
        (OUTSIDER, C.HOUSING, HARBOR, Purpose.CAREMGT,
         (consent(provision(disclosers=(HARBOR,), recipients=(OUTSIDER,))),), "deny",
         Reason.NOT_ON_CARE_TEAM),
    ],
)
def test_decision_table(who: Organization, category: DataCategory, source: Organization,
                        purpose: Purpose, consents: tuple[Directive, ...], verdict: str,
                        reason: Reason) -> None:
    dec = decide(request(actor(who), category, source, purpose), context(*consents), POLICY)
    check(dec, verdict, reason)
    assert dec.policy_version == POLICY.version


DEFENDER = Organization("riverton-defender", Sector.DEFENSE, name="Public Defender")
# Goal statuses (`progress`) under the multi-party release, from every care-team agency.
STATUS_RELEASE = consent(provision(disclosers=(HARBOR, NORTHSIDE, CEDAR, HOPE),
                                   recipients=(PROBATION, POLICE, DEFENDER),
                                   categories=(C.PROGRESS,)), cid="roi-status")
# 42 CFR 2.35: Northside's progress to probation, for monitoring.
CJ_NORTHSIDE = consent(provision(disclosers=(NORTHSIDE,), recipients=(PROBATION,),
                                 categories=(C.PROGRESS,), purposes=(Purpose.LEADMON,)),
                       kind=ConsentKind.PART2_CRIMINAL_JUSTICE, cid="cj-northside",
                       revocable_after=TODAY + timedelta(days=90))


@pytest.mark.parametrize(
    ("who", "role", "about", "source", "purpose", "consents", "reason", "engagement_only"),
    [
        # Issue 20 item 11: a justice user learns of health care only as "engaged in
        # services" (no domain, no provider), unless a 2.35 consent covers that program.
        (PROBATION, None, C.MENTAL_HEALTH, NORTHSIDE, Purpose.CAREMGT, (STATUS_RELEASE,),
         Reason.CONSENT, True),
        (POLICE, None, C.HEALTH, HARBOR, Purpose.CAREMGT, (STATUS_RELEASE,), Reason.CONSENT,
         True),
        (PROBATION, None, C.MENTAL_HEALTH, NORTHSIDE, Purpose.LEADMON, (CJ_NORTHSIDE,),
         Reason.CONSENT, False),
        # The release and the 2.35 consent both permit: the 2.35 consent decides, in full.
        (PROBATION, None, C.MENTAL_HEALTH, NORTHSIDE, Purpose.LEADMON,
         (STATUS_RELEASE, replace(CJ_NORTHSIDE, id="a-cj")), Reason.CONSENT, False),
        # SUD treatment progress reaches probation only by a 2.35 consent, and then in full.
        (PROBATION, None, C.SUD_TREATMENT, CEDAR, Purpose.LEADMON, (CJ,), Reason.CONSENT,
         False),
        # Defenders: the role policy's deny row on health information counts like the rule.
        (DEFENDER, Role.DEFENDER, C.MENTAL_HEALTH, NORTHSIDE, Purpose.CAREMGT,
         (STATUS_RELEASE,), Reason.CONSENT, True),
        # Not about health care: the status as it is.
        (PROBATION, None, C.HOUSING, HOPE, Purpose.CAREMGT, (STATUS_RELEASE,), Reason.CONSENT,
         False),
        # Care staff see health goal statuses as they are (no prohibition, only no grant).
        (HOPE, None, C.MENTAL_HEALTH, NORTHSIDE, Purpose.CAREMGT,
         (consent(provision(disclosers=(NORTHSIDE,), recipients=(HOPE,),
                            categories=(C.PROGRESS,)), cid="roi-hope"),), Reason.CONSENT,
         False),
        # The organization's own goal needs no disguise.
        (HARBOR, None, C.MENTAL_HEALTH, HARBOR, Purpose.CAREMGT, (), Reason.OWN_ORGANIZATION,
         False),
    ],
)
def test_goal_status_decision_table(who: Organization, role: Role | None, about: DataCategory,
                                    source: Organization, purpose: Purpose,
                                    consents: tuple[Directive, ...], reason: Reason,
                                    engagement_only: bool) -> None:
    asked = replace(request(actor(who, role), C.PROGRESS, source, purpose), about=about)
    team = (*TEAM_WITH_DEFENDER,)
    dec = decide(asked, context(*consents, team=team), POLICY)
    check(dec, "permit", reason)
    assert dec.engagement_only is engagement_only
    assert (Obligation.STATUS_AS_ENGAGEMENT in dec.obligations) is engagement_only
    # Without ``about`` (a progress record, not a goal) nothing changes.
    plain = decide(replace(asked, about=None), context(*consents, team=team), POLICY)
    assert plain.permitted and not plain.engagement_only


def test_goal_status_about_an_unknown_category_fails_closed() -> None:
    asked = replace(request(actor(PROBATION), C.PROGRESS, HARBOR), about="astrology")
    check(decide(asked, context(PROGRESS_TO_PROBATION), POLICY), "deny", Reason.ERROR)


def test_permit_names_the_rule_and_consent_provision() -> None:
    two = consent(provision(categories=(C.BENEFITS,)), provision(categories=(C.HOUSING,)),
                  cid="two")
    dec = decide(request(actor(HOPE), C.HOUSING, HARBOR), context(two), POLICY)
    assert dec.permitted
    assert (dec.consent_id, dec.provision) == ("two", 1)
    assert dec.policy_rule is not None and "housing:housing_navigator" in dec.policy_rule
    assert dec.obligations == (Obligation.AUDIT,)


def test_obligations_part2_notice_and_justice_notice() -> None:
    dec = decide(request(actor(HARBOR), C.SUD_TREATMENT, CEDAR), context(PART2), POLICY)
    assert Obligation.NOTICE_PART2 in dec.obligations
    dec = decide(request(actor(PROBATION), C.PROGRESS, CEDAR, Purpose.LEADMON), context(CJ),
                 POLICY)
    assert set(dec.obligations) == {Obligation.AUDIT, Obligation.NOTICE_PART2,
                                    Obligation.NOTICE_CARE_COORDINATION}
    assert "42 CFR part 2 prohibits" in Obligation.NOTICE_PART2.text


def test_expiry_is_evaluated_at_decision_time() -> None:
    roi = replace(HOUSING_ROI, expires_on=TODAY)
    req = request(actor(HOPE), C.HOUSING, HARBOR)
    assert decide(req, context(roi), POLICY).permitted
    later = replace(req, at=NOW + timedelta(days=1))
    check(decide(later, context(roi), POLICY), "deny", Reason.CONSENT_EXPIRED)


def test_provision_period_limits_the_permit() -> None:
    roi = consent(provision(period_start=TODAY + timedelta(days=1)))
    check(decide(request(actor(HOPE), C.HOUSING, HARBOR), context(roi), POLICY), "deny",
          Reason.NO_CONSENT)


def test_ended_care_team_link_means_no_access() -> None:
    from portal.domain.decision import CareTeamLink

    ctx = replace(context(HOUSING_ROI), care_team=(
        CareTeamLink(HOPE.slug, TODAY - timedelta(days=90), TODAY - timedelta(days=1)),))
    check(decide(request(actor(HOPE), C.HOUSING, HARBOR), ctx, POLICY), "deny",
          Reason.NOT_ON_CARE_TEAM)


def test_break_glass_permits_emergency_treatment_only_while_it_lasts() -> None:
    clinician = actor(NORTHSIDE, user_id=7)
    grant = BreakGlassGrant("bg1", 7, NOW - timedelta(minutes=5), NOW + timedelta(minutes=55))
    ctx = context(team=(HARBOR, CEDAR), break_glass=(grant,))
    dec = decide(request(clinician, C.SUD_TREATMENT, CEDAR, Purpose.ETREAT), ctx, POLICY)
    check(dec, "permit", Reason.BREAK_GLASS)
    assert dec.break_glass_grant == "bg1"
    assert Obligation.NOTICE_PART2 in dec.obligations
    # Not for routine purposes, not for somebody else, not after expiry.
    check(decide(request(clinician, C.SUD_TREATMENT, CEDAR, Purpose.CAREMGT), ctx, POLICY),
          "deny", Reason.NOT_ON_CARE_TEAM)
    other = actor(NORTHSIDE, user_id=8)
    check(decide(request(other, C.SUD_TREATMENT, CEDAR, Purpose.ETREAT), ctx, POLICY), "deny",
          Reason.NOT_ON_CARE_TEAM)
    late = request(clinician, C.SUD_TREATMENT, CEDAR, Purpose.ETREAT,
                   at=NOW + timedelta(hours=1))
    check(decide(late, ctx, POLICY), "deny", Reason.NOT_ON_CARE_TEAM)


def test_police_cannot_break_glass_into_health() -> None:
    officer = actor(POLICE, user_id=9)
    grant = BreakGlassGrant("bg2", 9, NOW - timedelta(minutes=5), NOW + timedelta(minutes=55))
    ctx = context(team=(HARBOR,), break_glass=(grant,))
    check(decide(request(officer, C.HEALTH, HARBOR, Purpose.ETREAT), ctx, POLICY), "deny",
          Reason.GOLDEN_RULE)


def test_suspended_account_is_denied() -> None:
    who = replace(actor(HARBOR), active=False)
    check(decide(request(who, C.CASE_PLAN, HARBOR), context(), POLICY), "deny",
          Reason.ACCOUNT_SUSPENDED)


@pytest.mark.parametrize("field", ["category", "purpose", "action"])
def test_unknown_values_fail_closed(field: str) -> None:
    req = replace(request(actor(HARBOR), C.CASE_PLAN, HARBOR), **{field: "bogus"})
    dec = decide(req, context(), POLICY)
    check(dec, "deny", Reason.ERROR)
    assert "bogus" in dec.detail


def test_naive_time_and_wrong_context_fail_closed() -> None:
    req = request(actor(HARBOR), C.CASE_PLAN, HARBOR, at=NOW.replace(tzinfo=None))
    check(decide(req, context(), POLICY), "deny", Reason.ERROR)
    req = replace(request(actor(HARBOR), C.CASE_PLAN, HARBOR), participant_id="someone-else")
    check(decide(req, context(), POLICY), "deny", Reason.ERROR)


def test_a_policy_that_raises_denies() -> None:
    class Broken:
        version = "broken"

        def check(self, *args: object) -> object:
            raise RuntimeError("policy store unavailable")

    check(decide(request(actor(HARBOR), C.CASE_PLAN, HARBOR), context(), Broken()),  # type: ignore[arg-type]
          "deny", Reason.ERROR)


def test_domain_imports_neither_litestar_nor_sqlalchemy() -> None:
    domain = Path(__file__).resolve().parents[3] / "portal" / "domain"
    for path in domain.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(("litestar", "sqlalchemy")), \
                    f"{path.name} imports {name}"
                assert not name.startswith("portal") or name.startswith("portal.domain"), \
                    f"{path.name} imports {name}"


# --- properties ----------------------------------------------------------------------------

refs = st.sampled_from([f"org:{o.slug}" for o in ORGS] + [f"sector:{s.value}" for s in Sector])
provisions = st.builds(
    Provision,
    effect=st.sampled_from(list(ProvisionEffect)),
    disclosers=st.frozensets(refs, min_size=1, max_size=4),
    recipients=st.frozensets(refs, min_size=1, max_size=4),
    categories=st.frozensets(st.sampled_from(list(C)), min_size=1, max_size=4),
    purposes=st.frozensets(st.sampled_from(list(Purpose)), min_size=1, max_size=3),
    period_start=st.none() | st.dates(TODAY - timedelta(days=400), TODAY + timedelta(days=30)),
    period_end=st.none() | st.dates(TODAY - timedelta(days=30), TODAY + timedelta(days=400)),
)


@st.composite
def directives(draw: st.DrawFn, statuses: list[ConsentStatus] | None = None) -> Directive:
    return consent(
        *draw(st.lists(provisions, min_size=1, max_size=4)),
        kind=draw(st.sampled_from(list(ConsentKind))),
        status=draw(st.sampled_from(statuses or list(ConsentStatus))),
        cid=draw(st.uuids()).hex,
        expires_on=draw(st.none() | st.dates(TODAY - timedelta(days=60),
                                             TODAY + timedelta(days=400))),
        expiry_event=draw(st.none() | st.just("lead_exit")),
        signed=draw(st.booleans() | st.just(True)),
    )


@st.composite
def requests(draw: st.DrawFn) -> AccessRequest:
    org = draw(st.sampled_from(ORGS))
    role = draw(st.sampled_from(list(Role)))
    who = actor(org, role, user_id=draw(st.integers(1, 3)))
    return request(who, draw(st.sampled_from(list(C))), draw(st.sampled_from(ORGS)),
                   draw(st.sampled_from(list(Purpose))), draw(st.sampled_from(list(Action))),
                   at=NOW + timedelta(hours=draw(st.integers(-48, 48))))


grants = st.lists(st.builds(
    BreakGlassGrant, id=st.uuids().map(str), user_id=st.integers(1, 3),
    started_at=st.just(NOW - timedelta(hours=1)),
    expires_at=st.sampled_from([NOW - timedelta(minutes=1), NOW + timedelta(hours=1)])),
    max_size=2)


@settings(max_examples=300, deadline=None)
@given(req=requests(), consents=st.lists(directives(), max_size=5), bg=grants)
def test_decide_is_total_and_justice_never_sees_health(
        req: AccessRequest, consents: list[Directive], bg: list[BreakGlassGrant]) -> None:
    dec = decide(req, context(*consents, break_glass=tuple(bg)), POLICY)
    assert dec.decision in ("permit", "deny")
    assert Reason.ERROR not in dec.reasons, dec.detail
    if req.actor.organization.sector in JUSTICE_SECTORS and req.category in HEALTH_CATEGORIES:
        assert not dec.permitted


@settings(max_examples=300, deadline=None)
@given(req=requests(), consents=st.lists(
    directives([s for s in ConsentStatus if s is not ConsentStatus.ACTIVE]), max_size=5))
def test_no_active_consent_no_cross_organization_permit(
        req: AccessRequest, consents: list[Directive]) -> None:
    dec = decide(req, context(*consents), POLICY)
    if req.source.slug != req.actor.organization.slug:
        assert not dec.permitted, dec


@settings(max_examples=300, deadline=None)
@given(req=requests(), consents=st.lists(directives(), max_size=5))
def test_a_consent_permit_always_comes_from_an_active_unexpired_consent(
        req: AccessRequest, consents: list[Directive]) -> None:
    dec = decide(req, context(*consents), POLICY)
    if dec.permitted and Reason.CONSENT in dec.reasons:
        used = next(c for c in consents if c.id == dec.consent_id)
        assert used.status_at(req.at) is ConsentStatus.ACTIVE
        assert used.expires_on is None or used.expires_on >= req.at.date()


@settings(max_examples=300, deadline=None)
@given(req=requests(), consents=st.lists(directives([ConsentStatus.ACTIVE]), max_size=4),
       data=st.data())
def test_a_matching_deny_provision_always_wins(
        req: AccessRequest, consents: list[Directive], data: st.DataObject) -> None:
    deny = Provision(
        effect=ProvisionEffect.DENY,
        disclosers=frozenset({f"org:{req.source.slug}"}),
        recipients=frozenset({f"sector:{req.actor.organization.sector.value}"}),
        categories=frozenset({req.category}), purposes=frozenset({req.purpose}))
    blocker = consent(deny, cid="blocker", kind=data.draw(st.sampled_from(list(ConsentKind))))
    dec = decide(req, context(*consents, blocker), POLICY)
    if req.source.slug != req.actor.organization.slug:
        assert not dec.permitted


@settings(max_examples=200, deadline=None)
@given(req=requests(), consents=st.lists(directives(), max_size=5), seed=st.integers())
def test_decision_does_not_depend_on_order(
        req: AccessRequest, consents: list[Directive], seed: int) -> None:
    rng = random.Random(seed)
    shuffled = []
    for c in consents:
        ps = list(c.provisions)
        rng.shuffle(ps)
        shuffled.append(replace(c, provisions=tuple(ps)))
    rng.shuffle(shuffled)
    a = decide(req, context(*consents), POLICY)
    b = decide(req, context(*shuffled), POLICY)
    assert (a.decision, a.reasons, a.consent_id, a.policy_rule) == (
        b.decision, b.reasons, b.consent_id, b.policy_rule)


@settings(max_examples=200, deadline=None)
@given(category=st.text(max_size=12), purpose=st.text(max_size=8), action=st.text(max_size=8),
       sector=st.text(max_size=12))
def test_decide_never_raises_on_garbage(category: str, purpose: str, action: str,
                                        sector: str) -> None:
    who = replace(actor(HARBOR), organization=Organization("x", sector))  # type: ignore[arg-type]
    req = AccessRequest(actor=who, participant_id=PID, category=category,  # type: ignore[arg-type]
                        action=action, purpose=purpose, at=NOW,  # type: ignore[arg-type]
                        source=HARBOR)
    dec = decide(req, context(), POLICY)
    assert dec.decision == "deny"
