"""Consent use cases (portal/consents/service.py) called directly with a database session:
listing, capture as a draft, signing with a sealed copy, new versions, revocation; who may do
each, what is refused, what is stored and what is audited."""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.consents import service as cs
from portal.db import models as m
from portal.db.audit_chain import AuditWriteError
from portal.db.types import utcnow
from portal.domain.audit import AuditAction
from portal.domain.consent_text import CONSENT_TEXT_VERSIONS, TPO_STATEMENT
from portal.kernel.errors import InvalidInput, NotFound, Refused
from portal.kernel.wiring import Services
from tests.integration.service_support import (
    ALEX,
    DEV,
    GRACE,
    LUIS,
    MARIA,
    META,
    assert_staff_event,
    counts,
    events_since,
    fail_audit_on,
    head,
    person,
    staff,
    unchanged,
)

FUTURE = (utcnow() + timedelta(days=200)).date().isoformat()


def _form(**fields: object) -> cs.ConsentForm:
    values: dict[str, object] = {
        "kind": "roi", "disclosers": ["harbor-lead"], "recipients": ["riverton-court"],
        "categories": ["progress"], "purposes": ["CAREMGT"], "expires_on": FUTURE,
        "language": "en"} | fields
    return cs.ConsentForm(**values)  # type: ignore[arg-type]


def _draft(session: Session, services: Services, public_id: str = "LP-1003",
           **fields: object) -> m.Consent:
    return cs.save_draft(session, services, staff(session, MARIA), public_id, _form(**fields),
                         META)


def _sign(session: Session, services: Services, consent: m.Consent,
          public_id: str = "LP-1003", **fields: object) -> m.Consent:
    values: dict[str, object] = {"signer_name": " Darnell Hughes ", "relation": "self",
                                 "agreed": True, "scan": None} | fields
    return cs.sign(session, services, staff(session, MARIA), public_id, consent.id,
                   meta=META, **values)  # type: ignore[arg-type]


def _png_data_url(width: int = 300, height: int = 90) -> str:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    ImageDraw.Draw(image).line([(10, 60), (80, 20), (150, 70), (280, 30)], fill="black",
                               width=3)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return cs.DRAWN_PREFIX + base64.b64encode(out.getvalue()).decode()


def _active(session: Session, public_id: str, kind: str = "roi") -> m.Consent:
    participant = person(session, public_id)
    return session.scalars(select(m.Consent).where(
        m.Consent.participant_id == participant.id, m.Consent.kind == kind,
        m.Consent.status == "active").order_by(m.Consent.created_at)).first()  # type: ignore


# --- listing --------------------------------------------------------------------------------


def test_consent_summaries_state_each_consents_status_today(demo: sessionmaker[Session]) -> None:
    with demo() as session:
        darnell = person(session, "LP-1003")
        rows = cs.consent_summaries(session, darnell.id, utcnow())
    statuses = sorted(r["status"] for r in rows)
    assert statuses == ["active", "active", "expired"]  # the release expired 10 days ago
    justice = next(r for r in rows if r["kind"] == "part2_criminal_justice")
    assert justice["revocable_after"] == (utcnow().date() + timedelta(days=90)).isoformat()
    assert justice["provisions"] == [{
        "effect": "permit", "disclosers": ["org:cedar-recovery"],
        "recipients": ["org:riverton-court"], "categories": ["progress"],
        "purposes": ["LEADMON"], "period": [None, None]}]
    roi = next(r for r in rows if r["kind"] == "roi")
    assert roi["expires"] == (utcnow().date() - timedelta(days=10)).isoformat()
    assert all(r["version"] == 1 for r in rows)


def test_the_case_managers_consent_list_is_audited(demo: sessionmaker[Session],
                                                   services: Services) -> None:
    with demo.begin() as session:
        maria, keisha = staff(session, MARIA), person(session, "LP-1004")
        draft = session.scalars(select(m.Consent).where(
            m.Consent.participant_id == keisha.id, m.Consent.status == "draft")).one()
        request = m.ConsentRequest(consent_id=draft.id, wish="less")
        services.vault.ready(session).seal(request, {"note": "Not the housing authority"})
        session.add(request)
        session.flush()
        mark = head(session)
        participant, summaries = cs.participant_consents(session, services, maria, "LP-1004",
                                                         META)
        events = events_since(session, mark)
    assert participant.id == keisha.id
    by_id = {s["id"]: s for s in summaries}
    assert by_id[str(draft.id)]["requested"] == cs.ChangeRequest("less",
                                                                 "Not the housing authority")
    assert all(s["requested"] is None for s in summaries if s["id"] != str(draft.id))
    assert len(events) == 1
    assert_staff_event(events[0], "consent:view", maria, participant_id=keisha.id,
                       decision="permit", reasons=["care_team"])
    assert events[0].consent_ids == [s["id"] for s in summaries]
    assert (events[0].purpose, events[0].detail) == ("CAREMGT", {"view": "list"})


def test_a_change_request_that_cannot_be_decrypted_has_no_note(demo: sessionmaker[Session],
                                                               services: Services) -> None:
    with demo.begin() as session:
        keisha = person(session, "LP-1004")
        draft = session.scalars(select(m.Consent).where(
            m.Consent.participant_id == keisha.id, m.Consent.status == "draft")).one()
        request = m.ConsentRequest(consent_id=draft.id, wish="more")
        services.vault.ready(session).seal(request, {"note": "More, please"})
        request.note_enc = b"\x00" * len(request.note_enc)
        session.add(request)
        session.flush()
        assert cs.change_requests(session, services, [draft.id]) == {
            draft.id: cs.ChangeRequest("more", None)}
        assert cs.change_requests(session, services, []) == {}


# --- who may ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("email", "action", "message"), [
    (ALEX, AuditAction.CONSENT_VIEW, "Your role cannot view consent forms."),
    (ALEX, AuditAction.CONSENT_CREATE, "Your role cannot prepare consent forms."),
    (GRACE, AuditAction.CONSENT_SIGN, "Your role cannot witness a consent signature."),
    (ALEX, AuditAction.CONSENT_REVOKE, "Your role cannot record a revocation."),
])
def test_a_care_team_member_without_the_permission_is_refused_with_the_reason(
        demo: sessionmaker[Session], services: Services, email: str, action: AuditAction,
        message: str) -> None:
    public_id = "LP-1002"  # Hope and Northside are both on Angela's team
    with demo.begin() as session:
        user, angela = staff(session, email), person(session, public_id)
        mark = head(session)
        with pytest.raises(Refused) as raised:
            cs.case_managed(session, services, user, public_id, META, action)
        events = events_since(session, mark)
    assert str(raised.value) == message
    assert len(events) == 1
    assert_staff_event(events[0], action.value, user, participant_id=angela.id,
                       decision="deny", reasons=["no_role_permission"])


def test_off_the_care_team_is_not_found_and_audited(demo: sessionmaker[Session],
                                                    services: Services) -> None:
    with demo.begin() as session:
        maria, luis, darnell = staff(session, MARIA), staff(session, LUIS), person(
            session, "LP-1003")
        harbor = session.scalars(select(m.CareTeamMember).where(
            m.CareTeamMember.participant_id == darnell.id,
            m.CareTeamMember.organization_id == maria.organization_id)).one()
        harbor.end_date = utcnow().date() - timedelta(days=1)
        session.flush()
        mark = head(session)
        with pytest.raises(NotFound):  # a case manager whose agency left the team
            cs.case_managed(session, services, maria, "LP-1003", META, AuditAction.CONSENT_VIEW)
        with pytest.raises(NotFound):  # neither on the team nor permitted
            cs.open_form(session, services, luis, "LP-1003", META)
        events = events_since(session, mark)
        with unchanged(session), pytest.raises(NotFound):
            cs.case_managed(session, services, maria, "LP-9999", META, AuditAction.CONSENT_VIEW)
    assert [(e.action, e.actor, e.decision, e.reasons) for e in events] == [
        ("consent:view", MARIA, "deny", ["not_on_care_team"]),
        ("consent:create", LUIS, "deny", ["not_on_care_team"])]


def test_opening_a_new_form_is_audited_like_the_care_team(demo: sessionmaker[Session],
                                                          services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        mark = head(session)
        participant = cs.open_form(session, services, maria, "LP-1003", META)
        events = events_since(session, mark)
    assert participant.public_id == "LP-1003"
    assert len(events) == 1
    assert_staff_event(events[0], "participant:view", maria, participant_id=participant.id,
                       decision="permit", reasons=["care_team"])
    assert events[0].detail == {"view": "consent_form"}


# --- drafts ---------------------------------------------------------------------------------


def test_a_draft_is_saved_with_its_provision_and_audited(demo: sessionmaker[Session],
                                                         services: Services) -> None:
    with demo.begin() as session:
        maria, darnell = staff(session, MARIA), person(session, "LP-1003")
        mark = head(session)
        row = _draft(session, services, expiry_event=" lead_exit ", categories=["progress",
                                                                                "housing"])
        events = events_since(session, mark)
        consent_id = row.id
    with demo() as session:
        stored = session.get(m.Consent, consent_id)
        assert stored is not None
        assert (stored.status, stored.kind, stored.version, stored.language,
                stored.text_version, stored.expiry_event, stored.created_by_user_id) == (
            "draft", "roi", 1, "en", CONSENT_TEXT_VERSIONS["en"], "lead_exit", maria.id)
        assert stored.expires_on is not None and stored.expires_on.isoformat() == FUTURE
        assert stored.information_description and stored.revocation_statement
        assert stored.tpo_statement == "" and stored.revocable_after is None
        assert [(p.effect, p.disclosers, p.recipients, p.categories, p.purposes)
                for p in stored.provisions] == [
            ("permit", ["org:harbor-lead"], ["org:riverton-court"], ["housing", "progress"],
             ["CAREMGT"])]
        assert cs.form_of(stored) == _form(categories=["housing", "progress"],
                                           expiry_event="lead_exit")
    assert len(events) == 1
    assert_staff_event(events[0], "consent:create", maria, participant_id=darnell.id)
    assert events[0].consent_ids == [str(consent_id)]
    assert events[0].policy_version == services.policy.version


def test_a_tpo_consent_carries_the_statement_in_its_language(demo: sessionmaker[Session],
                                                             services: Services) -> None:
    with demo.begin() as session:
        row = _draft(session, services, "LP-1001", kind="part2_tpo",
                     disclosers=["cedar-recovery"], recipients=["hope-housing"], language="es")
        assert row.tpo_statement == TPO_STATEMENT["es"]
        assert row.text_version == CONSENT_TEXT_VERSIONS["es"]
        # A Part 2 program as the source: the description says so.
        assert "substance use" in row.information_description.lower()


def test_a_criminal_justice_consent_keeps_when_it_becomes_revocable(
        demo: sessionmaker[Session], services: Services) -> None:
    later = (utcnow() + timedelta(days=60)).date()
    with demo.begin() as session:
        row = _draft(session, services, kind="part2_criminal_justice",
                     disclosers=["cedar-recovery"], recipients=["riverton-court"],
                     purposes=["LEADMON"], revocable_after=later.isoformat(),
                     revocable_after_event="final_disposition")
        assert (row.revocable_after, row.revocable_after_event) == (later, "final_disposition")
        # Only a 2.35 consent has a revocable-after date; on others it is dropped.
        other = _draft(session, services, revocable_after=later.isoformat(),
                       revocable_after_event="final_disposition")
        assert (other.revocable_after, other.revocable_after_event) == (None, None)


def test_a_draft_may_be_incomplete(demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        row = _draft(session, services, recipients=[], categories=[], expires_on="")
        assert row.information_description == "" and row.expires_on is None
        assert row.provisions[0].recipients == []


def test_a_bad_form_lists_every_problem_and_changes_nothing(demo: sessionmaker[Session],
                                                            services: Services) -> None:
    past = (utcnow() - timedelta(days=1)).date().isoformat()
    with demo.begin() as session:
        with unchanged(session), pytest.raises(InvalidInput) as raised:
            _draft(session, services, kind="handshake", disclosers=["harbor-lead", "elsewhere"],
                   recipients=["riverton-pd"], categories=["gossip"], purposes=["FUN"],
                   expiry_event="moon landing", revocable_after="soon", expires_on=past,
                   language="fr")
        assert raised.value.problems == [
            "Choose the kind of consent.",
            "Only agencies on the care team can be named.",
            "Unknown kind of information: gossip.",
            "Unknown purpose: FUN.",
            "Choose the event from the list.",
            "The date it becomes revocable must look like 2027-05-01.",
            "The expiration date must be in the future.",
            "Choose English or Spanish.",
        ]
        with unchanged(session), pytest.raises(InvalidInput, match="must look like 2027-05-01"):
            _draft(session, services, expires_on="1 May 2027")


@pytest.mark.parametrize(("fields", "problem"), [
    ({"kind": "part2_criminal_justice", "disclosers": ["cedar-recovery"],
      "recipients": ["riverton-court", "harbor-lead"], "purposes": ["LEADMON"]},
     "can name only justice agencies (court, probation, prosecution, police), not Harbor "
     "LEAD Case Management."),
    ({"disclosers": ["cedar-recovery"], "recipients": ["riverton-court"],
      "categories": ["sud_treatment"]}, "the LEAD Golden Rule"),
    ({"disclosers": ["cedar-recovery"], "recipients": ["riverton-defender"],
      "categories": ["progress"]}, "needs a Part 2 consent"),
], ids=["2.35-non-justice", "golden-rule", "part2-under-roi"])
def test_a_form_decide_would_never_honour_is_refused(demo: sessionmaker[Session],
                                                     services: Services,
                                                     fields: dict[str, object],
                                                     problem: str) -> None:
    with demo.begin() as session:
        with unchanged(session), pytest.raises(InvalidInput) as raised:
            _draft(session, services, **fields)
        assert any(problem in p for p in raised.value.problems), raised.value.problems


def test_editing_a_draft_replaces_its_provision(demo: sessionmaker[Session],
                                                services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        row = _draft(session, services, recipients=[])
        mark = head(session)
        edited = cs.save_draft(session, services, maria, "LP-1003",
                               _form(recipients=["riverton-defender"], language="es"), META,
                               consent_id=row.id)
        events = events_since(session, mark)
        assert edited.id == row.id and edited.language == "es"
        provisions = session.scalars(select(m.ConsentProvision).where(
            m.ConsentProvision.consent_id == row.id)).all()
        assert [p.recipients for p in provisions] == [["org:riverton-defender"]]
    assert [(e.action, e.consent_ids) for e in events] == [("consent:create", [str(row.id)])]


def test_only_a_draft_of_this_participant_is_edited(demo: sessionmaker[Session],
                                                    services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        active = _active(session, "LP-1001")
        with unchanged(session), pytest.raises(InvalidInput, match="cannot be edited"):
            cs.save_draft(session, services, maria, "LP-1001",
                          _form(recipients=["hope-housing"]), META, consent_id=active.id)
        # Another participant's consent, through this participant's page: not there.
        with unchanged(session), pytest.raises(NotFound):
            cs.save_draft(session, services, maria, "LP-1003", _form(), META,
                          consent_id=active.id)
        with unchanged(session), pytest.raises(NotFound):
            cs.save_draft(session, services, maria, "LP-1003", _form(), META,
                          consent_id=uuid.uuid4())


# --- viewing --------------------------------------------------------------------------------


def test_viewing_a_draft_names_what_is_missing_and_is_audited(demo: sessionmaker[Session],
                                                              services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        row = _draft(session, services, recipients=[], expires_on="")
        mark = head(session)
        shown = cs.view(session, services, maria, "LP-1003", row.id, META)
        events = events_since(session, mark)
    assert shown.row.id == row.id and shown.status == "draft"
    assert any("2.31(a)(4)" in problem for problem in shown.missing)
    assert any("2.31(a)(7)" in problem for problem in shown.missing)
    assert shown.text and shown.revocable_from is None and shown.request is None
    assert [(e.action, e.consent_ids) for e in events] == [("consent:view", [str(row.id)])]
    assert_staff_event(events[0], "consent:view", maria)


def test_viewing_an_active_criminal_justice_consent_says_when_it_may_be_revoked(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        cj = _active(session, "LP-1001", "part2_criminal_justice")
        shown = cs.view(session, services, staff(session, MARIA), "LP-1001", cj.id, META)
    assert shown.status == "active" and shown.missing == []
    assert shown.revocable_from is not None
    assert (utcnow().date() + timedelta(days=90)).isoformat() in shown.revocable_from


def test_reference_names_read_organizations_and_sectors(demo: sessionmaker[Session]) -> None:
    with demo() as session:
        names = cs.reference_names(session)
        spanish = cs.reference_names(session, "es")
        unknown = cs.reference_names(session, "fr")
    assert names["org:harbor-lead"] == "Harbor LEAD Case Management"
    assert "sector:police" in names and names["sector:police"] != spanish["sector:police"]
    assert unknown == names


# --- signing --------------------------------------------------------------------------------


def test_signing_on_the_device_activates_and_keeps_a_sealed_copy(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria, darnell = staff(session, MARIA), person(session, "LP-1003")
        row = _draft(session, services)
        mark = head(session)
        signed = _sign(session, services, row, relation="")
        events = events_since(session, mark)
        consent_id = signed.id
    with demo() as session:
        stored = session.get(m.Consent, consent_id)
        document = session.get(m.ConsentDocument, consent_id)
        assert stored is not None and document is not None
        vault = services.vault.ready(session)
        assert (stored.status, stored.signature_method, stored.signer_relation,
                stored.witness_user_id) == ("active", "typed", "self", maria.id)
        assert stored.signed_at is not None
        assert vault.open(stored, "signer_name") == "Darnell Hughes"
        content = vault.decrypt(document.content_enc, table="consent_document",
                                column="content", row_id=consent_id)
        assert content.startswith(b"%PDF") and document.media_type == "application/pdf"
        assert document.sha256 == stored.document_sha256 == hashlib.sha256(content).hexdigest()
    assert len(events) == 1
    assert_staff_event(events[0], "consent:sign", maria, participant_id=darnell.id)
    assert events[0].consent_ids == [str(consent_id)]
    assert events[0].detail == {"method": "typed", "document_sha256": document.sha256,
                                "drawn": False}


def test_a_drawn_signature_is_checked_and_goes_into_the_copy(demo: sessionmaker[Session],
                                                             services: Services) -> None:
    with demo.begin() as session:
        row = _draft(session, services)
        bad = ["data:image/png;base64,not-base64!", "data:image/gif;base64,R0lGODlh",
               cs.DRAWN_PREFIX + base64.b64encode(b"\x89PNG\r\n\x1a\nrest").decode(),
               _png_data_url(3000, 90), cs.DRAWN_PREFIX + "A" * (cs.MAX_DRAWN_BYTES * 2)]
        for drawn in bad:
            with unchanged(session), pytest.raises(InvalidInput) as raised:
                _sign(session, services, row, drawn=drawn)
            assert raised.value.problems == [
                "The drawn signature could not be read; clear it and draw again, or leave it."]
            assert row.status == "draft"
        mark = head(session)
        _sign(session, services, row, drawn=_png_data_url())
        event = events_since(session, mark)[0]
        document = session.get(m.ConsentDocument, row.id)
        assert document is not None
        content = services.vault.decrypt(document.content_enc, table="consent_document",
                                         column="content", row_id=row.id)
    assert event.detail["drawn"] is True
    assert b"/Subtype /Image" in content


def test_a_wet_ink_scan_is_kept_as_given(demo: sessionmaker[Session],
                                         services: Services) -> None:
    scan = b"\x89PNG\r\n\x1a\n" + b"scan" * 100
    with demo.begin() as session:
        row = _draft(session, services)
        # With a scan, the typed agreement box is not needed: the paper is the agreement.
        signed = _sign(session, services, row, agreed=False, scan=scan, relation="guardian")
        document = session.get(m.ConsentDocument, row.id)
        assert document is not None
        assert (signed.signature_method, signed.signer_relation) == ("wet_ink_scan", "guardian")
        assert document.media_type == "image/png"
        assert services.vault.decrypt(document.content_enc, table="consent_document",
                                      column="content", row_id=row.id) == scan
        media_type, content = cs.document(session, services, staff(session, MARIA), "LP-1003",
                                          row.id, META)
        assert (media_type, content) == ("image/png", scan)


def test_bad_signing_input_lists_every_problem_and_signs_nothing(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        row = _draft(session, services)
        cases = [
            ({"relation": "neighbour", "agreed": False, "signer_name": " "},
             ["Choose who is signing.", "The participant must tick the box to agree.",
              "Type the full name of the person signing."]),
            ({"scan": b"GIF89a" + b"x" * 10},
             ["The scan must be a PDF, PNG or JPEG file."]),
            ({"scan": b"%PDF-" + b"x" * cs.MAX_SCAN_BYTES},
             ["The scan must be at most 5 MB."]),
        ]
        for fields, problems in cases:
            with unchanged(session), pytest.raises(InvalidInput) as raised:
                _sign(session, services, row, **fields)
            assert raised.value.problems == problems
        assert row.status == "draft" and row.signed_at is None


def test_an_incomplete_or_signed_consent_cannot_be_signed(demo: sessionmaker[Session],
                                                          services: Services) -> None:
    with demo.begin() as session:
        incomplete = _draft(session, services, recipients=[], expires_on="")
        with unchanged(session), pytest.raises(InvalidInput) as raised:
            _sign(session, services, incomplete)
        assert any("2.31(a)(4)" in p for p in raised.value.problems)
        assert incomplete.status == "draft" and incomplete.signer_name_enc is None
        active = _active(session, "LP-1001")
        with unchanged(session), pytest.raises(InvalidInput, match="only a draft can be signed"):
            _sign(session, services, active, "LP-1001")
        with unchanged(session), pytest.raises(NotFound):
            _sign(session, services, active)  # another participant's consent


def test_signing_is_refused_to_roles_that_may_not_witness(demo: sessionmaker[Session],
                                                          services: Services) -> None:
    with demo.begin() as session:
        row = _draft(session, services)
        alex = staff(session, ALEX)
        mark = head(session)
        with pytest.raises(NotFound):  # Hope is not on Darnell's team
            cs.sign(session, services, alex, "LP-1003", row.id, signer_name="x",
                    relation="self", agreed=True, scan=None, meta=META)
        events = events_since(session, mark)
        assert row.status == "draft"
    assert [(e.action, e.decision, e.reasons) for e in events] == [
        ("consent:sign", "deny", ["not_on_care_team"])]


# --- documents ------------------------------------------------------------------------------


def test_the_signed_copy_is_returned_only_while_its_hash_holds(demo: sessionmaker[Session],
                                                               services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        row = _sign(session, services, _draft(session, services))
        mark = head(session)
        media_type, content = cs.document(session, services, maria, "LP-1003", row.id, META)
        assert media_type == "application/pdf" and content.startswith(b"%PDF")
        assert [e.action for e in events_since(session, mark)] == ["consent:view"]
        document = session.get(m.ConsentDocument, row.id)
        assert document is not None
        document.sha256 = "0" * 64
        session.flush()
        with pytest.raises(NotFound):
            cs.document(session, services, maria, "LP-1003", row.id, META)
        draft = _draft(session, services)
        with pytest.raises(NotFound):  # no copy before signing
            cs.document(session, services, maria, "LP-1003", draft.id, META)


# --- new versions ---------------------------------------------------------------------------


def test_a_new_version_replaces_the_old_when_signed(demo: sessionmaker[Session],
                                                    services: Services) -> None:
    with demo.begin() as session:
        maria, darnell = staff(session, MARIA), person(session, "LP-1003")
        first = _sign(session, services, _draft(session, services))
        second = cs.new_version(session, services, maria, "LP-1003", first.id, META)
        assert (second.status, second.version, second.supersedes_id) == ("draft", 2, first.id)
        assert cs.form_of(second) == cs.form_of(first)
        # Asking again resumes the same draft; the active one stays in force meanwhile.
        assert cs.new_version(session, services, maria, "LP-1003", first.id, META).id \
            == second.id
        assert first.status == "active"
        cs.save_draft(session, services, maria, "LP-1003",
                      _form(categories=["progress", "housing"]), META, consent_id=second.id)
        mark = head(session)
        _sign(session, services, second)
        events = events_since(session, mark)
        assert (first.status, second.status) == ("superseded", "active")
        with unchanged(session), pytest.raises(InvalidInput,
                                               match="Only an active consent gets a new"):
            cs.new_version(session, services, maria, "LP-1003", first.id, META)
    assert [(e.action, e.consent_ids) for e in events] == [
        ("consent:sign", [str(second.id)]), ("consent:supersede", [str(first.id)])]
    assert events[1].detail == {"superseded_by": str(second.id)}
    assert_staff_event(events[1], "consent:supersede", maria, participant_id=darnell.id)


def _provisions(consent: m.Consent) -> list[tuple[object, ...]]:
    return sorted((p.effect, sorted(p.disclosers), sorted(p.recipients), sorted(p.categories),
                   sorted(p.purposes)) for p in consent.provisions)


def test_a_new_version_keeps_every_provision_of_the_one_it_replaces(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        angela = person(session, "LP-1002")  # no Part 2 program on her team
        roi = next(c for c in session.scalars(select(m.Consent).where(
            m.Consent.participant_id == angela.id, m.Consent.status == "active"))
            if len(c.provisions) > 1)
        assert [p.effect for p in roi.provisions] == ["permit", "deny"]
        draft = cs.new_version(session, services, staff(session, MARIA), "LP-1002", roi.id,
                               META)
        assert draft.supersedes_id == roi.id
        assert _provisions(draft) == _provisions(roi)
        # Editing the draft through the form (which shows the first provision) keeps the rest.
        edited = cs.save_draft(session, services, staff(session, MARIA), "LP-1002",
                               cs.form_of(draft), META, consent_id=draft.id)
        assert _provisions(edited) == _provisions(roi)


def test_a_new_version_of_a_consent_revoked_meanwhile_supersedes_nothing(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        first = _sign(session, services, _draft(session, services))
        second = cs.new_version(session, services, maria, "LP-1003", first.id, META)
        cs.revoke_consent(session, services, maria, "LP-1003", first.id, confirmed=True,
                          how="", meta=META)
        mark = head(session)
        _sign(session, services, second)
        assert [e.action for e in events_since(session, mark)] == ["consent:sign"]
        assert (first.status, second.status) == ("revoked", "active")


def test_a_signature_whose_supersession_cannot_be_audited_changes_nothing(
        demo: sessionmaker[Session], services: Services,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        first = _sign(session, services, _draft(session, services))
        second = cs.new_version(session, services, maria, "LP-1003", first.id, META)
        ids = first.id, second.id
        before = counts(session)
    fail_audit_on(monkeypatch, services, "consent:supersede")
    with pytest.raises(AuditWriteError), demo.begin() as session:
        _sign(session, services, session.get(m.Consent, ids[1]))  # type: ignore[arg-type]
    with demo() as session:
        # The signature, its copy, its audit event and the old version's end were one
        # transaction: none of them stayed.
        assert counts(session) == before
        old, new = (session.get(m.Consent, i) for i in ids)
        assert old is not None and new is not None
        assert (old.status, new.status, new.signed_at, new.document_sha256) == (
            "active", "draft", None, None)


# --- revocation -----------------------------------------------------------------------------


def test_revoking_takes_effect_and_is_audited(demo: sessionmaker[Session],
                                              services: Services) -> None:
    with demo.begin() as session:
        dev, marcus = staff(session, DEV), person(session, "LP-1001")
        roi = _active(session, "LP-1001")
        mark = head(session)
        row = cs.revoke_consent(session, services, dev, "LP-1001", roi.id, confirmed=True,
                                how="  by phone " + "x" * 200, meta=META)
        events = events_since(session, mark)
        consent_id = row.id
    with demo() as session:
        stored = session.get(m.Consent, consent_id)
        assert stored is not None
        assert stored.status == "revoked" and stored.revoked_at is not None
        assert stored.revoked_by == f"participant, with {DEV}"
        assert stored.revocation_method is not None
        assert stored.revocation_method.startswith("by phone")
        assert len(stored.revocation_method) == 100
        summaries = cs.consent_summaries(session, marcus.id, utcnow())
        assert next(s for s in summaries if s["id"] == str(consent_id))["status"] == "revoked"
    assert len(events) == 1
    assert_staff_event(events[0], "consent:revoke", dev, participant_id=marcus.id)
    assert events[0].consent_ids == [str(consent_id)]
    assert events[0].detail == {"method": stored.revocation_method}


def test_revocation_needs_confirmation_an_active_consent_and_its_date(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        maria = staff(session, MARIA)
        roi = _active(session, "LP-1001")
        cj = _active(session, "LP-1001", "part2_criminal_justice")

        def revoke(consent: m.Consent, confirmed: bool = True) -> None:
            cs.revoke_consent(session, services, maria, "LP-1001", consent.id,
                              confirmed=confirmed, how="", meta=META)

        with unchanged(session), pytest.raises(InvalidInput, match="Tick the box"):
            revoke(roi, confirmed=False)
        with unchanged(session), pytest.raises(InvalidInput, match="cannot be revoked until"):
            revoke(cj)
        draft = _draft(session, services, "LP-1001", recipients=["hope-housing"])
        with unchanged(session), pytest.raises(InvalidInput,
                                               match="only an active consent can be revoked"):
            revoke(draft)
        revoke(roi)
        assert roi.revocation_method == "in person"
        with unchanged(session), pytest.raises(InvalidInput,
                                               match="only an active consent can be revoked"):
            revoke(roi)
        assert cj.status == "active"


def test_a_revocation_by_a_role_that_may_not_is_refused_and_audited(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        alex, roi = staff(session, ALEX), _active(session, "LP-1001")
        mark = head(session)
        with pytest.raises(Refused, match="cannot record a revocation"):
            cs.revoke_consent(session, services, alex, "LP-1001", roi.id, confirmed=True,
                              how="", meta=META)
        events = events_since(session, mark)
        assert roi.status == "active"
    assert [(e.action, e.decision, e.reasons) for e in events] == [
        ("consent:revoke", "deny", ["no_role_permission"])]
