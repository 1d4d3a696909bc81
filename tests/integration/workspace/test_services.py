"""The staff workspace's use cases (portal/workspace: service.py, people.py, lifecycle.py)
called directly with a database session: what the caseload and the participant page return
and audit, what is refused, and what the writes (records, goals, lifecycle events) store.

The participant page is tested through its signature and what it returns and audits only."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.consents.service import consent_summaries
from portal.db import models as m
from portal.db.audit_chain import AuditWriteError
from portal.db.types import utcnow
from portal.domain.consent import ConsentEvent
from portal.domain.decision import Obligation
from portal.domain.vocabulary import DataCategory, GoalDomain
from portal.kernel.errors import InvalidInput, NotFound, Refused
from portal.kernel.wiring import Services
from portal.workspace import lifecycle, people
from portal.workspace import service as ws
from tests.integration.service_support import (
    ALEX,
    DEV,
    JAMES,
    LINDA,
    LUIS,
    MARIA,
    META,
    OLIVIA,
    PRIYA,
    RENEE,
    SAM,
    TOM,
    assert_staff_event,
    events_since,
    fail_audit_on,
    head,
    org,
    person,
    staff,
    unchanged,
)

ALL_IDS = [f"LP-{1000 + n}" for n in range(1, 13)]


def _open_urgent(session: Session) -> dict[uuid.UUID, list[m.Goal]]:
    out: dict[uuid.UUID, list[m.Goal]] = {}
    for goal in session.scalars(select(m.Goal).where(
            m.Goal.urgent, m.Goal.status.not_in(ws.CLOSED_GOALS))):
        out.setdefault(goal.participant_id, []).append(goal)
    return out


# --- people ---------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["Marcus Reed", "  marcus   REED ", "reed", "1986-03-14",
                                   "03/14/1986", "14.03.1986", "lp-1001"])
def test_exact_search_by_name_family_date_or_id(demo: sessionmaker[Session],
                                                services: Services, query: str) -> None:
    with demo() as session:
        assert [p.public_id for p in people.find(session, services.vault, query)] == ["LP-1001"]


def test_search_finds_a_grouped_id_however_it_is_typed(demo: sessionmaker[Session],
                                                       services: Services) -> None:
    with demo.begin() as session:
        marcus = people.by_public_id(session, "LP-1001")
        assert marcus is not None
        marcus.public_id = "LP-7K3M-XP9F"
    with demo() as session:
        for query in ("LP-7K3M-XP9F", "lp 7k3m xp9f", "LP7K3MXP9F", "lp-7k3mxp9f"):
            assert [p.public_id for p in people.find(session, services.vault, query)] == [
                "LP-7K3M-XP9F"], query


def test_search_finds_nothing_for_partial_or_empty_queries(demo: sessionmaker[Session],
                                                           services: Services) -> None:
    with demo() as session:
        for query in ("", "   ", "Marc", "Reed Marcus", "1986-03-15", "LP-10"):
            assert people.find(session, services.vault, query) == []
        assert people.search_condition(services.vault, " ") is None
        assert people.parse_date("2026-02-30") is None
        assert people.parse_date(" 02-03-1991 ") == date(1991, 2, 3)
        marcus = people.by_public_id(session, "LP-1001")
        assert marcus is not None and marcus.public_id == "LP-1001"
        assert people.by_public_id(session, "LP-0000") is None


def test_a_name_that_cannot_be_decrypted_is_none_and_audited(demo: sessionmaker[Session],
                                                             services: Services) -> None:
    with demo.begin() as session:
        marcus = person(session, "LP-1001")
        name = people.name_or_none(session, services.vault, services.audit, marcus, META)
        assert name is not None and (name.given, name.family) == ("Marcus", "Reed")
        mark = head(session)
        assert events_since(session, mark) == []
        marcus.given_name_enc = marcus.given_name_enc[:-1] + bytes([marcus.given_name_enc[-1] ^ 1])
        assert people.name_or_none(session, services.vault, services.audit, marcus,
                                   META) is None
        events = events_since(session, mark)
    assert [(e.action, e.participant_id, e.actor) for e in events] == [
        ("crypto:decrypt:failure", marcus.id, "test")]
    assert events[0].detail == {"table": "participant", "column": "given_name"}
    assert events[0].reasons


# --- caseload -------------------------------------------------------------------------------


def test_the_caseload_lists_the_organizations_participants_and_audits_it(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        mark = head(session)
        caseload = ws.caseload(session, services, maria, META)
        events = events_since(session, mark)
        urgent = _open_urgent(session)
    assert [r.public_id for r in caseload.rows] == ALL_IDS
    assert caseload.next_after is None and caseload.works_with_participants
    assert caseload.shows_consent_flags
    first = caseload.rows[0]
    assert first.name is not None and (first.name.given, first.name.family) == ("Marcus", "Reed")
    assert first.enrolled_on is not None
    view, *shown = events
    assert_staff_event(view, "participant:view", maria, decision="permit",
                       reasons=["care_team"])
    assert view.record_ids == ALL_IDS
    assert view.detail == {"view": "caseload", "searched": False, "after": "",
                           "urgent_only": False, "consent_changes_only": False,
                           "urgent_needs_shown": sum(len(r.urgent) for r in caseload.rows)}
    # Harbor owns the urgent needs: each shown one is logged as a progress view.
    assert view.detail["urgent_needs_shown"] == sum(len(g) for g in urgent.values()) > 0
    assert {e.participant_id for e in shown} == set(urgent)
    for event in shown:
        assert (event.action, event.category, event.decision) == ("record:view", "progress",
                                                                  "permit")
        assert sorted(event.record_ids) == sorted(str(g.id) for g in urgent[event.participant_id])
        assert event.detail["view"] == "caseload"


def test_the_caseload_pages_by_public_id(demo: sessionmaker[Session],
                                         services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        first = ws.caseload(session, services, maria, META, limit=5)
        assert [r.public_id for r in first.rows] == ALL_IDS[:5]
        assert first.next_after == "LP-1005"
        second = ws.caseload(session, services, maria, META, after=first.next_after, limit=5)
        assert [r.public_id for r in second.rows] == ALL_IDS[5:10]
        last = ws.caseload(session, services, maria, META, after=second.next_after, limit=5)
        assert [r.public_id for r in last.rows] == ALL_IDS[10:] and last.next_after is None
        # A malformed cursor is ignored (the first page), never an error.
        mark = head(session)
        odd = ws.caseload(session, services, maria, META, after="LP-10%\x00", limit=5)
        assert [r.public_id for r in odd.rows] == ALL_IDS[:5]
        assert events_since(session, mark)[0].detail["after"] == "LP-10%\x00"


def test_the_caseload_search_and_other_organizations(demo: sessionmaker[Session],
                                                     services: Services) -> None:
    with demo.begin() as session:
        maria, alex = staff(session, MARIA), staff(session, ALEX)
        found = ws.caseload(session, services, maria, META, query="Reed")
        assert [r.public_id for r in found.rows] == ["LP-1001"] and found.query == "Reed"
        mark = head(session)
        assert ws.caseload(session, services, maria, META, query="Nobody").rows == []
        assert events_since(session, mark)[0].detail["searched"] is True
        hope = org(session, "hope-housing")
        housing = [p.public_id for p in session.scalars(
            select(m.Participant).join(m.CareTeamMember).where(
                m.CareTeamMember.organization_id == hope.id).order_by(m.Participant.public_id))]
        caseload = ws.caseload(session, services, alex, META)
        assert [r.public_id for r in caseload.rows] == housing
        assert "LP-1003" not in housing
        # The housing navigator may not view consents: no consent flags.
        assert not caseload.shows_consent_flags
        assert not any(r.revoked_recently or r.change_requested for r in caseload.rows)


def test_an_ended_care_team_membership_leaves_the_caseload(demo: sessionmaker[Session],
                                                           services: Services) -> None:
    with demo.begin() as session:
        alex, marcus, hope = staff(session, ALEX), person(session, "LP-1001"), org(
            session, "hope-housing")
        link = session.scalars(select(m.CareTeamMember).where(
            m.CareTeamMember.participant_id == marcus.id,
            m.CareTeamMember.organization_id == hope.id)).one()
        link.end_date = utcnow().date() - timedelta(days=1)
        assert "LP-1001" not in [r.public_id for r in ws.caseload(session, services, alex,
                                                                  META).rows]


def test_urgent_only_keeps_the_people_with_needs_the_user_may_see(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        urgent = _open_urgent(session)
        ids = sorted(session.get(m.Participant, pid).public_id  # type: ignore[union-attr]
                     for pid in urgent)
        caseload = ws.caseload(session, services, maria, META, urgent_only=True)
        assert [r.public_id for r in caseload.rows] == ids
        assert all(r.urgent for r in caseload.rows)
        need = caseload.rows[0].urgent[0]
        assert need.owner == "Harbor LEAD Case Management" and need.owner_slug == "harbor-lead"
        assert need.decision.permitted and need.purpose.value == "CAREMGT"


def test_a_part2_programs_urgent_need_is_not_shown_without_a_consent(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        sam, james, marcus = staff(session, SAM), staff(session, JAMES), person(session,
                                                                               "LP-1001")
        ws.add_goal(session, services, sam, "LP-1001", "treatment", "Detox bed tonight", "",
                    True, META)
        mine = ws.caseload(session, services, sam, META, query="LP-1001")
        assert "Detox bed tonight" in [n.summary for n in mine.rows[0].urgent]
        police = ws.caseload(session, services, james, META, query="LP-1001")
        assert "Detox bed tonight" not in [n.summary for n in police.rows[0].urgent]
        mark = head(session)
        only = ws.caseload(session, services, james, META, urgent_only=True)
        assert all("Detox bed tonight" not in [n.summary for n in r.urgent] for r in only.rows)
        logged = [e for e in events_since(session, mark) if e.action == "record:view"]
        assert all(e.participant_id != marcus.id or e.detail["disclosers"] == ["harbor-lead"]
                   for e in logged)


def test_consent_flags_show_recent_revocations_and_change_requests(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        keisha = person(session, "LP-1004")
        draft = session.scalars(select(m.Consent).where(
            m.Consent.participant_id == keisha.id, m.Consent.status == "draft")).one()
        request = m.ConsentRequest(consent_id=draft.id, wish="less")
        services.vault.ready(session).seal(request, {"note": "Not the housing authority"})
        session.add(request)
        session.flush()
        rows = {r.public_id: r for r in ws.caseload(session, services, maria, META).rows}
        # Seeded: Eli (LP-1007) took back his release 5 days ago, Jasmine (LP-1010) her
        # Part 2 consent 2 days ago.
        assert {p for p, r in rows.items() if r.revoked_recently} == {"LP-1007", "LP-1010"}
        assert {p for p, r in rows.items() if r.change_requested} == {"LP-1004"}
        changes = ws.caseload(session, services, maria, META, consent_changes_only=True)
        assert [r.public_id for r in changes.rows] == ["LP-1004", "LP-1007", "LP-1010"]
        # A revocation more than 14 days old no longer flags.
        eli = person(session, "LP-1007")
        for consent in session.scalars(select(m.Consent).where(
                m.Consent.participant_id == eli.id, m.Consent.status == "revoked")):
            consent.revoked_at = utcnow() - timedelta(days=ws.REVOCATION_FLAG_DAYS + 1)
        session.flush()
        changes = ws.caseload(session, services, maria, META, consent_changes_only=True)
        assert [r.public_id for r in changes.rows] == ["LP-1004", "LP-1010"]
        # Roles that may not view consents get no one under that filter.
        alex = staff(session, ALEX)
        assert ws.caseload(session, services, alex, META, consent_changes_only=True).rows == []


@pytest.mark.xfail(strict=True, reason=(
    "BUG: consents.service.revoke_consent stores revoked_by='participant, with <staff email>' "
    "but workspace.service._revoked_recently matches revoked_by == 'participant' exactly, so a "
    "revocation the participant makes in person with a case manager never raises the caseload's "
    "'took back a consent' flag (README: 'people who took back a consent in the last 14 days')"))
def test_a_revocation_recorded_with_a_case_manager_flags_the_caseload(
        demo: sessionmaker[Session], services: Services) -> None:
    from portal.consents import service as cs

    with demo.begin() as session:
        maria, dev, marcus = staff(session, MARIA), staff(session, DEV), person(session,
                                                                               "LP-1001")
        roi = session.scalars(select(m.Consent).where(
            m.Consent.participant_id == marcus.id, m.Consent.kind == "roi",
            m.Consent.status == "active")).first()
        assert roi is not None
        cs.revoke_consent(session, services, maria, "LP-1001", roi.id, confirmed=True,
                          how="in person", meta=META)
        # Another case manager of the agency should see that Marcus took a consent back.
        rows = {r.public_id: r for r in ws.caseload(session, services, dev, META).rows}
        assert rows["LP-1001"].revoked_recently


@pytest.mark.parametrize("email", [RENEE, OLIVIA])
def test_roles_that_see_no_participant_information_have_no_caseload(
        demo: sessionmaker[Session], services: Services, email: str) -> None:
    with demo.begin() as session:
        user = staff(session, email)
        mark = head(session)
        caseload = ws.caseload(session, services, user, META)
        events = events_since(session, mark)
    assert caseload.rows == [] and not caseload.works_with_participants
    assert caseload.next_after is None
    assert len(events) == 1
    assert_staff_event(events[0], "participant:view", user, decision="deny",
                       reasons=["no_role_permission"])
    assert events[0].detail == {"view": "caseload"} and events[0].record_ids == []


def test_a_name_that_cannot_be_decrypted_is_shown_as_unavailable_on_the_caseload(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        marcus = person(session, "LP-1001")
        marcus.family_name_enc = b"\x00" * len(marcus.family_name_enc)
        session.flush()
        rows = ws.caseload(session, services, staff(session, MARIA), META, query="LP-1001").rows
        assert [(r.public_id, r.name) for r in rows] == [("LP-1001", None)]


# --- the participant page -------------------------------------------------------------------


def _page_events(session: Session, mark: int) -> dict[str, m.AuditEvent]:
    events = events_since(session, mark)
    by_category = {e.category: e for e in events if e.action in ("record:view",
                                                                 "record:withhold")}
    assert len(by_category) == len([e for e in events if e.action in ("record:view",
                                                                      "record:withhold")])
    return by_category


def test_the_case_managers_page_shows_and_audits_every_category(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria, marcus = staff(session, MARIA), person(session, "LP-1001")
        mark = head(session)
        page = ws.participant_page(session, services, maria, "LP-1001", META)
        events = events_since(session, mark)
        records = {str(r.id): r for r in session.scalars(select(m.Record).where(
            m.Record.participant_id == marcus.id))}
    assert page.public_id == "LP-1001" and page.name is not None
    assert (page.name.given, page.name.family) == ("Marcus", "Reed")
    assert [s.category for s in page.sections] == list(DataCategory)
    sud = next(s for s in page.sections if s.category is DataCategory.SUD_TREATMENT)
    # The Part 2 consent names Harbor: Cedar's treatment record is shown, with the notice.
    assert [r.title for r in sud.records] == ["Intake and treatment plan"]
    assert sud.records[0].author == "Cedar Recovery Services"
    assert Obligation.NOTICE_PART2.text in sud.notices
    assert page.break_glass_until is None
    assert DataCategory.CONTACT in page.creatable
    assert page.goal_domains and GoalDomain.SHELTER in page.goal_domains
    # Every category is one event, after the decisions: 9 record views or withholdings.
    category_events = [e for e in events if e.category]
    assert len(category_events) == len(DataCategory) == len(events)
    for event in category_events:
        assert_staff_event(event, event.action, maria, participant_id=marcus.id)
        assert event.policy_version == services.policy.version
        assert set(event.record_ids) >= {rid for rid, r in records.items()
                                         if r.category == event.category} \
            or event.action == "record:withhold"
    by_category = {e.category: e for e in category_events}
    sud_event = by_category["sud_treatment"]
    assert (sud_event.action, sud_event.decision) == ("record:view", "permit")
    assert sud_event.detail["disclosers"] == ["cedar-recovery"]
    assert sud_event.consent_ids  # the Part 2 consent that allowed it


def test_a_housing_navigator_does_not_see_treatment(demo: sessionmaker[Session],
                                                     services: Services) -> None:
    with demo.begin() as session:
        alex, marcus = staff(session, ALEX), person(session, "LP-1001")
        mark = head(session)
        page = ws.participant_page(session, services, alex, "LP-1001", META)
        by_category = _page_events(session, mark)
    sections = {s.category: s for s in page.sections}
    sud = sections[DataCategory.SUD_TREATMENT]
    assert sud.records == [] and sud.withheld and sud.withheld_reason
    assert "Opioid" not in sud.withheld_reason and "Cedar" not in sud.withheld_reason
    assert [r.title for r in sections[DataCategory.HOUSING].records] == [
        "Coordinated entry assessment"]
    assert not sections[DataCategory.SUD_TREATMENT].can_create
    assert sections[DataCategory.HOUSING].can_create
    withheld = by_category["sud_treatment"]
    assert (withheld.action, withheld.decision, withheld.record_ids) == (
        "record:withhold", "deny", [])
    assert withheld.participant_id == marcus.id
    assert by_category["housing"].action == "record:view"
    # No goal detail the navigator may not see: treatment goals are not listed with details.
    assert all(g.detail is None or g.detail_category is not DataCategory.SUD_TREATMENT
               for g in page.goals)


def test_police_never_see_health_whatever_the_consents(demo: sessionmaker[Session],
                                                       services: Services) -> None:
    with demo.begin() as session:
        james, marcus = staff(session, JAMES), person(session, "LP-1001")
        # Even a consent that names the police for health information does not help.
        session.add(m.Consent(participant_id=marcus.id, kind="roi", status="active",
                              signed_at=utcnow(), signature_method="typed",
                              signer_name_enc=b"x", signer_relation="self",
                              expires_on=utcnow().date() + timedelta(days=30),
                              provisions=[m.ConsentProvision(
                                  effect="permit", disclosers=["org:cedar-recovery"],
                                  recipients=["org:riverton-pd"],
                                  categories=["sud_treatment", "health", "mental_health"],
                                  purposes=["CAREMGT"])]))
        session.flush()
        mark = head(session)
        page = ws.participant_page(session, services, james, "LP-1001", META)
        by_category = _page_events(session, mark)
    for category in (DataCategory.HEALTH, DataCategory.MENTAL_HEALTH,
                     DataCategory.SUD_TREATMENT):
        section = next(s for s in page.sections if s.category is category)
        assert section.records == [] and not section.can_create
        assert by_category[category.value].decision == "deny"


@pytest.mark.parametrize(("email", "reason"), [(LUIS, "not_on_care_team"),
                                               (RENEE, "no_role_permission"),
                                               (OLIVIA, "no_role_permission")])
def test_the_page_is_not_found_for_others_and_the_attempt_is_audited(
        demo: sessionmaker[Session], services: Services, email: str, reason: str) -> None:
    with demo.begin() as session:
        user, marcus = staff(session, email), person(session, "LP-1001")
        mark = head(session)
        with pytest.raises(NotFound):
            ws.participant_page(session, services, user, "LP-1001", META)
        events = events_since(session, mark)
    assert len(events) == 1
    assert_staff_event(events[0], "participant:view", user, participant_id=marcus.id,
                       decision="deny", reasons=[reason])


def test_an_unknown_participant_is_not_found_without_an_audit(demo: sessionmaker[Session],
                                                              services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        for public_id in ("LP-9999", "nonsense"):
            with unchanged(session), pytest.raises(NotFound):
                ws.participant_page(session, services, maria, public_id, META)


def test_break_glass_opens_the_page_for_emergency_treatment_only(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        luis, darnell = staff(session, LUIS), person(session, "LP-1003")
        grant = services.access.grant_break_glass(session, luis, darnell, reason="ER",
                                                  emergency_nature="overdose", facility="ER",
                                                  minutes=30, meta=META)
        mark = head(session)
        page = ws.participant_page(session, services, luis, "LP-1003", META)
        by_category = _page_events(session, mark)
    assert page.break_glass_until == grant.expires_at
    assert page.creatable == [] and page.goal_domains == []
    sud = next(s for s in page.sections if s.category is DataCategory.SUD_TREATMENT)
    assert [r.title for r in sud.records] == ["Intake and treatment plan"]
    event = by_category["sud_treatment"]
    assert (event.purpose, event.decision) == ("ETREAT", "permit")
    assert event.reasons == ["break_glass"]
    assert event.detail["break_glass_grant"] == str(grant.id)


def test_an_expired_grant_opens_nothing(demo: sessionmaker[Session],
                                        services: Services) -> None:
    with demo.begin() as session:
        luis = staff(session, LUIS)
        grant = services.access.grant_break_glass(session, luis, person(session, "LP-1003"),
                                                  reason="ER", emergency_nature="overdose",
                                                  facility="ER", minutes=30, meta=META)
        grant.started_at = utcnow() - timedelta(hours=2)
        grant.expires_at = utcnow() - timedelta(minutes=1)
        session.flush()
        with pytest.raises(NotFound):
            ws.participant_page(session, services, luis, "LP-1003", META)


def test_the_page_without_reveal_decides_but_opens_and_audits_nothing(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        alex = staff(session, ALEX)
        mark = head(session)
        page = ws.participant_page(session, services, alex, "LP-1001", META, reveal=False)
        assert events_since(session, mark) == []
        full = ws.participant_page(session, services, alex, "LP-1001", META)
    assert page.name is None and page.goals == []
    assert all(r.title is None and r.body is None for s in page.sections for r in s.records)
    assert [(s.category, s.withheld, len(s.records)) for s in page.sections] == [
        (s.category, s.withheld, len(s.records)) for s in full.sections]


def test_goals_show_their_status_to_partners_and_their_detail_where_permitted(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria, tom = staff(session, MARIA), staff(session, TOM)
        sam = staff(session, SAM)
        ws.add_goal(session, services, maria, "LP-1001", "shelter", "Bed tonight",
                    "Riverside shelter, bus pass needed", True, META)
        ws.add_goal(session, services, sam, "LP-1001", "treatment", "Keep attending",
                    "Buprenorphine twice weekly", False, META)
        mine = {g.summary: g for g in ws.participant_page(session, services, maria, "LP-1001",
                                                          META).goals}
        probation = {g.summary: g for g in ws.participant_page(session, services, tom,
                                                               "LP-1001", META).goals}
        page = ws.participant_page(session, services, maria, "LP-1001", META)
    assert mine["Bed tonight"].detail == "Riverside shelter, bus pass needed"
    assert mine["Bed tonight"].can_update and mine["Bed tonight"].urgent
    assert mine["Bed tonight"].owner == "Harbor LEAD Case Management"
    assert "Bed tonight" in [g.summary for g in page.urgent_goals]
    # Cedar's goal reaches Harbor under the Part 2 consent: not Harbor's to update, and it
    # carries the 42 CFR 2.32 notice in the plan.
    assert mine["Keep attending"].detail == "Buprenorphine twice weekly"
    assert not mine["Keep attending"].can_update and mine["Keep attending"].part2
    assert page.plan_notices == [Obligation.NOTICE_PART2.text]
    # Probation sees Harbor's goal status under the release, never what is behind it.
    assert "Bed tonight" in probation and probation["Bed tonight"].detail is None
    assert not probation["Bed tonight"].can_update
    assert page.goal_statuses[0].value == "not_started"


def test_what_cannot_be_decrypted_is_shown_as_unavailable_on_the_page(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria, marcus = staff(session, MARIA), person(session, "LP-1001")
        harbor = org(session, "harbor-lead")
        record = session.scalars(select(m.Record).where(
            m.Record.participant_id == marcus.id, m.Record.category == "contact")).one()
        record.body_enc = b"\x00" * len(record.body_enc)
        broken = ws.add_goal(session, services, maria, "LP-1001", "food", "Broken detail",
                             "sealed", False, META)
        assert broken.detail_enc is not None
        broken.detail_enc = b"\x00" * len(broken.detail_enc)
        # A goal stored without any detail at all.
        bare = m.Goal(id=uuid.uuid4(), participant_id=marcus.id, organization_id=harbor.id,
                      domain="income", status="on_hold")
        services.vault.ready(session).seal(bare, {"summary": "No detail", "detail": None,
                                                  "status_note": None})
        session.add(bare)
        # A goal whose summary and note cannot be decrypted (altered): shown as unavailable.
        garbled = ws.add_goal(session, services, maria, "LP-1001", "income", "Garbled",
                              "", False, META)
        ws.update_goal(session, services, maria, "LP-1001", str(garbled.id), "in_progress",
                       "a note", META)
        garbled.summary_enc = b"\x00" * len(garbled.summary_enc)
        assert garbled.status_note_enc is not None
        garbled.status_note_enc = bare.summary_enc  # bound to another row and column
        session.flush()
        mark = head(session)
        page = ws.participant_page(session, services, maria, "LP-1001", META)
        by_category = _page_events(session, mark)
        failures = [e for e in events_since(session, mark)
                    if e.action == "crypto:decrypt:failure"]
    contact = next(s for s in page.sections if s.category is DataCategory.CONTACT)
    assert [(r.id, r.title, r.body) for r in contact.records] == [(str(record.id), None, None)]
    goals = {g.summary: g for g in page.goals}
    assert goals["Broken detail"].detail is None and goals["Broken detail"].detail_unavailable
    assert goals["No detail"].detail == "" and goals["No detail"].status == "on_hold"
    assert not goals["No detail"].detail_unavailable
    assert (goals[None].id, goals[None].status_note, goals[None].status) == (
        str(garbled.id), None, "in_progress")
    # The bare goal's status was shown (progress); it has no benefits detail to disclose.
    assert str(bare.id) in by_category["progress"].record_ids
    assert str(bare.id) not in by_category["benefits"].record_ids
    # What could not be decrypted was not disclosed: not in its category's event (and named
    # there as unavailable); the broken goal's status was still shown.
    assert str(record.id) not in by_category["contact"].record_ids
    assert by_category["contact"].detail["unavailable"] == [str(record.id)]
    assert str(broken.id) not in by_category["benefits"].record_ids
    assert by_category["benefits"].detail["unavailable"] == [str(broken.id)]
    assert str(broken.id) in by_category["progress"].record_ids
    # One decrypt-failure event names them all, with where and why, and no content.
    (failure,) = failures
    assert set(failure.record_ids) == {str(record.id), str(broken.id), str(garbled.id)}
    assert failure.participant_id == marcus.id and failure.actor == MARIA
    assert {(f["id"], f["table"], f["column"]) for f in failure.detail["failures"]} == {
        (str(record.id), "record", "body"), (str(broken.id), "goal", "detail"),
        (str(garbled.id), "goal", "summary"), (str(garbled.id), "goal", "status_note")}


def test_each_page_event_says_when_it_was_decided_and_what_it_saw(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        alex = staff(session, ALEX)
        mark = head(session)
        ws.participant_page(session, services, alex, "LP-1001", META)
        by_category = _page_events(session, mark)
        versions = {str(c.id): c.version for c in session.scalars(select(m.Consent))}
    for event in by_category.values():
        # Decided before it was written; the chain read before the consents is the head as
        # it was before this page wrote anything.
        decided = datetime.fromisoformat(event.detail["decided_at"].replace("Z", "+00:00"))
        assert decided <= event.occurred_at
        assert event.detail["observed_seq"] == mark
        assert event.detail["consent_versions"] == {c: versions[c] for c in event.consent_ids}
    assert any(e.consent_ids for e in by_category.values())


def test_a_name_that_cannot_be_decrypted_is_audited_on_the_page(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria, marcus = staff(session, MARIA), person(session, "LP-1001")
        marcus.given_name_enc = b"\x01" * len(marcus.given_name_enc)
        session.flush()
        mark = head(session)
        page = ws.participant_page(session, services, maria, "LP-1001", META)
        events = events_since(session, mark)
    assert page.name is None
    failures = [e for e in events if e.action == "crypto:decrypt:failure"]
    assert len(failures) == 1 and failures[0].detail["column"] == "given_name"
    assert failures[0].participant_id == marcus.id and failures[0].actor == MARIA


def test_the_page_fails_closed_when_its_audit_cannot_be_written(
        demo: sessionmaker[Session], services: Services,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fail_audit_on(monkeypatch, services, "record:view")
    with demo.begin() as session:
        maria = staff(session, MARIA)
        mark = head(session)
        with pytest.raises(AuditWriteError):
            ws.participant_page(session, services, maria, "LP-1001", META)
        assert events_since(session, mark) == []


# --- records --------------------------------------------------------------------------------


def test_adding_a_record_seals_it_and_audits_it(demo: sessionmaker[Session],
                                                services: Services) -> None:
    yesterday = (utcnow().date() - timedelta(days=1)).isoformat()
    with demo.begin() as session:
        alex, marcus = staff(session, ALEX), person(session, "LP-1001")
        mark = head(session)
        record = ws.add_record(session, services, alex, "LP-1001", "housing", " Lease signed ",
                               " Moved in on Monday. ", yesterday, META)
        events = events_since(session, mark)
        record_id = record.id
        undated = ws.add_record(session, services, alex, "LP-1001", "housing", "t", "b", "",
                                META)
        assert undated.effective_date == utcnow().date()
    with demo() as session:
        stored = session.get(m.Record, record_id)
        assert stored is not None
        vault = services.vault.ready(session)
        assert (vault.open(stored, "title"), vault.open(stored, "body")) == (
            "Lease signed", "Moved in on Monday.")
        assert (stored.category, stored.effective_date.isoformat(), stored.organization_id,
                stored.author_user_id) == ("housing", yesterday, alex.organization_id, alex.id)
    assert len(events) == 1
    assert_staff_event(events[0], "record:create", alex, participant_id=marcus.id,
                       decision="permit", reasons=["own_organization"])
    assert (events[0].category, events[0].record_ids) == ("housing", [str(record_id)])


def test_a_bad_record_says_what_to_fix_and_changes_nothing(demo: sessionmaker[Session],
                                                           services: Services) -> None:
    tomorrow = (utcnow().date() + timedelta(days=1)).isoformat()
    with demo.begin() as session:
        alex = staff(session, ALEX)

        def add(category: str = "housing", title: str = "t", body: str = "b",
                effective: str = "") -> None:
            ws.add_record(session, services, alex, "LP-1001", category, title, body,
                          effective, META)

        cases = [
            ({"category": "gossip"}, "Choose a category."),
            ({"category": "sud_treatment"},
             "Your role cannot add substance use treatment information."),
            ({"title": " "}, "Give it a title of at most 200 characters."),
            ({"title": "x" * 201}, "Give it a title of at most 200 characters."),
            ({"body": ""}, "Write the note (at most 20,000 characters)."),
            ({"body": "x" * 20_001}, "Write the note"),
            ({"effective": "28/11/2026"}, "The date must look like 2026-11-28."),
            ({"effective": tomorrow}, "The date cannot be in the future."),
        ]
        for fields, problem in cases:
            with unchanged(session), pytest.raises(InvalidInput) as raised:
                add(**fields)
            assert problem in str(raised.value), fields
        with unchanged(session), pytest.raises(InvalidInput) as raised:
            add(title="", body="", effective=tomorrow)
        assert str(raised.value) == (
            "Give it a title of at most 200 characters. Write the note (at most 20,000 "
            "characters). The date cannot be in the future.")


def test_adding_a_record_off_the_care_team_is_refused_and_audited(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        luis, marcus = staff(session, LUIS), person(session, "LP-1001")
        mark = head(session)
        with pytest.raises(NotFound):
            ws.add_record(session, services, luis, "LP-1001", "health", "t", "b", "", META)
        events = events_since(session, mark)
        assert session.scalars(select(m.Record).where(
            m.Record.participant_id == marcus.id, m.Record.category == "health")).all() == []
    assert [(e.action, e.decision, e.reasons) for e in events] == [
        ("record:create", "deny", ["not_on_care_team"])]


# --- goals ----------------------------------------------------------------------------------


def test_setting_a_goal_seals_its_detail_and_starts_its_history(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria, marcus = staff(session, MARIA), person(session, "LP-1001")
        mark = head(session)
        goal = ws.add_goal(session, services, maria, "LP-1001", "food", " Groceries ",
                           " Pantry on Tuesdays ", True, META)
        events = events_since(session, mark)
        goal_id = goal.id
    with demo() as session:
        stored = session.get(m.Goal, goal_id)
        assert stored is not None
        vault = services.vault.ready(session)
        assert (vault.open(stored, "summary"), stored.status, stored.urgent, stored.domain) == (
            "Groceries", "not_started", True, "food")
        assert b"Groceries" not in stored.summary_enc
        assert vault.open(stored, "detail") == "Pantry on Tuesdays"
        assert [(u.status, vault.open(u, "note"), u.author_user_id) for u in stored.updates] == [
            ("not_started", "Goal set", maria.id)]
    assert len(events) == 1
    assert_staff_event(events[0], "goal:create", maria, participant_id=marcus.id,
                       decision="permit", reasons=["own_organization"])
    assert events[0].category == "progress" and events[0].record_ids == [str(goal_id)]
    assert events[0].detail == {"domain": "food", "urgent": True}


def test_a_bad_goal_changes_nothing(demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria, alex = staff(session, MARIA), staff(session, ALEX)
        cases = [
            (maria, "dreams", "s", "", "Choose what the goal is about."),
            (alex, "treatment", "s", "", "Your role cannot set treatment goals."),
            (alex, "mental_health", "s", "", "Your role cannot set mental health goals."),
            (maria, "food", " ", "", "Say in a few words what the goal is"),
            (maria, "food", "x" * 201, "", "at most 200 characters"),
            (maria, "food", "s", "x" * 2001, "Keep the details under 2,000 characters."),
        ]
        for user, domain, summary, detail, problem in cases:
            with unchanged(session), pytest.raises(InvalidInput) as raised:
                ws.add_goal(session, services, user, "LP-1001", domain, summary, detail, False,
                            META)
            assert problem in str(raised.value)


def test_updating_a_goal_keeps_its_history(demo: sessionmaker[Session],
                                           services: Services) -> None:
    with demo.begin() as session:
        maria, dev, marcus = staff(session, MARIA), staff(session, DEV), person(session,
                                                                               "LP-1001")
        goal_id = ws.add_goal(session, services, maria, "LP-1001", "food", "Groceries", "",
                              False, META).id
    with demo.begin() as session:
        mark = head(session)
        # Any of the owning agency's case managers may update it.
        goal = ws.update_goal(session, services, dev, "LP-1001", str(goal_id), "achieved",
                              " Pantry card in hand ", META)
        events = events_since(session, mark)
        assert (goal.status, services.vault.open(goal, "status_note")) == (
            "achieved", "Pantry card in hand")
    with demo() as session:
        stored = session.get(m.Goal, goal_id)
        assert stored is not None
        vault = services.vault.ready(session)
        updates = sorted(stored.updates, key=lambda u: u.id)
        assert [(u.status, vault.open(u, "note")) for u in updates] == [
            ("not_started", "Goal set"), ("achieved", "Pantry card in hand")]
        assert all(u.note_enc is not None and b"Pantry" not in u.note_enc for u in updates)
    assert len(events) == 1
    assert_staff_event(events[0], "goal:update", dev, participant_id=marcus.id,
                       decision="permit", reasons=["own_organization"])
    assert events[0].detail == {"from": "not_started", "to": "achieved"}


def test_only_the_owning_organization_updates_a_goal(demo: sessionmaker[Session],
                                                     services: Services) -> None:
    with demo.begin() as session:
        maria, sam, alex = staff(session, MARIA), staff(session, SAM), staff(session, ALEX)
        goal_id = str(ws.add_goal(session, services, maria, "LP-1001", "food", "Groceries", "",
                                  False, META).id)
        angela_goal = ws.add_goal(session, services, maria, "LP-1002", "food", "Other", "",
                                  False, META)
        james = staff(session, JAMES)
        police_goal = m.Goal(id=uuid.uuid4(), participant_id=person(session, "LP-1001").id,
                             organization_id=james.organization_id, domain="legal",
                             status="not_started")
        services.vault.ready(session).seal(police_goal, {"summary": "Court date",
                                                         "detail": ""})
        session.add(police_goal)
        session.flush()
        not_found = [(sam, goal_id), (alex, goal_id), (maria, "not-a-uuid"),
                     (maria, str(uuid.uuid4())),
                     # Another participant's goal, through this participant's page.
                     (maria, str(angela_goal.id))]
        for user, gid in not_found:
            with unchanged(session), pytest.raises(NotFound):
                ws.update_goal(session, services, user, "LP-1001", gid, "achieved", "", META)
        invalid = [(maria, goal_id, "done", "", "Choose the goal's status."),
                   (maria, goal_id, "achieved", "x" * 301, "Keep the note under 300"),
                   # Police own it but may not record progress.
                   (james, str(police_goal.id), "achieved", "", "cannot update goals")]
        for user, gid, status, note, problem in invalid:
            with unchanged(session), pytest.raises(InvalidInput, match=problem):
                ws.update_goal(session, services, user, "LP-1001", gid, status, note, META)


def test_updating_off_the_care_team_is_refused_and_audited(demo: sessionmaker[Session],
                                                           services: Services) -> None:
    with demo.begin() as session:
        maria, luis = staff(session, MARIA), staff(session, LUIS)
        goal_id = str(ws.add_goal(session, services, maria, "LP-1001", "food", "Groceries", "",
                                  False, META).id)
        mark = head(session)
        with pytest.raises(NotFound):
            ws.update_goal(session, services, luis, "LP-1001", goal_id, "closed", "", META)
        with pytest.raises(NotFound):
            ws.add_goal(session, services, luis, "LP-1001", "health", "s", "", False, META)
        events = events_since(session, mark)
    assert [(e.action, e.decision, e.reasons) for e in events] == [
        ("goal:update", "deny", ["not_on_care_team"]),
        ("goal:create", "deny", ["not_on_care_team"])]


# --- explanations and emergency search ------------------------------------------------------


def test_explaining_a_withheld_category_discloses_nothing(demo: sessionmaker[Session],
                                                          services: Services) -> None:
    with demo.begin() as session:
        alex, marcus = staff(session, ALEX), person(session, "LP-1001")
        mark = head(session)
        lines = ws.explain_category(session, services, alex, "LP-1001", "sud_treatment", META)
        events = events_since(session, mark)
    assert lines[0].startswith("Some substance use treatment information is withheld from "
                               "Hope Housing Collaborative because ")
    # What he can do about it fits a housing navigator: his role never sees it.
    assert lines[1].startswith("No consent changes this")
    assert "Only the rule is shown here" in lines[2]
    assert not any("Opioid" in line or "Cedar" in line for line in lines)
    # An explanation is not a disclosure: no record views, one explain event.
    assert [(e.action, e.category, e.decision, e.participant_id) for e in events] == [
        ("decision:explain", "sud_treatment", "deny", marcus.id)]
    assert_staff_event(events[0], "decision:explain", alex)


def test_explaining_a_category_that_is_shared(demo: sessionmaker[Session],
                                              services: Services) -> None:
    with demo.begin() as session:
        alex = staff(session, ALEX)
        mark = head(session)
        # Angela's care team has no Part 2 program: her release shares housing with Hope.
        lines = ws.explain_category(session, services, alex, "LP-1002", "housing", META)
        events = events_since(session, mark)
    assert lines[0] == ("Nothing in housing is withheld from Hope Housing Collaborative.")
    assert [(e.action, e.decision) for e in events] == [("decision:explain", "permit")]


def test_explaining_an_unknown_category_or_off_the_team_is_not_found(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        alex, luis = staff(session, ALEX), staff(session, LUIS)
        with unchanged(session), pytest.raises(NotFound):
            ws.explain_category(session, services, alex, "LP-1001", "gossip", META)
        mark = head(session)
        with pytest.raises(NotFound):
            ws.explain_category(session, services, luis, "LP-1001", "health", META)
        assert [(e.action, e.decision) for e in events_since(session, mark)] == [
            ("participant:view", "deny")]


def test_emergency_search_is_exact_and_audited(demo: sessionmaker[Session],
                                               services: Services) -> None:
    with demo.begin() as session:
        luis = staff(session, LUIS)
        assert ws.may_break_glass(services, luis)
        assert not ws.may_break_glass(services, staff(session, JAMES))
        assert not ws.may_break_glass(services, staff(session, ALEX))
        mark = head(session)
        found = ws.emergency_search(session, services, luis, "Darnell Hughes", META)
        none = ws.emergency_search(session, services, luis, "Darn", META)
        events = events_since(session, mark)
    # The match names the person and their date of birth, to confirm who it is.
    assert [(f.public_id, f.name.display if f.name else None,
             f.name.date_of_birth.isoformat() if f.name and f.name.date_of_birth else None)
            for f in found] == [("LP-1003", "Darnell Hughes", "1992-07-23")]
    assert none == []
    assert [(e.action, e.record_ids, e.reasons, e.detail) for e in events] == [
        ("participant:view", ["LP-1003"], ["break_glass"],
         {"view": "emergency search", "identity_shown": ["LP-1003"]}),
        ("participant:view", [], ["break_glass"],
         {"view": "emergency search", "identity_shown": []})]
    assert_staff_event(events[0], "participant:view", luis, decision="permit")


@pytest.mark.parametrize("typed", ["LP-1003", "lp 7k3m xp9f", "LP-7K3M-XP9F", "LP7K3MXP9F"])
def test_an_emergency_search_by_id_never_shows_a_name(demo: sessionmaker[Session],
                                                     services: Services, typed: str) -> None:
    with demo.begin() as session:
        if typed != "LP-1003":
            person(session, "LP-1003").public_id = "LP-7K3M-XP9F"
            session.flush()
        (found,) = ws.emergency_search(session, services, staff(session, LUIS), typed, META)
    assert found.name is None


# --- lifecycle ------------------------------------------------------------------------------


def test_the_exit_form_says_whether_it_is_recorded(demo: sessionmaker[Session],
                                                   services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        open_page = lifecycle.event_page(session, services, maria, "LP-1001",
                                         ConsentEvent.LEAD_EXIT, META)
        assert open_page == {"public_id": "LP-1001", "done": None}
        done = lifecycle.event_page(session, services, maria, "LP-1009",
                                    ConsentEvent.LEAD_EXIT, META)["done"]
        assert done is not None and done.reason == "completed"
        curtis = person(session, "LP-1009")
        assert set(lifecycle.recorded(session, curtis)) == {ConsentEvent.LEAD_EXIT}


def test_an_exit_is_recorded_audited_and_ends_the_consents_that_end_on_it(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria, angela = staff(session, MARIA), person(session, "LP-1002")

        def statuses() -> dict[str, str]:
            return {s["id"]: s["status"] for s in consent_summaries(session, angela.id,
                                                                    utcnow())}

        before = statuses()
        mark = head(session)
        day = utcnow().date() - timedelta(days=1)
        row = lifecycle.record(session, services, maria, "LP-1002", ConsentEvent.LEAD_EXIT,
                               day.isoformat(), "moved", META)
        events = events_since(session, mark)
        after = statuses()
        assert (row.event, row.occurred_on, row.reason, row.recorded_by_user_id) == (
            "lead_exit", day, "moved", maria.id)
        assert angela.status == "exited"
        health = session.scalars(select(m.Consent).where(
            m.Consent.participant_id == angela.id,
            m.Consent.expiry_event == "lead_exit")).one()
    assert before[str(health.id)] == "active" and after[str(health.id)] == "expired"
    assert {k: v for k, v in after.items() if k != str(health.id)} == {
        k: v for k, v in before.items() if k != str(health.id)}
    assert len(events) == 1
    assert_staff_event(events[0], "participant:exit", maria, participant_id=angela.id,
                       decision="permit")
    assert events[0].detail == {"event": "lead_exit", "on": day.isoformat(), "reason": "moved"}


def test_a_final_disposition_is_recorded_by_the_court(demo: sessionmaker[Session],
                                                      services: Services) -> None:
    with demo.begin() as session:
        linda, darnell = staff(session, LINDA), person(session, "LP-1003")
        mark = head(session)
        row = lifecycle.record(session, services, linda, "LP-1003",
                               ConsentEvent.FINAL_DISPOSITION, "", "ignored", META)
        events = events_since(session, mark)
        assert (row.occurred_on, row.reason) == (utcnow().date(), "")
        assert darnell.status == "enrolled"  # a disposition does not end the participation
    assert [(e.action, e.detail["event"]) for e in events] == [
        ("participant:disposition:create", "final_disposition")]


def test_a_bad_lifecycle_event_says_everything_and_changes_nothing(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria, marcus = staff(session, MARIA), person(session, "LP-1001")
        assert marcus.enrolled_on is not None
        tomorrow = (utcnow().date() + timedelta(days=1)).isoformat()
        early = (marcus.enrolled_on - timedelta(days=1)).isoformat()
        cases = [
            ("LP-1001", "2026/11/28", "moved", ["The date must look like 2026-11-28."]),
            ("LP-1001", tomorrow, "", ["The date cannot be in the future.",
                                       "Choose why the participant left."]),
            ("LP-1001", early, "moved", ["The date cannot be before the participant enrolled."]),
            ("LP-1009", "", "completed", ["This is already recorded."]),
        ]
        for public_id, on, reason, problems in cases:
            with unchanged(session), pytest.raises(InvalidInput) as raised:
                lifecycle.record(session, services, maria, public_id, ConsentEvent.LEAD_EXIT,
                                 on, reason, META)
            assert str(raised.value) == " ".join(problems)
        assert marcus.status == "enrolled"


@pytest.mark.parametrize(("email", "event", "message"), [
    (MARIA, ConsentEvent.FINAL_DISPOSITION, "Your role cannot record the final disposition"),
    (LINDA, ConsentEvent.LEAD_EXIT, "Your role cannot record this."),
    (TOM, ConsentEvent.LEAD_EXIT, "Your role cannot record this."),
])
def test_lifecycle_events_are_refused_to_roles_the_policy_does_not_name(
        demo: sessionmaker[Session], services: Services, email: str, event: ConsentEvent,
        message: str) -> None:
    public_id = "LP-1010" if email == LINDA else "LP-1001"
    with demo.begin() as session:
        user, participant = staff(session, email), person(session, public_id)
        recorded = set(lifecycle.recorded(session, participant))
        mark = head(session)
        with pytest.raises(Refused, match=message):
            lifecycle.record(session, services, user, public_id, event, "", "moved", META)
        with pytest.raises(Refused):
            lifecycle.event_page(session, services, user, public_id, event, META)
        events = events_since(session, mark)
        assert set(lifecycle.recorded(session, participant)) == recorded
    assert len(events) == 2
    for audited in events:
        assert_staff_event(audited, lifecycle.EVENT_ACTION[event].value, user,
                           participant_id=participant.id, decision="deny",
                           reasons=["no_role_permission"])


def test_lifecycle_events_off_the_care_team_are_not_found(demo: sessionmaker[Session],
                                                          services: Services) -> None:
    with demo.begin() as session:
        priya, marcus = staff(session, PRIYA), person(session, "LP-1001")
        mark = head(session)
        with pytest.raises(NotFound):
            lifecycle.record(session, services, priya, "LP-1001",
                             ConsentEvent.FINAL_DISPOSITION, "", "", META)
        events = events_since(session, mark)
        with unchanged(session), pytest.raises(NotFound):
            lifecycle.event_page(session, services, staff(session, MARIA), "LP-9999",
                                 ConsentEvent.LEAD_EXIT, META)
    assert [(e.action, e.decision, e.reasons, e.participant_id) for e in events] == [
        ("participant:disposition:create", "deny", ["not_on_care_team"], marcus.id)]


def test_an_exit_whose_audit_fails_is_not_recorded(demo: sessionmaker[Session],
                                                   services: Services,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fail_audit_on(monkeypatch, services, "participant:exit")
    with pytest.raises(AuditWriteError), demo.begin() as session:
        lifecycle.record(session, services, staff(session, MARIA), "LP-1001",
                         ConsentEvent.LEAD_EXIT, "", "moved", META)
    with demo() as session:
        marcus = person(session, "LP-1001")
        assert marcus.status == "enrolled"
        assert lifecycle.recorded(session, marcus) == {}
