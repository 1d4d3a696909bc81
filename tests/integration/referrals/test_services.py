"""The LEAD front door (portal/referrals/service.py) called directly with a database session:
police referrals, acceptance and enrolment, the care team and sign-in codes; what each use
case returns, refuses, writes and audits."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from portal.db import models as m
from portal.db.audit_chain import AuditWriteError
from portal.db.types import utcnow
from portal.domain import public_ids
from portal.kernel.errors import InvalidInput, NotFound, Refused
from portal.kernel.wiring import Services
from portal.referrals import service as rs
from tests.integration.service_support import (
    ALEX,
    DEV,
    JAMES,
    LUIS,
    MARIA,
    META,
    RENEE,
    TOM,
    assert_staff_event,
    counts,
    events_since,
    fail_audit_on,
    head,
    org,
    person,
    staff,
    unchanged,
)


def _refer(session: Session, services: Services, email: str = JAMES,
           **fields: str) -> m.Referral:
    values = {"pathway": "social_contact", "given": " Jordan ", "family": " Sample ",
              "born": "1991-02-03", "where": " Library steps, mornings "} | fields
    return rs.refer(session, services, staff(session, email), meta=META, **values)


def test_who_refers_and_who_decides(demo: sessionmaker[Session], services: Services) -> None:
    with demo() as session:
        assert rs.is_referrer(services, staff(session, JAMES))
        assert not rs.is_referrer(services, staff(session, MARIA))
        assert rs.decides_referrals(services, staff(session, MARIA))
        for email in (JAMES, ALEX, RENEE, TOM):
            assert not rs.decides_referrals(services, staff(session, email))


# --- refer ----------------------------------------------------------------------------------


def test_a_police_referral_is_sealed_and_audited(demo: sessionmaker[Session],
                                                 services: Services) -> None:
    with demo.begin() as session:
        james = staff(session, JAMES)
        mark = head(session)
        referral = _refer(session, services, pathway="arrest_diversion")
        events = events_since(session, mark)
        referral_id = referral.id
    with demo() as session:
        stored = session.get(m.Referral, referral_id)
        assert stored is not None
        vault = services.vault.ready(session)
        assert (vault.open(stored, "given_name"), vault.open(stored, "family_name"),
                vault.open(stored, "date_of_birth")) == ("Jordan", "Sample", "1991-02-03")
        assert b"Jordan" not in stored.given_name_enc
        assert (stored.status, stored.pathway, vault.open(stored, "where_to_find")) == (
            "pending", "arrest_diversion", "Library steps, mornings")
        assert stored.where_to_find_enc is not None and b"Library" not in stored.where_to_find_enc
        assert (stored.referring_user_id, stored.referring_organization_id) == (
            james.id, james.organization_id)
    assert len(events) == 1
    assert_staff_event(events[0], "referral:create", james, decision="permit")
    assert events[0].record_ids == [str(referral_id)]
    assert events[0].participant_id is None


def test_a_referral_without_a_date_of_birth_stores_none(demo: sessionmaker[Session],
                                                        services: Services) -> None:
    with demo.begin() as session:
        referral = _refer(session, services, born="  ")
        assert services.vault.open(referral, "date_of_birth") is None


def test_only_police_refer_and_a_refusal_writes_nothing(demo: sessionmaker[Session],
                                                        services: Services) -> None:
    with demo.begin() as session:
        for email in (MARIA, ALEX, TOM):
            with unchanged(session), pytest.raises(Refused, match="Only police officers"):
                _refer(session, services, email)


def test_a_bad_referral_says_everything_to_fix_and_changes_nothing(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        with unchanged(session), pytest.raises(InvalidInput) as raised:
            _refer(session, services, pathway="walk_in", given=" ", family="Sample",
                   born="31/01/1990", where="x" * 501)
        message = str(raised.value)
        for problem in ("Choose arrest diversion or social contact.",
                        "Give the person's first and last name",
                        "The date of birth must look like 1990-01-31",
                        "under 500 characters"):
            assert problem in message
        with unchanged(session), pytest.raises(InvalidInput, match="first and last name"):
            _refer(session, services, family="")
        # Exactly 500 characters is fine.
        assert services.vault.open(_refer(session, services, where="x" * 500),
                                   "where_to_find") == "x" * 500


def test_officers_see_their_own_referrals_newest_first(demo: sessionmaker[Session],
                                                       services: Services) -> None:
    with demo.begin() as session:
        first = _refer(session, services, given="Ann", family="First")
        second = _refer(session, services, given="Bob", family="Second")
        second.created_at = first.created_at + timedelta(minutes=1)
        mark = head(session)
        lines = rs.own_referrals(session, services, staff(session, JAMES))
        assert events_since(session, mark) == []  # the officer's own referrals: no disclosure
        # Nobody else referred anything.
        assert rs.own_referrals(session, services, staff(session, MARIA)) == []
    assert [(line.id, line.given, line.family, line.status) for line in lines] == [
        (str(second.id), "Bob", "Second", "pending"), (str(first.id), "Ann", "First", "pending")]
    # What the officer learns is what they gave: no date of birth, nothing of the decision.
    assert all(line.born is None and line.referred_by == "" for line in lines)


# --- pending and decide ---------------------------------------------------------------------


def test_pending_referrals_are_shown_to_case_managers_and_audited(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        referral = _refer(session, services)
        maria = staff(session, MARIA)
        mark = head(session)
        lines = rs.pending(session, services, maria, META)
        events = events_since(session, mark)
    assert [(x.id, x.given, x.family, x.born, x.where, x.referred_by, x.pathway) for x in lines] \
        == [(str(referral.id), "Jordan", "Sample", "1991-02-03", "Library steps, mornings",
             "Riverton Police Department", "social_contact")]
    assert len(events) == 1
    assert_staff_event(events[0], "participant:view", maria)
    assert events[0].record_ids == [str(referral.id)]
    assert events[0].detail == {"view": "pending referrals"}


def test_pending_is_not_found_for_those_who_do_not_decide(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        _refer(session, services)
        for email in (JAMES, ALEX, RENEE):
            with unchanged(session), pytest.raises(NotFound):
                rs.pending(session, services, staff(session, email), META)


def test_accepting_enrols_the_participant_with_the_case_managers_agency(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        referral_id = _refer(session, services, pathway="arrest_diversion").id
    with demo.begin() as session:
        maria = staff(session, MARIA)
        before = counts(session)
        mark = head(session)
        participant = rs.decide_referral(session, services, maria, referral_id, accept=True,
                                         reason="", meta=META)
        assert participant is not None
        events = events_since(session, mark)
        after = counts(session)
        participant_id = participant.id
    assert after["participant"] == before["participant"] + 1
    assert after["care_team_member"] == before["care_team_member"] + 1
    with demo() as session:
        enrolled = session.get(m.Participant, participant_id)
        referral = session.get(m.Referral, referral_id)
        assert enrolled is not None and referral is not None
        assert re.fullmatch(r"LP-[34679CFHKMNPRTWXY]{4}-[34679CFHKMNPRTWXY]{4}",
                            enrolled.public_id)
        assert (enrolled.status, enrolled.referral_pathway, enrolled.enrolled_on) == (
            "enrolled", "arrest_diversion", utcnow().date())
        name = services.vault.ready(session).open_participant(enrolled)
        assert (name.given, name.family, str(name.date_of_birth)) == (
            "Jordan", "Sample", "1991-02-03")
        team = session.scalars(select(m.CareTeamMember).where(
            m.CareTeamMember.participant_id == participant_id)).all()
        assert [(t.organization_id, t.staff_user_id, t.end_date) for t in team] == [
            (maria.organization_id, maria.id, None)]
        assert (referral.status, referral.participant_id, referral.decided_by_user_id) == (
            "accepted", participant_id, maria.id)
        assert referral.decided_at is not None and referral.decline_reason_enc is None
    assert [e.action for e in events] == ["participant:enrol", "referral:decide"]
    assert_staff_event(events[0], "participant:enrol", maria, participant_id=participant_id)
    assert events[0].record_ids == [str(referral_id)]
    assert_staff_event(events[1], "referral:decide", maria, participant_id=participant_id,
                       decision="permit")
    assert events[1].detail == {"accepted": True}


def test_an_accepted_referral_without_a_date_of_birth_enrols_without_one(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        referral = _refer(session, services, born="")
        participant = rs.decide_referral(session, services, staff(session, MARIA), referral.id,
                                         accept=True, reason="", meta=META)
        assert participant is not None
        assert participant.date_of_birth_enc is None and participant.dob_bidx is None


def test_declining_needs_a_reason_and_is_recorded_as_a_deny(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        referral_id = _refer(session, services).id
    with demo.begin() as session:
        maria = staff(session, MARIA)
        with unchanged(session), pytest.raises(InvalidInput, match="Say why"):
            rs.decide_referral(session, services, maria, referral_id, accept=False,
                               reason="   ", meta=META)
        mark = head(session)
        before = counts(session)
        assert rs.decide_referral(session, services, maria, referral_id, accept=False,
                                  reason="  Lives outside the county. " + "x" * 600,
                                  meta=META) is None
        events = events_since(session, mark)
        after = counts(session)
    assert after["participant"] == before["participant"]
    with demo() as session:
        referral = session.get(m.Referral, referral_id)
        assert referral is not None
        assert referral.status == "declined" and referral.participant_id is None
        reason = services.vault.ready(session).open(referral, "decline_reason")
        assert reason is not None and reason.startswith("Lives outside the county.")
        assert len(reason) == 500
        assert referral.decline_reason_enc is not None
        assert b"county" not in referral.decline_reason_enc
    assert [(e.action, e.decision, e.detail, e.participant_id) for e in events] == [
        ("referral:decide", "deny", {"accepted": False}, None)]


def test_a_referral_is_decided_once(demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        referral = _refer(session, services)
        maria = staff(session, MARIA)
        rs.decide_referral(session, services, maria, referral.id, accept=False, reason="dup",
                           meta=META)
        for accept in (True, False):
            with unchanged(session), pytest.raises(InvalidInput, match="already declined"):
                rs.decide_referral(session, services, maria, referral.id, accept=accept,
                                   reason="again", meta=META)
        assert rs.pending(session, services, maria, META) == []


def test_deciding_is_not_found_for_others_and_for_unknown_referrals(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        referral = _refer(session, services)
        for email in (JAMES, ALEX, LUIS):
            with unchanged(session), pytest.raises(NotFound):
                rs.decide_referral(session, services, staff(session, email), referral.id,
                                   accept=True, reason="", meta=META)
        with unchanged(session), pytest.raises(NotFound):
            rs.decide_referral(session, services, staff(session, MARIA), uuid.uuid4(),
                               accept=True, reason="", meta=META)
        assert referral.status == "pending"


def test_a_new_public_id_never_reuses_one_in_use(demo: sessionmaker[Session],
                                                 services: Services,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with demo.begin() as session:
        # One taken grouped, one taken by an older ungrouped id with the same characters.
        person(session, "LP-1012").public_id = "LP-3333-3333"
        person(session, "LP-1011").public_id = "LP-44444444"
        referral = _refer(session, services)
        drawn = iter("3" * 8 + "4" * 8 + "7" * 8)
        monkeypatch.setattr(public_ids.secrets, "choice", lambda alphabet: next(drawn))
        participant = rs.decide_referral(session, services, staff(session, MARIA), referral.id,
                                         accept=True, reason="", meta=META)
        assert participant is not None and participant.public_id == "LP-7777-7777"


def test_an_enrolment_whose_audit_fails_leaves_nothing_behind(
        demo: sessionmaker[Session], services: Services,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with demo.begin() as session:
        referral_id = _refer(session, services).id
        before = counts(session)
    fail_audit_on(monkeypatch, services, "referral:decide")
    with pytest.raises(AuditWriteError), demo.begin() as session:
        rs.decide_referral(session, services, staff(session, MARIA), referral_id, accept=True,
                           reason="", meta=META)
    with demo() as session:
        # The participant, the care-team link, the enrolment event and the referral's new
        # status were one transaction: none of them stayed.
        assert counts(session) == before
        referral = session.get(m.Referral, referral_id)
        assert referral is not None and referral.status == "pending"
        assert referral.decided_by_user_id is None


# --- the care team --------------------------------------------------------------------------


def test_the_care_team_is_shown_to_the_case_manager_and_audited(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria, marcus = staff(session, MARIA), person(session, "LP-1001")
        mark = head(session)
        links, others = rs.care_team(session, services, maria, "LP-1001", META)
        events = events_since(session, mark)
        team = {link.organization.slug for link in links}
        assert team == {"harbor-lead", "cedar-recovery", "hope-housing", "riverton-probation",
                        "riverton-pd"}
        assert not team & {o.slug for o in others}
        assert len(team) + len(others) == session.scalar(
            select(func.count()).select_from(m.Organization))
        assert [o.name for o in others] == sorted(o.name for o in others)
    assert len(events) == 1
    assert_staff_event(events[0], "participant:view", maria, participant_id=marcus.id,
                       decision="permit", reasons=["care_team"])
    assert events[0].detail == {"view": "care_team"}


@pytest.mark.parametrize(("email", "reason"), [
    (ALEX, "no_role_permission"),  # on the team, not a Harbor case manager
    (RENEE, "no_role_permission"),  # Harbor's compliance officer
    (LUIS, "not_on_care_team"),  # Eastgate does not work with Marcus
])
def test_the_care_team_is_not_found_for_others_and_the_attempt_is_audited(
        demo: sessionmaker[Session], services: Services, email: str, reason: str) -> None:
    with demo.begin() as session:
        user, marcus = staff(session, email), person(session, "LP-1001")
        mark = head(session)
        with pytest.raises(NotFound):
            rs.care_team(session, services, user, "LP-1001", META)
        events = events_since(session, mark)
    assert len(events) == 1
    assert_staff_event(events[0], "participant:view", user, participant_id=marcus.id,
                       decision="deny", reasons=[reason])
    assert events[0].policy_version == services.policy.version


def test_an_unknown_participant_is_not_found_and_nothing_is_audited(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        with unchanged(session), pytest.raises(NotFound):
            rs.care_team(session, services, maria, "LP-9999", META)
        with unchanged(session), pytest.raises(NotFound):
            rs.add_member(session, services, maria, "LP-9999", "riverton-court", META)
        with unchanged(session), pytest.raises(NotFound):
            rs.issue_code(session, services, maria, "LP-9999", META)


def test_adding_an_agency_to_the_care_team(demo: sessionmaker[Session],
                                           services: Services) -> None:
    with demo.begin() as session:
        maria, marcus = staff(session, MARIA), person(session, "LP-1001")
        mark = head(session)
        assert rs.add_member(session, services, maria, "LP-1001", "riverton-court", META) \
            is None
        events = events_since(session, mark)
    with demo() as session:
        court = org(session, "riverton-court")
        link = session.scalars(select(m.CareTeamMember).where(
            m.CareTeamMember.participant_id == marcus.id,
            m.CareTeamMember.organization_id == court.id)).one()
        assert (link.start_date, link.end_date, link.staff_user_id) == (
            utcnow().date(), None, None)
    assert len(events) == 1
    assert_staff_event(events[0], "care_team:member:add", maria, participant_id=marcus.id)
    assert events[0].detail == {"organization": "riverton-court"}


def test_adding_an_unknown_or_present_agency_changes_nothing(demo: sessionmaker[Session],
                                                             services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        with unchanged(session), pytest.raises(InvalidInput, match="Choose an agency"):
            rs.add_member(session, services, maria, "LP-1001", "nowhere", META)
        with unchanged(session), pytest.raises(InvalidInput,
                                               match="Hope Housing Collaborative is already"):
            rs.add_member(session, services, maria, "LP-1001", "hope-housing", META)


def test_adding_is_refused_to_others_and_audited(demo: sessionmaker[Session],
                                                 services: Services) -> None:
    with demo.begin() as session:
        alex, marcus = staff(session, ALEX), person(session, "LP-1001")
        links = session.scalar(select(func.count()).select_from(m.CareTeamMember))
        mark = head(session)
        with pytest.raises(NotFound):
            rs.add_member(session, services, alex, "LP-1001", "riverton-court", META)
        events = events_since(session, mark)
        assert session.scalar(select(func.count()).select_from(m.CareTeamMember)) == links
    assert [(e.action, e.decision, e.reasons, e.participant_id) for e in events] == [
        ("care_team:member:add", "deny", ["no_role_permission"], marcus.id)]


def test_ending_a_partners_membership(demo: sessionmaker[Session],
                                      services: Services) -> None:
    with demo.begin() as session:
        maria, marcus = staff(session, MARIA), person(session, "LP-1001")
        hope = org(session, "hope-housing")
        link = session.scalars(select(m.CareTeamMember).where(
            m.CareTeamMember.participant_id == marcus.id,
            m.CareTeamMember.organization_id == hope.id)).one()
        link_id = link.id
        mark = head(session)
        rs.end_member(session, services, maria, "LP-1001", link_id, META)
        events = events_since(session, mark)
        # Ended today: no longer current, so the agency may be added again.
        _, others = rs.care_team(session, services, maria, "LP-1001", META)
        assert "hope-housing" in {o.slug for o in others}
        with unchanged(session), pytest.raises(NotFound):  # already ended
            rs.end_member(session, services, maria, "LP-1001", link_id, META)
    with demo() as session:
        ended = session.get(m.CareTeamMember, link_id)
        assert ended is not None and ended.end_date == utcnow().date()
    assert len(events) == 1
    assert_staff_event(events[0], "care_team:member:end", maria, participant_id=marcus.id)
    assert events[0].detail == {"organization": "hope-housing"}


def test_ending_the_wrong_membership_is_refused_and_changes_nothing(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria, marcus, angela = (staff(session, MARIA), person(session, "LP-1001"),
                                 person(session, "LP-1002"))
        own = session.scalars(select(m.CareTeamMember).where(
            m.CareTeamMember.participant_id == marcus.id,
            m.CareTeamMember.organization_id == maria.organization_id)).one()
        angelas = session.scalars(select(m.CareTeamMember).where(
            m.CareTeamMember.participant_id == angela.id,
            m.CareTeamMember.organization_id != maria.organization_id)).first()
        assert angelas is not None
        with unchanged(session), pytest.raises(InvalidInput, match="Your own agency stays"):
            rs.end_member(session, services, maria, "LP-1001", own.id, META)
        # Another participant's link, through this participant's page: not there.
        with unchanged(session), pytest.raises(NotFound):
            rs.end_member(session, services, maria, "LP-1001", angelas.id, META)
        with unchanged(session), pytest.raises(NotFound):
            rs.end_member(session, services, maria, "LP-1001", 10_000_000, META)
        assert own.end_date is None and angelas.end_date is None


# --- sign-in codes --------------------------------------------------------------------------


def test_a_sign_in_code_is_issued_hashed_and_audited(demo: sessionmaker[Session],
                                                     services: Services) -> None:
    with demo.begin() as session:
        dev, angela = staff(session, DEV), person(session, "LP-1004")
        mark = head(session)
        code = rs.issue_code(session, services, dev, "LP-1004", META)
        events = events_since(session, mark)
    with demo() as session:
        credential = session.get(m.ParticipantCredential, angela.id)
        assert credential is not None and credential.enrolment_code_hash
        assert code not in credential.enrolment_code_hash
        assert credential.enrolment_code_expires_at is not None
        assert credential.enrolment_code_expires_at > utcnow()
    assert code and len(code) >= 8
    assert len(events) == 1
    assert_staff_event(events[0], "auth:enrolment_code:issue", dev, participant_id=angela.id)


def test_no_sign_in_code_for_a_participant_who_left_or_for_other_roles(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria, curtis = staff(session, MARIA), person(session, "LP-1009")  # exited
        with unchanged(session), pytest.raises(InvalidInput, match="has left LEAD"):
            rs.issue_code(session, services, maria, "LP-1009", META)
        assert session.get(m.ParticipantCredential, curtis.id) is None
        renee = staff(session, RENEE)
        mark = head(session)
        with pytest.raises(NotFound):
            rs.issue_code(session, services, renee, "LP-1004", META)
        events = events_since(session, mark)
    assert [(e.action, e.decision, e.reasons) for e in events] == [
        ("auth:enrolment_code:issue", "deny", ["no_role_permission"])]


def _web_session(session: Session, user: m.StaffUser, token: str) -> str:
    session.add(m.WebSession(id=token, staff_user_id=user.id, csrf_token="x" * 32,
                             expires_at=utcnow() + timedelta(hours=1)))
    session.flush()
    return token


def test_a_new_code_is_kept_sealed_for_one_page_of_one_session(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        mine, other = _web_session(session, maria, "a" * 64), _web_session(session, maria, "b" * 64)
        canonical = rs.issue_code_for_display(session, services, maria, "lp-1005", mine, META)
        assert canonical == "LP-1005"
        [row] = session.scalars(select(m.ShownOnce)).all()
        assert row.web_session_id == mine
    with demo.begin() as session:
        maria = staff(session, MARIA)
        # Not for another session, and that attempt does not use it up.
        assert rs.take_issued_code(session, services, maria, "LP-1005", other, META)[1] is None
        mark = head(session)
        person_, code = rs.take_issued_code(session, services, maria, "LP-1005", mine, META)
        events = events_since(session, mark)
        assert person_.name == "Roberto Alvarez" and person_.language == "es"
        assert code and re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", code)
        stored = session.scalars(select(m.ShownOnce.payload_enc)).all()
        assert stored == []
        assert [(e.action, e.detail.get("view"), e.detail.get("code_shown")) for e in events] == [
            ("participant:view", "sign_in_code_issued", True)]
    with demo.begin() as session:
        maria = staff(session, MARIA)
        assert rs.take_issued_code(session, services, maria, "LP-1005", mine, META)[1] is None


def test_a_kept_code_is_sealed_and_stops_being_shown_when_it_expires(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        mine = _web_session(session, maria, "c" * 64)
        rs.issue_code_for_display(session, services, maria, "LP-1005", mine, META)
        row = session.scalars(select(m.ShownOnce)).one()
        credential = session.get(m.ParticipantCredential, person(session, "LP-1005").id)
        assert credential is not None and credential.enrolment_code_hash
        # Sealed: no readable code in the row.
        assert not re.search(rb"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", row.payload_enc)
        row.expires_at = utcnow() - timedelta(seconds=1)
    with demo.begin() as session:
        maria = staff(session, MARIA)
        assert rs.take_issued_code(session, services, maria, "LP-1005", mine, META)[1] is None
        assert session.scalars(select(m.ShownOnce)).all() == []


def test_a_kept_code_that_cannot_be_decrypted_is_not_shown_and_is_audited(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        mine = _web_session(session, maria, "e" * 64)
        rs.issue_code_for_display(session, services, maria, "LP-1005", mine, META)
        row = session.scalars(select(m.ShownOnce)).one()
        row.payload_enc = b"\x00" * len(row.payload_enc)
    with demo.begin() as session:
        mark = head(session)
        maria = staff(session, MARIA)
        assert rs.take_issued_code(session, services, maria, "LP-1005", mine, META)[1] is None
        assert [e.action for e in events_since(session, mark)] == [
            "crypto:decrypt:failure", "participant:view"]


def test_signing_out_drops_a_kept_code(demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        mine = _web_session(session, maria, "d" * 64)
        rs.issue_code_for_display(session, services, maria, "LP-1005", mine, META)
    with demo.begin() as session:
        session.execute(delete(m.WebSession).where(m.WebSession.id == mine))
    with demo() as session:
        assert session.scalars(select(m.ShownOnce)).all() == []


def test_the_code_question_names_the_person_and_refuses_like_issuing(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria, renee = staff(session, MARIA), staff(session, RENEE)
        assert rs.code_confirmation(session, services, maria, "LP1004", META).name == (
            "Keisha Morgan")
        with unchanged(session), pytest.raises(InvalidInput, match="has left LEAD"):
            rs.code_confirmation(session, services, maria, "LP-1009", META)
        with pytest.raises(NotFound):
            rs.code_confirmation(session, services, renee, "LP-1004", META)
        assert session.scalars(select(m.ShownOnce)).all() == []
