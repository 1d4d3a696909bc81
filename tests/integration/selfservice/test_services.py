"""The participant's own view as a service: who may see what today (from decide()), taking a
consent back, asking for a change, and who has looked; each step audited as the participant."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.db import models as m
from portal.db import repositories as repo
from portal.db.types import utcnow
from portal.domain.consent_text import CATEGORY_WORDS, SHARED_WORDS
from portal.domain.vocabulary import DataCategory
from portal.kernel.errors import InvalidInput, NotFound, Refused
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services
from portal.selfservice import service
from portal.workspace.service import participant_page

META = RequestMeta(actor="LP-1001", session_id="sess-me", client_address="10.9.9.9",
                   request_id="req-me")
EN = CATEGORY_WORDS["en"]


@contextmanager
def as_participant(factory: sessionmaker[Session],
                   public_id: str) -> Iterator[tuple[Session, m.Participant]]:
    with factory.begin() as session:
        p = repo.participant_by_public_id(session, public_id)
        assert p is not None
        yield session, p


def _events(factory: sessionmaker[Session], action: str) -> list[m.AuditEvent]:
    with factory() as session:
        return list(session.scalars(select(m.AuditEvent).where(m.AuditEvent.action == action)
                                    .order_by(m.AuditEvent.seq)))


def _consent(factory: sessionmaker[Session], public_id: str, kind: str,
             status: str = "active") -> uuid.UUID:
    with as_participant(factory, public_id) as (session, p):
        row = session.scalars(select(m.Consent).where(
            m.Consent.participant_id == p.id, m.Consent.kind == kind,
            m.Consent.status == status)).first()
        assert row is not None, (public_id, kind, status)
        return row.id


def _sharing(factory: sessionmaker[Session], services: Services, public_id: str = "LP-1001",
             lang: str = "en") -> service.MySharing:
    with as_participant(factory, public_id) as (session, p):
        return service.my_sharing(session, services, p, lang, META)


def test_my_sharing_comes_from_the_decision_and_is_audited(demo: sessionmaker[Session],
                                                           services: Services) -> None:
    sharing = _sharing(demo, services)
    assert {c.kind.value for c in sharing.active} == {"roi", "part2", "part2_criminal_justice"}
    assert sharing.drafts == [] and sharing.history == []
    by_kind = {c.kind.value: c for c in sharing.active}
    assert by_kind["roi"].revocable_now and by_kind["roi"].revocable_from is None
    justice = by_kind["part2_criminal_justice"]
    assert not justice.revocable_now and justice.revocable_from  # irrevocable for now
    assert all(c.sentences and c.has_provisions and c.status == "active"
               for c in sharing.active)

    shared = {(s.recipient, s.source, s.category) for s in sharing.shared}
    roi = str(_consent(demo, "LP-1001", "roi"))
    assert ("hope-housing", "harbor-lead", DataCategory.CONTACT) in shared
    assert ("riverton-probation", "cedar-recovery", DataCategory.PROGRESS) in shared
    assert ("harbor-lead", "cedar-recovery", DataCategory.SUD_TREATMENT) in shared
    # The deny provision: police see neither contact details nor housing.
    assert not {s for s in shared if s[0] == "riverton-pd" and s[2] in (
        DataCategory.CONTACT, DataCategory.HOUSING)}
    assert not {s for s in shared if s[0] == s[1]}  # one's own writing needs no consent
    assert next(s.consent_id for s in sharing.shared
                if (s.recipient, s.category) == ("hope-housing", DataCategory.CONTACT)) == roi
    covered = {s.category for s in sharing.shared}
    assert sharing.not_shared == [EN[c] for c in DataCategory if c not in covered]
    assert EN[DataCategory.HEALTH] in sharing.not_shared  # nobody on the team is a clinic
    assert sharing.today[-1] == SHARED_WORDS["en"]["own"]
    assert any(line.startswith("Hope Housing Collaborative can see") for line in sharing.today)

    (event,) = _events(demo, "consent:view")
    assert (event.actor, event.actor_user_id, event.session_id, event.client_address) == (
        "LP-1001", None, "sess-me", "10.9.9.9")
    assert event.participant_id == sharing_participant(demo, "LP-1001")
    assert sorted(event.consent_ids) == sorted(c.id for c in sharing.active)


def sharing_participant(factory: sessionmaker[Session], public_id: str) -> uuid.UUID:
    with factory() as session:
        p = repo.participant_by_public_id(session, public_id)
        assert p is not None
        return p.id


def test_expired_and_revoked_consents_are_history_in_the_participants_language(
        demo: sessionmaker[Session], services: Services) -> None:
    lapsed = _sharing(demo, services, "LP-1003")
    assert [c.status for c in lapsed.history] == ["expired"]
    assert lapsed.history[0].kind.value == "roi" and not lapsed.history[0].revocable_now
    revoked = _sharing(demo, services, "LP-1007", lang="es")
    assert [c.status for c in revoked.history] == ["revoked"]
    assert revoked.today == [] or revoked.today[-1] == SHARED_WORDS["es"]["own"]
    assert set(revoked.not_shared) <= set(CATEGORY_WORDS["es"].values())
    # A language the portal does not speak falls back to English.
    assert set(_sharing(demo, services, "LP-1007", lang="fr").not_shared) <= set(EN.values())


def test_taking_a_consent_back_works_for_the_very_next_decision(
        demo: sessionmaker[Session], services: Services) -> None:
    roi = str(_consent(demo, "LP-1001", "roi"))
    with as_participant(demo, "LP-1001") as (session, p):
        shown = service.consent_for_revocation(session, p, roi, "en")
    assert (shown.id, shown.status, shown.revocable_now) == (roi, "active", True)
    assert shown.sentences and shown.when is not None

    with as_participant(demo, "LP-1001") as (session, p):
        service.revoke_mine(session, services, p, roi, META)
    with demo() as session:
        row = session.get(m.Consent, uuid.UUID(roi))
        assert row is not None
        assert (row.status, row.revoked_by, row.revocation_method) == (
            "revoked", "participant", "self-service portal")
        assert row.revoked_at is not None
    (event,) = _events(demo, "consent:revoke")
    assert (event.actor, event.consent_ids, event.detail) == (
        "LP-1001", [roi], {"by": "participant"})
    after = _sharing(demo, services)
    assert roi not in {s.consent_id for s in after.shared}
    assert ("hope-housing", DataCategory.CONTACT) not in {
        (s.recipient, s.category) for s in after.shared}
    assert [c.id for c in after.history] == [roi]

    # Revoked already: refused, nothing more written.
    with as_participant(demo, "LP-1001") as (session, p), pytest.raises(InvalidInput):
        service.revoke_mine(session, services, p, roi, META)
    assert len(_events(demo, "consent:revoke")) == 1


def test_a_justice_consent_cannot_be_taken_back_before_its_date(
        demo: sessionmaker[Session], services: Services) -> None:
    justice = str(_consent(demo, "LP-1001", "part2_criminal_justice"))
    with as_participant(demo, "LP-1001") as (session, p), \
            pytest.raises(InvalidInput) as refused:
        service.revoke_mine(session, services, p, justice, META)
    assert str(refused.value)
    with demo() as session:
        assert session.get(m.Consent, uuid.UUID(justice)).status == "active"  # type: ignore[union-attr]
    assert _events(demo, "consent:revoke") == []


@pytest.mark.parametrize("which", ["not a uuid", "unknown", "someone else's"])
def test_only_ones_own_consents_can_be_reached(demo: sessionmaker[Session],
                                               services: Services, which: str) -> None:
    consent_id = {"not a uuid": "not-a-uuid", "unknown": str(uuid.uuid4()),
                  "someone else's": str(_consent(demo, "LP-1002", "roi"))}[which]
    with as_participant(demo, "LP-1001") as (session, p):
        with pytest.raises(NotFound):
            service.consent_for_revocation(session, p, consent_id, "en")
        with pytest.raises(NotFound):
            service.revoke_mine(session, services, p, consent_id, META)
    assert _events(demo, "consent:revoke") == []


def test_asking_for_a_change_makes_a_sealed_draft(demo: sessionmaker[Session],
                                                  services: Services) -> None:
    words = "  Please stop sharing with the police; I am scared.  "
    with as_participant(demo, "LP-1002") as (session, p):
        row = service.ask_for_change(session, services, p, "less", words, META)
        consent_id = row.id
    with demo() as session:
        row = session.get(m.Consent, consent_id)
        assert row is not None
        assert (row.kind, row.status, row.language) == ("roi", "draft", "es")
        request = session.get(m.ConsentRequest, consent_id)
        assert request is not None and request.wish == "less"
        assert b"police" not in (request.note_enc or b"")  # sealed like a record's body
        assert services.vault.ready(session).open(request, "note") == words.strip()
    (event,) = _events(demo, "consent:create")
    assert (event.actor, event.consent_ids, event.detail) == (
        "LP-1002", [str(consent_id)], {"requested": "less"})

    sharing = _sharing(demo, services, "LP-1002", lang="es")
    (draft,) = sharing.drafts
    assert draft.id == str(consent_id) and not draft.has_provisions
    assert draft.request is not None and draft.request.wish == "less"


@pytest.mark.parametrize(("wish", "text", "problem"), [
    ("everything", "more please", "choose"), ("more", "   ", "describe"),
    ("less", "x" * 1001, "describe")])
def test_a_request_must_say_what_and_why(demo: sessionmaker[Session], services: Services,
                                         wish: str, text: str, problem: str) -> None:
    with as_participant(demo, "LP-1002") as (session, p), \
            pytest.raises(InvalidInput) as refused:
        service.ask_for_change(session, services, p, wish, text, META)
    assert refused.value.problems == [problem]
    with demo() as session:
        assert session.scalars(select(m.ConsentRequest)).all() == []
    assert _events(demo, "consent:create") == []


def test_who_looked_lists_disclosures_and_the_refusals_participants_are_told_of(
        demo: sessionmaker[Session], services: Services) -> None:
    staff_meta = RequestMeta(actor="staff")
    with demo.begin() as session:
        alex = repo.staff_by_email(session, "alex.rivera@hope-housing.example")
        assert alex is not None
        participant_page(session, services, alex, "LP-1001", staff_meta)
    with demo.begin() as session:  # Eastgate does not work with LP-1001
        luis = repo.staff_by_email(session, "luis.moreno@eastgate-clinic.example")
        assert luis is not None
        with pytest.raises(NotFound):
            participant_page(session, services, luis, "LP-1001", staff_meta)
    with demo.begin() as session:  # a police officer may not use emergency access
        james = repo.staff_by_email(session, "james.carter@riverton-pd.example")
        p = repo.participant_by_public_id(session, "LP-1001")
        assert james is not None and p is not None
        with pytest.raises(Refused):
            services.access.grant_break_glass(session, james, p, reason="r",
                                              emergency_nature="n", facility="f", minutes=5,
                                              meta=staff_meta)

    with as_participant(demo, "LP-1001") as (session, p):
        looks = service.who_looked(session, services, p, META)
    assert [look.when for look in looks] == sorted((look.when for look in looks),
                                                   reverse=True)
    bases = {look.basis for look in looks}
    assert bases == {"consent", "refused_not_on_team", "refused_break_glass"}
    seen = [look for look in looks if look.basis == "consent"]
    assert {look.organization for look in seen} == {"Hope Housing Collaborative"}
    assert all(look.roles == ["housing_navigator"] and look.category is not None
               for look in seen)
    # The housing navigator is named (policies/named_recipients.csv); a police officer is not.
    assert {look.person for look in seen} == {"Alex Rivera"}
    refused = {look.basis: look for look in looks if look.basis.startswith("refused")}
    assert refused["refused_not_on_team"].organization == "Eastgate Community Health Clinic"
    assert refused["refused_break_glass"].organization == "Riverton Police Department"
    assert refused["refused_break_glass"].category is None
    assert refused["refused_break_glass"].person is None
    (event,) = _events(demo, "audit:disclosures:view")
    assert (event.actor, event.participant_id) == ("LP-1001", p.id)
    # Another participant sees none of it.
    with as_participant(demo, "LP-1002") as (session, other):
        assert service.who_looked(session, services, other, META) == []


def test_refusals_not_listed_in_the_policy_are_not_shown(demo: sessionmaker[Session],
                                                         services: Services) -> None:
    with demo.begin() as session:
        p = repo.participant_by_public_id(session, "LP-1001")
        assert p is not None
        from portal.domain.audit import NewAuditEvent
        services.audit.append(session, NewAuditEvent(
            action="participant:view", actor="x", participant_id=p.id, decision="deny",
            reasons=("no_role_permission",)))
        services.audit.append(session, NewAuditEvent(
            action="participant:view", actor="y", actor_organization="nowhere",
            participant_id=p.id, decision="deny", reasons=("not_on_care_team",)))
    with as_participant(demo, "LP-1001") as (session, p):
        looks = service.who_looked(session, services, p, META)
    assert [(look.organization, look.basis) for look in looks] == [
        ("", "refused_not_on_team")]
    assert looks[0].when <= utcnow()
