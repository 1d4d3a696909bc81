"""The staff workspace in real Chromium: accessibility (axe-core) on every workspace page at
desktop and phone widths, htmx updating the caseload and the "Why?" explanation in place, the
core forms with JavaScript disabled, and what the housing navigator and a police officer see.

Staff sign in as demo personas through the development provider (a persona's session is
reused by later tests, see `signed_in`). The live portal is shared by the tests of a session,
so nothing here depends on another test's data: a note added here has a unique title, and
break-glass grants only add access.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.e2e.browser.conftest import DESKTOP, PHONE, LivePortal, assert_accessible, dev_sign_in
from tests.e2e.browser.conftest import signed_in as signed_in_as

pytestmark = pytest.mark.browser

MARIA = "Maria Lopez"  # case manager, Harbor LEAD Case Management
ALEX = "Alex Rivera"  # housing navigator, Hope Housing
LUIS = "Luis Moreno, NP"  # clinician, Eastgate clinic (not on LP-1003's care team)
JAMES = "Officer James Carter"  # police officer, Riverton PD
HEALTH_SECTIONS = ("health", "mental_health", "sud_treatment")
VIEWPORTS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])


def signed_in(page: Any, server: LivePortal, persona: str) -> None:
    """Signed in as the persona (a session reused across tests), on the caseload."""
    signed_in_as(page, server, persona)
    assert persona in page.content()
    assert page.get_by_role("heading", level=1).inner_text() == "Caseload"


def assert_fits(page: Any, viewport: dict[str, int]) -> None:
    """Usable on a phone: nothing is wider than the screen."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"{page.url} is {width}px wide at {viewport['width']}px"


@pytest.fixture
def server(live_portal_server: LivePortal) -> LivePortal:
    """The live portal of the test (on each database when the test asks for `backend`)."""
    return live_portal_server


def section(page: Any, category: str) -> Any:
    """The participant page's section of one data category."""
    return page.locator(f"section.category:has(h2#h-{category})")


def set_marker(page: Any) -> None:
    page.evaluate("() => { window.__marker = 1; }")


def marker_survived(page: Any) -> bool:
    return bool(page.evaluate("() => window.__marker === 1"))


# --- 1. Accessibility and phone width ---------------------------------------------------------


@VIEWPORTS
def test_caseload_is_accessible(page: Any, server: LivePortal, viewport: dict[str, int]) -> None:
    page.set_viewport_size(viewport)
    signed_in(page, server, MARIA)
    rows = page.locator("#caseload-rows").get_by_role("table")
    assert rows.get_by_role("link", name="Marcus Reed").is_visible()
    assert_fits(page, viewport)
    assert_accessible(page)


@VIEWPORTS
def test_participant_page_is_accessible(
        page: Any, server: LivePortal, viewport: dict[str, int]) -> None:
    portal = server.base_url
    page.set_viewport_size(viewport)
    signed_in(page, server, MARIA)
    response = page.goto(f"{portal}/participants/LP-1001")
    assert response is not None and response.status == 200
    assert "Marcus Reed" in page.get_by_role("heading", level=1).inner_text()
    assert section(page, "case_plan").locator("article.record").count() >= 1
    assert page.get_by_role("button", name="Save note").is_visible()
    assert_fits(page, viewport)
    assert_accessible(page)


@VIEWPORTS
def test_why_withheld_loads_in_place_and_is_accessible(
        page: Any, server: LivePortal, viewport: dict[str, int]) -> None:
    portal = server.base_url
    page.set_viewport_size(viewport)
    signed_in(page, server, ALEX)
    page.goto(f"{portal}/participants/LP-1001")
    sud = section(page, "sud_treatment")
    withheld = sud.locator("p.withheld")
    assert withheld.inner_text().startswith("Withheld:")
    explanation = withheld.locator("#why-sud_treatment[role=status]")
    assert explanation.inner_text().strip() == ""  # an empty live region, filled on request
    url = page.url
    set_marker(page)
    withheld.get_by_role("link", name="Why?").click()
    page.wait_for_function(
        "() => document.querySelector('#why-sud_treatment').textContent.trim() !== ''")
    assert explanation.inner_text().strip(), "the explanation is empty"
    assert marker_survived(page), "clicking Why? navigated instead of swapping in place"
    assert page.url == url
    assert "Opioid" not in page.content()
    assert_fits(page, viewport)
    assert_accessible(page)


def test_why_explanation_is_shown_once_however_often_it_is_asked_for(
        page: Any, server: LivePortal) -> None:
    """Asking "Why?" again must not pile up copies of the same explanation."""
    portal = server.base_url
    signed_in(page, server, ALEX)
    page.goto(f"{portal}/participants/LP-1001")
    withheld = section(page, "sud_treatment").locator("p.withheld")
    why = f"{portal}/participants/LP-1001/why/sud_treatment"
    texts = []
    for _ in range(2):
        with page.expect_response(why):
            withheld.get_by_role("link", name="Why?").click()
        page.wait_for_load_state("networkidle")
        texts.append(withheld.locator("#why-sud_treatment").inner_text())
    assert withheld.locator("span.why").count() == 1
    assert texts[0] == texts[1] and texts[0].strip()


@VIEWPORTS
def test_break_glass_pages_are_accessible(
        page: Any, server: LivePortal, viewport: dict[str, int]) -> None:
    portal = server.base_url
    page.set_viewport_size(viewport)
    signed_in(page, server, LUIS)
    page.get_by_role("link", name="Emergency access", exact=True).click()
    page.wait_for_url(f"{portal}/break-glass")
    assert page.get_by_role("heading", level=1).inner_text() == "Emergency access"
    assert_fits(page, viewport)
    assert_accessible(page)

    page.fill("#q", "Darnell Hughes")
    page.get_by_role("button", name="Find").click()
    page.wait_for_url(re.compile(r".*/break-glass\?q=Darnell\+Hughes$"))
    link = page.get_by_role("link", name="LP-1003: request emergency access")
    assert link.is_visible()
    assert_fits(page, viewport)
    assert_accessible(page)

    link.click()
    page.wait_for_url(f"{portal}/break-glass/LP-1003")
    assert page.get_by_role("heading", level=1).inner_text() == "Emergency access for LP-1003"
    assert_fits(page, viewport)
    assert_accessible(page)

    page.fill("#reason", "Unresponsive on arrival at the emergency department")
    page.fill("#emergency_nature", "Suspected overdose; need current medications")
    page.fill("#facility", "Eastgate clinic urgent care")
    page.fill("#minutes", "30")
    page.get_by_role("button", name="Open emergency access").click()
    page.wait_for_url(f"{portal}/participants/LP-1003#summary")
    banner = page.locator("p.notice.emergency[role=alert]")
    assert banner.is_visible()
    assert "Emergency access" in banner.inner_text()
    assert "Darnell Hughes" in page.get_by_role("heading", level=1).inner_text()
    assert_fits(page, viewport)
    assert_accessible(page)


def test_break_glass_form_errors_are_accessible(page: Any, server: LivePortal) -> None:
    """A refused grant re-renders the form with the reason, and keeps what was typed."""
    portal = server.base_url
    signed_in(page, server, LUIS)
    page.goto(f"{portal}/break-glass/LP-1003")
    page.fill("#reason", "Unresponsive")
    page.fill("#emergency_nature", "   ")  # passes `required`, fails on the server
    page.fill("#facility", "Eastgate clinic")
    page.get_by_role("button", name="Open emergency access").click()
    page.wait_for_load_state()
    alert = page.get_by_role("alert")
    assert "nature of the emergency is required" in alert.inner_text()
    assert page.input_value("#reason") == "Unresponsive"
    assert page.locator("p.notice.emergency").count() == 0
    assert_accessible(page)


# --- 2. htmx in the real browser -------------------------------------------------------------


def test_caseload_search_updates_the_rows_in_place(page: Any, server: LivePortal) -> None:
    signed_in(page, server, MARIA)
    rows = page.locator("#caseload-rows tbody tr")
    assert rows.count() > 1
    assert page.evaluate("() => typeof window.htmx") == "object"
    set_marker(page)
    with page.expect_request(lambda r: "/staff?" in r.url and "q=reed" in r.url) as request:
        page.fill("#q", "reed")
        page.get_by_role("button", name="Search").click()
    assert request.value.headers.get("hx-request") == "true"
    page.wait_for_url(re.compile(r".*/staff\?q=reed(&|$)"))  # hx-push-url
    page.wait_for_function(
        "() => document.querySelectorAll('#caseload-rows tbody tr').length === 1")
    assert marker_survived(page), "the search reloaded the page instead of swapping the rows"
    assert rows.count() == 1
    assert rows.first.locator("td").nth(1).inner_text() == "LP-1001"
    assert rows.first.get_by_role("link", name="Marcus Reed").is_visible()
    # The fragment replaced the list, nothing else: one page heading, one list, one form.
    assert page.locator("#caseload-rows").count() == 1
    assert page.locator("h1").count() == 1
    assert page.locator("form.search").count() == 1
    assert_accessible(page)


# --- 3. Without JavaScript --------------------------------------------------------------------


def test_core_forms_work_without_javascript(browser: Any, server: LivePortal) -> None:
    portal = server.base_url
    title = f"No-JS case plan note {uuid.uuid4().hex[:8]}"
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        dev_sign_in(page, portal, MARIA)  # the provider's page and the callback, as plain posts

        page.fill("#q", "Marcus Reed")
        page.get_by_role("button", name="Search").click()
        page.wait_for_url(re.compile(r".*/staff\?q=Marcus\+Reed(&|$)"))
        rows = page.locator("#caseload-rows tbody tr")
        assert rows.count() == 1
        rows.get_by_role("link", name="Marcus Reed").click()
        page.wait_for_url(f"{portal}/participants/LP-1001")

        page.select_option("#category", label="Case plan")
        page.fill("#title", title)
        page.fill("#body", "Written with JavaScript disabled; a plain form post.")
        page.fill("#effective", "2024-05-01")
        page.get_by_role("button", name="Save note").click()
        page.wait_for_url(f"{portal}/participants/LP-1001#saved")
        note = section(page, "case_plan").locator("article.record", has_text=title)
        assert note.count() == 1
        assert "Written with JavaScript disabled" in note.inner_text()
        assert "2024-05-01" in note.inner_text()

        # The case plan: a goal added, then its status updated (native <details>, no script).
        goal = f"No-JS goal {uuid.uuid4().hex[:8]}"
        page.get_by_text("Add a goal", exact=True).click()
        page.select_option("#goal-domain", "food")
        page.fill("#goal-summary", goal)
        page.get_by_role("button", name="Add goal").click()
        page.wait_for_url(f"{portal}/participants/LP-1001#plan-heading")
        line = page.locator("ul.goals > li", has_text=goal)
        assert "not started" in line.locator(".goal-status").inner_text()
        line.get_by_text("Update status").click()
        line.get_by_label("Status", exact=True).select_option("in_progress")
        line.get_by_label(re.compile("^Short note")).fill("Food bank on Tuesdays")
        line.get_by_role("button", name="Save status").click()
        line = page.locator("ul.goals > li", has_text=goal)
        assert "in progress" in line.locator(".goal-status").inner_text()
        assert "Food bank on Tuesdays" in line.inner_text()
    finally:
        context.close()

    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        signed_in(page, server, LUIS)
        page.get_by_role("link", name="Emergency access", exact=True).click()
        page.wait_for_url(f"{portal}/break-glass")
        page.fill("#q", "Darnell Hughes")
        page.get_by_role("button", name="Find").click()
        page.get_by_role("link", name="LP-1003: request emergency access").click()
        page.wait_for_url(f"{portal}/break-glass/LP-1003")
        page.fill("#reason", "Brought in unresponsive")
        page.fill("#emergency_nature", "Suspected overdose")
        page.fill("#facility", "Eastgate clinic")
        page.get_by_role("button", name="Open emergency access").click()
        page.wait_for_url(f"{portal}/participants/LP-1003#summary")
        banner = page.locator("p.notice.emergency[role=alert]")
        assert banner.is_visible()
        assert "Emergency access" in banner.inner_text()
    finally:
        context.close()


def test_why_link_works_without_javascript(browser: Any, server: LivePortal) -> None:
    """Without htmx the "Why?" link is an ordinary link to a full explanation page."""
    portal = server.base_url
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        signed_in(page, server, ALEX)
        page.goto(f"{portal}/participants/LP-1001")
        section(page, "sud_treatment").get_by_role("link", name="Why?").click()
        page.wait_for_url(f"{portal}/participants/LP-1001/why/sud_treatment")
        assert page.get_by_role("heading", level=1).inner_text() == "Why is this withheld?"
        assert page.locator("main p").count() >= 2
        assert "Opioid" not in page.content()
    finally:
        context.close()


# --- 4. The housing navigator -----------------------------------------------------------------


def test_housing_navigator_sees_housing_but_not_substance_use_treatment(
        page: Any, server: LivePortal, backend: str) -> None:
    portal = server.base_url
    signed_in(page, server, ALEX)
    page.goto(f"{portal}/participants/LP-1001")
    housing = section(page, "housing")
    assessment = housing.locator("article.record h3", has_text="Coordinated entry assessment")
    assert assessment.count() == 1
    sud = section(page, "sud_treatment")
    assert sud.locator("article.record").count() == 0
    assert sud.locator("p.withheld").inner_text().startswith("Withheld:")
    content = page.content()
    assert "opioid" not in content.lower()
    assert "buprenorphine" not in content.lower()
    assert "Intake and treatment plan" not in content
    assert_accessible(page)


# --- 5. A police officer ----------------------------------------------------------------------


def test_police_officer_sees_the_care_coordination_notice_and_no_health_records(
        page: Any, server: LivePortal, backend: str) -> None:
    portal = server.base_url
    signed_in(page, server, JAMES)
    page.goto(f"{portal}/participants/LP-1001")
    notices = page.get_by_role("note").filter(
        has_text="Not for use as the basis of any adverse action")
    assert notices.count() >= 1
    assert notices.first.is_visible()
    for category in HEALTH_SECTIONS:
        assert section(page, category).locator("article.record").count() == 0, category
    content = page.content().lower()
    for text in ("opioid", "buprenorphine", "psychiatric", "depression", "wound care",
                 "blood pressure", "intake and treatment plan", "clinic visit"):
        assert text not in content, text
    for category in HEALTH_SECTIONS:  # nor may the officer write health information
        assert page.locator(f"#category option[value={category}]").count() == 0, category
    assert_accessible(page)


# --- 6. Issue 18: landing where the notice is, emergency access in fewer steps ------------------


def in_viewport(locator: Any) -> bool:
    """The element's top edge is on the screen (scrolled into view, not below or above)."""
    box = locator.evaluate("e => { const r = e.getBoundingClientRect(); "
                           "return [r.top, r.bottom, window.innerHeight]; }")
    top, bottom, height = box
    return bottom > 0 and top < height


def test_the_officer_lands_on_the_notice_from_the_urgent_list_on_a_phone(
        page: Any, server: LivePortal) -> None:
    page.set_viewport_size(PHONE)
    signed_in(page, server, JAMES)
    urgent = page.locator("section.urgent[aria-labelledby=caseload-urgent-heading]")
    link = urgent.get_by_role("link").first
    assert link.is_visible()
    link.click()
    page.wait_for_url(re.compile(r".*/participants/LP-[0-9A-Z]+#summary$"))
    notice = page.get_by_role("note").filter(
        has_text="Not for use as the basis of any adverse action").first
    assert in_viewport(notice), "the care-coordination-only notice is off-screen"
    assert in_viewport(page.get_by_role("heading", level=1))
    assert_fits(page, PHONE)
    assert_accessible(page)


def test_emergency_access_confirms_the_person_and_lands_on_treatment_on_a_phone(
        page: Any, server: LivePortal) -> None:
    portal = server.base_url
    page.set_viewport_size(PHONE)
    signed_in(page, server, LUIS)
    page.goto(f"{portal}/break-glass?q=1992-07-23")
    match = page.locator("ul.matches li", has_text="LP-1003")
    assert "Darnell Hughes" in match.inner_text() and "born 1992-07-23" in match.inner_text()
    assert_fits(page, PHONE)
    assert_accessible(page)
    match.get_by_role("link", name="LP-1003: request emergency access").click()
    page.wait_for_url(f"{portal}/break-glass/LP-1003")
    page.fill("#reason", "Unresponsive on arrival")
    page.fill("#emergency_nature", "Suspected overdose; need current medications")
    page.fill("#facility", "Eastgate clinic urgent care")
    page.get_by_role("button", name="Open emergency access").click()
    page.wait_for_url(f"{portal}/participants/LP-1003#summary")
    banner = page.locator("p.notice.emergency[role=alert]")
    assert in_viewport(banner)  # the end time, in the program's zone (HTTP tests check it)
    # The first section after the summary is substance use treatment, what the emergency
    # needs; it starts on the first screen.
    first = page.locator("section.category").first
    assert first.locator("h2").inner_text() == "Substance use treatment"
    assert in_viewport(first.locator("h2"))
    assert_fits(page, PHONE)
    assert_accessible(page)


def test_probation_sees_a_mental_health_goal_only_as_engaged_in_services_on_a_phone(
        page: Any, server: LivePortal) -> None:
    """Issue 20, item 11: no domain and no provider of health care reach a justice partner."""
    page.set_viewport_size(PHONE)
    signed_in(page, server, "Tom Becker")  # probation officer, on LP-1005's team
    page.goto(f"{server.base_url}/participants/LP-1005")
    plan = page.locator("section[aria-labelledby=plan-heading]")
    assert plan.get_by_text("Engaged in services").is_visible()
    assert "Mental health care" not in page.content()
    assert "Northside Behavioral Health" not in plan.inner_text()
    assert_fits(page, PHONE)
    assert_accessible(page)
