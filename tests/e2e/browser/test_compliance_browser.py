"""The compliance console in real Chromium, on SQLite and PostgreSQL: axe-core finds no serious
or critical violation on any compliance page, the audit search updates in place with htmx,
a break-glass finding is recorded through the plain form, integrity verification shows
its progress by htmx polling until the result is in, then the last result and the latest
checkpoint; the accounting of disclosures downloads as CSV and PDF from the page's links, and a
burst of denials is flagged on the oversight page with a link to the events behind it.

The compliance officer signs in through the development provider. The live portal is shared by
the browser tests of a session, so nothing here depends on another test's data.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from portal.compliance import console, disclosures, integrity
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.engine import make_engine, make_session_factory
from portal.db.types import utcnow
from portal.domain.audit import Damage, VerifyResult
from portal.kernel.errors import Refused
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services
from tests.e2e.browser.conftest import (
    DESKTOP,
    PHONE,
    LivePortal,
    assert_accessible,
    dev_sign_in,
)
from tests.e2e.browser.conftest import signed_in as signed_in_as

pytestmark = pytest.mark.browser

RENEE = "Renee Walsh"  # compliance officer, Harbor LEAD Case Management
ALEX = "Alex Rivera"  # housing navigator, Hope Housing Collaborative (on LP-1001's care team)
# A court liaison: a justice role, which the role policy never lets use emergency access. No other
# browser test acts as her, so her denials here are the only ones on the shared portal.
LINDA = "linda.nguyen@riverton-court.example"
def signed_in(page: Any, server: LivePortal, persona: str) -> None:
    signed_in_as(page, server, persona, "/compliance/audit")


def _factory(server: LivePortal) -> tuple[sessionmaker[Session], Any]:
    engine = make_engine(server.settings)
    return make_session_factory(engine), engine


def _emergency_access(server: LivePortal) -> str:
    """A break-glass grant by the clinician on LP-1003, opened through the access service."""
    factory, engine = _factory(server)
    try:
        services = Services.build(server.settings, factory)
        with factory.begin() as s:
            user = repo.staff_by_email(s, "luis.moreno@eastgate-clinic.example")
            participant = repo.participant_by_public_id(s, "LP-1003")
            assert user is not None and participant is not None
            grant = services.access.grant_break_glass(
                s, user, participant, reason=f"browser test {uuid.uuid4().hex[:8]}",
                emergency_nature="suspected overdose", facility="Eastgate clinic",
                minutes=30, meta=RequestMeta(actor=user.email))
            return str(grant.id)
    finally:
        engine.dispose()


def _refused_emergency_access(server: LivePortal, attempts: int) -> None:
    """``attempts`` emergency-access requests by the court liaison on LP-1003, each refused by
    the access service (and audited as a denial) in its own transaction."""
    factory, engine = _factory(server)
    try:
        services = Services.build(server.settings, factory)
        for _ in range(attempts):
            with factory.begin() as s:
                user = repo.staff_by_email(s, LINDA)
                participant = repo.participant_by_public_id(s, "LP-1003")
                assert user is not None and participant is not None
                with pytest.raises(Refused):
                    services.access.grant_break_glass(
                        s, user, participant, reason="browser test", emergency_nature="none",
                        facility="court", minutes=30, meta=RequestMeta(actor=user.email))
    finally:
        engine.dispose()


def _viewed_by(browser: Any, server: LivePortal, persona: str, public_id: str) -> None:
    """The persona signs in in a browser of their own and opens the participant's page, which
    shows them records of other organizations (a disclosure)."""
    context = browser.new_context(viewport=DESKTOP)
    try:
        staff = context.new_page()
        dev_sign_in(staff, server.base_url, persona)
        _go(staff, f"{server.base_url}/participants/{public_id}")
        assert staff.locator("article.record").count() >= 1
    finally:
        context.close()


def _go(page: Any, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, url


def set_marker(page: Any) -> None:
    page.evaluate("() => { window.__marker = 1; }")


def marker_survived(page: Any) -> bool:
    return bool(page.evaluate("() => window.__marker === 1"))


def test_compliance_pages_are_accessible_and_work(
        page: Any, live_portal_server: LivePortal, backend: str) -> None:
    server = live_portal_server
    portal = server.base_url
    grant_id = _emergency_access(server)
    page.set_viewport_size(DESKTOP)
    signed_in(page, server, RENEE)

    # Audit search: the form updates the results in place (htmx) and pushes the URL.
    _go(page, f"{portal}/compliance/audit")
    assert page.get_by_role("heading", level=1).inner_text() == "Audit log"
    assert_accessible(page)
    set_marker(page)
    page.fill("#f-participant", "LP-1003")
    page.check("input[name=break_glass]")
    with page.expect_response(re.compile(r".*/compliance/audit\?.*participant=LP-1003.*")):
        page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r".*/compliance/audit\?.*participant=LP-1003.*"))
    rows = page.locator("#audit-results tbody tr")
    rows.first.wait_for()
    assert marker_survived(page), "the search reloaded the page instead of swapping results"
    assert "break_glass:grant:create" in page.locator("#audit-results").inner_text()
    assert_accessible(page)

    # Event detail, from the results.
    rows.first.locator("a").first.click()
    page.wait_for_url(re.compile(r".*/compliance/audit/main/\d+$"))
    assert page.locator("#hash").inner_text().strip()
    assert_accessible(page)

    # Break-glass review: the plain form records a finding.
    _go(page, f"{portal}/compliance/break-glass")
    grant = page.locator(f"#grant-{grant_id}")
    assert "suspected overdose" in grant.inner_text()
    assert_accessible(page)
    grant.get_by_label("Justified", exact=True).check()
    grant.get_by_role("button", name=re.compile("^Record the finding")).click()
    page.wait_for_url(re.compile(rf".*/compliance/break-glass\?status=all&done={grant_id}.*"))
    assert "Your finding is recorded" in page.content()
    assert "Finding: justified" in page.locator(f"#grant-{grant_id}").inner_text()
    assert_accessible(page)

    # Accounting of disclosures, and oversight charts.
    _go(page, f"{portal}/compliance/disclosures?participant=LP-1001")
    assert page.get_by_role("link", name="Download CSV").is_visible()
    assert_accessible(page)
    _go(page, f"{portal}/compliance/oversight")
    assert page.locator("svg[role=img]").count() >= 2
    assert_accessible(page)
    _go(page, f"{portal}/compliance/integrity")
    assert_accessible(page)


def test_integrity_verification_shows_progress_with_htmx(
        page: Any, live_portal_server: LivePortal, backend: str) -> None:
    server = live_portal_server
    portal = server.base_url
    page.set_viewport_size(DESKTOP)
    signed_in(page, server, RENEE)

    # A real run from the button: the result replaces the progress in place, and the "Last
    # verification" section shows this run's result without a reload (it said "not verified").
    _go(page, f"{portal}/compliance/integrity")
    before = page.get_by_role("region", name="Last verification").inner_text()
    url = page.url
    set_marker(page)
    page.get_by_role("button", name="Verify the whole log").click()
    page.wait_for_selector('#verify-progress[data-status="done"]', timeout=60_000)
    assert marker_survived(page) and page.url == url
    assert "The log is intact" in page.locator("#verify-progress").inner_text()
    after = page.get_by_role("region", name="Last verification").inner_text()
    assert "Intact" in after, (before, after)

    def events_checked(text: str) -> int:
        found = re.search(r"Events checked\s+(\d+)", text)
        return int(found.group(1)) if found else 0

    # This run read more of the log than any run shown before (the log only grows).
    assert events_checked(after) > events_checked(before), (before, after)
    assert "by renee.walsh@harbor-lead.example" in after
    assert marker_survived(page)
    assert_accessible(page)
    # The page shows the stored result of that run and the latest signed checkpoint.
    _go(page, f"{portal}/compliance/integrity")
    last = page.locator("#last-result").inner_text()
    assert "Intact" in last
    assert "by renee.walsh@harbor-lead.example" in last
    checked = re.search(r"Events checked\s+(\d+)", last)
    assert checked is not None and int(checked.group(1)) > 0, last
    checkpoint = page.get_by_role("region", name="Latest checkpoint").inner_text()
    covers = re.search(r"events 1 to (\d+) of the main chain \(the log now has (\d+)\)",
                       checkpoint)
    assert covers is not None, checkpoint
    assert 1 <= int(covers.group(1)) <= int(covers.group(2))
    assert "signature valid" in checkpoint and "not valid" not in checkpoint
    assert re.search(r"Head hash\s+[0-9a-f]{64}", checkpoint), checkpoint
    assert_accessible(page)

    # A run held open here (the server runs in this process): the page polls every second
    # and shows the progress, then the result, without reloading.
    engine = make_engine(server.settings)
    run = integrity.VerificationRun(id=uuid.uuid4(), database=engine.url.render_as_string(
        hide_password=True), started_at=utcnow(), started_by="renee.walsh@harbor-lead.example",
        total=1000)
    engine.dispose()
    assert integrity.RUNS.reserve(run) is run
    try:
        _go(page, f"{portal}/compliance/integrity/runs/{run.id}")
        progress = page.locator("#verify-progress")
        assert progress.get_attribute("data-status") == "running"
        assert progress.get_by_role("link", name="Refresh to see the progress").is_visible()
        assert_accessible(page)
        set_marker(page)
        integrity.RUNS.advance(run.id, 400)
        page.wait_for_function(
            "() => document.querySelector('#verify-progress progress')?.value === 40",
            timeout=10_000)
        integrity.RUNS.finish(run.id, result=VerifyResult(ok=False, events=1000, first_bad_seq=7,
                                                   damage=Damage.ALTERED))
        page.wait_for_selector('#verify-progress[data-status="done"]', timeout=10_000)
        assert marker_survived(page), "polling reloaded the page"
        assert "first bad sequence number 7" in progress.inner_text()
        assert_accessible(page)
    finally:
        integrity.RUNS.drop(run.id)


def test_accounting_of_disclosures_downloads_as_csv_and_pdf(
        page: Any, browser: Any, live_portal_server: LivePortal, backend: str) -> None:
    """The page's "Download CSV" and "Download PDF" links give the accounting as files: the CSV
    has the columns and a row for the housing navigator's view of Harbor LEAD's records."""
    server = live_portal_server
    portal = server.base_url
    _viewed_by(browser, server, ALEX, "LP-1001")
    page.set_viewport_size(DESKTOP)
    signed_in(page, server, RENEE)

    _go(page, f"{portal}/compliance/disclosures?participant=LP-1001")
    table = page.get_by_role("region", name=re.compile(r"disclosures? of LP-1001"))
    assert "Hope Housing Collaborative" in table.inner_text()
    assert_accessible(page)

    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == "disclosures-LP-1001.csv"
    rows = list(csv.reader(io.StringIO(download.path().read_text(encoding="utf-8"))))
    assert tuple(rows[0]) == disclosures.DISCLOSURE_COLUMNS
    housing = [r for r in rows[1:] if r[2] == "Hope Housing Collaborative"]
    assert housing, rows
    assert any(r[1] == "alex.rivera@hope-housing.example"
               and "Harbor LEAD Case Management" in r[4]
               and r[8] == "Participant's written consent" for r in housing), housing

    with page.expect_download() as info:
        page.get_by_role("link", name="Download PDF").click()
    download = info.value
    assert download.suggested_filename == "disclosures-LP-1001.pdf"
    pdf = download.path().read_bytes()
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF"), pdf[:40]


def test_oversight_flags_a_burst_of_denials_and_links_to_its_events(
        page: Any, live_portal_server: LivePortal, backend: str) -> None:
    """Nine refused emergency-access requests within the hour are no flag; the tenth is. The
    flag's link opens the audit search listing exactly the denials behind it."""
    server = live_portal_server
    portal = server.base_url
    page.set_viewport_size(DESKTOP)
    signed_in(page, server, RENEE)
    flag = page.locator("li.card[data-kind=denial_burst]").filter(has_text=LINDA)

    _refused_emergency_access(server, console.DENIAL_BURST - 1)
    _go(page, f"{portal}/compliance/oversight")
    assert page.get_by_role("heading", name="Unusual patterns").is_visible()
    assert flag.count() == 0

    _refused_emergency_access(server, 1)
    _go(page, f"{portal}/compliance/oversight")
    assert flag.count() == 1
    assert flag.get_by_role("heading", level=3).inner_text() == \
        f"Burst of refused attempts: {LINDA}"
    assert f"{console.DENIAL_BURST} refused access attempts" in flag.inner_text()
    assert_accessible(page)

    link = flag.get_by_role("link", name=re.compile(rf"^See the {console.DENIAL_BURST} events"))
    link.click()
    page.wait_for_url(re.compile(rf"^{re.escape(portal)}/compliance/audit\?.*decision=deny"))
    assert page.input_value("#f-user") == LINDA
    rows = page.locator("#audit-results tbody tr")
    assert rows.count() == console.DENIAL_BURST
    for i in range(console.DENIAL_BURST):
        cells = rows.nth(i).locator("td").all_inner_texts()
        assert cells[2].startswith("break_glass:grant:create"), cells
        assert cells[3:7] == ["deny", LINDA, "riverton-court", "LP-1003"], cells
        assert cells[8] == "no_role_permission", cells
    assert_accessible(page)


def test_a_reason_that_cannot_be_decrypted_shows_as_unavailable_on_a_phone(
        page: Any, live_portal_server: LivePortal) -> None:
    server = live_portal_server
    grant_id = _emergency_access(server)
    factory, engine = _factory(server)
    try:
        with factory.begin() as s:
            grant = s.get(m.BreakGlassGrant, uuid.UUID(grant_id))
            assert grant is not None
            grant.reason_enc = grant.facility_enc  # sealed for another column: does not open
    finally:
        engine.dispose()
    page.set_viewport_size(PHONE)
    signed_in(page, server, RENEE)
    _go(page, f"{server.base_url}/compliance/break-glass")
    card = page.locator(f"#grant-{grant_id}").inner_text()
    assert "Unavailable: this text cannot be decrypted." in card
    assert "suspected overdose" in card and "Eastgate clinic" in card
    assert_accessible(page)
