"""The staff workspace over HTTP: every category decided and audited, withheld sections that
never show content, the Golden Rule, IDOR, break-glass and fail-closed auditing."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from portal.db import audit_chain as audit_service
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.types import utcnow
from portal.devtools.seed import STAFF, generate_participants
from portal.kernel.wiring import Services
from tests.e2e.pages import csrf, section

ALEX = "alex.rivera@hope-housing.example"  # housing navigator
MARIA = "maria.lopez@harbor-lead.example"  # case manager
TOM = "tom.becker@riverton-probation.example"  # probation officer
JAMES = "james.carter@riverton-pd.example"  # police officer
LUIS = "luis.moreno@eastgate-clinic.example"  # clinic clinician


def test_caseload_lists_the_organizations_participants(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        services: Services) -> None:
    generate_participants(demo, services.vault, 30, seed=5)
    client = as_user(MARIA)
    first = client.get("/staff")
    assert first.status_code == 200
    assert "Marcus Reed" in first.text and "LP-1001" in first.text
    ids = re.findall(r'href="/participants/(LP-[0-9A-Z]+)"', first.text)
    assert len(ids) == 25
    after = re.search(r'after=(LP-[0-9A-Z]+)', first.text)
    assert after
    second = client.get(f"/staff?after={after.group(1)}")
    more = re.findall(r'href="/participants/(LP-[0-9A-Z]+)"', second.text)
    assert len(more) == 42 - 25
    assert not set(ids) & set(more)
    assert ids + more == sorted(ids + more)
    # Search: exact full name, family name, date of birth.
    for query in ("Marcus Reed", "reed", "1986-03-14"):
        found = client.get("/staff", params={"q": query})
        assert re.findall(r'href="/participants/(LP-[0-9A-Z]+)"', found.text) == ["LP-1001"]
    # htmx asks for the rows only.
    fragment = client.get("/staff?q=reed", headers={"HX-Request": "true",
                                                    "HX-Target": "caseload-rows"})
    assert fragment.text.lstrip().startswith('<div id="caseload-rows">')
    assert "<html" not in fragment.text
    # Another organization's caseload does not include people it does not work with.
    housing = as_user(ALEX).get("/staff")
    assert "LP-1003" not in housing.text and "LP-1001" in housing.text


SAM = "sam.okafor@cedar-recovery.example"  # counselor at a Part 2 program


def test_caseload_shows_only_the_urgent_needs_the_decision_permits(
        as_user: Callable[[str], TestClient[Any]]) -> None:
    sam = as_user(SAM)
    page = sam.get("/participants/LP-1001").text
    assert sam.post("/participants/LP-1001/goals", data={
        "_csrf_token": csrf(page), "domain": "treatment", "summary": "Detox bed tonight",
        "urgent": "1"}, follow_redirects=False).status_code == 302
    maria = as_user(MARIA)
    page = maria.get("/participants/LP-1001").text
    assert maria.post("/participants/LP-1001/goals", data={
        "_csrf_token": csrf(page), "domain": "food", "summary": "Groceries for the week",
        "urgent": "1"}, follow_redirects=False).status_code == 302

    def urgent_block(email: str, query: str = "") -> str:
        text = as_user(email).get("/staff" + query).text
        return text.split('id="caseload-urgent-heading"')[1].split("</section>")[0]

    # The counselor's own agency sees its own need and, at the top, the case manager's.
    assert "Detox bed tonight" in urgent_block(SAM)
    # The police officer works with Marcus but no consent lets the Part 2 program's progress
    # reach the police: only the case manager's need is shown, on the page and in the list.
    police = urgent_block(JAMES)
    assert "Groceries for the week" in police and "Detox bed tonight" not in police
    assert "Detox bed tonight" not in as_user(JAMES).get("/participants/LP-1001").text
    assert "Detox bed tonight" not in urgent_block(JAMES, "?urgent=1")
    listed = as_user(JAMES).get("/api/v1/participants?q=LP-1001").json()["participants"]
    assert listed[0]["urgent_needs"] == police.count("(")


def test_a_goals_detail_is_not_disclosed_without_its_status(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        services: Services) -> None:
    # Harbor's housing goal for Marcus: its detail is housing, its status Harbor's progress.
    with demo.begin() as s:
        marcus = repo.participant_by_public_id(s, "LP-1001")
        harbor = s.scalars(select(m.Organization).where(m.Organization.slug == "harbor-lead")
                           ).one()
        assert marcus is not None
        goal = m.Goal(id=uuid.uuid4(), participant_id=marcus.id, organization_id=harbor.id,
                      domain="housing", status="in_progress")
        services.vault.ready(s).seal(goal, {"summary": "Move-in costs",
                                            "detail": "Deposit pledged by the landlord fund"})
        s.add(goal)

    def shown_to_alex() -> dict[str, list[str]]:
        page = as_user(ALEX).get("/participants/LP-1001").text
        assert ("Move-in costs" in page) == ("Deposit pledged" in page)
        with demo() as s:
            return {e.category: e.record_ids for e in s.scalars(select(m.AuditEvent).where(
                m.AuditEvent.actor == ALEX,
                m.AuditEvent.action.in_(("record:view", "record:withhold"))
            ).order_by(m.AuditEvent.seq.desc()).limit(9))}

    views = shown_to_alex()  # the consent shares Harbor's housing and progress
    assert str(goal.id) in views["progress"] and str(goal.id) in views["housing"]
    with demo.begin() as s:  # now only housing: the goal is not shown, so nothing of it
        for provision in s.scalars(select(m.ConsentProvision).join(m.Consent).where(
                m.Consent.participant_id == marcus.id)):
            provision.categories = [c for c in provision.categories if c != "progress"]
    views = shown_to_alex()
    assert str(goal.id) not in views["progress"] and str(goal.id) not in views["housing"]


def test_urgent_needs_on_the_caseload_are_logged_as_disclosures_by_their_owners(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        services: Services) -> None:
    sam = as_user(SAM)
    page = sam.get("/participants/LP-1001").text
    assert sam.post("/participants/LP-1001/goals", data={
        "_csrf_token": csrf(page), "domain": "treatment", "summary": "Detox bed tonight",
        "urgent": "1"}, follow_redirects=False).status_code == 302
    with demo() as s:
        marcus = repo.participant_by_public_id(s, "LP-1001")
        assert marcus is not None
        vault = services.vault.ready(s)
        open_urgent = {str(g.id): (vault.open(g, "summary"), g.organization.slug)
                       for g in s.scalars(
            select(m.Goal).where(m.Goal.participant_id == marcus.id, m.Goal.urgent,
                                 m.Goal.status.not_in(["achieved", "closed"])))}
    assert "cedar-recovery" in {owner for _, owner in open_urgent.values()}
    seen_detox = {}
    for email, org in ((JAMES, "riverton-pd"), (TOM, "riverton-probation")):
        caseload = as_user(email).get("/staff").text
        block = caseload.split('id="caseload-urgent-heading"')[1].split("</section>")[0]
        shown = {gid for gid, (summary, _) in open_urgent.items() if summary in block}
        seen_detox[email] = "Detox bed tonight" in block
        with demo() as s:
            events = s.scalars(select(m.AuditEvent).where(
                m.AuditEvent.actor == email, m.AuditEvent.action == "record:view",
                m.AuditEvent.participant_id == marcus.id)).all()
        assert len(events) == 1 and events[0].decision == "permit"
        assert events[0].category == "progress" and set(events[0].record_ids) == shown
        assert events[0].detail["disclosers"] == sorted(
            {open_urgent[gid][1] for gid in shown} - {org})
    # The police get no Part 2 progress; probation does, under the 2.35 consent.
    assert seen_detox == {JAMES: False, TOM: True}


def test_a_part2_programs_goal_status_carries_the_notice_and_is_accounted(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        services: Services) -> None:
    page = as_user(TOM).get("/participants/LP-1001").text
    plan = page.split('id="plan-heading"')[1].split("</section>")[0]
    assert "42 CFR part 2 prohibits unauthorized use or disclosure" in plan
    treatment = plan.split("Engaged in treatment")[1].split("</li>")[0]
    assert "Cedar" in treatment and "42 CFR Part 2" in treatment
    housing = plan.split("Working toward housing")[1].split("</li>")[0]
    assert "42 CFR Part 2" not in housing
    with demo() as s:
        vault = services.vault.ready(s)
        [goal] = [g for g in s.scalars(select(m.Goal).join(m.Organization).join(m.Participant)
                                       .where(m.Participant.public_id == "LP-1001",
                                              m.Organization.slug == "cedar-recovery"))
                  if vault.open(g, "summary") == "Engaged in treatment"]
        [progress] = s.scalars(select(m.AuditEvent).where(
            m.AuditEvent.actor == TOM, m.AuditEvent.action == "record:view",
            m.AuditEvent.category == "progress")).all()
    # Shown as a status only: a disclosure of Cedar's progress, in the accounting.
    assert str(goal.id) in progress.record_ids
    assert "cedar-recovery" in progress.detail["disclosers"]


def test_housing_navigator_sees_housing_and_progress_not_treatment(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    page = as_user(ALEX).get("/participants/LP-1001")
    assert page.status_code == 200
    assert "Coordinated entry assessment" in section(page.text, "housing")
    assert "Engagement summary" in section(page.text, "progress")  # Harbor's, by consent
    for category in ("sud_treatment", "mental_health", "health"):
        assert "Withheld" in section(page.text, category) or "Nothing recorded" in section(
            page.text, category)
    assert "Buprenorphine" not in page.text and "Opioid" not in page.text
    assert "Withheld" in section(page.text, "sud_treatment")
    why = as_user(ALEX).get("/participants/LP-1001/why/sud_treatment")
    assert why.status_code == 200
    assert "role policy" in why.text
    assert "Cedar" not in why.text and "Opioid" not in why.text
    with demo() as s:
        views = s.scalars(select(m.AuditEvent).where(
            m.AuditEvent.action.in_(("record:view", "record:withhold")),
            m.AuditEvent.actor == ALEX)).all()
        assert {v.category for v in views} == {
            "contact", "case_plan", "progress", "housing", "benefits", "health",
            "mental_health", "sud_treatment", "justice"}
        progress = next(v for v in views if v.category == "progress")
        assert progress.decision == "permit" and progress.consent_ids
        assert progress.detail["disclosers"] == ["harbor-lead"]
        sud = next(v for v in views if v.category == "sud_treatment")
        assert sud.action == "record:withhold" and sud.decision == "deny"
        assert "no_role_permission" in sud.reasons
        participant = repo.participant_by_public_id(s, "LP-1001")
        assert participant is not None
        disclosures = audit_service.disclosures(s, participant.id)
    assert any(x.recipient_organization == "hope-housing" and x.category == "progress"
               for x in disclosures)


def test_revocation_withholds_on_the_next_view(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    client = as_user(ALEX)
    assert "Engagement summary" in section(client.get("/participants/LP-1001").text,
                                           "progress")
    with demo.begin() as s:
        p = repo.participant_by_public_id(s, "LP-1001")
        assert p is not None
        s.execute(update(m.Consent).where(m.Consent.participant_id == p.id,
                                          m.Consent.kind == "roi")
                  .values(status="revoked", revoked_at=utcnow(), revoked_by="participant"))
    after = client.get("/participants/LP-1001").text
    assert "Engagement summary" not in after
    assert "Withheld" in section(after, "progress")
    assert "Coordinated entry assessment" in section(after, "housing")  # Hope's own


def test_probation_sees_goal_status_not_what_is_behind_it(
        as_user: Callable[[str], TestClient[Any]]) -> None:
    page = as_user(TOM).get("/participants/LP-1001").text
    assert "Working toward housing" in page
    assert "Cedar Court" not in page  # the housing goal's detail
    assert "Buprenorphine" not in page and "Opioid" not in page
    assert "Not for use as the basis of any adverse action" in page
    # Cedar's treatment attendance comes under the 42 CFR 2.35 consent, with the 2.32 notice.
    progress = section(page, "progress")
    assert "Treatment engagement summary" in progress
    assert "42 CFR part 2 prohibits unauthorized use or disclosure" in progress


def test_police_never_see_health_whatever_the_consents(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        services: Services) -> None:
    with demo.begin() as s:
        p = repo.participant_by_public_id(s, "LP-1001")
        assert p is not None
        consent = m.Consent(id=uuid.uuid4(), participant_id=p.id, kind="part2",
                            status="active",
                            information_description="Substance use disorder records",
                            revocation_statement="Revocable", expires_on=utcnow().date()
                            + timedelta(days=30), signature_method="typed",
                            signer_relation="self", signed_at=utcnow(),
                            provisions=[m.ConsentProvision(
                                effect="permit", disclosers=["sector:sud_treatment",
                                                             "sector:case_management"],
                                recipients=["org:riverton-pd"],
                                categories=["sud_treatment", "mental_health", "health"],
                                purposes=["CAREMGT", "TREAT"])])
        services.vault.ready(s).seal(consent, {"signer_name": "Marcus Reed"})
        s.add(consent)
    page = as_user(JAMES).get("/participants/LP-1001").text
    for category in ("sud_treatment", "mental_health", "health"):
        assert "<article" not in section(page, category)
    assert "Opioid" not in page and "Wound care" not in page
    assert "Not for use as the basis of any adverse action" in page


@pytest.mark.parametrize("path", ["/participants/{id}", "/participants/{id}/why/housing"])
def test_an_organization_off_the_care_team_gets_nothing(
        as_user: Callable[[str], TestClient[Any]], path: str) -> None:
    client = as_user(ALEX)  # Hope Housing is not on LP-1003's team
    off_team = client.get(path.format(id="LP-1003"))
    guessed = client.get(path.format(id="LP-ZZZZZZZZ"))
    assert off_team.status_code == guessed.status_code == 404
    assert off_team.text == guessed.text
    assert "Darnell" not in off_team.text
    token = csrf(client.get("/participants/LP-1001").text)
    post = client.post("/participants/LP-1003/records", data={
        "category": "housing", "title": "x", "body": "y", "_csrf_token": token})
    assert post.status_code == 404


def test_adding_a_record_offers_and_accepts_only_allowed_categories(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    client = as_user(JAMES)
    page = client.get("/participants/LP-1001").text
    offered = re.findall(r'<option value="([a-z_]+)"', page)
    assert offered == ["contact", "justice"]
    token = csrf(page)
    refused = client.post("/participants/LP-1001/records", data={
        "category": "sud_treatment", "title": "x", "body": "y", "_csrf_token": token})
    assert refused.status_code == 400
    assert "cannot add" in refused.text
    bad = client.post("/participants/LP-1001/records", data={
        "category": "justice", "title": "", "body": "y", "effective": "soon",
        "_csrf_token": token})
    assert bad.status_code == 400 and "title" in bad.text and "2026-11-28" in bad.text
    with demo() as s:
        assert s.scalar(select(func.count()).select_from(m.Record).where(
            m.Record.author_user_id.is_not(None))) == 0
    ok = client.post("/participants/LP-1001/records", data={
        "category": "justice", "title": "Court date", "body": "Review hearing 12 Jan.",
        "_csrf_token": token}, follow_redirects=False)
    assert ok.status_code in (302, 303)
    assert "Review hearing 12 Jan." in section(client.get("/participants/LP-1001").text,
                                               "justice")
    with demo() as s:
        assert s.scalar(select(func.count()).select_from(m.AuditEvent).where(
            m.AuditEvent.action == "record:create")) == 1


def test_break_glass_opens_emergency_access_for_a_short_time(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        services: Services) -> None:
    client = as_user(LUIS)  # Eastgate is not on LP-1003's team
    assert client.get("/participants/LP-1003").status_code == 404
    found = client.get("/break-glass", params={"q": "Darnell Hughes"})
    assert "/break-glass/LP-1003" in found.text
    form = client.get("/break-glass/LP-1003")
    token = csrf(form.text)
    missing = client.post("/break-glass/LP-1003", data={
        "reason": "found unresponsive", "emergency_nature": "", "facility": "Eastgate",
        "minutes": "60", "_csrf_token": token})
    assert missing.status_code == 400 and "nature of the emergency" in missing.text
    granted = client.post("/break-glass/LP-1003", data={
        "reason": "found unresponsive", "emergency_nature": "suspected overdose",
        "facility": "Eastgate clinic", "minutes": "60", "_csrf_token": token},
        follow_redirects=False)
    assert granted.status_code in (302, 303)
    page = client.get("/participants/LP-1003").text
    assert "Emergency access" in page
    assert "Opioid use disorder" in section(page, "sud_treatment")
    assert "42 CFR part 2 prohibits" in section(page, "sud_treatment")
    with demo.begin() as s:
        grant = s.scalars(select(m.BreakGlassGrant)).one()
        assert grant.review_status == "pending"
        assert services.vault.ready(s).open(grant, "emergency_nature") == "suspected overdose"
        s.execute(update(m.BreakGlassGrant).values(
            started_at=utcnow() - timedelta(hours=2), expires_at=utcnow()
            - timedelta(minutes=1)))
    assert client.get("/participants/LP-1003").status_code == 404
    # Roles the policy does not allow cannot use it at all.
    assert as_user(JAMES).get("/break-glass").status_code == 403


def test_reads_fail_closed_when_the_audit_log_cannot_be_written(
        as_user: Callable[[str], TestClient[Any]], engine: Engine) -> None:
    client = as_user(MARIA)
    assert "Opioid use disorder" in client.get("/participants/LP-1001").text
    if engine.dialect.name == "sqlite":
        create = ["CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_event "
                  "BEGIN SELECT RAISE(ABORT, 'disk full (injected)'); END"]
        drop = ["DROP TRIGGER refuse_audit"]
    else:
        create = ["CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                  "$$BEGIN RAISE EXCEPTION 'disk full (injected)'; END$$",
                  "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_event "
                  "FOR EACH ROW EXECUTE FUNCTION refuse_audit()"]
        drop = ["DROP TRIGGER refuse_audit ON audit_event", "DROP FUNCTION refuse_audit()"]
    with engine.begin() as c:
        for statement in create:
            c.execute(text(statement))
    try:
        refused = client.get("/participants/LP-1001")
    finally:
        with engine.begin() as c:
            for statement in drop:
                c.execute(text(statement))
    assert refused.status_code == 503
    assert "could not be recorded" in refused.text
    assert "Opioid" not in refused.text and "Marcus" not in refused.text


@pytest.mark.parametrize("path", ["/staff?after=%00", "/participants/LP-10%0001",
                                  "/participants/LP-1001%00/why/housing"])
def test_malformed_ids_are_not_found_not_errors(as_user: Callable[[str], TestClient[Any]],
                                                path: str) -> None:
    response = as_user(MARIA).get(path)
    assert response.status_code in (200, 404)
    assert "Traceback" not in response.text


def test_an_oversized_request_id_does_not_break_auditing(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    response = as_user(MARIA).get("/participants/LP-1001", headers={"x-request-id": "x" * 500})
    assert response.status_code == 200
    with demo() as s:
        assert s.scalars(select(m.AuditEvent.request_id).where(
            m.AuditEvent.action == "record:view")).first() is None


# --- The case plan: goals set and updated from the participant page ------------------------


def _goal_events(demo: sessionmaker[Session], action: str) -> list[m.AuditEvent]:
    with demo() as s:
        return list(s.scalars(select(m.AuditEvent).where(m.AuditEvent.action == action)
                              .order_by(m.AuditEvent.seq)))


def test_case_manager_sets_an_urgent_goal_and_updates_its_status(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        services: Services) -> None:
    client = as_user(MARIA)
    page = client.get("/participants/LP-1001").text
    assert 'action="/participants/LP-1001/goals"' in page
    added = client.post("/participants/LP-1001/goals", data={
        "_csrf_token": csrf(page), "domain": "shelter", "summary": "A bed tonight",
        "detail": "Asked Mission shelter to hold a bed until 9 pm", "urgent": "1"},
        follow_redirects=False)
    assert added.status_code == 302, added.text
    page = client.get("/participants/LP-1001").text
    urgent = page.split('id="urgent-heading"')[1].split("</section>")[0]
    assert "A bed tonight" in urgent and "Mission shelter" in urgent
    goal_id = re.search(r'id="goal-([0-9a-f-]{36})"><strong>A bed tonight', page)
    assert goal_id
    updated = client.post(f"/participants/LP-1001/goals/{goal_id.group(1)}", data={
        "_csrf_token": csrf(page), "status": "achieved", "note": "Checked in at 8 pm"},
        follow_redirects=False)
    assert updated.status_code == 302, updated.text
    page = client.get("/participants/LP-1001").text
    assert "A bed tonight" not in page.split('id="plan-heading"')[0]  # no longer urgent
    assert "achieved</span> (Checked in at 8 pm)" in page
    with demo() as s:
        goal = s.get(m.Goal, uuid.UUID(goal_id.group(1)))
        assert goal is not None and goal.status == "achieved" and goal.urgent
        vault = services.vault.ready(s)
        assert [(u.status, vault.open(u, "note")) for u in goal.updates] == [
            ("not_started", "Goal set"), ("achieved", "Checked in at 8 pm")]
        assert b"Mission" not in (goal.detail_enc or b"")  # sealed at rest
        assert b"bed" not in goal.summary_enc and b"8 pm" not in (goal.status_note_enc or b"")
    create, = _goal_events(demo, "goal:create")
    update_event, = _goal_events(demo, "goal:update")
    assert create.actor == MARIA and create.record_ids == [goal_id.group(1)]
    assert create.detail == {"domain": "shelter", "urgent": True}
    assert update_event.detail == {"from": "not_started", "to": "achieved"}


def test_probation_sees_a_new_goals_status_but_not_its_detail(
        as_user: Callable[[str], TestClient[Any]]) -> None:
    client = as_user(MARIA)
    page = client.get("/participants/LP-1001").text
    assert client.post("/participants/LP-1001/goals", data={
        "_csrf_token": csrf(page), "domain": "housing", "summary": "Keep the Elm St lease",
        "detail": "Landlord agreed to a payment plan"}, follow_redirects=False
    ).status_code == 302
    probation = as_user(TOM).get("/participants/LP-1001").text
    assert "Keep the Elm St lease" in probation
    assert "Landlord agreed" not in probation
    assert "Update status" not in probation and "Add a goal" not in probation


def test_only_the_owning_organization_updates_a_goal(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        services: Services) -> None:
    with demo() as s:
        harbor_goal = s.scalars(select(m.Goal).join(m.Participant).join(m.Organization).where(
            m.Participant.public_id == "LP-1001",
            m.Organization.slug == "harbor-lead")).first()
        assert harbor_goal is not None
        goal_id, status = str(harbor_goal.id), harbor_goal.status
    alex = as_user(ALEX)
    token = csrf(alex.get("/participants/LP-1001").text)
    for url in (f"/participants/LP-1001/goals/{goal_id}",  # another organization's goal
                f"/participants/LP-1001/goals/{uuid.uuid4()}",  # a guessed id
                "/participants/LP-1001/goals/not-a-goal"):
        answer = alex.post(url, data={"_csrf_token": token, "status": "closed", "note": ""},
                           follow_redirects=False)
        assert answer.status_code == 404, url
    # Off the care team: the participant is not there at all.
    luis = as_user(LUIS)
    token = csrf(luis.get("/staff").text)
    assert luis.post(f"/participants/LP-1001/goals/{goal_id}", data={
        "_csrf_token": token, "status": "closed"}, follow_redirects=False).status_code == 404
    assert luis.post("/participants/LP-1001/goals", data={
        "_csrf_token": token, "domain": "housing", "summary": "x"},
        follow_redirects=False).status_code == 404
    # Bad input from the owner: a clear message and nothing changed.
    maria = as_user(MARIA)
    token = csrf(maria.get("/participants/LP-1001").text)
    bad = maria.post(f"/participants/LP-1001/goals/{goal_id}", data={
        "_csrf_token": token, "status": "finished"}, follow_redirects=False)
    assert bad.status_code == 400 and "Choose the goal&#39;s status." in bad.text
    empty = maria.post("/participants/LP-1001/goals", data={
        "_csrf_token": token, "domain": "housing", "summary": "  "}, follow_redirects=False)
    assert empty.status_code == 400 and "Say in a few words what the goal is" in empty.text
    with demo() as s:
        goal = s.get(m.Goal, uuid.UUID(goal_id))
        assert goal is not None and goal.status == status
        vault = services.vault.ready(s)
        assert "x" not in [vault.open(g, "summary") for g in s.scalars(select(m.Goal))]
    # Only the clinic's attempts are in the log, as refusals.
    assert [(e.action, e.actor, e.decision, e.reasons) for e in
            _goal_events(demo, "goal:update") + _goal_events(demo, "goal:create")] == [
        ("goal:update", LUIS, "deny", ["not_on_care_team"]),
        ("goal:create", LUIS, "deny", ["not_on_care_team"])]


def test_goal_domains_offered_follow_what_the_role_may_create(
        as_user: Callable[[str], TestClient[Any]]) -> None:
    alex = as_user(ALEX)
    page = alex.get("/participants/LP-1001").text
    offered = set(re.findall(r'<option value="([a-z_]+)"[^>]*>', page.split(
        'id="goal-domain"')[1].split("</select>")[0]))
    assert "housing" in offered and "treatment" not in offered
    refused = alex.post("/participants/LP-1001/goals", data={
        "_csrf_token": csrf(page), "domain": "treatment", "summary": "Detox bed"},
        follow_redirects=False)
    assert refused.status_code == 400 and "cannot set treatment goals" in refused.text


@pytest.mark.parametrize("email", ["renee.walsh@harbor-lead.example",
                                   "olivia.chen@harbor-lead.example"])
def test_roles_that_see_no_participant_information_have_no_caseload(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        email: str) -> None:
    # A compliance officer and an org admin at Harbor, which works with Marcus: their roles
    # see no participant information, so neither his name nor his page reaches them.
    client = as_user(email)
    caseload = client.get("/staff")
    assert caseload.status_code == 200
    assert "you have no caseload" in caseload.text
    assert "Marcus" not in caseload.text and "LP-1001" not in caseload.text
    assert 'href="/staff"' not in caseload.text  # no Caseload link in the navigation
    page = client.get("/participants/LP-1001")
    assert page.status_code == 404 and "Marcus" not in page.text
    assert client.get("/api/v1/participants").json()["participants"] == []
    with demo() as s:
        refused = s.scalars(select(m.AuditEvent).where(
            m.AuditEvent.actor == email, m.AuditEvent.action == "participant:view")).all()
    assert [(e.decision, e.reasons) for e in refused] == [
        ("deny", ["no_role_permission"])] * 3


NAV_LINKS = {"/referrals/": "Referrals", "/compliance/": "Compliance", "/admin": "Staff",
             "/break-glass": "Emergency access"}


@pytest.mark.parametrize("email", [s.email for s in STAFF])
def test_the_navigation_shows_exactly_the_pages_the_user_may_open(
        as_user: Callable[[str], TestClient[Any]], email: str) -> None:
    # The links come from the same policy checks as the pages; no role name is in a template.
    client = as_user(email)
    caseload = client.get("/staff")
    assert caseload.status_code == 200
    nav = caseload.text.split("<nav", 1)[1].split("</nav>", 1)[0]
    assert ('href="/staff"' in nav) == ("you have no caseload" not in caseload.text)
    for href, label in NAV_LINKS.items():
        opened = client.get(href).status_code
        assert (f'href="{href}">{label}<' in nav) == (opened == 200), (href, opened)


def test_a_page_and_four_why_clicks_are_one_pages_disclosures(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        services: Services) -> None:
    """The accounting of disclosures is a legal record (45 CFR 164.528, 42 CFR 2.24): asking
    why something is withheld discloses nothing and must not repeat the page's views."""
    client = as_user(ALEX)
    with demo() as s:
        participant = repo.participant_by_public_id(s, "LP-1001")
        assert participant is not None
        before = len(audit_service.disclosures(s, participant.id))
    assert client.get("/participants/LP-1001").status_code == 200
    with demo() as s:
        after_page = audit_service.disclosures(s, participant.id)
    one_page = len(after_page) - before
    print("ONE_PAGE", one_page)
    assert one_page > 0
    for category in ("sud_treatment", "mental_health", "health", "justice"):
        assert client.get(f"/participants/LP-1001/why/{category}").status_code == 200
    with demo() as s:
        assert len(audit_service.disclosures(s, participant.id)) - before == one_page
        explains = s.scalar(select(func.count()).select_from(m.AuditEvent).where(
            m.AuditEvent.participant_id == participant.id,
            m.AuditEvent.action == "decision:explain", m.AuditEvent.actor == ALEX))
        assert explains == 4
        # What was withheld is audited as withheld, never as a view of nothing.
        withheld = s.scalars(select(m.AuditEvent).where(
            m.AuditEvent.participant_id == participant.id,
            m.AuditEvent.action == "record:withhold")).all()
        assert {e.category for e in withheld} >= {"sud_treatment"}
        assert all(e.record_ids == [] and e.decision == "deny" for e in withheld)


def test_withheld_sections_of_normal_work_raise_no_refusal_flag(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        services: Services) -> None:
    """A probation officer opening their caseload's pages, each with health sections withheld
    by the Golden Rule, is doing their job: no 'burst of refused attempts'."""
    from portal.compliance import console

    tom = as_user(TOM)
    for _ in range(console.DENIAL_BURST):
        assert tom.get("/participants/LP-1001").status_code == 200
    page = as_user("renee.walsh@harbor-lead.example").get("/compliance/oversight").text
    assert not re.search(r'data-kind="denial_burst".{0,400}' + re.escape(TOM), page, re.S)
    # Refused attempts still count: the same number of tries at a stranger's page does.
    for _ in range(console.DENIAL_BURST):
        assert tom.get("/participants/LP-1003").status_code == 404
    page = as_user("renee.walsh@harbor-lead.example").get("/compliance/oversight").text
    assert re.search(r'data-kind="denial_burst".{0,400}' + re.escape(TOM), page, re.S)
