"""Participants' own pages: who can see what, taking a consent back (effective on the next
access by anyone), asking for a change, who looked; only their own information."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Settings
from portal.db import models as m
from portal.web.app import create_app
from tests.e2e.pages import csrf, section

BASE = "http://127.0.0.1:8000"


@pytest.fixture
def participant(app_settings: Settings, demo: sessionmaker[Session]) -> Iterator[
        Callable[[str, str], TestClient[Any]]]:
    """A participant's client, signed in with their username and passphrase."""
    clients: list[TestClient[Any]] = []

    def sign_in(username: str, passphrase: str) -> TestClient[Any]:
        client = TestClient(create_app(app_settings), base_url=BASE)
        client.__enter__()
        clients.append(client)
        token = csrf(client.get("/me/login").text)
        response = client.post("/me/login", data={"username": username,
                                                  "passphrase": passphrase,
                                                  "_csrf_token": token},
                               follow_redirects=False)
        assert response.status_code in (302, 303)
        return client

    yield sign_in
    for client in clients:
        client.__exit__(None, None, None)


def test_my_sharing_in_plain_language(participant: Callable[[str, str], TestClient[Any]],
                                      ) -> None:
    marcus = participant("marcus", "river stone morning")
    home = marcus.get("/me").text
    assert "Hope Housing Collaborative" in home
    assert "so they can coordinate your care in LEAD" in home
    assert "You cannot take this one back yet because it is a condition of your court" in home
    assert "Not shared with anyone outside the agency that wrote it:" in home
    assert "your physical health" in home
    spanish = marcus.get("/me?lang=es").text
    assert "Quién puede ver qué de usted" in spanish and "puede ver" in spanish


def listed(caseload: str) -> list[str]:
    """The participant ids in a caseload page's table."""
    return re.findall(r'<td data-label="ID">(LP-[0-9A-Z]+)</td>', caseload)


def flagged(caseload: str) -> list[str]:
    """The ids of the rows that carry a consent flag."""
    return [row.group(1) for row in re.finditer(
        r'<td data-label="ID">(LP-[0-9A-Z]+)</td>.*?</tr>', caseload, re.S)
        if "Took back a consent" in row.group(0) or "Asked for a change" in row.group(0)]


def test_revocation_from_the_phone_takes_effect_at_once(
        participant: Callable[[str, str], TestClient[Any]],
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    alex = as_user("alex.rivera@hope-housing.example")
    assert "Engagement summary" in section(alex.get("/participants/LP-1001").text, "progress")
    marcus = participant("marcus", "river stone morning")
    with demo() as s:
        roi = s.scalars(select(m.Consent).join(m.Participant).where(
            m.Participant.public_id == "LP-1001", m.Consent.kind == "roi",
            m.Consent.status == "active", m.Consent.expires_on.is_not(None))).one()
    confirm = marcus.get(f"/me/consents/{roi.id}/revoke")
    assert "this stops right away" in confirm.text
    assert "Hope Housing Collaborative" in confirm.text
    done = marcus.post(f"/me/consents/{roi.id}/revoke", data={"_csrf_token": csrf(confirm.text)},
                       follow_redirects=False)
    assert done.status_code in (302, 303)
    assert "That permission has ended" in marcus.get(done.headers["location"]).text
    assert "Engagement summary" not in section(alex.get("/participants/LP-1001").text,
                                               "progress")
    caseload = as_user("maria.lopez@harbor-lead.example").get("/staff").text
    row = re.search(r"LP-1001</td>.*?</tr>", caseload, re.S)
    assert row and "Took back a consent" in row.group(0)
    # Probation works with Marcus too, but its role may not view consents: it is not told.
    probation = as_user("tom.becker@riverton-probation.example").get("/staff").text
    assert "LP-1001" in probation and "Took back a consent" not in probation
    # The caseload filter finds exactly those people; probation has neither flag nor filter.
    maria = as_user("maria.lopez@harbor-lead.example")
    found = listed(maria.get("/staff?changes=1").text)
    assert "LP-1001" in found and found == flagged(caseload)
    assert 'name="changes"' not in probation
    assert listed(as_user("tom.becker@riverton-probation.example").get(
        "/staff?changes=1").text) == []
    with demo() as s:
        event = s.scalars(select(m.AuditEvent).where(m.AuditEvent.action == "consent:revoke")
                          ).one()
        assert event.actor == "LP-1001" and event.detail == {"by": "participant"}


def test_a_criminal_justice_consent_explains_why_it_cannot_be_taken_back(
        participant: Callable[[str, str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    marcus = participant("marcus", "river stone morning")
    with demo() as s:
        cj = s.scalars(select(m.Consent).join(m.Participant).where(
            m.Participant.public_id == "LP-1001",
            m.Consent.kind == "part2_criminal_justice")).one()
    page = marcus.get(f"/me/consents/{cj.id}/revoke").text
    assert "condition of your court case" in page
    assert "Yes, take it back" not in page
    refused = marcus.post(f"/me/consents/{cj.id}/revoke", data={"_csrf_token": csrf(page)})
    assert refused.status_code == 400
    with demo() as s:
        assert s.get(m.Consent, cj.id).status == "active"  # type: ignore[union-attr]


def test_only_my_own_consents(participant: Callable[[str, str], TestClient[Any]],
                              demo: sessionmaker[Session]) -> None:
    angela = participant("angela", "cielo azul tranquilo")
    with demo() as s:
        theirs = s.scalars(select(m.Consent).join(m.Participant).where(
            m.Participant.public_id == "LP-1001")).first()
    assert theirs is not None
    page = angela.get("/me").text
    assert angela.get(f"/me/consents/{theirs.id}/revoke").status_code == 404
    assert angela.get("/me/consents/not-a-uuid/revoke").status_code == 404
    assert angela.post(f"/me/consents/{theirs.id}/revoke",
                       data={"_csrf_token": csrf(page)}).status_code == 404
    assert angela.get("/participants/LP-1002").status_code in (302, 303, 401) or \
        angela.get("/participants/LP-1002", follow_redirects=False).status_code in (302, 303)


def test_asking_for_a_change_makes_a_draft(participant: Callable[[str, str], TestClient[Any]],
                                           as_user: Callable[[str], TestClient[Any]],
                                           demo: sessionmaker[Session]) -> None:
    angela = participant("angela", "cielo azul tranquilo")
    page = angela.get("/me/change").text
    empty = angela.post("/me/change", data={"wish": "more", "text": "",
                                            "_csrf_token": csrf(page)})
    assert empty.status_code == 400
    sent = angela.post("/me/change", data={"wish": "less", "text": "Stop sharing my health",
                                           "_csrf_token": csrf(page)}, follow_redirects=False)
    assert sent.status_code in (302, 303)
    # The participant sees their request waiting, in their own words.
    home = angela.get("/me?lang=en").text
    drafts = home.split('id="drafts-heading"')[1].split("</section>")[0]
    assert "You asked to share less" in drafts and "Stop sharing my health" in drafts
    assert "Usted pidió compartir menos" in angela.get("/me?lang=es").text
    # The case manager is told on the caseload and reads it on the draft.
    maria = as_user("maria.lopez@harbor-lead.example")
    row = re.search(r"LP-1002</td>.*?</tr>", maria.get("/staff").text, re.S)
    assert row and "Asked for a change to their consent" in row.group(0)
    found = listed(maria.get("/staff?changes=1").text)
    assert "LP-1002" in found and found == flagged(maria.get("/staff").text)
    consents = maria.get("/participants/LP-1002/consents/").text
    assert "The participant asked to share less" in consents
    with demo() as s:
        draft = s.scalars(select(m.Consent).join(m.ConsentRequest)).one()
        request = s.get(m.ConsentRequest, draft.id)
        assert draft.status == "draft" and request is not None and request.wish == "less"
        assert b"Stop sharing" not in request.note_enc  # sealed at rest
    shown = maria.get(f"/participants/LP-1002/consents/{draft.id}").text
    asked = shown.split('id="request-heading"')[1].split("</section>")[0]
    assert "<strong>less</strong>" in asked and "Stop sharing my health" in asked
    # Once the case manager has made it a consent and it is signed, the flag goes.
    with demo.begin() as s:
        s.execute(update(m.Consent).where(m.Consent.id == draft.id)
                  .values(status="entered_in_error"))
    row = re.search(r"LP-1002</td>.*?</tr>", maria.get("/staff").text, re.S)
    assert row and "Asked for a change" not in row.group(0)
    found = listed(maria.get("/staff?changes=1").text)
    assert "LP-1002" not in found and found == flagged(maria.get("/staff").text)


def test_who_looked(participant: Callable[[str, str], TestClient[Any]],
                    as_user: Callable[[str], TestClient[Any]]) -> None:
    as_user("alex.rivera@hope-housing.example").get("/participants/LP-1001")
    marcus = participant("marcus", "river stone morning")
    page = marcus.get("/me/who-looked").text
    assert re.search(r'<h2 id="agency-\d+">Hope Housing Collaborative</h2>', page)
    assert "<strong>Alex Rivera</strong> (housing navigator)" in page
    assert "how you are doing in the program" in page and "because you agreed" in page
    assert "Engagement summary" not in page  # who and what kind, never the content
    spanish = marcus.get("/me/who-looked?lang=es").text
    assert "porque usted aceptó" in spanish
    # Roles and times in words, in the participant's language (no role codes, no UTC).
    assert "(guía de vivienda)" in spanish and "housing_navigator" not in spanish
    assert re.search(r"\d+ de [a-z]+ de 20\d\d, \d\d:\d\d", spanish)
    assert "UTC" not in spanish and "Saltar al contenido principal" in spanish
    assert "Cada vez que alguien la mira, queda registrado" in spanish


def test_who_looked_tells_of_refused_attempts_the_policy_names(
        participant: Callable[[str, str], TestClient[Any]],
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    # The clinic does not work with Marcus: its page and API reads are refused, and recorded.
    luis = as_user("luis.moreno@eastgate-clinic.example")
    assert luis.get("/participants/LP-1001").status_code == 404
    assert luis.get("/api/v1/participants/LP-1001").status_code == 404
    assert luis.get("/api/v1/participants/LP-1001/consents").status_code == 404
    assert luis.get("/participants/LP-9999").status_code == 404  # no one: nothing to record
    # A care-team member's withheld sections are the consent working, not an attempt.
    as_user("tom.becker@riverton-probation.example").get("/participants/LP-1001")
    with demo() as s:
        refusals = s.scalars(select(m.AuditEvent).where(
            m.AuditEvent.actor == "luis.moreno@eastgate-clinic.example",
            m.AuditEvent.decision == "deny")).all()
    assert [(e.action, e.reasons) for e in refusals] == [
        ("participant:view", ["not_on_care_team"])] * 2 + [
        ("consent:view", ["not_on_care_team"])]
    page = participant("marcus", "river stone morning").get("/me/who-looked")
    assert page.status_code == 200
    # The three attempts, a minute apart, are one visit under the clinic, naming the clinician.
    eastgate = re.search(r'<h2 id="agency-\d+">Eastgate Community Health Clinic</h2>(.*?)'
                         r'</section>', page.text, re.S)
    assert eastgate is not None
    (tried,) = re.findall(r"<li>(.*?)</li>", eastgate.group(1), re.S)
    assert "was stopped" in tried and "Luis Moreno, NP" in tried and "(3 views)" in tried
    # Probation's withheld sections are the consent working, not an attempt.
    assert page.text.count("was stopped") == 1


def test_who_looked_puts_emergency_access_first(
        participant: Callable[[str, str], TestClient[Any]],
        as_user: Callable[[str], TestClient[Any]]) -> None:
    as_user("alex.rivera@hope-housing.example").get("/participants/LP-1001")
    luis = as_user("luis.moreno@eastgate-clinic.example")  # not on Marcus's care team
    token = csrf(luis.get("/break-glass/LP-1001").text)
    granted = luis.post("/break-glass/LP-1001", data={
        "reason": "found unresponsive", "emergency_nature": "suspected overdose",
        "facility": "Eastgate clinic", "minutes": "60", "_csrf_token": token},
        follow_redirects=False)
    assert granted.status_code in (302, 303)
    assert luis.get("/participants/LP-1001").status_code == 200
    page = participant("marcus", "river stone morning").get("/me/who-looked").text
    emergency = re.search(r'<section class="notice emergency"[^>]*>(.*?)</section>', page, re.S)
    assert emergency is not None
    # First, above every agency's visits.
    assert page.index("Emergency access") < page.index('class="agency-looks"')
    (visit,) = re.findall(r"<li>(.*?)</li>", emergency.group(1), re.S)
    assert "Eastgate Community Health Clinic" in visit and "Luis Moreno, NP" in visit
    assert "saw your substance use treatment" in visit and "in a medical emergency" in visit


def test_who_can_see_what_is_what_decide_permits_for_every_demo_participant(
        demo: sessionmaker[Session], services: Any) -> None:
    """For every demo participant, care-team organization (with its staff's real roles) and
    category: the participant is told an agency can see it from another exactly when
    decide() permits one of that agency's staff to see it, under a consent."""
    from portal.db import repositories as repo
    from portal.db.types import utcnow
    from portal.domain import permissions
    from portal.domain.decision import AccessRequest, decide
    from portal.domain.vocabulary import Action, DataCategory
    from portal.selfservice import service as ss

    at = utcnow()
    checked = 0
    with demo() as s:
        for person in s.scalars(select(m.Participant)):
            told = {(x.recipient, x.source, x.category)
                    for x in ss.shared_today(s, services, person, at)}
            context = repo.load_context(s, person.id, user_id=None, at=at)
            orgs = repo.Organizations.load(s)
            team = sorted({link.organization_slug
                           for link in permissions.current_links(context, at.date())})
            decided = set()
            for user in s.scalars(select(m.StaffUser).where(m.StaffUser.status == "active")):
                actor = repo.actor(user)
                if actor.organization.slug not in team:
                    continue
                for category in DataCategory:
                    for slug in team:
                        source = orgs.slug(slug)
                        assert source is not None
                        if slug == actor.organization.slug:
                            continue
                        checked += 1
                        if any((x := decide(AccessRequest(
                                actor, str(person.id), category, Action.VIEW, purpose, at,
                                source), context, services.policy)).permitted and x.consent_id
                               for purpose in permissions.view_purposes(
                                   services.policy, actor, category)):
                            decided.add((actor.organization.slug, slug, category))
            assert told == decided, person.public_id
    assert checked > 500


def test_me_never_says_a_justice_agency_sees_treatment_a_consent_names(
        participant: Callable[[str, str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    """A release that names Probation for substance use treatment (saved before the form
    refused it) is never honoured by decide(), so /me does not say Probation can see it."""
    import uuid

    from portal.domain.consent_text import CATEGORY_WORDS
    from portal.domain.vocabulary import DataCategory

    with demo.begin() as s:
        marcus = s.scalar(select(m.Participant).where(m.Participant.public_id == "LP-1001"))
        assert marcus is not None
        probation = s.scalar(select(m.Organization).where(m.Organization.sector == "probation"))
        cedar = s.scalar(select(m.Organization).where(m.Organization.sector == "sud_treatment"))
        assert probation is not None and cedar is not None
        active = s.scalar(select(m.Consent).where(m.Consent.participant_id == marcus.id,
                                                  m.Consent.status == "active"))
        assert active is not None
        for p in active.provisions:
            p.recipients = sorted({*p.recipients, f"org:{probation.slug}"})
            p.disclosers = sorted({*p.disclosers, f"org:{cedar.slug}"})
            p.categories = sorted({*p.categories, "sud_treatment"})
        on_team = s.scalar(select(m.CareTeamMember).where(
            m.CareTeamMember.participant_id == marcus.id,
            m.CareTeamMember.organization_id == probation.id))
        if on_team is None:
            s.add(m.CareTeamMember(participant_id=marcus.id, organization_id=probation.id,
                                   start_date=marcus.enrolled_on))
        assert uuid.UUID(str(active.id))
    home = participant("marcus", "river stone morning").get("/me").text
    found = re.search(r'aria-labelledby="sharing-heading">(.*?)</section>', home, re.S)
    assert found
    lines = re.findall(r"<li>([^<]*)</li>", found.group(1).split('class="shared-today">')[1]
                       .split("</ul>")[0])
    assert lines, "the decided sharing is listed"
    sud = CATEGORY_WORDS["en"][DataCategory.SUD_TREATMENT]
    assert not [line for line in lines if line.startswith(probation.name) and sud in line]


def test_a_failed_sign_in_logs_a_keyed_hash_of_the_username_not_the_name(
        app_settings: Settings, demo: sessionmaker[Session]) -> None:
    with TestClient(create_app(app_settings), base_url=BASE) as client:
        token = csrf(client.get("/me/login").text)
        refused = client.post("/me/login", data={"username": "Marcus", "passphrase": "oops",
                                                 "_csrf_token": token},
                              follow_redirects=False)
        assert refused.status_code == 401
        assert 'value="Marcus"' in refused.text  # the form keeps what they typed
    with demo() as s:
        [failure] = s.scalars(select(m.AuditEvent).where(
            m.AuditEvent.action == "auth:login:failure")).all()
        account = s.scalar(select(m.ParticipantCredential.username_bidx).join(
            m.Participant).where(m.Participant.public_id == "LP-1001"))
    assert failure.actor == f"participant:hmac:{account}"
    assert "marcus" not in failure.actor.lower() and failure.participant_id is not None
