"""The kernel's use cases and shared rules called directly with a database session: the access
service (explain, break-glass), the audit-event builders, the error types and the wiring."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Settings
from portal.db import models as m
from portal.db.engine import make_engine, make_session_factory
from portal.domain.audit import AuditAction, format_time
from portal.domain.consent import EVENT_LABELS, ConsentEvent
from portal.domain.decision import Decision, Obligation, Reason
from portal.domain.permissions import Permission
from portal.domain.vocabulary import Action, DataCategory, Purpose
from portal.kernel import errors
from portal.kernel.access import (
    AccessService,
    Explanation,
    SourceExplanation,
    obligations_text,
    user_may,
)
from portal.kernel.events import participant_event, refusal_event, request_event, staff_event
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services
from tests.integration.service_support import (
    ALEX,
    JAMES,
    LUIS,
    MARIA,
    META,
    TOM,
    events_since,
    head,
    person,
    staff,
    unchanged,
)

FIXED = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


# --- user_may -------------------------------------------------------------------------------


def test_user_may_follows_the_role_policy(demo: sessionmaker[Session],
                                          services: Services) -> None:
    with demo() as session:
        maria, james = staff(session, MARIA), staff(session, JAMES)
        assert user_may(services.policy, maria, Permission.CONSENT_SIGN)
        assert not user_may(services.policy, james, Permission.CONSENT_SIGN)
        assert user_may(services.policy, james, Permission.REFERRAL_CREATE)
        assert not user_may(services.policy, maria, Permission.REFERRAL_CREATE)


def test_user_may_fails_closed_on_an_unknown_stored_role(demo: sessionmaker[Session],
                                                         services: Services) -> None:
    with demo() as session:
        maria = staff(session, MARIA)
        # A role the vocabulary does not know (a stale mapping): it counts for nothing, even
        # next to a role that would be allowed.
        ghost = m.StaffUser(id=maria.id, email="ghost@example", organization=maria.organization,
                            roles=[m.StaffRole(role="case_manager"), m.StaffRole(role="wizard")])
        assert not user_may(services.policy, ghost, Permission.CONSENT_VIEW)
        session.expunge_all()


# --- explain --------------------------------------------------------------------------------


def test_explain_with_records_decides_per_source_and_audits_the_question(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        tom, marcus = staff(session, TOM), person(session, "LP-1001")
        mark = head(session)
        explanation = services.access.explain(session, tom, marcus, DataCategory.PROGRESS,
                                              Purpose.LEADMON, Action.VIEW, META)
        events = events_since(session, mark)
    assert explanation.has_records
    by_org = {s.organization: s.decision for s in explanation.sources}
    # Progress records of Marcus come from Harbor and Cedar; only Cedar's 2.35 consent covers
    # monitoring by probation.
    assert set(by_org) == {"harbor-lead", "cedar-recovery"}
    assert by_org["cedar-recovery"].permitted and not by_org["harbor-lead"].permitted
    assert explanation.decision == "permit"
    data = explanation.as_json()
    assert data["consent_id"] == by_org["cedar-recovery"].consent_id
    assert data["obligations"] == [o.value for o in by_org["cedar-recovery"].obligations]
    assert "notice_part2" in data["obligations"]
    # The text carries the Part 2 notice once and names no content.
    assert explanation.text().count(Obligation.NOTICE_PART2.text) == 1
    assert "There is no" not in explanation.text()
    assert [e.action for e in events] == ["decision:explain"]
    event = events[0]
    assert event.actor == META.actor and event.request_id == META.request_id
    assert event.participant_id == marcus.id
    assert (event.category, event.purpose, event.decision) == ("progress", "LEADMON", "permit")
    assert event.reasons == data["reasons"]
    assert event.consent_ids == [by_org["cedar-recovery"].consent_id]
    assert event.policy_version == services.policy.version
    cedar_consent = by_org["cedar-recovery"].consent_id
    assert cedar_consent is not None
    decided_at = event.detail.pop("decided_at")
    assert decided_at.endswith("Z") and decided_at <= format_time(event.occurred_at)
    assert event.detail == {"explained_for": TOM, "action": "view",
                            "sources": {"harbor-lead": "deny", "cedar-recovery": "permit"},
                            # The chain's head as read before the consents, and the version
                            # of the consent the permit relied on.
                            "observed_seq": mark, "consent_versions": {cedar_consent: 1}}


def test_explain_without_records_asks_each_care_team_member(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria, angela = staff(session, MARIA), person(session, "LP-1002")
        mark = head(session)
        # Angela has no justice information (no justice agency works with her).
        explanation = services.access.explain(session, maria, angela, DataCategory.JUSTICE,
                                              Purpose.CAREMGT, Action.VIEW, META)
        events = events_since(session, mark)
    assert not explanation.has_records
    assert {s.organization for s in explanation.sources} == {
        "harbor-lead", "northside-bh", "hope-housing", "eastgate-clinic"}
    assert explanation.text().startswith(
        "There is no justice involvement information about LP-1002 yet")
    assert explanation.as_json()["has_records"] is False
    assert events[0].detail["sources"].keys() == {
        "harbor-lead", "northside-bh", "hope-housing", "eastgate-clinic"}


def test_explain_names_the_consent_and_when_it_ends(demo: sessionmaker[Session],
                                                    services: Services) -> None:
    with demo.begin() as session:
        maria, angela = staff(session, MARIA), person(session, "LP-1002")
        # Northside's mental-health records reach Harbor under the release that ends when
        # Angela leaves LEAD; Hope's housing under the release with an expiration date.
        health = services.access.explain(session, maria, angela, DataCategory.MENTAL_HEALTH,
                                         Purpose.CAREMGT, Action.VIEW, META)
        housing = services.access.explain(session, maria, angela, DataCategory.HOUSING,
                                          Purpose.CAREMGT, Action.VIEW, META)
        roi = session.scalars(select(m.Consent).where(
            m.Consent.participant_id == angela.id, m.Consent.expires_on.is_not(None))).one()
    assert health.decision == "permit"
    assert f"until {EVENT_LABELS[ConsentEvent.LEAD_EXIT]}" in health.text()
    assert housing.decision == "permit"
    assert f"until {roi.expires_on.isoformat()}" in housing.text()


def test_explain_refused_everywhere_is_a_deny_with_every_reason(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        james, marcus = staff(session, JAMES), person(session, "LP-1001")
        mark = head(session)
        explanation = services.access.explain(session, james, marcus, DataCategory.SUD_TREATMENT,
                                              Purpose.CAREMGT, Action.VIEW, META)
        events = events_since(session, mark)
    assert explanation.decision == "deny"
    data = explanation.as_json()
    assert data["consent_id"] is None and data["obligations"] == []
    assert data["policy_rule"] == explanation.sources[0].decision.policy_rule
    assert "Opioid" not in explanation.text()
    assert events[0].decision == "deny" and events[0].consent_ids == []
    assert events[0].reasons == data["reasons"] and data["reasons"]


def test_an_explanation_with_no_sources_denies_and_names_no_rule() -> None:
    empty = Explanation(user="u", participant="LP-1", category=DataCategory.HOUSING,
                        purpose=Purpose.CAREMGT, action=Action.VIEW, has_records=False)
    data = empty.as_json()
    assert empty.decision == "deny"
    assert (data["policy_rule"], data["consent_id"], data["reasons"], data["sources"]) == (
        None, None, [], [])
    permit = Decision("permit", (Reason.CONSENT,), policy_rule="rule", consent_id="c-1",
                      obligations=(Obligation.AUDIT, Obligation.NOTICE_PART2))
    deny = Decision("deny", (Reason.NO_CONSENT,), policy_rule="other")
    mixed = Explanation("u", "LP-1", DataCategory.HOUSING, Purpose.CAREMGT, Action.VIEW, True,
                        (SourceExplanation("a", "A", deny, "No."),
                         SourceExplanation("b", "B", permit, "Yes.")))
    data = mixed.as_json()
    # One permitting source is enough; the permit names the rule, consent and notices.
    assert mixed.decision == "permit"
    assert (data["policy_rule"], data["consent_id"]) == ("rule", "c-1")
    assert data["reasons"] == ["no_consent", "consent"]
    assert data["obligations"] == ["audit", "notice_part2"]
    assert mixed.text().split("\n") == ["No.", "Yes.", Obligation.NOTICE_PART2.text]


def test_obligations_text_leaves_out_the_audit_obligation() -> None:
    decision = Decision(decision="permit", reasons=(Reason.CONSENT,),
                        obligations=(Obligation.AUDIT, Obligation.NOTICE_PART2))
    assert obligations_text(decision) == [Obligation.NOTICE_PART2.text]
    assert obligations_text(Decision(decision="deny", reasons=(Reason.NO_CONSENT,))) == []


# --- break-glass ----------------------------------------------------------------------------


def test_break_glass_with_bad_input_lists_every_problem_and_changes_nothing(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        luis, darnell = staff(session, LUIS), person(session, "LP-1003")
        with unchanged(session), pytest.raises(errors.InvalidInput) as raised:
            services.access.grant_break_glass(session, luis, darnell, reason=" ",
                                              emergency_nature="", facility="ER", minutes=0,
                                              meta=META)
        assert raised.value.problems == [
            "a reason is required",
            "the nature of the emergency is required (42 CFR 2.51(c))",
            "emergency access lasts between 1 minute and 4 hours"]
        for minutes in (-5, 241):
            with unchanged(session), pytest.raises(errors.InvalidInput, match="4 hours"):
                services.access.grant_break_glass(session, luis, darnell, reason="r",
                                                  emergency_nature="n", facility="f",
                                                  minutes=minutes, meta=META)


@pytest.mark.parametrize("minutes", [1, 240])
def test_break_glass_is_time_boxed_recorded_and_audited(
        demo: sessionmaker[Session], services: Services, minutes: int) -> None:
    access = AccessService(services.policy, services.audit, services.vault,
                           clock=lambda: FIXED)
    with demo.begin() as session:
        luis, darnell = staff(session, LUIS), person(session, "LP-1003")
        mark = head(session)
        grant = access.grant_break_glass(
            session, luis, darnell, reason="  Unresponsive at clinic ",
            emergency_nature=" suspected overdose ", facility=" Eastgate ", minutes=minutes,
            meta=META)
        events = events_since(session, mark)
        grant_id = grant.id
    with demo() as session:
        stored = session.get(m.BreakGlassGrant, grant_id)
        assert stored is not None
        services.vault.ready(session)
        assert tuple(services.vault.open(stored, c) for c in (
            "reason", "emergency_nature", "facility")) == (
            "Unresponsive at clinic", "suspected overdose", "Eastgate")
        assert stored.started_at == FIXED
        assert stored.expires_at == FIXED + timedelta(minutes=minutes)
        assert stored.staff_user_id == luis.id and stored.participant_id == darnell.id
        assert stored.organization_id == luis.organization_id
        assert stored.review_status == "pending"
    assert len(events) == 1
    event = events[0]
    assert event.action == "break_glass:grant:create"
    assert (event.actor, event.actor_user_id, event.actor_organization) == (
        META.actor, luis.id, "eastgate-clinic")
    assert event.actor_roles == ["clinician"]
    assert (event.decision, event.reasons, event.purpose) == ("permit", ["break_glass"], "ETREAT")
    assert event.record_ids == [str(grant_id)]
    assert event.detail["break_glass_grant"] == str(grant_id)
    assert event.detail["expires_at"] == (FIXED + timedelta(minutes=minutes)).isoformat()
    assert event.detail["minutes"] == minutes
    # What was typed is sealed on the grant the event names, never written into the log.
    assert set(event.detail) == {"minutes", "break_glass_grant", "expires_at"}
    assert "Unresponsive" not in str(event.detail) and "Eastgate" not in str(event.detail)


def test_break_glass_refused_by_role_is_audited_and_grants_nothing(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        alex, marcus = staff(session, ALEX), person(session, "LP-1001")
        mark = head(session)
        grants = session.scalar(select(func.count()).select_from(m.BreakGlassGrant))
        with pytest.raises(errors.Refused, match="may not use emergency access"):
            services.access.grant_break_glass(session, alex, marcus, reason="r",
                                              emergency_nature="n", facility="f", minutes=30,
                                              meta=META)
        events = events_since(session, mark)
        assert session.scalar(select(func.count()).select_from(m.BreakGlassGrant)) == grants
    assert [(e.action, e.decision, e.reasons) for e in events] == [
        ("break_glass:grant:create", "deny", ["no_role_permission"])]
    assert events[0].record_ids == [] and events[0].participant_id == marcus.id


def test_a_break_glass_grant_opens_emergency_treatment_only(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        luis, darnell = staff(session, LUIS), person(session, "LP-1003")
        before = services.access.explain(session, luis, darnell, DataCategory.SUD_TREATMENT,
                                         Purpose.ETREAT, Action.VIEW, META)
        grant = services.access.grant_break_glass(session, luis, darnell, reason="r",
                                                  emergency_nature="overdose", facility="f",
                                                  minutes=30, meta=META)
        after = services.access.explain(session, luis, darnell, DataCategory.SUD_TREATMENT,
                                        Purpose.ETREAT, Action.VIEW, META)
        caremgt = services.access.explain(session, luis, darnell, DataCategory.SUD_TREATMENT,
                                          Purpose.CAREMGT, Action.VIEW, META)
    assert before.decision == "deny"
    assert after.decision == "permit"
    assert after.as_json()["reasons"] == ["break_glass"]
    assert after.sources[0].decision.break_glass_grant == str(grant.id)
    assert caremgt.decision == "deny"


# --- audit-event builders -------------------------------------------------------------------


def test_the_event_builders_copy_the_request_and_the_actor(demo: sessionmaker[Session],
                                                          services: Services) -> None:
    meta = RequestMeta(actor="cli", session_id="s", client_address="198.51.100.1",
                       request_id="r")
    pid = uuid.uuid4()
    with demo() as session:
        maria, marcus = staff(session, MARIA), person(session, "LP-1001")
        plain = request_event(AuditAction.AUDIT_VERIFY, meta, detail={"x": 1})
        assert (plain.action, plain.actor, plain.session_id, plain.client_address,
                plain.request_id, plain.detail) == (
            AuditAction.AUDIT_VERIFY, "cli", "s", "198.51.100.1", "r", {"x": 1})
        # A sign-in names the user it found as the actor.
        named = request_event(AuditAction.AUTH_LOGIN_SUCCESS, meta, actor=MARIA)
        assert named.actor == MARIA
        by_staff = staff_event(AuditAction.RECORD_VIEW, maria, meta, participant_id=pid)
        assert (by_staff.actor, by_staff.actor_user_id, by_staff.actor_organization,
                tuple(by_staff.actor_roles), by_staff.participant_id) == (
            MARIA, maria.id, "harbor-lead", ("case_manager",), pid)
        assert (by_staff.session_id, by_staff.request_id) == ("s", "r")
        own = participant_event(AuditAction.AUTH_LOGOUT, marcus, meta)
        assert (own.actor, own.participant_id, own.actor_user_id) == (
            "LP-1001", marcus.id, None)
        refused = refusal_event(AuditAction.RECORD_VIEW, maria, meta, pid,
                                Reason.NOT_ON_CARE_TEAM, "v1")
        assert (refused.decision, tuple(refused.reasons), refused.policy_version,
                refused.participant_id, refused.actor) == (
            "deny", ("not_on_care_team",), "v1", pid, MARIA)
        # They are events the log accepts, as built.
        mark = head(session)
        services.audit.append_many(session, [plain, by_staff, own, refused])
        stored = events_since(session, mark)
        assert [e.action for e in stored] == ["audit:verify", "record:view", "auth:logout",
                                              "record:view"]
        assert stored[1].actor_roles == ["case_manager"] and stored[1].participant_id == pid
        assert stored[3].reasons == ["not_on_care_team"] and stored[3].decision == "deny"
        assert stored[0].detail == {"x": 1} and stored[0].client_address == "198.51.100.1"
        session.rollback()


# --- errors ---------------------------------------------------------------------------------


def test_invalid_input_keeps_each_problem_and_joins_them() -> None:
    exc = errors.InvalidInput("Choose a category.", "Give it a title.")
    assert exc.problems == ["Choose a category.", "Give it a title."]
    assert str(exc) == "Choose a category.; Give it a title."
    assert errors.InvalidInput().problems == [] and str(errors.InvalidInput()) == ""
    # The web layer and older callers catch them by their builtin bases.
    assert isinstance(exc, ValueError)
    assert isinstance(errors.NotFound("x"), LookupError)
    for kind in (errors.Refused, errors.Conflict):
        assert issubclass(kind, Exception) and not issubclass(kind, (ValueError, LookupError))
    assert str(errors.Refused("Your role cannot record this.")) == "Your role cannot record this."


# --- wiring ---------------------------------------------------------------------------------


def test_services_build_loads_the_data_keys_once(settings: Settings,
                                                 session_factory: sessionmaker[Session]) -> None:
    built = Services.build(settings, session_factory)
    assert built.access.policy is built.policy and built.access.audit is built.audit
    # The keys were loaded (created, in an empty database) in their own transaction.
    assert built.vault.current_version >= 1
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(m.DataKey)) == 2
    again = Services.build(settings, session_factory)
    assert again.vault.current_version == built.vault.current_version
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(m.DataKey)) == 2


def test_services_build_without_a_database_loads_no_keys(settings: Settings) -> None:
    built = Services.build(settings)
    with pytest.raises(RuntimeError, match="not loaded"):
        built.vault.keys()
    assert built.policy.version


def test_services_build_on_a_database_not_migrated_yet_defers_the_keys(
        tmp_path: Path, data_key_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    settings = Settings(env="test", database_url=url, data_dir=tmp_path,
                        data_key_file=data_key_file)
    engine = make_engine(settings)
    try:
        with caplog.at_level(logging.WARNING, logger="portal.kernel.wiring"):
            built = Services.build(settings, make_session_factory(engine))
    finally:
        engine.dispose()
    assert "data keys not loaded yet" in caplog.text
    assert "OperationalError" in caplog.text
    with pytest.raises(RuntimeError, match="not loaded"):
        built.vault.keys()
