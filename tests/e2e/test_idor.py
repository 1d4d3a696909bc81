"""IDOR over HTTP, for every staff page route that takes an id: a case manager whose agency
does not work with the participant, an id of another participant's consent, goal or care-team
link, and a guessed id all get the same "not found", change nothing, and the refused attempts
on a real participant are audited. The JSON API and /admin have their own (test_api.py,
test_admin.py); break-glass is the one route made for people off the care team."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Settings
from portal.db import models as m
from portal.db.types import utcnow
from portal.web.app import create_app
from tests.e2e.pages import csrf

MARIA = "maria.lopez@harbor-lead.example"  # case manager at Harbor LEAD
OFF_TEAM, ON_TEAM, GUESSED = "LP-1003", "LP-1001", "LP-ZZZZZZZZ"

# Each staff route with an id, and a form that would succeed if the check were missing.
ROUTES: dict[tuple[str, str], dict[str, str]] = {
    ("GET", "/participants/{public_id}"): {},
    ("GET", "/participants/{public_id}/why/{category}"): {},
    ("POST", "/participants/{public_id}/records"): {
        "category": "case_plan", "title": "Planted", "body": "x", "effective": ""},
    ("POST", "/participants/{public_id}/goals"): {"domain": "food", "summary": "Planted"},
    ("POST", "/participants/{public_id}/goals/{goal_id}"): {"status": "closed", "note": "x"},
    ("GET", "/participants/{public_id}/consents"): {},
    ("GET", "/participants/{public_id}/consents/new"): {},
    ("POST", "/participants/{public_id}/consents"): {
        "kind": "roi", "disclosers": "harbor-lead", "recipients": "riverton-pd",
        "categories": "progress", "purposes": "CAREMGT", "expires_on": "2030-01-01",
        "language": "en"},
    ("GET", "/participants/{public_id}/consents/{consent_id}"): {},
    ("POST", "/participants/{public_id}/consents/{consent_id}"): {
        "kind": "roi", "recipients": "riverton-pd", "categories": "progress",
        "purposes": "CAREMGT", "expires_on": "2030-01-01", "language": "en"},
    ("GET", "/participants/{public_id}/consents/{consent_id}/edit"): {},
    ("GET", "/participants/{public_id}/consents/{consent_id}/document"): {},
    ("POST", "/participants/{public_id}/consents/{consent_id}/sign"): {
        "signer_name": "Darnell Hughes", "relation": "self", "agree": "yes"},
    ("POST", "/participants/{public_id}/consents/{consent_id}/new-version"): {},
    ("POST", "/participants/{public_id}/consents/{consent_id}/revoke"): {
        "confirm": "yes", "how": "in person"},
    ("GET", "/participants/{public_id}/care-team"): {},
    ("POST", "/participants/{public_id}/care-team"): {"organization": "riverton-pd"},
    ("POST", "/participants/{public_id}/care-team/{member_id}/end"): {},
    ("GET", "/participants/{public_id}/enrolment-code"): {},
    ("POST", "/participants/{public_id}/enrolment-code"): {"confirm": "issue"},
    ("GET", "/participants/{public_id}/enrolment-code/issued"): {},
    ("GET", "/participants/{public_id}/exit"): {},
    ("POST", "/participants/{public_id}/exit"): {"reason": "completed"},
    ("GET", "/participants/{public_id}/disposition"): {},
    ("POST", "/participants/{public_id}/disposition"): {},
}
NOT_HERE = ("/api/", "/admin/", "/me/", "/compliance/", "/break-glass/", "/referrals/",
            "/auth/", "/static/", "/schema/")


def test_every_staff_route_with_an_id_is_covered(app_settings: Settings) -> None:
    app = create_app(app_settings)
    routes = {(method, re.sub(r":\w+}", "}", route.path))
              for route in app.routes for handler in route.route_handlers
              for method in handler.http_methods
              if "{" in route.path and method in ("GET", "POST")
              and not route.path.startswith(NOT_HERE)}
    app.state.engine.dispose()
    assert routes == set(ROUTES)


def _ids(demo: sessionmaker[Session], public_id: str) -> dict[str, str]:
    """Real ids belonging to ``public_id``: a signed consent (it has a document), a goal and
    a care-team link of an agency other than Harbor."""
    with demo() as s:
        participant = s.scalars(select(m.Participant).where(
            m.Participant.public_id == public_id)).one()
        consent = s.scalars(select(m.Consent.id).join(m.ConsentDocument).where(
            m.Consent.participant_id == participant.id)).first()
        goal = s.scalars(select(m.Goal.id).where(
            m.Goal.participant_id == participant.id)).first()
        harbor = s.scalars(select(m.Organization.id).where(
            m.Organization.slug == "harbor-lead")).one()
        member = s.scalars(select(m.CareTeamMember.id).where(
            m.CareTeamMember.participant_id == participant.id,
            m.CareTeamMember.organization_id != harbor,
            m.CareTeamMember.end_date.is_(None))).first()
    assert consent and goal and member, public_id
    return {"consent_id": str(consent), "goal_id": str(goal), "member_id": str(member)}


def _state(demo: sessionmaker[Session]) -> tuple[Any, ...]:
    """Everything these requests could change, but the audit log."""
    with demo() as s:
        counts = tuple(s.scalar(select(func.count()).select_from(model)) for model in (
            m.Record, m.Goal, m.GoalUpdate, m.Consent, m.ConsentProvision, m.CareTeamMember,
            m.ConsentDocument, m.ParticipantCredential, m.ParticipantEvent))
        statuses = tuple(s.execute(select(m.Consent.id, m.Consent.status, m.Consent.version)
                                   .order_by(m.Consent.id)).all())
        links = tuple(s.execute(select(m.CareTeamMember.id, m.CareTeamMember.end_date)
                                .order_by(m.CareTeamMember.id)).all())
        goals = tuple(s.execute(select(m.Goal.id, m.Goal.status).order_by(m.Goal.id)).all())
    return counts, statuses, links, goals


def _signed_consent_and_goal(client: TestClient[Any], public_id: str, recipient: str) -> None:
    token = csrf(client.get(f"/participants/{public_id}").text)
    draft = client.post(f"/participants/{public_id}/consents", data={
        "kind": "roi", "disclosers": "harbor-lead", "recipients": recipient,
        "categories": "progress", "purposes": "CAREMGT", "expires_on": "2030-01-01",
        "language": "en", "_csrf_token": token}, follow_redirects=False)
    assert draft.status_code in (302, 303), draft.text
    url = draft.headers["location"]
    signed = client.post(f"{url}/sign", data={
        "signer_name": "Darnell Hughes", "relation": "self", "agree": "yes",
        "_csrf_token": csrf(client.get(url).text)}, follow_redirects=False)
    assert signed.status_code in (302, 303), signed.text
    assert client.post(f"/participants/{public_id}/goals", data={
        "domain": "food", "summary": "Groceries", "_csrf_token": token},
        follow_redirects=False).status_code == 302


@pytest.fixture
def maria_off_team(as_user: Callable[[str], TestClient[Any]],
                   demo: sessionmaker[Session]) -> TestClient[Any]:
    """Maria, once Harbor's care-team link to LP-1003 has ended (after she had captured a
    signed consent and set a goal with him, so that his ids are real)."""
    maria = as_user(MARIA)
    _signed_consent_and_goal(maria, OFF_TEAM, "riverton-court")
    _signed_consent_and_goal(maria, ON_TEAM, "hope-housing")
    with demo.begin() as s:
        participant = s.scalars(select(m.Participant.id).where(
            m.Participant.public_id == OFF_TEAM)).one()
        s.execute(update(m.CareTeamMember).where(
            m.CareTeamMember.participant_id == participant,
            m.CareTeamMember.organization_id == select(m.Organization.id).where(
                m.Organization.slug == "harbor-lead").scalar_subquery())
            .values(end_date=utcnow().date() - timedelta(days=1)))
    return maria


def _send(client: TestClient[Any], token: str, method: str, template: str,
          ids: dict[str, str]) -> Any:
    url = template.format(category="housing", **ids)
    form = ROUTES[(method, template)]
    if method == "GET":
        return client.get(url, follow_redirects=False)
    return client.post(url, data={"_csrf_token": token, **form}, follow_redirects=False)


@pytest.mark.parametrize(("method", "template"), sorted(ROUTES))
def test_off_team_other_participants_and_guessed_ids_look_the_same(
        maria_off_team: TestClient[Any], demo: sessionmaker[Session], method: str,
        template: str) -> None:
    client = maria_off_team
    token = csrf(client.get(f"/participants/{ON_TEAM}").text)
    theirs, mine = _ids(demo, OFF_TEAM), _ids(demo, ON_TEAM)
    guessed_ids = {"consent_id": str(uuid.uuid4()), "goal_id": str(uuid.uuid4()),
                   "member_id": "987654"}
    before = _state(demo)
    with demo() as s:
        audited = s.scalar(select(func.max(m.AuditEvent.seq)))

    guessed = _send(client, token, method, template, {"public_id": GUESSED, **guessed_ids})
    attempts = {
        # A participant whose case Harbor no longer manages, with their own ids.
        "off team": _send(client, token, method, template, {"public_id": OFF_TEAM, **theirs}),
        # Their ids (or guessed ones) under a participant Harbor does manage.
        "guessed, unknown participant": guessed,
    }
    if set(theirs) & set(re.findall(r"{(\w+)}", template)):
        attempts["their ids under mine"] = _send(client, token, method, template,
                                                 {"public_id": ON_TEAM, **theirs})
        attempts["guessed ids under mine"] = _send(client, token, method, template,
                                                   {"public_id": ON_TEAM, **guessed_ids})
    assert mine  # the ON_TEAM ids exist, so "their ids under mine" is a real mix-up
    for what, response in attempts.items():
        assert response.status_code == 404, (what, response.status_code, response.text[:300])
        assert response.text == guessed.text, what
        assert "Darnell" not in response.text and "Hughes" not in response.text, what
    assert _state(demo) == before
    with demo() as s:
        refused = s.scalars(select(m.AuditEvent).where(
            m.AuditEvent.seq > (audited or 0), m.AuditEvent.decision == "deny",
            m.AuditEvent.actor == MARIA)).all()
        off_team = s.scalars(select(m.Participant.id).where(
            m.Participant.public_id == OFF_TEAM)).one()
    # The attempt on the real participant is on record, as a refusal for not being on the
    # team (which their own accounting of disclosures may show them).
    assert [e.reasons for e in refused if e.participant_id == off_team] == [
        ["not_on_care_team"]]
