"""The LEAD story in Chromium, on SQLite and PostgreSQL, each person in their own browser:
a police officer refers someone; the case manager accepts, enrols, builds the care team, sets
an immediate need and captures a consent sharing housing and progress with Hope Housing; the
housing navigator sees housing and progress but not substance use treatment or mental health;
the consent is revoked; the navigator's next view shows those sections withheld; and the
compliance officer finds every step in the audit log.

Everything goes through the pages a person would use (links, forms and buttons), on a fresh
portal per database; axe-core checks each page on the way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from portal.db.types import utcnow
from tests.e2e.browser.conftest import LivePortals, assert_accessible, dev_sign_in

pytestmark = pytest.mark.browser

JAMES = "Officer James Carter"  # police officer, Riverton PD
MARIA = "Maria Lopez"  # case manager, Harbor LEAD Case Management
ALEX = "Alex Rivera"  # housing navigator, Hope Housing
RENEE = "Renee Walsh"  # compliance officer
HOUSING_NOTE = "Needs a bed tonight; on the list at Cedar Court"
PROGRESS_NOTE = "Came to the first two check-ins"
SUD_NOTE = "Started outpatient group for opioid use"
MH_NOTE = "Screened for anxiety; referred to counseling"


@pytest.fixture
def people(browser: Any) -> Iterator[dict[str, Any]]:
    """One browser context (own cookies) per person, each with one page."""
    contexts = {name: browser.new_context() for name in (JAMES, MARIA, ALEX, RENEE)}
    try:
        yield {name: context.new_page() for name, context in contexts.items()}
    finally:
        for context in contexts.values():
            context.close()


def _section(page: Any, category: str) -> Any:
    return page.locator(f"section.category:has(h2#h-{category})")


def _add_note(page: Any, category: str, title: str, body: str) -> None:
    page.select_option("#category", category)
    page.fill("#title", title)
    page.fill("#body", body)
    page.get_by_role("button", name="Save note").click()
    page.wait_for_url(re.compile(r".*/participants/LP-[0-9A-Z-]+(#saved)?$"))
    assert body in _section(page, category).inner_text()


def test_referral_to_revocation_in_the_audit_log(people: dict[str, Any],
                                                 live_portals: LivePortals,
                                                 backend: str) -> None:
    portal = live_portals.fresh(backend).base_url
    james, maria, alex, renee = (people[n] for n in (JAMES, MARIA, ALEX, RENEE))

    # 1. The officer refers a person met on the street, with the minimum needed to find them.
    dev_sign_in(james, portal, JAMES)
    james.goto(f"{portal}/referrals/")
    assert_accessible(james)
    james.get_by_label("Social contact").check()
    james.fill("#given", "Dana")
    james.fill("#family", "Whitfield")
    james.fill("#born", "1990-05-06")
    james.fill("#where", "Outside the library most mornings")
    james.get_by_role("button", name="Send referral").click()
    assert "Dana Whitfield" in james.content() and "pending" in james.content()

    # 2. The case manager accepts and enrols; the care team gets Hope Housing.
    dev_sign_in(maria, portal, MARIA)
    maria.goto(f"{portal}/referrals/")
    assert_accessible(maria)
    referral = maria.locator("li, article, tr").filter(has_text="Dana Whitfield").last
    referral.get_by_role("button", name="Accept and enrol").click()
    maria.wait_for_url(re.compile(r".*/participants/LP-[0-9A-Z-]+/care-team\?done=enrolled$"))
    found = re.search(r"/participants/(LP-[0-9A-Z]{4}-[0-9A-Z]{4})/care-team", maria.url)
    assert found
    pid = found.group(1)
    assert_accessible(maria)
    maria.select_option("#organization", "hope-housing")
    maria.get_by_role("button", name="Add to the care team").click()
    assert "Hope Housing" in maria.locator("table").inner_text()
    maria.get_by_role("link", name="Issue a sign-in code for the participant").click()
    maria.get_by_role("button", name="Sign them out and issue a code").click()
    assert re.search(r"[A-Z0-9]{4}-[A-Z0-9]{4}", maria.locator("code.secret").inner_text())
    assert_accessible(maria)

    # The officer learns only that the referral was accepted.
    james.goto(f"{portal}/referrals/")
    assert "accepted" in james.content() and pid not in james.content()
    assert james.goto(f"{portal}/participants/{pid}").status == 404

    # 3. Notes in four categories and an immediate need, from the participant page.
    maria.goto(f"{portal}/participants/{pid}")
    _add_note(maria, "housing", "Shelter", HOUSING_NOTE)
    _add_note(maria, "progress", "Check-ins", PROGRESS_NOTE)
    _add_note(maria, "sud_treatment", "Treatment", SUD_NOTE)
    _add_note(maria, "mental_health", "Screening", MH_NOTE)
    maria.get_by_text("Add a goal").click()
    maria.select_option("#goal-domain", "shelter")
    maria.fill("#goal-summary", "A bed tonight")
    maria.get_by_label("Immediate need (shelter tonight, food, utilities)").check()
    maria.get_by_role("button", name="Add goal").click()
    assert "A bed tonight" in maria.locator("section.urgent").inner_text()
    assert_accessible(maria)

    # Before any consent, being on the care team shows Hope nothing of Harbor's.
    dev_sign_in(alex, portal, ALEX)
    alex.goto(f"{portal}/participants/{pid}")
    assert HOUSING_NOTE not in alex.content()
    assert "Withheld" in _section(alex, "housing").inner_text()

    # 4. The consent, captured with the participant: housing and progress, to Hope Housing.
    maria.goto(f"{portal}/participants/{pid}/consents/new")
    assert_accessible(maria)
    maria.get_by_label("Multi-party release (no substance use treatment records)").check()
    maria.locator("fieldset", has_text="Who may share").get_by_label(
        "Harbor LEAD Case Management").check()
    maria.locator("fieldset", has_text="Who may receive it").get_by_label(
        "Hope Housing Collaborative").check()
    what = maria.locator("fieldset", has_text="What information")
    what.get_by_label("Housing", exact=True).check()
    what.get_by_label("Engagement and progress").check()
    maria.get_by_label("Coordinating care in LEAD").check()
    maria.fill("#expires_on", (utcnow().date() + timedelta(days=180)).isoformat())
    maria.get_by_role("button", name="Save draft and review").click()
    text = maria.locator("section.consent-text").inner_text()
    assert "Hope Housing Collaborative can see" in text
    assert_accessible(maria)
    consent_url = maria.url
    maria.fill("#signer_name", "Dana Whitfield")
    maria.get_by_label("I have read this (or had it read to me) and I agree.").check()
    # The participant also draws a signature on the device.
    pad = maria.locator("[data-signature-pad] canvas")
    box = pad.bounding_box()
    assert box is not None
    maria.mouse.move(box["x"] + 20, box["y"] + box["height"] * 0.7)
    maria.mouse.down()
    for step in range(1, 9):
        maria.mouse.move(box["x"] + 20 + step * 30, box["y"] + box["height"] * (
            0.3 if step % 2 else 0.7))
    maria.mouse.up()
    assert maria.locator("input[name=drawn_signature]").input_value().startswith(
        "data:image/png;base64,")
    maria.get_by_role("button", name="Sign and save").click()
    assert "Status: active" in maria.locator("main").inner_text()
    assert_accessible(maria)
    with maria.expect_download() as download:
        maria.get_by_role("link", name="Download the signed copy").click()
    signed_copy = Path(download.value.path()).read_bytes()
    assert signed_copy.startswith(b"%PDF") and b"/Subtype /Image" in signed_copy

    # 5. The housing navigator sees housing and progress, not treatment or mental health.
    alex.goto(f"{portal}/participants/{pid}")
    assert HOUSING_NOTE in _section(alex, "housing").inner_text()
    assert PROGRESS_NOTE in _section(alex, "progress").inner_text()
    for category in ("sud_treatment", "mental_health"):
        assert "Withheld" in _section(alex, category).inner_text()
    assert SUD_NOTE not in alex.content() and MH_NOTE not in alex.content()
    assert "A bed tonight" in alex.locator("section.urgent").inner_text()
    assert_accessible(alex)

    # 6. The participant takes it back (the case manager records it, with confirmation).
    maria.goto(consent_url)
    maria.fill("#how", "In person")
    maria.get_by_label(re.compile("The participant wants to take this consent back")).check()
    maria.get_by_role("button", name="Revoke consent").click()
    assert "Status: revoked" in maria.locator("main").inner_text()

    # 7. The navigator's very next view: housing and progress from Harbor are withheld.
    alex.goto(f"{portal}/participants/{pid}")
    for category in ("housing", "progress"):
        assert "Withheld" in _section(alex, category).inner_text()
    assert HOUSING_NOTE not in alex.content() and PROGRESS_NOTE not in alex.content()
    assert_accessible(alex)

    # 8. Each step is in the audit log, found from the compliance console.
    dev_sign_in(renee, portal, RENEE)
    renee.goto(f"{portal}/compliance/audit?participant={pid}")
    assert_accessible(renee)
    assert pid in renee.locator("#audit-results").inner_text()
    for actor, action, decision in (
            ("james.carter@riverton-pd.example", "referral:create", ""),
            ("maria.lopez@harbor-lead.example", "referral:decide", ""),
            ("maria.lopez@harbor-lead.example", "participant:enrol", ""),
            ("maria.lopez@harbor-lead.example", "care_team:member:add", ""),
            ("maria.lopez@harbor-lead.example", "auth:enrolment_code:issue", ""),
            ("maria.lopez@harbor-lead.example", "goal:create", ""),
            ("maria.lopez@harbor-lead.example", "consent:sign", ""),
            ("maria.lopez@harbor-lead.example", "consent:revoke", ""),
            ("alex.rivera@hope-housing.example", "record:view", "permit"),
            ("alex.rivera@hope-housing.example", "record:withhold", "deny")):
        # The referral comes before there is a participant to file it under.
        where = "" if action.startswith("referral:") else f"&participant={pid}"
        renee.goto(f"{portal}/compliance/audit?user={actor}&action={action}"
                   f"&decision={decision}{where}")  # "": any decision, or none
        rows = renee.locator("#audit-results tbody tr")
        assert rows.count() >= 1, f"no {action} {decision} by {actor} in the audit log"
        assert action in rows.first.inner_text() and actor in rows.first.inner_text()
