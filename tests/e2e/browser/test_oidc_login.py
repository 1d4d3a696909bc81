"""Staff sign-in in real Chromium against a real, certified OpenID provider (oidc-provider)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

import pytest

from tests.e2e.browser.conftest import PHONE, LivePortal, OidcProvider, assert_accessible

pytestmark = pytest.mark.browser


def _sign_in(page: Any, portal: str, provider: OidcProvider, account: str) -> None:
    page.goto(f"{portal}/auth/login")
    assert_accessible(page)
    page.get_by_role("link", name="Sign in with E2E Agency SSO").click()
    page.fill("input[name=login]", provider.accounts[account].login)
    page.fill("input[name=password]", provider.accounts[account].password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    if "/interaction/" in page.url:
        page.click("button[type=submit]")  # the provider's consent page


def test_staff_sign_in_and_out_with_a_real_provider(
        page: Any, live_portal_server: LivePortal, oidc_provider: OidcProvider,
        backend: str) -> None:
    portal = live_portal_server.base_url
    _sign_in(page, portal, oidc_provider, "case_manager")
    page.wait_for_url(f"{portal}/staff")
    assert page.get_by_role("heading", level=1).inner_text() == "Caseload"
    assert "Harbor LEAD Case Management" in page.content()
    assert "case manager" in page.content()
    assert_accessible(page)
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["portal_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"

    page.get_by_role("button", name="Sign out").click()
    page.click("button[name=logout][value=yes]")  # the provider's end-session confirmation
    page.wait_for_url(f"{portal}/**")
    assert "portal_session" not in {c["name"] for c in page.context.cookies()}
    page.goto(f"{portal}/staff")
    assert page.url.startswith(f"{portal}/auth/login")


def test_a_user_without_a_mapped_role_is_told_what_to_do(
        page: Any, live_portal: str, oidc_provider: OidcProvider) -> None:
    _sign_in(page, live_portal, oidc_provider, "no_role")
    page.wait_for_url(f"{live_portal}/auth/callback/**")
    assert page.get_by_role("heading", level=1).inner_text() == "No access to the portal"
    assert "administrator" in page.content()
    assert_accessible(page)
    assert "portal_session" not in {c["name"] for c in page.context.cookies()}


def test_demo_persona_sign_in_through_the_development_provider(
        page: Any, live_portal: str) -> None:
    """The demo's built-in provider goes through exactly the same relying-party code."""
    page.goto(f"{live_portal}/auth/login")
    page.get_by_role("link", name="Sign in with Development sign-in (demo personas)").click()
    assert "demo personas" in page.content()
    assert_accessible(page)
    page.get_by_role("button", name="Sign in as Maria Lopez").click()
    page.wait_for_url(f"{live_portal}/staff")
    assert page.get_by_role("heading", level=1).inner_text() == "Caseload"
    assert "Maria Lopez" in page.content()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{live_portal}/**")
    page.goto(f"{live_portal}/staff")
    assert page.url.startswith(f"{live_portal}/auth/login")


def test_a_sign_in_opened_in_another_browser_signs_nobody_in(
        browser: Any, live_portal_server: LivePortal, oidc_provider: OidcProvider,
        backend: str) -> None:
    """Issue 20, forced sign-in: a sign-in started in browser A and stopped before its last
    redirect is opened in browser B. B is not signed in as A's account, and B's own session
    goes on (RFC 9700 section 4.7)."""
    portal = live_portal_server.base_url
    a = browser.new_context(viewport=PHONE)
    b = browser.new_context(viewport=PHONE)
    try:
        # B: the housing navigator, signed in.
        page_b = b.new_page()
        _sign_in(page_b, portal, oidc_provider, "housing_navigator")
        page_b.wait_for_url(f"{portal}/staff")
        assert "Hana Ito" in page_b.content()
        session_b = {c["name"]: c["value"] for c in b.cookies()}["portal_session"]

        # A: the case manager's sign-in, stopped at the redirect back to the portal.
        page_a = a.new_page()
        stopped: list[str] = []

        def stop(route: Any) -> None:
            """A's form posts to the provider, with its redirects followed here (a browser's
            own redirect hops cannot be intercepted), up to the one back to the portal."""
            response = route.fetch(max_redirects=0)
            while 300 <= response.status < 400:
                target = urljoin(response.url, response.headers["location"])
                if target.startswith(f"{portal}/auth/callback/"):
                    stopped.append(target)
                    route.fulfill(status=200, content_type="text/plain", body="stopped")
                    return
                response = a.request.get(target, max_redirects=0)
            route.fulfill(response=response)

        page_a.route(lambda url: url.startswith(oidc_provider.issuer),
                     lambda route: stop(route) if route.request.method == "POST"
                     else route.continue_())
        _sign_in(page_a, portal, oidc_provider, "case_manager")
        page_a.wait_for_load_state("networkidle")
        assert len(stopped) == 1 and "code=" in stopped[0] and "state=" in stopped[0]
        assert "portal_login" in {c["name"] for c in a.cookies()}

        # B opens A's callback address.
        response = page_b.goto(stopped[0])
        assert response is not None and response.status == 400
        assert page_b.get_by_role("heading", level=1).inner_text() == "Sign-in did not work"
        assert "not started in this browser" in page_b.content()
        assert_accessible(page_b)
        assert {c["name"]: c["value"] for c in b.cookies()}["portal_session"] == session_b
        page_b.goto(f"{portal}/staff")
        assert page_b.url == f"{portal}/staff"
        assert "Hana Ito" in page_b.content() and "Casey Morgan" not in page_b.content()
    finally:
        a.close()
        b.close()
