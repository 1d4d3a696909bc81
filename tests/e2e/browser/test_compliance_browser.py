"""The compliance console in real Chromium, on SQLite and PostgreSQL: axe-core finds no serious
or critical violation on any compliance page, the audit search updates in place with htmx,
a break-glass finding is recorded through the plain form, and integrity verification shows
its progress by htmx polling until the result is in.

The compliance officer signs in through the development provider. The live portal is shared by
the browser tests of a session, so nothing here depends on another test's data.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from portal.db import repositories as repo
from portal.db.engine import make_engine, make_session_factory
from portal.db.types import utcnow
from portal.domain.audit import Damage, VerifyResult
from portal.services import compliance as cs
from portal.services.access import RequestMeta
from portal.services.wiring import Services
from tests.e2e.browser.conftest import DESKTOP, LivePortal, assert_accessible

pytestmark = pytest.mark.browser

RENEE = "Renee Walsh"  # compliance officer, Harbor LEAD Case Management
SIGN_IN_REQUESTS = 5  # /auth/login, /auth/login/dev, the provider's page and post, callback
# Sessions reused by later tests of the same live portal (the sign-in rate limit allows about
# six sign-ins a minute from one address), keyed by portal URL, data directory and persona.
_SESSIONS: dict[tuple[str, str, str], list[Any]] = {}


def _sign_in(page: Any, portal: str, persona: str) -> None:
    for _ in range(3):
        response = page.goto(f"{portal}/auth/login")
        assert response is not None
        if response.status == 200:
            remaining = int(response.headers.get("ratelimit-remaining", SIGN_IN_REQUESTS))
            if remaining >= SIGN_IN_REQUESTS - 1:
                break
            time.sleep(int(response.headers.get("ratelimit-reset", 60)) + 1)
        else:
            assert response.status == 429, f"/auth/login answered {response.status}"
            time.sleep(61)
    else:
        pytest.fail("the sign-in rate limit did not reset")
    page.get_by_role("link", name="Sign in with Development sign-in (demo personas)").click()
    page.get_by_role("button", name=f"Sign in as {persona}", exact=True).click()
    # Staff land on their caseload; compliance officers on the console.
    page.wait_for_url(re.compile(rf"^{re.escape(portal)}/(staff|compliance/audit)$"))


def signed_in(page: Any, server: LivePortal, persona: str) -> None:
    portal = server.base_url
    key = (portal, str(server.settings.data_dir), persona)
    cookies = _SESSIONS.get(key)
    if cookies is not None:
        page.context.add_cookies(cookies)
        response = page.goto(f"{portal}/compliance/audit")
        if response is not None and response.status == 200 and \
                page.url == f"{portal}/compliance/audit":
            return
        page.context.clear_cookies()
    _sign_in(page, portal, persona)
    _SESSIONS[key] = page.context.cookies()


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

    # A real run from the button: the result replaces the progress in place.
    _go(page, f"{portal}/compliance/integrity")
    url = page.url
    set_marker(page)
    page.get_by_role("button", name="Verify the whole log").click()
    page.wait_for_selector('#verify-progress[data-status="done"]', timeout=60_000)
    assert marker_survived(page) and page.url == url
    assert "The log is intact" in page.locator("#verify-progress").inner_text()
    assert_accessible(page)
    _go(page, f"{portal}/compliance/integrity")
    assert "Intact" in page.locator("#last-result").inner_text()

    # A run held open here (the server runs in this process): the page polls every second
    # and shows the progress, then the result, without reloading.
    engine = make_engine(server.settings)
    run = cs.VerificationRun(id=uuid.uuid4(), database=engine.url.render_as_string(
        hide_password=True), started_at=utcnow(), started_by="renee.walsh@harbor-lead.example",
        total=1000)
    engine.dispose()
    assert cs.RUNS.reserve(run) is run
    try:
        _go(page, f"{portal}/compliance/integrity/runs/{run.id}")
        progress = page.locator("#verify-progress")
        assert progress.get_attribute("data-status") == "running"
        assert progress.get_by_role("link", name="Refresh to see the progress").is_visible()
        assert_accessible(page)
        set_marker(page)
        cs.RUNS.advance(run.id, 400)
        page.wait_for_function(
            "() => document.querySelector('#verify-progress progress')?.value === 40",
            timeout=10_000)
        cs.RUNS.finish(run.id, result=VerifyResult(ok=False, events=1000, first_bad_seq=7,
                                                   damage=Damage.ALTERED))
        page.wait_for_selector('#verify-progress[data-status="done"]', timeout=10_000)
        assert marker_survived(page), "polling reloaded the page"
        assert "first bad sequence number 7" in progress.inner_text()
        assert_accessible(page)
    finally:
        cs.RUNS.drop(run.id)
