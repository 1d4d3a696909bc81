"""The workspace items of issues 18 and 20 over HTTP, in a program whose time zone is not UTC:
where the caseload's urgent link lands, urgent needs in order with their date and status,
withheld wording for each kind of reader, emergency access in fewer steps with local times,
and goal statuses that would reveal health care to justice partners."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Settings
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.types import utcnow
from portal.kernel.wiring import Services
from tests.e2e.pages import csrf, section

MARIA = "maria.lopez@harbor-lead.example"  # case manager
ALEX = "alex.rivera@hope-housing.example"  # housing navigator
TOM = "tom.becker@riverton-probation.example"  # probation officer
JAMES = "james.carter@riverton-pd.example"  # police officer
LUIS = "luis.moreno@eastgate-clinic.example"  # clinic clinician
ZONE = "America/Chicago"


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """The app under test runs in Chicago time (everything is stored in UTC)."""
    return Settings(env="test", database_url=settings.database_url,
                    data_dir=settings.data_dir, data_key_file=settings.data_key_file,
                    dev_idp=False, timezone=ZONE)


def _urgent_block(html: str) -> str:
    return html.split('id="caseload-urgent-heading"')[1].split("</section>")[0]


def _add_goal(client: TestClient[Any], public_id: str, domain: str, summary: str,
              urgent: bool = True) -> None:
    page = client.get(f"/participants/{public_id}").text
    data = {"_csrf_token": csrf(page), "domain": domain, "summary": summary}
    if urgent:
        data["urgent"] = "1"
    added = client.post(f"/participants/{public_id}/goals", data=data, follow_redirects=False)
    assert added.status_code == 302, added.text


# --- 1. the urgent link lands where the notice is ----------------------------------------------


def test_the_urgent_link_lands_on_the_summary_that_carries_the_notice(
        as_user: Callable[[str], TestClient[Any]]) -> None:
    james = as_user(JAMES)
    caseload = james.get("/staff").text
    links = re.findall(r'href="(/participants/LP-[0-9A-Z]+#[a-z-]+)"', _urgent_block(caseload))
    assert links and all(link.endswith("#summary") for link in links)
    page = james.get(links[0].split("#")[0]).text
    summary = page.split('<div id="summary">')[1].split("</div>")[0]
    # The target holds the name and id, the care-coordination-only notice, then the needs.
    assert "<h1>" in summary
    assert "Not for use as the basis of any adverse action" in summary
    assert summary.index("adverse action") < summary.index('id="urgent-heading"')


# --- 2. urgent needs in order, with their date and status --------------------------------------


def test_urgent_needs_come_most_pressing_first_with_date_and_status(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    maria = as_user(MARIA)
    # The seed gives LP-1001 "Food this week"; LP-1009 gets today's bed, the most pressing.
    _add_goal(maria, "LP-1009", "shelter", "A bed tonight")
    _add_goal(maria, "LP-1001", "utilities", "Keep the heat on")
    block = _urgent_block(maria.get("/staff").text)
    rows = re.findall(r'<li><a href="/participants/(LP-[0-9A-Z]+)#summary">', block)
    assert rows[0] == "LP-1009", rows  # a bed tonight, raised a minute ago: first
    lp1001 = block.split('href="/participants/LP-1001#summary"')[1].split("</ul>")[0]
    assert lp1001.index("Food this week") < lp1001.index("Keep the heat on")
    # Each need says its status and since when, in the program's local time.
    today = utcnow().astimezone(ZoneInfo(ZONE))
    bed = block.split("A bed tonight")[1].split("</li>")[0]
    assert '<span class="goal-status">not started</span>' in bed
    assert f"since {today:%Y-%m-%d}" in bed and today.strftime("%Z") in bed
    # On the participant page, the same order.
    page = maria.get("/participants/LP-1001").text
    urgent = page.split('id="urgent-heading"')[1].split("</section>")[0]
    assert urgent.index("Food this week") < urgent.index("Keep the heat on")
    assert "since " in urgent and 'class="goal-status"' in urgent


# --- 3. withheld wording for each reader ------------------------------------------------------


def _new_participant(demo: sessionmaker[Session], services: Services, *team: str) -> str:
    """A person accepted a minute ago, with no records, on the given agencies' care team."""
    public_id = f"LP-{uuid.uuid4().hex[:6].upper()}"
    with demo.begin() as s:
        p = m.Participant(id=uuid.uuid4(), public_id=public_id, enrolled_on=utcnow().date(),
                          referral_pathway="social_contact", status="enrolled",
                          preferred_language="en")
        services.vault.ready(s).seal_participant(p, "Nia", "Fresh", date(1990, 2, 3))
        s.add(p)
        s.flush()
        for slug in team:
            org = s.scalars(select(m.Organization).where(m.Organization.slug == slug)).one()
            s.add(m.CareTeamMember(participant_id=p.id, organization_id=org.id,
                                   start_date=utcnow().date()))
    return public_id


def test_a_newly_accepted_person_shows_their_case_manager_nothing_withheld(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        services: Services) -> None:
    public_id = _new_participant(demo, services, "harbor-lead", "riverton-pd")
    page = as_user(MARIA).get(f"/participants/{public_id}").text
    withheld = [c for c in ("contact", "case_plan", "progress", "housing", "benefits", "health",
                            "mental_health", "sud_treatment", "justice")
                if "Withheld" in section(page, c)]
    # Only what the referring police may themselves record would need the person's consent.
    assert withheld == ["contact", "justice"]
    assert "Nothing recorded." in section(page, "case_plan")


def test_the_case_manager_is_told_which_consent_to_ask_for(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        services: Services) -> None:
    public_id = _new_participant(demo, services, "harbor-lead", "cedar-recovery",
                                 "hope-housing")
    maria = as_user(MARIA)
    page = maria.get(f"/participants/{public_id}").text
    assert "shared with your agency only with the participant" in \
        section(page, "sud_treatment")
    why = maria.get(f"/participants/{public_id}/why/sud_treatment").text
    assert f"ask {public_id} whether they want to sign a Part 2 consent" in why
    assert "Cedar Recovery Services" in why
    assert "case manager" not in why  # she is the case manager
    # The same words whether or not anything exists: a record changes nothing.
    with demo.begin() as s:
        participant = repo.participant_by_public_id(s, public_id)
        cedar = s.scalars(select(m.Organization).where(
            m.Organization.slug == "cedar-recovery")).one()
        assert participant is not None
        record = m.Record(id=uuid.uuid4(), participant_id=participant.id,
                          organization_id=cedar.id, category="sud_treatment",
                          effective_date=utcnow().date(), created_at=utcnow())
        services.vault.ready(s).seal(record, {"title": "Intake", "body": "Private"})
        s.add(record)
    again = maria.get(f"/participants/{public_id}/why/sud_treatment").text
    assert again.split("<main")[1] == why.split("<main")[1]


def test_other_readers_get_words_that_fit_them(
        as_user: Callable[[str], TestClient[Any]]) -> None:
    alex = as_user(ALEX).get("/participants/LP-1001/why/sud_treatment").text
    assert "No consent changes this" in alex  # his role never sees treatment information
    tom = as_user(TOM)
    assert "justice partners never see mental health information" in \
        section(tom.get("/participants/LP-1005").text, "mental_health")
    why = tom.get("/participants/LP-1005/why/mental_health").text
    assert "No consent can change this" in why
    assert "ask the participant" not in why.lower()


# --- 4. emergency access ----------------------------------------------------------------------


def test_emergency_access_confirms_the_person_and_lands_on_what_it_opens(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    luis = as_user(LUIS)  # Eastgate is not on LP-1003's team
    found = luis.get("/break-glass", params={"q": "Darnell Hughes"}).text
    assert "Darnell Hughes" in found and "born 1992-07-23" in found
    assert "/break-glass/LP-1003" in found
    by_dob = luis.get("/break-glass", params={"q": "1992-07-23"}).text
    assert "Darnell Hughes" in by_dob
    # An id alone is not turned into a name.
    by_id = luis.get("/break-glass", params={"q": "LP-1003"}).text
    assert "/break-glass/LP-1003" in by_id and "Darnell" not in by_id
    with demo() as s:
        searches = [e for e in s.scalars(select(m.AuditEvent).where(
            m.AuditEvent.action == "participant:view")) if e.detail.get("view")
            == "emergency search"]
        assert [e.detail["identity_shown"] for e in searches] == [["LP-1003"], ["LP-1003"],
                                                                  []]
    form = luis.get("/break-glass/LP-1003").text
    granted = luis.post("/break-glass/LP-1003", data={
        "reason": "found unresponsive", "emergency_nature": "suspected overdose",
        "facility": "Eastgate clinic", "minutes": "30", "_csrf_token": csrf(form)},
        follow_redirects=False)
    assert granted.status_code in (302, 303)
    assert granted.headers["location"] == "/participants/LP-1003#summary"
    page = luis.get("/participants/LP-1003").text
    first = re.search(r'<section class="category" aria-labelledby="h-([a-z_]+)">', page)
    assert first and first.group(1) == "sud_treatment"
    with demo() as s:
        grant = s.scalars(select(m.BreakGlassGrant)).one()
        until = grant.expires_at.astimezone(ZoneInfo(ZONE))
    banner = page.split('class="notice emergency"')[1].split("</p>")[0]
    assert f"until {until:%Y-%m-%d %H:%M %Z}" in banner and "UTC" not in banner


# --- 5. goal statuses that would reveal health care (issue 20, item 11) -----------------------


def test_justice_partners_see_health_goals_only_as_engaged_in_services(
        as_user: Callable[[str], TestClient[Any]]) -> None:
    tom = as_user(TOM)  # probation, on LP-1005's team with Northside and Cedar
    maria = as_user(MARIA)
    assert "Mental health care" in maria.get("/participants/LP-1005").text
    page = tom.get("/participants/LP-1005").text
    plan = page.split('id="plan-heading"')[1].split("</section>")[0]
    assert "Mental health care" not in page
    assert "Northside Behavioral Health" not in plan
    assert "Engaged in services" in plan
    api = tom.get("/api/v1/participants/LP-1005")
    assert api.status_code == 200, api.text
    goals = api.json()["goals"]
    assert "Mental health care" not in api.text
    engaged = [g for g in goals if g["summary"] == "Engaged in services"]
    assert len(engaged) == 1
    assert engaged[0]["owner"] == "" and engaged[0]["detail_category"] is None
    assert engaged[0]["status"] == ""


def test_the_urgent_list_never_shows_a_justice_partner_a_health_need(
        as_user: Callable[[str], TestClient[Any]]) -> None:
    client = as_user("grace.kim@northside-bh.example")  # clinician, on LP-1005's team
    _add_goal(client, "LP-1005", "mental_health", "Crisis appointment today")
    caseload = as_user(TOM).get("/staff").text
    assert "Crisis appointment today" not in caseload
    assert "Crisis appointment today" not in as_user(TOM).get("/participants/LP-1005").text

