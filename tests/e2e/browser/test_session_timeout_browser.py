"""Issue 18, on a phone in Chromium: a warning before the idle timeout with "Stay signed in",
and a consent form submitted after the timeout kept across sign-in, brought back filled in,
and not submitted by itself."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.auth.service import token_hash
from portal.db import models as m
from portal.db.engine import make_engine, make_session_factory
from tests.e2e.browser.conftest import PHONE, LivePortal, assert_accessible, dev_sign_in

pytestmark = pytest.mark.browser

FORM = "/participants/LP-1001/consents/new"


def _db(server: LivePortal) -> Any:
    return make_session_factory(make_engine(server.settings))


def _time_out(server: LivePortal, page: Any) -> None:
    """The session's last activity an hour ago, as if the phone had been put down."""
    token = {c["name"]: c["value"] for c in page.context.cookies()}["portal_session"]
    factory = _db(server)
    with factory.begin() as s:
        row = s.get(m.WebSession, token_hash(token))
        assert row is not None
        row.last_seen_at = row.last_seen_at - timedelta(hours=1)
    factory.kw["bind"].dispose()


def _consents(server: LivePortal) -> int:
    factory = _db(server)
    with factory() as s:
        count = s.scalar(select(func.count()).select_from(m.Consent)) or 0
    factory.kw["bind"].dispose()
    return count


def test_a_warning_before_the_timeout_and_stay_signed_in(
        page: Any, live_portal_server: LivePortal) -> None:
    server = live_portal_server
    page.set_viewport_size(PHONE)
    dev_sign_in(page, server.base_url, "Maria Lopez")
    page.clock.install()
    page.goto(server.base_url + FORM)
    warning = page.locator("#session-timeout")
    assert warning.is_hidden()
    # Fifteen idle minutes: the warning comes five minutes before the end.
    page.clock.run_for("09:50")
    assert warning.is_hidden()
    page.clock.run_for("00:20")
    assert warning.is_visible()
    assert warning.get_attribute("role") == "alert"
    assert "You will be signed out soon" in warning.inner_text()
    stay = page.get_by_role("button", name="Stay signed in")
    assert stay.is_visible()
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "Stay signed in"
    box = warning.bounding_box()
    assert box is not None and box["width"] <= PHONE["width"] and box["y"] >= 0
    assert_accessible(page)
    stay.click()
    warning.wait_for(state="hidden")
    # The session goes on: the page still opens.
    page.goto(server.base_url + FORM)
    assert page.url == server.base_url + FORM


def test_a_form_submitted_after_the_timeout_is_kept_across_sign_in(
        page: Any, live_portal_server: LivePortal) -> None:
    server = live_portal_server
    portal = server.base_url
    page.set_viewport_size(PHONE)
    dev_sign_in(page, portal, "Maria Lopez")
    page.goto(portal + FORM)
    kind = page.locator("input[name=kind]").first
    kind.check()
    recipient = page.locator("input[name=recipients]").nth(1)
    recipient.check()
    category = page.locator("input[name=categories]").nth(2)
    category.check()
    page.select_option("#expiry_event", index=1)
    chosen = {"kind": kind.get_attribute("value"),
              "recipient": recipient.get_attribute("value"),
              "category": category.get_attribute("value"),
              "event": page.input_value("#expiry_event")}
    before = _consents(server)

    _time_out(server, page)
    page.get_by_role("button", name="Save draft and review").click()
    page.wait_for_url(f"{portal}/auth/login?why=idle_timeout&kept=1")
    reason = page.locator("#sign-in-reason")
    assert "Your session ended because nothing happened for 15 minutes" in reason.inner_text()
    assert "Your form was kept." in reason.inner_text()
    assert_accessible(page)
    assert _consents(server) == before

    page.get_by_role("link", name="Sign in with Development sign-in (demo personas)").click()
    page.get_by_role("button", name="Sign in as Maria Lopez", exact=True).click()
    notice = page.locator("#kept-form-notice")
    notice.wait_for(state="visible")
    assert page.url == portal + FORM  # back on the form, ?kept=1 taken off the address
    assert "We kept what you entered before your session ended." in notice.inner_text()
    assert page.locator(f"input[name=kind][value='{chosen['kind']}']").is_checked()
    assert page.locator(f"input[name=recipients][value='{chosen['recipient']}']").is_checked()
    assert page.locator(f"input[name=categories][value='{chosen['category']}']").is_checked()
    assert page.locator("input[name=recipients]:checked").count() == 1
    assert page.input_value("#expiry_event") == chosen["event"]
    assert_accessible(page)
    # Not submitted by itself: no consent until the person presses the button.
    assert _consents(server) == before
    # Reloading does not bring it back twice.
    page.reload()
    assert page.locator("#kept-form-notice").is_hidden()
    assert page.locator("input[name=recipients]:checked").count() == 0
