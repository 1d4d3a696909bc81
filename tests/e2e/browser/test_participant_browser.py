"""Participant self-service in Chromium at a phone-sized screen: sign in, my sharing, take a
consent back, ask for a change, who looked, Spanish; axe-core on every page. Taking a consent
back withholds what it covered from a staff member of an organization it named on their very
next view of the participant's page, and the staff member's earlier view is listed under "Who
has looked at my information"."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.browser.conftest import (
    DESKTOP,
    PHONE,
    LivePortals,
    assert_accessible,
    dev_sign_in,
)

pytestmark = pytest.mark.browser

# Angela Torres (LP-1002) has two active releases. The one that names Hope Housing Collaborative
# (portal/devtools/seed.py, the multi-party release) covers Harbor LEAD's contact details, case
# plan, progress and benefits records; Alex Rivera is Hope Housing's housing navigator.
ALEX = "Alex Rivera"
HOPE_HOUSING = "Hope Housing Collaborative"
RELEASED_BY_HARBOR = {"contact": "How to reach Angela", "case_plan": "Case plan review",
                      "progress": "Engagement summary", "benefits": "Benefits screening"}


def _fits(page: Any) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]


def _staff_page(browser: Any, portal: str, persona: str) -> Any:
    """A page in a browser context of its own, signed in as the persona through the
    development provider, on the caseload."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    dev_sign_in(page, portal, persona)
    return page


def _section(page: Any, category: str) -> Any:
    """The staff participant page's section of one data category."""
    return page.locator(f"section.category:has(h2#h-{category})")


def _in_spanish(page: Any, heading: str) -> None:
    """The page is in Spanish, offers the switch back to English, and is accessible on a
    phone."""
    assert page.locator("html").get_attribute("lang") == "es", page.url
    assert heading in page.get_by_role("heading", level=1).inner_text(), page.url
    switch = page.locator("p.language").get_by_role("link", name="English", exact=True)
    assert switch.count() == 1, f"no language switch on {page.url}"
    assert switch.get_attribute("hreflang") == "en", page.url
    assert_accessible(page)
    _fits(page)


def _sign_in(page: Any, portal: str, username: str, passphrase: str) -> None:
    page.set_viewport_size(PHONE)
    page.goto(f"{portal}/me/login")
    assert_accessible(page)
    _fits(page)
    page.fill("#username", username)
    page.fill("#passphrase", passphrase)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{portal}/me")


def test_participant_pages_on_a_phone(page: Any, live_portals: LivePortals,
                                      backend: str) -> None:
    # A fresh database: this test takes a consent back.
    portal = live_portals.fresh(backend).base_url
    _sign_in(page, portal, "angela", "cielo azul tranquilo")
    assert "Hello, Angela" in page.content()
    assert "Who can see what about you" in page.content()
    assert_accessible(page)
    _fits(page)

    page.get_by_role("link", name="Ask to share more or less").click()
    assert_accessible(page)
    page.get_by_label("Share less").check()
    page.fill("#text", "Please stop sharing my health information")
    page.get_by_role("button", name="Send to my case manager").click()
    assert "Your case manager will talk with you" in page.content()

    page.get_by_role("link", name="Who has looked at my information").click()
    assert_accessible(page)
    _fits(page)
    page.goto(f"{portal}/me")

    take_back = page.get_by_role("link", name="Take this back").first
    take_back.click()
    assert "this stops right away" in page.content()
    assert_accessible(page)
    _fits(page)
    page.get_by_role("button", name="Yes, take it back").click()
    assert "That permission has ended" in page.content()
    assert "You took this back" in page.content()

    page.get_by_role("link", name="Español").click()
    assert page.locator("html").get_attribute("lang") == "es"
    assert "Quién puede ver qué de usted" in page.content()
    assert_accessible(page)
    _fits(page)


def test_participant_enrolment_page_on_a_phone(page: Any, live_portal: str) -> None:
    page.set_viewport_size(PHONE)
    page.goto(f"{live_portal}/me/enrol")
    assert_accessible(page)
    _fits(page)
    page.fill("#participant_id", "LP-1004")
    page.fill("#code", "AAAA-BBBB-CCCC")
    page.fill("#username", "keisha")
    page.fill("#passphrase", "a long enough phrase")
    page.get_by_role("button", name="Save and sign in").click()
    assert "do not match" in page.content()
    assert_accessible(page)


def test_taking_a_consent_back_withholds_it_from_staff_on_their_next_view(
        page: Any, browser: Any, live_portals: LivePortals, backend: str) -> None:
    """The housing navigator sees Harbor LEAD's records of Angela under her release; Angela sees
    Hope Housing among who looked, takes that release back on her phone, and the navigator's very
    next view (same session, nothing else in between) withholds those sections, while Hope
    Housing's own record stays."""
    portal = live_portals.fresh(backend).base_url  # a fresh database: a consent is taken back
    staff = _staff_page(browser, portal, ALEX)
    try:
        response = staff.goto(f"{portal}/participants/LP-1002")
        assert response is not None and response.status == 200
        for category, title in RELEASED_BY_HARBOR.items():
            assert _section(staff, category).locator("article.record h3").all_inner_texts() \
                == [title], category

        _sign_in(page, portal, "angela", "cielo azul tranquilo")
        page.get_by_role("link", name="Who has looked at my information").click()
        page.wait_for_url(f"{portal}/me/who-looked")
        looks = page.locator("section.agency-looks h2").all_inner_texts()
        assert HOPE_HOUSING in looks, looks
        assert_accessible(page)
        _fits(page)

        page.get_by_role("link", name="Back").click()
        release = page.locator("article.consent").filter(has_text=HOPE_HOUSING)
        assert release.count() == 1
        release.get_by_role("link", name="Take this back").click()
        page.wait_for_url(re.compile(rf"^{re.escape(portal)}/me/consents/[0-9a-f-]+/revoke$"))
        assert HOPE_HOUSING in page.locator(".card").inner_text()
        assert_accessible(page)
        _fits(page)
        page.get_by_role("button", name="Yes, take it back").click()
        page.wait_for_url(f"{portal}/me?revoked=1")
        assert "That permission has ended" in page.get_by_role("status").inner_text()
        assert release.count() == 0
        assert_accessible(page)
        _fits(page)

        response = staff.reload()
        assert response is not None and response.status == 200
        for category, title in RELEASED_BY_HARBOR.items():
            section = _section(staff, category)
            assert section.locator("article.record").count() == 0, category
            assert section.locator("p.withheld").inner_text().startswith("Withheld:"), category
            assert title not in staff.content(), title
        housing = _section(staff, "housing").locator("article.record h3").all_inner_texts()
        assert housing == ["Coordinated entry assessment"]
    finally:
        staff.context.close()


def test_every_participant_page_in_spanish(page: Any, live_portals: LivePortals,
                                          backend: str) -> None:
    """Each participant page offers the language switch; after switching to Spanish every page
    says lang="es", reads in Spanish and has no serious axe-core violation on a phone."""
    portal = live_portals.fresh(backend).base_url  # Angela's consents as seeded
    page.set_viewport_size(PHONE)
    page.goto(f"{portal}/me/login")
    page.locator("p.language").get_by_role("link", name="Español", exact=True).click()
    page.wait_for_url(f"{portal}/me/login?lang=es")
    _in_spanish(page, "Entrar")
    page.get_by_role("link", name="¿Es su primera vez?").click()
    page.wait_for_url(f"{portal}/me/enrol")
    _in_spanish(page, "Configure su acceso")

    page.goto(f"{portal}/me/login")
    page.fill("#username", "angela")
    page.fill("#passphrase", "cielo azul tranquilo")
    page.get_by_role("button", name="Entrar").click()
    page.wait_for_url(f"{portal}/me")
    _in_spanish(page, "Hola, Angela")
    assert page.get_by_role("heading", name="Quién puede ver qué de usted").is_visible()

    page.get_by_role("link", name="Pedir compartir más o menos").click()
    page.wait_for_url(f"{portal}/me/change")
    _in_spanish(page, "Pedir un cambio")
    page.goto(f"{portal}/me")
    page.get_by_role("link", name="Quién ha mirado mi información").click()
    page.wait_for_url(f"{portal}/me/who-looked")
    _in_spanish(page, "Quién ha mirado su información")
    page.goto(f"{portal}/me")
    page.get_by_role("link", name="Agregar una aplicación de autenticación").click()
    page.wait_for_url(f"{portal}/me/security/")
    _in_spanish(page, "Agregar una aplicación de autenticación")
    page.goto(f"{portal}/me")
    page.get_by_role("link", name="Retirar esto").first.click()
    page.wait_for_url(re.compile(rf"^{re.escape(portal)}/me/consents/[0-9a-f-]+/revoke$"))
    _in_spanish(page, "¿Retirar este permiso?")
    assert page.get_by_role("button", name="Sí, retirarlo").is_visible()

    # And back to English.
    page.goto(f"{portal}/me")
    page.locator("p.language").get_by_role("link", name="English", exact=True).click()
    page.wait_for_url(f"{portal}/me?lang=en")
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Hello, Angela" in page.get_by_role("heading", level=1).inner_text()


def test_language_chosen_on_the_confirmation_page_is_kept(
        page: Any, live_portals: LivePortals, backend: str) -> None:
    """Switching to Spanish on the "take back" confirmation page keeps Spanish on the next page,
    as the switch does on every other participant page."""
    portal = live_portals.fresh(backend).base_url  # Angela's consents as seeded
    _sign_in(page, portal, "angela", "cielo azul tranquilo")
    page.get_by_role("link", name="Take this back").first.click()
    page.locator("p.language").get_by_role("link", name="Español", exact=True).click()
    _in_spanish(page, "¿Retirar este permiso?")
    page.get_by_role("link", name="No, mantenerlo").click()
    page.wait_for_url(f"{portal}/me")
    assert page.locator("html").get_attribute("lang") == "es"


def test_the_security_page_on_a_phone(page: Any, live_portals: LivePortals,
                                      backend: str) -> None:
    """Adding an authenticator app on a phone: the key the portal made stays the same after a
    switch to Spanish, a wrong passphrase is explained in Spanish, and the right one turns the
    app on; turning it off asks for the passphrase and a code again. axe-core on each step."""
    import pyotp

    portal = live_portals.fresh(backend).base_url  # a fresh database: Marcus gets an app
    _sign_in(page, portal, "marcus", "river stone morning")
    page.get_by_role("link", name="Add an authenticator app (optional)").click()
    page.wait_for_url(f"{portal}/me/security/")
    assert_accessible(page)
    _fits(page)
    key = page.locator("code.secret").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{32}", key), key

    page.locator("p.language").get_by_role("link", name="Español", exact=True).click()
    _in_spanish(page, "Agregar una aplicación de autenticación")
    assert page.locator("code.secret").inner_text() == key  # the same key
    page.fill("#code", pyotp.TOTP(key).now())
    page.fill("#passphrase", "no es la frase")
    page.get_by_role("button", name="Activar").click()
    assert "Esa frase de contraseña no es correcta" in page.get_by_role("alert").inner_text()
    _in_spanish(page, "Agregar una aplicación de autenticación")
    assert page.locator("code.secret").inner_text() == key

    page.fill("#code", pyotp.TOTP(key).now())
    page.fill("#passphrase", "river stone morning")
    page.get_by_role("button", name="Activar").click()
    page.wait_for_url(f"{portal}/me?totp=added")
    assert "Su aplicación de autenticación está activada." in \
        page.get_by_role("status").inner_text()

    page.goto(f"{portal}/me/security/")
    _in_spanish(page, "Su aplicación de autenticación")
    assert page.locator("code.secret").count() == 0
    page.fill("#passphrase", "river stone morning")
    page.fill("#code", pyotp.TOTP(key).now())
    page.get_by_role("button", name="Desactivar la aplicación").click()
    page.wait_for_url(f"{portal}/me/security/?done=removed")
    assert "está desactivada" in page.get_by_role("status").inner_text()
    _in_spanish(page, "Agregar una aplicación de autenticación")
    assert page.locator("code.secret").inner_text() != key  # a new key for a new app
