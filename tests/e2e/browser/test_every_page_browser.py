"""axe-core on every HTML page the portal serves, in Chromium: each page route (a coverage test
keeps the list complete), plus the states people meet when something goes wrong (a form with
problems, a refused sign-in, "not found"). Staff pages at desktop size, participant pages at
phone size."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from portal.db import models as m
from portal.db.engine import make_engine, make_session_factory
from portal.web.app import create_app
from tests.e2e.browser.conftest import DESKTOP, PHONE, LivePortal, assert_accessible, dev_sign_in

pytestmark = pytest.mark.browser

MARIA, OLIVIA, RENEE = "Maria Lopez", "Olivia Chen", "Renee Walsh"
ALEX, JAMES, LUIS = "Alex Rivera", "Officer James Carter", "Luis Moreno, NP"
LINDA = "Linda Nguyen"

# Every HTML page, by route, with who opens it and the URL (ids filled in from the demo).
STAFF_PAGES: dict[str, tuple[str, str]] = {
    "/": ("", "/"),
    "/auth/login": ("", "/auth/login"),
    "/staff": (MARIA, "/staff"),
    "/participants/{public_id}": (MARIA, "/participants/LP-1001"),
    "/participants/{public_id}/why/{category}": (ALEX, "/participants/LP-1001/why/sud_treatment"),
    "/participants/{public_id}/consents": (MARIA, "/participants/LP-1001/consents"),
    "/participants/{public_id}/consents/new": (MARIA, "/participants/LP-1001/consents/new"),
    "/participants/{public_id}/consents/{consent_id}": (MARIA, "/participants/LP-1004/consents/"
                                                               "{draft}"),
    "/participants/{public_id}/consents/{consent_id}/edit": (
        MARIA, "/participants/LP-1004/consents/{draft}/edit"),
    "/participants/{public_id}/care-team": (MARIA, "/participants/LP-1001/care-team"),
    # The question before a code is issued, and the result page once its code was taken.
    "/participants/{public_id}/enrolment-code": (MARIA, "/participants/LP-1001/enrolment-code"),
    "/participants/{public_id}/enrolment-code/issued": (
        MARIA, "/participants/LP-1001/enrolment-code/issued"),
    "/participants/{public_id}/exit": (MARIA, "/participants/LP-1001/exit"),
    "/participants/{public_id}/disposition": (LINDA, "/participants/LP-1003/disposition"),
    "/referrals": (JAMES, "/referrals/"),
    "/break-glass": (LUIS, "/break-glass"),
    "/break-glass/{public_id}": (LUIS, "/break-glass/LP-1003"),
    "/admin": (OLIVIA, "/admin"),
    "/admin/staff/{user_id}/suspend": (OLIVIA, "/admin/staff/{dev}/suspend"),
    "/compliance": (RENEE, "/compliance/"),
    "/compliance/audit": (RENEE, "/compliance/audit"),
    "/compliance/audit/{chain}/{seq}": (RENEE, "/compliance/audit/main/1"),
    "/compliance/break-glass": (RENEE, "/compliance/break-glass"),
    "/compliance/disclosures": (RENEE, "/compliance/disclosures?participant=LP-1001"),
    "/compliance/integrity": (RENEE, "/compliance/integrity"),
    "/compliance/oversight": (RENEE, "/compliance/oversight"),
}
PARTICIPANT_PAGES: dict[str, str] = {
    "/me/login": "/me/login",
    "/me/enrol": "/me/enrol",
    "/me": "/me",
    "/me/change": "/me/change",
    "/me/who-looked": "/me/who-looked",
    "/me/security": "/me/security",
    "/me/consents/{consent_id}/revoke": "/me/consents/{active}/revoke",
}
# Not pages: sign-in redirects, downloads, fragments polled by htmx, probes, the API, the
# kept form handed to the page script after sign-in (JSON).
NOT_PAGES = ("/auth/callback/", "/auth/login/", "/healthz", "/static/", "/schema", "/api/",
             "/dev-idp", "/document", ".csv", ".pdf", ".jsonl", "/integrity/runs/",
             "/auth/kept-form")


def test_every_page_is_in_the_list(live_portal_server: LivePortal) -> None:
    app = create_app(live_portal_server.settings)
    pages = {re.sub(r":\w+}", "}", route.path)
             for route in app.routes for handler in route.route_handlers
             if "GET" in handler.http_methods and not any(p in route.path for p in NOT_PAGES)}
    app.state.engine.dispose()
    assert pages == set(STAFF_PAGES) | set(PARTICIPANT_PAGES)


def _ids(server: LivePortal) -> dict[str, str]:
    engine = make_engine(server.settings)
    try:
        with make_session_factory(engine)() as s:
            def consent(public_id: str, status: str) -> str:
                found = s.scalars(select(m.Consent.id).join(m.Participant).where(
                    m.Participant.public_id == public_id, m.Consent.status == status)).first()
                assert found is not None, (public_id, status)
                return str(found)
            dev = s.scalars(select(m.StaffUser.id).where(
                m.StaffUser.email == "dev.patel@harbor-lead.example")).one()
            return {"draft": consent("LP-1004", "draft"), "active": consent("LP-1001", "active"),
                    "dev": str(dev)}
    finally:
        engine.dispose()


def _page(browser: Any, viewport: dict[str, int]) -> Any:
    return browser.new_context(viewport=viewport).new_page()


def _open(page: Any, url: str, status: int = 200) -> None:
    response = page.goto(url)
    assert response is not None and response.status == status, (url, response and response.status)
    assert_accessible(page)


def test_every_staff_page_is_accessible(browser: Any, live_portal_server: LivePortal) -> None:
    portal, ids = live_portal_server.base_url, _ids(live_portal_server)
    pages: dict[str, Any] = {}
    for persona, url in STAFF_PAGES.values():
        if persona not in pages:
            pages[persona] = _page(browser, DESKTOP)
            if persona:
                dev_sign_in(pages[persona], portal, persona)
        _open(pages[persona], portal + url.format(**ids))

    maria = pages[MARIA]
    # A form sent back with what to fix, a refused signature, "not found".
    maria.goto(f"{portal}/participants/LP-1001/consents/new")
    maria.get_by_label("Multi-party release (no substance use treatment records)").check()
    maria.fill("#expires_on", "2020-01-01")  # in the past
    maria.get_by_role("button", name="Save draft and review").click()
    assert maria.locator("[role=alert]").count() == 1
    assert_accessible(maria)
    maria.goto(f"{portal}/participants/LP-1004/consents/{ids['draft']}")
    maria.fill("#signer_name", "Keisha Morgan")  # but the agreement box is not ticked
    maria.get_by_role("button", name="Sign and save").click()
    assert "agree" in maria.locator("[role=alert]").inner_text()
    assert_accessible(maria)
    _open(maria, f"{portal}/participants/LP-ZZZZ", 404)
    # Roles that see no participant information get a plain explanation instead.
    _open(pages[RENEE], f"{portal}/staff")
    assert "you have no caseload" in pages[RENEE].content()
    for page in pages.values():
        page.context.close()


def test_every_participant_page_is_accessible_on_a_phone(
        browser: Any, live_portal_server: LivePortal) -> None:
    portal, ids = live_portal_server.base_url, _ids(live_portal_server)
    page = _page(browser, PHONE)
    for lang in ("en", "es"):
        page.context.clear_cookies()
        _open(page, f"{portal}/me/login?lang={lang}")
        page.fill("#username", "marcus")
        page.fill("#passphrase", "not my passphrase")
        page.locator("main button[type=submit]").click()
        assert page.locator("[role=alert]").count() == 1  # refused, in their language
        assert_accessible(page)
        page.fill("#username", "marcus")
        page.fill("#passphrase", "river stone morning")
        page.locator("main button[type=submit]").click()
        page.wait_for_url(f"{portal}/me")
        for url in PARTICIPANT_PAGES.values():
            _open(page, portal + url.format(**ids))
            assert page.locator("html").get_attribute("lang") == lang
            assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        _open(page, f"{portal}/me/consents/00000000-0000-0000-0000-000000000000/revoke", 404)
        page.goto(f"{portal}/me/change")
        page.locator("main button[type=submit]").click()  # nothing chosen or written
        assert page.locator("[role=alert]").count() == 1
        assert_accessible(page)
    page.context.close()
