"""After "Sign out", Back in the browser shows no participant: pages are never kept (no-store),
so going back asks the portal again, which wants a sign-in."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.browser.conftest import LivePortal, dev_sign_in

pytestmark = pytest.mark.browser


def test_back_after_sign_out_shows_no_participant(page: Any,
                                                  live_portal_server: LivePortal) -> None:
    portal = live_portal_server.base_url
    page.context.clear_cookies()
    dev_sign_in(page, portal, "Maria Lopez")
    page.goto(f"{portal}/participants/LP-1001")
    assert "Marcus Reed" in page.get_by_role("heading", level=1).inner_text()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    assert "Marcus Reed" not in page.content()
    page.go_back()
    page.wait_for_load_state()
    assert "Marcus Reed" not in page.content(), page.url
