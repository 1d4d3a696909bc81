"""Referrals, the care team and the admin page in real Chromium on a 390 px phone, axe-core
clean: an accepted referral names the person where the case manager lands; the sign-in code
is asked first, shown once with a slip in the participant's language
that prints alone; the admin page fits the screen, and Suspend is reachable, red and asked first.

The live portal is shared by the tests of a session: the code is issued for LP-1008 (whom no
other browser test signs in as), and Dev Patel is reinstated before the test ends.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.e2e.browser.conftest import PHONE, LivePortal, assert_accessible
from tests.e2e.browser.conftest import signed_in as signed_in_as

pytestmark = pytest.mark.browser

MARIA, OLIVIA, JAMES = "Maria Lopez", "Olivia Chen", "Officer James Carter"


def assert_fits(page: Any) -> None:
    """Nothing is wider than the phone: no sideways scrolling."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide at {PHONE['width']}px"


def assert_on_screen(page: Any, locator: Any) -> None:
    """Visible, and inside the screen's width (not cut off or hidden to the right)."""
    locator.scroll_into_view_if_needed()
    assert locator.is_visible()
    box = locator.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box


def test_a_sign_in_code_is_asked_first_and_its_slip_prints_alone(
        page: Any, live_portal_server: LivePortal) -> None:
    portal = live_portal_server.base_url
    page.set_viewport_size(PHONE)
    signed_in_as(page, live_portal_server, MARIA)
    page.goto(f"{portal}/participants/LP-1008/care-team")
    assert_fits(page)
    page.get_by_role("link", name="Issue a sign-in code for the participant").click()
    assert page.get_by_role("heading", level=1).inner_text() == (
        "Issue a sign-in code for Rosa Jimenez (LP-1008)?")
    assert "signed out of the portal everywhere" in page.locator("main").inner_text()
    issue = page.get_by_role("button", name="Sign them out and issue a code")
    assert_on_screen(page, issue)
    assert_fits(page)
    assert_accessible(page)
    issue.click()
    page.wait_for_url(f"{portal}/participants/LP-1008/enrolment-code/issued")
    code = page.locator("code.secret").inner_text()
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", code)
    slip = page.locator("section.slip")
    assert slip.get_attribute("lang") == "es"  # Rosa reads Spanish
    assert "Cómo entrar a LEAD" in slip.inner_text() and code in slip.inner_text()
    assert page.get_by_role("button", name="Imprimir la hoja").is_visible()  # with JavaScript
    assert_fits(page)
    assert_accessible(page)
    # Printed, only the slip is on the paper.
    page.emulate_media(media="print")
    assert slip.is_visible()
    assert not page.locator("header.site-header").is_visible()
    assert not page.locator("div.no-print").is_visible()
    page.emulate_media(media="screen")
    # Reloading shows the code no more (and issues none).
    page.reload()
    assert code not in page.content()
    assert page.get_by_role("heading", level=1).inner_text() == "This code was already shown"
    assert_accessible(page)


def test_the_admin_page_fits_a_phone_and_suspend_is_asked_first(
        page: Any, live_portal_server: LivePortal) -> None:
    portal = live_portal_server.base_url
    page.set_viewport_size(PHONE)
    signed_in_as(page, live_portal_server, OLIVIA, home="/admin")
    assert_fits(page)
    assert_accessible(page)
    row = page.locator("tr", has_text="Dev Patel")
    suspend = row.get_by_role("link", name=re.compile("^Suspend"))
    assert_on_screen(page, suspend)
    # Red, unlike the blue of ordinary buttons.
    colour = suspend.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(179, 38, 30)", colour
    suspend.click()
    assert page.get_by_role("heading", level=1).inner_text() == "Suspend Dev Patel?"
    assert "Every session they have ends at once" in page.locator("main").inner_text()
    confirm = page.get_by_role("button", name="Yes, suspend Dev Patel")
    assert_on_screen(page, confirm)
    assert_fits(page)
    assert_accessible(page)
    # Cancel changes nothing.
    page.get_by_role("link", name="Cancel").click()
    page.wait_for_url(f"{portal}/admin")
    assert "Suspended" not in page.locator("tr", has_text="Dev Patel").inner_text()
    page.locator("tr", has_text="Dev Patel").get_by_role(
        "link", name=re.compile("^Suspend")).click()
    page.get_by_role("button", name="Yes, suspend Dev Patel").click()
    assert "Dev Patel is suspended" in page.get_by_role("status").inner_text()
    row = page.locator("tr", has_text="Dev Patel")
    assert "Suspended" in row.inner_text()
    assert_fits(page)
    assert_accessible(page)
    reinstate = row.get_by_role("button", name=re.compile("^Reinstate"))
    assert_on_screen(page, reinstate)
    reinstate.click()
    assert "Dev Patel is reinstated" in page.get_by_role("status").inner_text()


def test_accepting_a_referral_names_the_person_on_a_phone(
        browser: Any, live_portal_server: LivePortal) -> None:
    family = "Okonkwo" + uuid.uuid4().hex[:6]  # unique in the shared portal
    james = browser.new_context(viewport=PHONE).new_page()
    maria = browser.new_context(viewport=PHONE).new_page()
    try:
        signed_in_as(james, live_portal_server, JAMES, home="/referrals/")
        james.get_by_label("Social contact").check()
        james.fill("#given", "Ada")
        james.fill("#family", family)
        james.get_by_role("button", name="Send referral").click()
        assert f"Ada {family}" in james.content()

        signed_in_as(maria, live_portal_server, MARIA, home="/referrals/")
        card = maria.locator("article", has_text=f"Ada {family}")
        accept = card.get_by_role("button", name="Accept and enrol")
        assert_on_screen(maria, accept)
        accept.click()
        maria.wait_for_url(re.compile(r".*/participants/LP-[0-9A-Z-]+/care-team\?done=enrolled$"))
        found = re.search(r"/participants/(LP-[0-9A-Z]{4}-[0-9A-Z]{4})/care-team", maria.url)
        assert found
        pid = found.group(1)
        notice = maria.get_by_role("status")
        assert f"Ada {family} is enrolled in LEAD as {pid}" in notice.inner_text()
        assert notice.get_by_role("link", name="Record their consent").is_visible()
        # On screen where she lands, not below the fold.
        box = notice.bounding_box()
        assert box is not None and box["y"] < PHONE["height"], box
        assert maria.get_by_role("heading", level=1).inner_text() == (
            f"Care team for Ada {family} ({pid})")
        assert_fits(maria)
        assert_accessible(maria)
    finally:
        james.context.close()
        maria.context.close()
