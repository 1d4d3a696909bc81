"""Consents end on events: a case manager records a participant's exit from LEAD, a court
liaison or prosecutor the final disposition of their case; decide(), the participant's page and
their sign-in follow from that moment. Everything is audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from portal.auth.service import set_demo_credentials
from portal.db import models as m
from tests.e2e.pages import csrf, section

MARIA = "maria.lopez@harbor-lead.example"  # case manager, Harbor LEAD
ALEX = "alex.rivera@hope-housing.example"  # housing navigator
LINDA = "linda.nguyen@riverton-court.example"  # court liaison
LUIS = "luis.moreno@eastgate-clinic.example"  # clinician, Eastgate
TOM = "tom.becker@riverton-probation.example"  # probation officer


def _record(client: TestClient[Any], public_id: str, page: str, **fields: str) -> Any:
    form = client.get(f"/participants/{public_id}/{page}")
    assert form.status_code == 200, form.text
    return client.post(f"/participants/{public_id}/{page}",
                       data={"_csrf_token": csrf(form.text)} | fields, follow_redirects=False)


def _events(demo: sessionmaker[Session], action: str) -> list[m.AuditEvent]:
    with demo() as s:
        return list(s.scalars(select(m.AuditEvent).where(m.AuditEvent.action == action)))


def test_an_exit_ends_the_consents_that_end_on_it(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    """LP-1004's health release ends when they leave LEAD: Harbor sees Eastgate's health notes
    before the exit, and not after."""
    maria = as_user(MARIA)
    assert "Clinic visit" in section(maria.get("/participants/LP-1004").text, "health")
    bad = _record(maria, "LP-1004", "exit", on="2099-01-01", reason="completed")
    assert bad.status_code == 400 and "future" in bad.text
    assert _record(maria, "LP-1004", "exit", reason="").status_code == 400
    with demo() as s:
        assert s.scalar(select(func.count()).select_from(m.ParticipantEvent).join(
            m.Participant).where(m.Participant.public_id == "LP-1004")) == 0
    done = _record(maria, "LP-1004", "exit", reason="completed")
    assert done.status_code in (302, 303)
    assert "Recorded" in maria.get("/participants/LP-1004/exit").text
    again = maria.post("/participants/LP-1004/exit", data={
        "_csrf_token": csrf(maria.get("/participants/LP-1004").text), "reason": "moved"})
    assert again.status_code == 400 and "already recorded" in again.text
    page = maria.get("/participants/LP-1004").text
    assert "Clinic visit" not in page and "Withheld" in section(page, "health")
    with demo() as s:
        person = s.scalar(select(m.Participant).where(m.Participant.public_id == "LP-1004"))
        assert person is not None and person.status == "exited"
    exits = _events(demo, "participant:exit")
    assert [(e.actor, e.decision, e.detail["reason"]) for e in exits] == [
        (MARIA, "permit", "completed")]


def test_only_the_roles_the_policy_names_record_exit_and_disposition(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    # On the care team but not the role: forbidden, with the reason, and audited.
    assert as_user(ALEX).get("/participants/LP-1001/exit").status_code == 403
    assert as_user(TOM).get("/participants/LP-1001/disposition").status_code == 403
    assert as_user(MARIA).get("/participants/LP-1003/disposition").status_code == 403
    # The right role off the care team: not found, audited.
    assert as_user(LINDA).get("/participants/LP-1001/disposition").status_code == 404
    refused = _events(demo, "participant:exit") + _events(demo,
                                                          "participant:disposition:create")
    assert len(refused) == 4 and {e.decision for e in refused} == {"deny"}
    assert {r for e in refused for r in e.reasons} == {"no_role_permission",
                                                       "not_on_care_team"}


def test_a_disposition_makes_a_2_35_consent_revocable_by_the_participant(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        app_settings: Any, services: Any) -> None:
    """LP-1003's 2.35 consent (to the court, for monitoring) cannot be taken back until the
    final disposition; once Linda records it, it can, from the participant's own page."""
    from portal.web.app import create_app

    with demo() as s:
        person = s.scalar(select(m.Participant).where(m.Participant.public_id == "LP-1003"))
        assert person is not None
        cj = s.scalar(select(m.Consent).where(m.Consent.participant_id == person.id,
                                              m.Consent.kind == "part2_criminal_justice"))
        assert cj is not None and cj.revocable_after_event == "final_disposition"
        cj_id = str(cj.id)
    login = ("LP-1003", "darnell", "granite harbor sunrise")
    with demo.begin() as s:
        set_demo_credentials(s, services.vault, person.id, login[1], login[2])

    def participant_home() -> tuple[TestClient[Any], str]:
        client = TestClient(create_app(app_settings), base_url="http://127.0.0.1:8000")
        client.__enter__()
        token = csrf(client.get("/me/login").text)
        client.post("/me/login", data={"username": login[1], "passphrase": login[2],
                                       "_csrf_token": token})
        return client, client.get("/me").text

    client, home = participant_home()
    assert f"/me/consents/{cj_id}/revoke" not in home
    client.__exit__(None, None, None)
    assert _record(as_user(LINDA), "LP-1003", "disposition").status_code in (302, 303)
    client, home = participant_home()
    assert f"/me/consents/{cj_id}/revoke" in home
    page = client.get(f"/me/consents/{cj_id}/revoke").text
    taken = client.post(f"/me/consents/{cj_id}/revoke", data={"_csrf_token": csrf(page)},
                        follow_redirects=False)
    assert taken.status_code in (302, 303)
    client.__exit__(None, None, None)
    with demo() as s:
        row = s.get(m.Consent, cj.id)
        assert row is not None and row.status == "revoked"
    assert [e.actor for e in _events(demo, "participant:disposition:create")] == [LINDA]


def test_an_exited_participant_cannot_enrol_again_with_an_old_code(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    maria = as_user(MARIA)
    team = maria.get("/participants/LP-1004/care-team").text
    issued = maria.post("/participants/LP-1004/enrolment-code",
                        data={"_csrf_token": csrf(team), "confirm": "issue"})
    code = issued.text.split('class="secret">')[1].split("<")[0].strip() \
        if 'class="secret">' in issued.text else None
    assert code, "the code is shown once"
    assert _record(maria, "LP-1004", "exit", reason="moved").status_code in (302, 303)
    anonymous = as_user(ALEX)  # any client; enrolment needs no staff session
    form = anonymous.get("/me/enrol").text
    refused = anonymous.post("/me/enrol", data={
        "_csrf_token": csrf(form), "participant_id": "LP-1004", "code": code,
        "username": "keisha.m", "passphrase": "quiet river evening light",
        "passphrase2": "quiet river evening light"})
    assert refused.status_code in (400, 403)
    assert "left LEAD" in refused.text
    again = maria.post("/participants/LP-1004/enrolment-code",
                       data={"_csrf_token": csrf(team), "confirm": "issue"})
    assert again.status_code == 400 and "left LEAD" in again.text
    asked = maria.get("/participants/LP-1004/enrolment-code")
    assert asked.status_code == 400 and "left LEAD" in asked.text


def test_the_demo_has_an_exit_and_a_disposition(demo: sessionmaker[Session]) -> None:
    with demo() as s:
        rows = s.execute(select(m.Participant.public_id, m.ParticipantEvent.event).join(
            m.ParticipantEvent)).all()
    assert {tuple(r) for r in rows} == {("LP-1009", "lead_exit"),
                                        ("LP-1010", "final_disposition")}
