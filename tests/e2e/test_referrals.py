"""The LEAD front door over HTTP: a police referral, acceptance and enrolment, the care team,
and the participant's sign-in code."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import func, select
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
    assert accepted.status_code in (302, 303)
    public_id = re.search(r"/participants/(LP-[0-9A-Z]+)/care-team",
                          accepted.headers["location"])
    assert public_id
    pid = public_id.group(1)
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


def test_the_sign_in_code_is_shown_once_and_works(
        as_user: Callable[[str], TestClient[Any]], app_settings: Settings) -> None:
    maria = as_user(MARIA)
    team = maria.get("/participants/LP-1005/care-team").text
    issued = maria.post("/participants/LP-1005/enrolment-code",
                        data={"_csrf_token": csrf(team)})
    assert issued.status_code in (200, 201)
    assert issued.headers["cache-control"] == "no-store"
    code = re.search(r'<code class="secret">([A-Z0-9-]+)</code>', issued.text)
    assert code
    assert code.group(1) not in maria.get("/participants/LP-1005/care-team").text
    with TestClient(create_app(app_settings), base_url="http://127.0.0.1:8000") as participant:
        token = csrf(participant.get("/me/enrol").text)
        enrolled = participant.post("/me/enrol", data={
            "participant_id": "LP-1005", "code": code.group(1), "username": "roberto",
            "passphrase": "montaña verde clara", "_csrf_token": token}, follow_redirects=False)
        assert enrolled.status_code in (302, 303)
        assert "Roberto" in participant.get("/me").text
