"""The core forms with JavaScript turned off in Chromium (plain form posts, full pages):
referral, accepting it, the care team and sign-in code, consent capture, signing and
revocation, and suspending and reinstating a user. The caseload, notes, goals, "Why?" and
break-glass are in test_workspace_browser.py."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from portal.db.types import utcnow
from tests.e2e.browser.conftest import DESKTOP, LivePortal, dev_sign_in

pytestmark = pytest.mark.browser


@pytest.fixture
def no_js(browser: Any) -> Iterator[Any]:
    """A new page in its own context with JavaScript disabled."""
    contexts = []

    def page() -> Any:
        context = browser.new_context(java_script_enabled=False, viewport=DESKTOP)
        contexts.append(context)
        return context.new_page()

    yield page
    for context in contexts:
        context.close()


def test_referral_care_team_consent_and_admin_forms_work_without_javascript(
        no_js: Any, live_portal_server: LivePortal) -> None:
    portal = live_portal_server.base_url
    family = f"Nojs{uuid.uuid4().hex[:6]}"

    james = no_js()
    dev_sign_in(james, portal, "Officer James Carter")
    james.goto(f"{portal}/referrals/")
    james.get_by_label("Social contact").check()
    james.fill("#given", "Robin")
    james.fill("#family", family)
    james.fill("#where", "Bus shelter on 5th")
    james.get_by_role("button", name="Send referral").click()
    assert f"Robin {family}" in james.content() and "pending" in james.content()

    maria = no_js()
    dev_sign_in(maria, portal, "Maria Lopez")
    maria.goto(f"{portal}/referrals/")
    referral = maria.locator("li, article, tr").filter(has_text=f"Robin {family}").last
    referral.get_by_role("button", name="Accept and enrol").click()
    maria.wait_for_url(re.compile(r".*/participants/LP-[0-9A-Z-]+/care-team\?done=enrolled$"))
    found = re.search(r"/participants/(LP-[0-9A-Z]{4}-[0-9A-Z]{4})/care-team", maria.url)
    assert found
    pid = found.group(1)
    maria.select_option("#organization", "hope-housing")
    maria.get_by_role("button", name="Add to the care team").click()
    assert "Hope Housing" in maria.locator("table").inner_text()
    maria.get_by_role("link", name="Issue a sign-in code for the participant").click()
    maria.get_by_role("button", name="Sign them out and issue a code").click()
    assert re.search(r"[A-Z0-9]{4}-[A-Z0-9]{4}", maria.locator("code.secret").inner_text())

    # A consent, captured, signed and then revoked with plain posts (no drawing pad shown).
    maria.goto(f"{portal}/participants/{pid}/consents/new")
    maria.get_by_label("Multi-party release (no substance use treatment records)").check()
    maria.locator("fieldset", has_text="Who may share").get_by_label(
        "Harbor LEAD Case Management").check()
    maria.locator("fieldset", has_text="Who may receive it").get_by_label(
        "Hope Housing Collaborative").check()
    maria.locator("fieldset", has_text="What information").get_by_label(
        "Housing", exact=True).check()
    maria.get_by_label("Coordinating care in LEAD").check()
    maria.fill("#expires_on", (utcnow().date() + timedelta(days=90)).isoformat())
    maria.get_by_role("button", name="Save draft and review").click()
    assert "Hope Housing Collaborative can see" in maria.locator(
        "section.consent-text").inner_text()
    assert not maria.locator("[data-signature-pad]").is_visible()
    maria.fill("#signer_name", f"Robin {family}")
    maria.get_by_label("I have read this (or had it read to me) and I agree.").check()
    maria.get_by_role("button", name="Sign and save").click()
    assert "Status: active" in maria.locator("main").inner_text()
    maria.fill("#how", "In person")
    maria.get_by_label(re.compile("The participant wants to take this consent back")).check()
    maria.get_by_role("button", name="Revoke consent").click()
    assert "Status: revoked" in maria.locator("main").inner_text()

    # The organization admin suspends a colleague, then reinstates them.
    olivia = no_js()
    dev_sign_in(olivia, portal, "Olivia Chen")
    olivia.goto(f"{portal}/admin")
    row = olivia.locator("tr", has_text="Dev Patel")
    row.get_by_role("link", name=re.compile("^Suspend")).click()
    olivia.get_by_role("button", name="Yes, suspend Dev Patel").click()
    row = olivia.locator("tr", has_text="Dev Patel")
    assert "Suspended" in row.inner_text()
    row.get_by_role("button", name=re.compile("^Reinstate")).click()
    row = olivia.locator("tr", has_text="Dev Patel")
    assert "Suspended" not in row.inner_text() and "Suspend" in row.inner_text()
