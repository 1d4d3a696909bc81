"""Participant self-service in Chromium at a phone-sized screen: sign in, my sharing, take a
consent back, ask for a change, who looked, Spanish; axe-core on every page."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.browser.conftest import PHONE, LivePortals, assert_accessible

pytestmark = pytest.mark.browser


def _fits(page: Any) -> None:
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]


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
