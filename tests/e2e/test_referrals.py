"""The LEAD front door over HTTP: a police referral, acceptance and enrolment, the care team,
and the participant's sign-in code."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Settings
from portal.db import models as m
from portal.web.app import create_app
from tests.e2e.pages import csrf, section

JAMES = "james.carter@riverton-pd.example"
MARIA = "maria.lopez@harbor-lead.example"
ALEX = "alex.rivera@hope-housing.example"


def _refer(client: TestClient[Any], **fields: str) -> Any:
    token = csrf(client.get("/referrals/").text)
    data = {"pathway": "social_contact", "given": "Jordan", "family": "Sample",
            "born": "1991-02-03", "where": "Library steps, mornings", "_csrf_token": token}
    return client.post("/referrals/", data=data | fields, follow_redirects=False)


def test_referral_to_enrolment_to_care_team(as_user: Callable[[str], TestClient[Any]],
                                            demo: sessionmaker[Session]) -> None:
    james, maria, alex = as_user(JAMES), as_user(MARIA), as_user(ALEX)
    bad = _refer(james, given="", born="yesterday")
    assert bad.status_code == 400 and "first and last name" in bad.text
    with demo() as s:
        assert s.scalar(select(func.count()).select_from(m.Referral)) == 0
    assert _refer(james).status_code in (302, 303)
    assert "pending" in james.get("/referrals/").text

    queue = maria.get("/referrals/").text
    assert "Jordan Sample" in queue and "Library steps" in queue
    referral_id = re.search(r'/referrals/([0-9a-f-]{36})/decide', queue)
    assert referral_id
    accepted = maria.post(f"/referrals/{referral_id.group(1)}/decide",
                          data={"decision": "accept", "_csrf_token": csrf(queue)},
                          follow_redirects=False)
    assert accepted.status_code == 303
    public_id = re.fullmatch(r"/participants/(LP-[0-9A-Z]{4}-[0-9A-Z]{4})/care-team\?done=enrolled",
                             accepted.headers["location"])
    assert public_id
    pid = public_id.group(1)
    # The landing page confirms whom was enrolled, by name, and says what comes next.
    landing = maria.get(accepted.headers["location"]).text
    assert f"Jordan Sample is enrolled in LEAD as {pid}" in landing
    assert f"<h1>Care team for Jordan Sample ({pid})</h1>" in landing
    assert "Nothing is shared with anyone else until they consent" in landing
    assert f'href="/participants/{pid}/consents">Record their consent' in landing
    assert f'href="/participants/{pid}/enrolment-code">Give them a sign-in code' in landing
    # The id is read back however it is typed: any case, with or without the dashes.
    for typed in (pid.lower(), pid.replace("-", ""), pid.lower().replace("-", " ")):
        page = maria.get(f"/participants/{typed}/care-team")
        assert page.status_code == 200, typed
        assert f"<h1>Care team for Jordan Sample ({pid})</h1>" in page.text
        assert "is enrolled in LEAD" not in page.text  # the confirmation is not repeated
    found = maria.get("/staff", params={"q": "Jordan Sample"}).text
    assert f'href="/participants/{pid}"' in found

    # The officer learns only that it was accepted.
    mine = james.get("/referrals/").text
    assert "accepted" in mine and pid not in mine
    assert james.get(f"/participants/{pid}").status_code == 404

    # Adding Hope Housing lets it ask, but shows it nothing without consent.
    team = maria.get(f"/participants/{pid}/care-team").text
    added = maria.post(f"/participants/{pid}/care-team", data={
        "organization": "hope-housing", "_csrf_token": csrf(team)}, follow_redirects=False)
    assert added.status_code in (302, 303)
    token = csrf(maria.get(f"/participants/{pid}").text)
    maria.post(f"/participants/{pid}/records", data={
        "category": "housing", "title": "Shelter", "body": "Needs a bed tonight",
        "_csrf_token": token})
    page = alex.get(f"/participants/{pid}")
    assert page.status_code == 200
    assert "Needs a bed tonight" not in page.text
    assert "Withheld" in section(page.text, "housing")

    team = maria.get(f"/participants/{pid}/care-team").text
    member = re.search(rf'/participants/{pid}/care-team/(\d+)/end', team)
    assert member
    ended = maria.post(f"/participants/{pid}/care-team/{member.group(1)}/end",
                       data={"_csrf_token": csrf(team)}, follow_redirects=False)
    assert ended.status_code in (302, 303)
    assert alex.get(f"/participants/{pid}").status_code == 404
    with demo() as s:
        actions = set(s.scalars(select(m.AuditEvent.action)))
    assert {"referral:create", "referral:decide", "participant:enrol", "care_team:member:add",
            "care_team:member:end", "record:create"} <= actions


def test_declining_needs_a_reason(as_user: Callable[[str], TestClient[Any]]) -> None:
    _refer(as_user(JAMES))
    maria = as_user(MARIA)
    queue = maria.get("/referrals/").text
    referral_id = re.search(r'/referrals/([0-9a-f-]{36})/decide', queue)
    assert referral_id
    url = f"/referrals/{referral_id.group(1)}/decide"
    refused = maria.post(url, data={"decision": "decline", "_csrf_token": csrf(queue)})
    assert refused.status_code == 400 and "Say why" in refused.text
    declined = maria.post(url, data={"decision": "decline", "reason": "Lives out of county",
                                     "_csrf_token": csrf(queue)}, follow_redirects=False)
    assert declined.status_code in (302, 303)
    assert "declined" in as_user(JAMES).get("/referrals/").text
    again = maria.post(url, data={"decision": "accept", "_csrf_token": csrf(queue)})
    assert again.status_code == 400 and "already declined" in again.text


def test_only_police_refer_and_only_case_managers_decide(
        as_user: Callable[[str], TestClient[Any]]) -> None:
    alex = as_user(ALEX)
    assert alex.get("/referrals/").status_code == 403
    maria = as_user(MARIA)
    token = csrf(maria.get("/referrals/").text)
    assert maria.post("/referrals/", data={"pathway": "social_contact", "given": "A",
                                           "family": "B", "_csrf_token": token}
                      ).status_code == 403
    assert as_user(ALEX).get("/participants/LP-1001/care-team").status_code == 404


def test_ids_made_before_the_grouped_scheme_keep_working(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    with demo.begin() as s:
        s.execute(update(m.Participant).where(m.Participant.public_id == "LP-1004")
                  .values(public_id="LP-9244U5NL"))
    maria = as_user(MARIA)
    for typed in ("LP-9244U5NL", "lp-9244u5nl", "LP-9244-U5NL", "LP9244U5NL"):
        page = maria.get(f"/participants/{typed}/care-team")
        assert page.status_code == 200, typed
        assert "<h1>Care team for Keisha Morgan (LP-9244U5NL)</h1>" in page.text
    for typed in ("lp-1001", "LP1001"):
        page = maria.get(f"/participants/{typed}/care-team")
        assert page.status_code == 200 and "(LP-1001)</h1>" in page.text, typed
    assert maria.get("/participants/LP-9244-U5NX/care-team").status_code == 404


def _code_events(demo: sessionmaker[Session]) -> int:
    with demo() as s:
        return s.scalar(select(func.count()).select_from(m.AuditEvent).where(
            m.AuditEvent.action == "auth:enrolment_code:issue")) or 0


def _credential(demo: sessionmaker[Session], public_id: str) -> tuple[Any, ...]:
    with demo() as s:
        participant = s.scalars(select(m.Participant).where(
            m.Participant.public_id == public_id)).one()
        credential = s.get(m.ParticipantCredential, participant.id)
        assert credential is not None
        return credential.passphrase_hash, credential.enrolment_code_hash


def test_issuing_a_sign_in_code_is_confirmed_first(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    maria = as_user(MARIA)
    team = maria.get("/participants/LP-1001/care-team").text
    # The care-team page links to the question; it holds no form that issues a code.
    assert 'href="/participants/LP-1001/enrolment-code"' in team
    assert 'action="/participants/LP-1001/enrolment-code"' not in team
    before = _credential(demo, "LP-1001")
    assert before[0] is not None  # Marcus has a passphrase (seeded)
    asked = maria.get("/participants/LP-1001/enrolment-code")
    assert asked.status_code == 200
    assert "<h1>Issue a sign-in code for Marcus Reed (LP-1001)?</h1>" in asked.text
    assert "signed out of the portal everywhere" in asked.text
    assert "They must use the new code to choose a new passphrase" in asked.text
    assert 'name="confirm" value="issue"' in asked.text and 'class="danger"' in asked.text
    # A post without the confirmation (one tap on an old form) only asks again.
    unconfirmed = maria.post("/participants/LP-1001/enrolment-code",
                             data={"_csrf_token": csrf(asked.text)}, follow_redirects=False)
    assert unconfirmed.status_code == 200
    assert "Issue a sign-in code for Marcus Reed (LP-1001)?" in unconfirmed.text
    assert _code_events(demo) == 0 and _credential(demo, "LP-1001") == before


def test_the_sign_in_code_is_shown_once_after_the_redirect_and_works(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        app_settings: Settings) -> None:
    maria = as_user(MARIA)
    asked = maria.get("/participants/lp-1005/enrolment-code").text
    issued = maria.post("/participants/lp-1005/enrolment-code",
                        data={"_csrf_token": csrf(asked), "confirm": "issue"},
                        follow_redirects=False)
    assert issued.status_code == 303
    assert issued.headers["location"] == "/participants/LP-1005/enrolment-code/issued"
    assert _code_events(demo) == 1
    shown = maria.get(issued.headers["location"])
    assert shown.status_code == 200 and shown.headers["cache-control"] == "no-store"
    code = re.search(r'<code class="secret">([A-Z0-9-]+)</code>', shown.text)
    assert code
    assert code.group(1) not in issued.headers["location"]
    # Reloading shows no code and issues none: the one written down still works.
    for _ in range(2):
        again = maria.get(issued.headers["location"])
        assert again.status_code == 200 and again.headers["cache-control"] == "no-store"
        assert code.group(1) not in again.text and "This code was already shown" in again.text
    assert _code_events(demo) == 1
    # Another session of the same person does not get it either.
    assert code.group(1) not in as_user(MARIA).get(issued.headers["location"]).text
    with demo() as s:
        assert s.scalar(select(func.count()).select_from(m.ShownOnce)) == 0
    with TestClient(create_app(app_settings), base_url="http://127.0.0.1:8000") as participant:
        token = csrf(participant.get("/me/enrol").text)
        enrolled = participant.post("/me/enrol", data={
            "participant_id": "LP-1005", "code": code.group(1), "username": "roberto",
            "passphrase": "montaña verde clara", "_csrf_token": token}, follow_redirects=False)
        assert enrolled.status_code in (302, 303)
        assert "Roberto" in participant.get("/me").text


def _slip(html: str) -> str:
    found = re.search(r'<section class="slip" lang="(\w+)"[^>]*>(.*?)</section>', html, re.S)
    assert found
    return found.group(1) + " " + re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(2)))


def _issue(client: TestClient[Any], public_id: str) -> str:
    asked = client.get(f"/participants/{public_id}/enrolment-code").text
    done = client.post(f"/participants/{public_id}/enrolment-code",
                       data={"_csrf_token": csrf(asked), "confirm": "issue"})
    assert done.status_code == 200
    return done.text


def test_the_enrolment_slip_is_in_the_participants_language(
        as_user: Callable[[str], TestClient[Any]]) -> None:
    maria = as_user(MARIA)
    spanish = _issue(maria, "LP-1005")  # Roberto Alvarez prefers Spanish
    code = re.search(r'<code class="secret">([A-Z0-9-]+)</code>', spanish)
    assert code
    slip = _slip(spanish)
    assert slip.startswith("es ")
    assert "Cómo entrar a LEAD" in slip and "Para: Roberto Alvarez" in slip
    assert f"Su identificación LP-1005 Su código de un solo uso {code.group(1)}" in slip
    assert "vaya a: http://127.0.0.1:8000/me/enrol" in slip
    assert "Elija un nombre de usuario y una frase de contraseña" in slip
    assert "Use el código dentro de 72 horas" in slip
    assert "How to sign in" not in slip and "Type the code" not in slip
    # The staff part of the page stays in the staff member's language, and is not printed.
    assert '<div class="no-print">' in spanish and "New sign-in code for Roberto Alvarez" in spanish
    english = _slip(_issue(maria, "LP-1004"))  # Keisha Morgan: English
    assert english.startswith("en ") and "How to sign in to LEAD" in english
    assert "Type the code. It works one time only." in english
