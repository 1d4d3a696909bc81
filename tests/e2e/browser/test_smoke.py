"""Smoke tests of the browser harness: the live portal in Chromium, axe-core, and the live
portal on each database backend. The OpenID provider is tested through the portal, by signing in
with it (test_oidc_login.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.browser.conftest import DESKTOP, PHONE, LivePortal, OidcProvider

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_landing_page_in_chromium_is_accessible(
    page: Any, live_portal: str, viewport: dict[str, int],
    assert_accessible: Callable[..., None],
) -> None:
    page.set_viewport_size(viewport)
    response = page.goto(f"{live_portal}/")
    assert response is not None and response.status == 200
    # Checked under the real policy: a blocked script or style would be a console error.
    assert "script-src 'self'" in response.headers["content-security-policy"]
    heading = page.get_by_role("heading", level=1)
    assert heading.inner_text() == "Sharing what helps, and only what is allowed"
    assert page.get_by_role("link", name="Staff sign-in").is_visible()
    # Usable on a phone: nothing wider than the screen.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= viewport["width"]
    assert page.evaluate("() => typeof window.htmx") == "object"
    assert_accessible(page)


def test_landing_page_has_no_browser_console_errors(page: Any, live_portal: str) -> None:
    """Content-Security-Policy violations and failed loads show as console errors."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_portal}/")
    page.wait_for_load_state("networkidle")
    assert errors == []


def test_live_portal_runs_on_each_backend(
    backend: str, live_portal_server: LivePortal, oidc_provider: OidcProvider
) -> None:
    assert live_portal_server.backend == backend
    assert live_portal_server.settings.database_url.startswith(
        "sqlite" if backend == "sqlite" else "postgresql")
    assert live_portal_server.settings.oidc_providers_file is not None
    providers = live_portal_server.settings.oidc_providers_file.read_text()
    assert oidc_provider.issuer in providers
    health = httpx.get(f"{live_portal_server.base_url}/healthz", timeout=5)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
