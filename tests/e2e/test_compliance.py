"""The compliance console over HTTP, on SQLite and PostgreSQL: who gets in, audit search with
keyset pagination, event detail, integrity verification (and tampering found), break-glass
review, the accounting of disclosures (CSV and PDF) and oversight flags. Events come from real
portal actions, or from AuditLog.append with a controlled clock when times matter."""

from __future__ import annotations

import csv
import html
import io
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import TestClient
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from portal.compliance import disclosures, integrity, oversight, search
from portal.config import Settings
from portal.db import audit_chain as audit_service
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.audit_chain import AuditLog
from portal.db.types import utcnow
from portal.devtools.seed import generate_participants
from portal.domain.audit import AuditAction, NewAuditEvent, VerifyResult
from portal.domain.vocabulary import DataCategory
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services
from tests.e2e.pages import csrf

RENEE = "renee.walsh@harbor-lead.example"  # compliance officer
MARIA = "maria.lopez@harbor-lead.example"  # case manager
ALEX = "alex.rivera@hope-housing.example"  # housing navigator
LUIS = "luis.moreno@eastgate-clinic.example"  # clinician, not on LP-1003's care team
TOM = "tom.becker@riverton-probation.example"  # probation officer
JAMES = "james.carter@riverton-pd.example"  # police officer

PAGES = ["/compliance/audit", "/compliance/integrity", "/compliance/break-glass",
         "/compliance/disclosures", "/compliance/disclosures?participant=LP-1001",
         "/compliance/oversight"]
HTMX = {"HX-Request": "true", "HX-Target": "audit-results"}
# Record text and names the demo holds; no compliance page may ever show them.
CONTENT = ("Opioid", "buprenorphine", "Wound care", "Psychiatric evaluation", "Marcus",
           "Darnell")


def _seqs(page: str) -> list[int]:
    return [int(s) for s in re.findall(r'<tr data-seq="(\d+)"', page)]


def _events(factory: sessionmaker[Session], action: str) -> list[m.AuditEvent]:
    with factory() as s:
        return list(s.scalars(select(m.AuditEvent).where(m.AuditEvent.action == action)
                              .order_by(m.AuditEvent.seq)))


def _append(factory: sessionmaker[Session], log: AuditLog, event: NewAuditEvent) -> int:
    with factory.begin() as s:
        return log.append(s, event).seq


def _fixed(at: datetime) -> Callable[[], datetime]:
    return lambda: at


def _user_id(factory: sessionmaker[Session], email: str) -> int:
    with factory() as s:
        user = repo.staff_by_email(s, email)
        assert user is not None
        return user.id


def _participant_id(factory: sessionmaker[Session], public_id: str) -> uuid.UUID:
    with factory() as s:
        found = audit_service.participant_uuid(s, public_id)
        assert found is not None
        return found


def _break_glass(client: TestClient[Any], public_id: str = "LP-1003") -> None:
    token = csrf(client.get(f"/break-glass/{public_id}").text)
    granted = client.post(f"/break-glass/{public_id}", data={
        "reason": "found unresponsive", "emergency_nature": "suspected overdose",
        "facility": "Eastgate clinic", "minutes": "60", "_csrf_token": token},
        follow_redirects=False)
    assert granted.status_code in (302, 303)
    assert client.get(f"/participants/{public_id}").status_code == 200


# --- access ----------------------------------------------------------------------------------


def test_only_roles_allowed_to_view_the_audit_log_get_in(
        as_user: Callable[[str], TestClient[Any]]) -> None:
    officer = as_user(RENEE)
    manager = as_user(MARIA)
    for path in PAGES:
        assert officer.get(path).status_code == 200, path
        refused = manager.get(path)
        assert refused.status_code == 403, path
        assert "compliance officers" in refused.text
    assert officer.get("/compliance", follow_redirects=False).headers["location"] \
        == "/compliance/audit"
    assert manager.get("/compliance/disclosures.csv?participant=LP-1001").status_code == 403
    assert manager.get("/compliance/audit/main/1").status_code == 403
    token = csrf(manager.get("/staff").text)
    assert manager.post("/compliance/integrity/verify",
                        data={"_csrf_token": token}).status_code == 403
    # Compliance pages are never cached.
    assert "no-store" in officer.get("/compliance/audit").headers["cache-control"]


# --- audit search ----------------------------------------------------------------------------


def test_search_filters_narrow_the_events(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    assert as_user(ALEX).get("/participants/LP-1001").status_code == 200
    assert as_user(MARIA).get("/participants/LP-1002").status_code == 200
    _break_glass(as_user(LUIS))
    officer = as_user(RENEE)
    alex_id = _user_id(demo, ALEX)
    lp1001 = _participant_id(demo, "LP-1001")
    categories = len(DataCategory)
    with demo() as s:  # the categories Alex was shown (withheld ones are record:withhold)
        shown = s.scalar(select(func.count()).select_from(m.AuditEvent).where(
            m.AuditEvent.actor == ALEX, m.AuditEvent.action == "record:view"))
        withheld = s.scalar(select(func.count()).select_from(m.AuditEvent).where(
            m.AuditEvent.actor == ALEX, m.AuditEvent.action == "record:withhold"))
    assert shown and withheld and shown + withheld == categories

    by_participant = officer.get("/compliance/audit", params={
        "participant": "lp-1001", "action": "record:view"}).text
    seqs = _seqs(by_participant)
    with demo() as s:
        expected = s.scalars(select(m.AuditEvent.seq).where(
            m.AuditEvent.participant_id == lp1001, m.AuditEvent.action == "record:view")
            .order_by(m.AuditEvent.seq.desc())).all()
    assert seqs == list(expected) and len(seqs) == shown

    by_user = _seqs(officer.get("/compliance/audit", params={
        "user": ALEX, "action": "record:view"}).text)
    with demo() as s:
        rows = s.scalars(select(m.AuditEvent).where(m.AuditEvent.seq.in_(by_user))).all()
    assert len(rows) == shown
    assert {r.actor_user_id for r in rows} == {alex_id}

    by_org = _seqs(officer.get("/compliance/audit", params={
        "organization": "hope-housing", "action": "record:view"}).text)
    assert sorted(by_org) == sorted(by_user)

    denied = _seqs(officer.get("/compliance/audit", params={"decision": "deny",
                                                            "user": ALEX}).text)
    with demo() as s:
        decisions = set(s.scalars(select(m.AuditEvent.decision)
                                  .where(m.AuditEvent.seq.in_(denied))))
    assert denied and decisions == {"deny"}  # housing never sees SUD treatment

    today = utcnow().date()
    assert _seqs(officer.get("/compliance/audit", params={
        "since": (today + timedelta(days=1)).isoformat()}).text) == []
    assert _seqs(officer.get("/compliance/audit", params={
        "until": (today - timedelta(days=1)).isoformat()}).text) == []
    assert len(_seqs(officer.get("/compliance/audit", params={
        "since": today.isoformat(), "until": today.isoformat(), "user": ALEX,
        "action": "record:view"}).text)) == shown

    emergency = officer.get("/compliance/audit", params={"break_glass": "1"}).text
    with demo() as s:
        shown = s.scalars(select(m.AuditEvent).where(
            m.AuditEvent.seq.in_(_seqs(emergency)))).all()
    actions = {e.action for e in shown}
    assert "break_glass:grant:create" in actions and "record:view" in actions
    assert all(e.action.startswith("break_glass:") or "break_glass" in e.reasons
               for e in shown)
    assert {e.actor for e in shown} == {LUIS}

    # Unknown participant: nothing, said plainly. Bad filters: a 400 that says what to fix.
    missing = officer.get("/compliance/audit", params={"participant": "LP-9999"})
    assert missing.status_code == 200 and "There is no participant LP-9999" in missing.text
    for params, message in (({"since": "yesterday"}, "must look like 2026-11-28"),
                            ({"action": "record:peek"}, "Choose an action"),
                            ({"decision": "maybe"}, "permit or deny"),
                            ({"before": "abc"}, "does not exist"),
                            ({"since": "2026-02-02", "until": "2026-02-01"}, "after its start")):
        bad = officer.get("/compliance/audit", params=params)
        assert bad.status_code == 400 and message in bad.text, params

    # Every search is itself an audited read of the log.
    reads = _events(demo, "audit:event:view")
    assert any(e.detail.get("filters") == {"participant": "LP-1001", "action": "record:view"}
               and e.participant_id == lp1001 and e.actor == RENEE for e in reads)


def test_keyset_pagination_pages_through_every_event_once(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        settings: Settings) -> None:
    # 120 events at one instant: ties on occurred_at are broken by seq, never skipped.
    instant = utcnow() - timedelta(hours=1)
    log = AuditLog(settings, clock=lambda: instant)
    with demo.begin() as s:
        appended = [log.append(s, NewAuditEvent(
            action=AuditAction.PARTICIPANT_VIEW, actor="bulk-importer", decision="permit",
            detail={"i": i})).seq for i in range(120)]
    officer = as_user(RENEE)
    seen: list[int] = []
    url = "/compliance/audit?user=bulk-importer"
    pages = 0
    while url:
        page = officer.get(url, headers=HTMX)
        assert page.status_code == 200
        assert page.text.lstrip().startswith('<div id="audit-results">')
        assert "<html" not in page.text
        seen += _seqs(page.text)
        pages += 1
        more = re.search(r'rel="next" href="([^"]+)"', page.text)
        url = html.unescape(more.group(1)) if more else ""
    assert pages == 3
    assert seen == sorted(appended, reverse=True)
    # The same URL without htmx is the whole page.
    full = officer.get("/compliance/audit?user=bulk-importer")
    assert "<html" in full.text and "Search the audit log" in full.text
    # A page never uses OFFSET; the bound is the chain position (seq), the order of commit.
    for break_glass in (False, True):
        sql = str(search.search_query([], 5, 50, break_glass=break_glass).compile())
        assert "OFFSET" not in sql.upper() and "seq <" in sql and "occurred_at <=" not in sql


# --- one event ---------------------------------------------------------------------------------


def test_event_detail_shows_its_place_in_the_chain_and_escapes_every_field(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        services: Services) -> None:
    actor = "mallory\r\nFAKE 200 OK\x1b[31m<b>red</b>\u202e"
    with demo.begin() as s:
        event = services.audit.append(s, NewAuditEvent(
            action=AuditAction.RECORD_VIEW, actor=actor, decision="deny",
            reasons=("no_consent\n",), category="housing",
            detail={"note": "line one\nline two\x07", "n": 3}))
    officer = as_user(RENEE)
    page = officer.get(f"/compliance/audit/main/{event.seq}")
    assert page.status_code == 200
    body = page.text
    assert event.hash in body and event.prev_hash in body
    assert f"Event {event.seq} of {event.seq} in the" in body
    assert "mallory\\r\\nFAKE 200 OK\\x1b[31m&lt;b&gt;red&lt;/b&gt;\\u202e" in body
    assert "line one\\nline two\\x07" in body and "no_consent\\n" in body
    for raw in ("\x1b", "\r\nFAKE", "\u202e", "<b>red", "\x07"):
        assert raw not in body
    assert "Stored hash matches the stored content</dt><dd>Yes" in body
    # The search table escapes it the same way.
    row = officer.get("/compliance/audit", params={"action": "record:view"}).text
    assert "mallory\\r\\nFAKE" in row and "\x1b" not in row
    # The read is audited, naming the event.
    assert any(e.detail == {"view": "event", "chain": "main", "seq": event.seq}
               for e in _events(demo, "audit:event:view"))
    assert officer.get(f"/compliance/audit/main/{event.seq + 1000}").status_code == 404
    assert officer.get("/compliance/audit/other/1").status_code == 404


# --- integrity ---------------------------------------------------------------------------------


def _poll(client: TestClient[Any], fragment: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while 'data-status="running"' in fragment:
        assert 'hx-trigger="every 1s"' in fragment
        assert time.monotonic() < deadline, "verification did not finish"
        url = re.search(r'hx-get="([^"]+)"', fragment)
        assert url
        time.sleep(0.1)
        response = client.get(url.group(1), headers={"HX-Request": "true"})
        assert response.status_code == 200
        fragment = response.text
    assert 'hx-trigger' not in fragment  # polling stops once done
    return fragment


def test_verification_runs_in_the_background_and_finds_tampering(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        engine: Engine) -> None:
    assert as_user(ALEX).get("/participants/LP-1001").status_code == 200
    officer = as_user(RENEE)
    page = officer.get("/compliance/integrity")
    assert "has not been verified from this console yet" in page.text
    assert "Latest checkpoint" in page.text and "signature valid" in page.text
    token = csrf(page.text)
    started = officer.post("/compliance/integrity/verify", data={"_csrf_token": token},
                           headers={"HX-Request": "true"})
    assert started.status_code == 200
    assert started.text.lstrip().startswith('<div id="verify-progress"')
    done = _poll(officer, started.text)
    assert 'data-ok="true"' in done and "The log is intact" in done
    # The finished run's own result also replaces the "Last verification" section (out of
    # band), which said "not verified yet" when the page was loaded.
    last_section = done[done.index('<section id="last-verification"'):]
    assert last_section.startswith('<section id="last-verification" aria-labelledby="h-last" '
                                   'hx-swap-oob="true">')
    assert "<strong>Intact</strong>" in last_section
    with demo() as s:
        stored = s.scalars(select(m.AuditVerification)).one()
        assert stored.status == "done" and stored.ok and stored.first_bad_seq is None
        assert stored.events >= len(DataCategory) and stored.started_by == RENEE
    phases = [e.detail["phase"] for e in _events(demo, "audit:verify")]
    assert phases == ["started", "finished"]
    assert "<strong>Intact</strong>" in officer.get("/compliance/integrity").text

    # Someone rewrites an event in the database: the next run names it.
    with engine.begin() as connection:
        connection.execute(text("UPDATE audit_event SET actor = 'someone else' "
                                "WHERE chain = 'main' AND seq = 3"))
    token = csrf(officer.get("/compliance/integrity").text)
    # Without JavaScript: post, redirect to the run's page, which offers a refresh link.
    posted = officer.post("/compliance/integrity/verify", data={"_csrf_token": token},
                          follow_redirects=False)
    assert posted.status_code == 303
    run_url = posted.headers["location"]
    assert re.fullmatch(r"/compliance/integrity/runs/[0-9a-f-]{36}", run_url)
    full = officer.get(run_url)
    assert "<html" in full.text and 'id="verify-progress"' in full.text
    damaged = _poll(officer, officer.get(run_url, headers={"HX-Request": "true"}).text)
    assert 'data-ok="false"' in damaged and "altered" in damaged
    assert "first bad sequence number 3" in damaged
    assert 'href="/compliance/audit/main/3"' in damaged
    # Not the previous run's "Intact": this run's damage.
    last_section = damaged[damaged.index('<section id="last-verification"'):]
    assert "Damaged" in last_section and "Intact" not in last_section
    with demo() as s:
        last = s.scalars(select(m.AuditVerification).order_by(
            m.AuditVerification.started_at.desc())).first()
        assert last is not None and last.ok is False
        assert (last.first_bad_seq, last.damage) == (3, "altered")
    assert "Damaged" in officer.get("/compliance/integrity").text
    assert [e.detail["phase"] for e in _events(demo, "audit:verify")][-1] == "finished"
    assert _events(demo, "audit:verify")[-1].detail["first_bad_seq"] == 3


def test_a_verification_scan_does_not_lock_out_writers(
        demo: sessionmaker[Session], services: Services) -> None:
    """The scan reads in its own snapshot: accesses (which write audit events) go on."""
    reader, close = integrity._reading_sessions(demo)
    try:
        with reader() as scan:
            before = scan.scalar(select(func.count()).select_from(m.AuditEvent))
            with demo.begin() as access:  # would wait for the scan if it held a write lock
                services.audit.append(access, NewAuditEvent(action=AuditAction.AUTH_LOGOUT))
    finally:
        close()
    with demo() as s:
        assert s.scalar(select(func.count()).select_from(m.AuditEvent)) == (before or 0) + 1


def test_the_progress_fragment_polls_until_the_run_ends(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        engine: Engine) -> None:
    """A run still going (held open here) is polled every second, with a no-JS refresh link;
    once it ends the fragment stops polling and shows the result."""
    officer = as_user(RENEE)
    run = integrity.VerificationRun(id=uuid.uuid4(), database=engine.url.render_as_string(
        hide_password=True), started_at=utcnow(), started_by=RENEE, total=2000)
    assert integrity.RUNS.reserve(run) is run
    try:
        integrity.RUNS.advance(run.id, 500)
        url = f"/compliance/integrity/runs/{run.id}"
        polling = officer.get(url, headers={"HX-Request": "true"}).text
        assert 'hx-trigger="every 1s"' in polling and f'hx-get="{url}"' in polling
        assert "500 of about 2000" in polling and 'value="25"' in polling
        assert f'href="{url}"' in polling  # refresh without JavaScript
        # While it runs, another start returns the same run instead of a second one.
        token = csrf(officer.get("/compliance/integrity").text)
        again = officer.post("/compliance/integrity/verify", data={"_csrf_token": token},
                             follow_redirects=False)
        assert again.headers["location"] == url
        integrity.RUNS.finish(run.id, result=VerifyResult(ok=True, events=2000))
        ended = officer.get(url, headers={"HX-Request": "true"}).text
        assert "hx-trigger" not in ended and 'data-ok="true"' in ended
    finally:
        integrity.RUNS.drop(run.id)
    assert officer.get(f"/compliance/integrity/runs/{uuid.uuid4()}").status_code == 404


# --- break-glass review ------------------------------------------------------------------------


def test_break_glass_review_records_a_finding_and_is_audited(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        services: Services) -> None:
    _break_glass(as_user(LUIS))
    officer = as_user(RENEE)
    queue = officer.get("/compliance/break-glass")
    assert queue.status_code == 200
    with demo() as s:
        grant = s.scalars(select(m.BreakGlassGrant)).one()
    body = queue.text
    for shown in ("LP-1003", "Luis Moreno, NP", LUIS, "Eastgate Community Health Clinic",
                  "found unresponsive", "suspected overdose", "Eastgate clinic",
                  "Substance use"):
        assert shown in body, shown
    assert f'id="grant-{grant.id}"' in body
    for secret in CONTENT:
        assert secret not in body
    seen = re.search(r"<th scope=\"row\">Substance use[^<]*</th><td>(\d+)</td><td>(\d+)</td>",
                     body)
    assert seen and int(seen.group(1)) == 1 and int(seen.group(2)) >= 1

    token = csrf(body)
    url = f"/compliance/break-glass/{grant.id}"
    missing = officer.post(url, data={"finding": "not_justified", "notes": " ",
                                      "_csrf_token": token})
    assert missing.status_code == 400 and "not justified" in missing.text
    bogus = officer.post(url, data={"finding": "fine", "_csrf_token": token})
    assert bogus.status_code == 400
    with demo() as s:
        assert s.scalar(select(m.BreakGlassGrant.review_status)) == "pending"
    assert not _events(demo, "break_glass:grant:review")

    recorded = officer.post(url, data={"finding": "not_justified",
                                       "notes": "No emergency on record at the clinic.",
                                       "_csrf_token": token}, follow_redirects=False)
    assert recorded.status_code == 303
    renee = _user_id(demo, RENEE)
    with demo() as s:
        reviewed = s.get(m.BreakGlassGrant, grant.id)
        assert reviewed is not None
        assert reviewed.review_status == "not_justified"
        assert reviewed.reviewed_by_user_id == renee
        assert services.vault.ready(s).open(reviewed, "review_notes") == (
            "No emergency on record at the clinic.")
    [event] = _events(demo, "break_glass:grant:review")
    assert event.actor == RENEE and event.record_ids == [str(grant.id)]
    assert event.detail["finding"] == "not_justified"
    assert event.participant_id == grant.participant_id
    after = officer.get(recorded.headers["location"]).text
    assert "Your finding is recorded" in after and "Finding: not justified" in after
    assert "No emergency on record" in after
    assert "No emergency access is waiting for review" in \
        officer.get("/compliance/break-glass").text
    again = officer.post(url, data={"finding": "justified", "_csrf_token": token})
    assert again.status_code == 409 and "already been reviewed" in again.text
    assert officer.post(f"/compliance/break-glass/{uuid.uuid4()}", data={
        "finding": "justified", "_csrf_token": token}).status_code == 404


# --- accounting of disclosures ----------------------------------------------------------------


def test_disclosures_as_page_csv_and_pdf(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        services: Services) -> None:
    assert as_user(ALEX).get("/participants/LP-1001").status_code == 200
    lp1001 = _participant_id(demo, "LP-1001")
    formula = '=HYPERLINK("http://evil.example","click")'
    _append(demo, services.audit, NewAuditEvent(
        action=AuditAction.RECORD_VIEW, actor=formula, actor_organization="riverton-pd",
        participant_id=lp1001, category="progress", record_ids=("r1",), purpose="LEADMON",
        decision="permit", consent_ids=("c-1",), detail={"disclosers": ["cedar-recovery"]}))
    with demo() as s:
        expected = audit_service.disclosures(s, lp1001)
    alex_rows = [d for d in expected if d.recipient == ALEX]
    assert alex_rows and len(expected) == len(alex_rows) + 1

    officer = as_user(RENEE)
    page = officer.get("/compliance/disclosures", params={"participant": "LP-1001"})
    assert page.status_code == 200
    assert f"{len(expected)} disclosures of LP-1001" in page.text
    assert "Hope Housing Collaborative" in page.text
    assert "/compliance/disclosures.csv?participant=LP-1001" in page.text

    download = officer.get("/compliance/disclosures.csv", params={"participant": "LP-1001"})
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert 'filename="disclosures-LP-1001.csv"' in download.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0] == list(disclosures.DISCLOSURE_COLUMNS)
    assert len(rows) == 1 + len(expected)
    assert sum(1 for r in rows[1:] if r[1] == ALEX) == len(alex_rows)
    assert {r[2] for r in rows[1:] if r[1] == ALEX} == {"Hope Housing Collaborative"}
    [evil] = [r for r in rows[1:] if "HYPERLINK" in r[1]]
    assert evil[1] == "'" + formula
    assert evil[2] == "Riverton Police Department" and evil[4] == "Cedar Recovery Services"
    assert not any(cell[:1] in ("=", "+", "-", "@") for r in rows[1:] for cell in r)

    month = utcnow().date().replace(day=1).isoformat()
    pdf = officer.get("/compliance/disclosures.pdf", params={"participant": "LP-1001",
                                                             "since": month})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"] == "application/pdf"

    formats = [(e.detail["format"], e.participant_id)
               for e in _events(demo, "audit:disclosures:view")]
    assert formats == [("html", lp1001), ("csv", lp1001), ("pdf", lp1001)]

    assert officer.get("/compliance/disclosures.csv",
                       params={"participant": "LP-9999"}).status_code == 404
    assert officer.get("/compliance/disclosures.csv",
                       params={"participant": "LP-1001", "since": "soon"}).status_code == 400
    old = officer.get("/compliance/disclosures", params={"participant": "LP-1001",
                                                         "since": "2001-01-01"})
    assert old.status_code == 400 and "at most 6 years" in old.text
    assert officer.get("/compliance/disclosures.csv").status_code == 400
    future = officer.get("/compliance/disclosures.csv", params={
        "participant": "LP-1001", "until": "2001-01-01", "since": "2025-01-01"})
    assert future.status_code == 400


# --- oversight ---------------------------------------------------------------------------------


def _flag_link(page: str, kind: str, who: str) -> str:
    for item in re.findall(r'<li class="card" data-kind="([a-z_]+)">(.*?)</li>', page, re.S):
        if item[0] == kind and who in item[1]:
            link = re.search(r'<a href="([^"]+)"', item[1])
            assert link
            return html.unescape(link.group(1))
    raise AssertionError(f"no {kind} flag for {who}")


def test_oversight_charts_and_flags_link_to_their_events(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session],
        services: Services, settings: Settings) -> None:
    generate_participants(demo, services.vault, 22, seed=11)
    with demo() as s:
        generated = s.scalars(select(m.Participant.public_id).where(
            m.Participant.public_id.not_like("LP-10%"))).all()
    assert len(generated) == 22
    maria = as_user(MARIA)
    for public_id in generated:  # her own caseload: nothing unusual
        assert maria.get(f"/participants/{public_id}").status_code == 200
    # Hope Housing works with a few of them; the others are outside Alex's caseload.
    with demo() as s:
        outside = s.scalars(select(m.Participant.public_id).where(
            m.Participant.public_id.in_(generated), ~m.Participant.id.in_(
                select(m.CareTeamMember.participant_id).join(m.Organization).where(
                    m.Organization.slug == "hope-housing")))).all()
    assert len(outside) > 3
    alex = as_user(ALEX)
    for public_id in generated:
        alex.get(f"/participants/{public_id}")

    # Controlled times: a burst of denials two days ago, record views in the night before.
    day = datetime.combine(utcnow().date() - timedelta(days=2), datetime.min.time(), UTC)
    tom, james = _user_id(demo, TOM), _user_id(demo, JAMES)
    lp1001 = _participant_id(demo, "LP-1001")
    for i in range(12):
        log = AuditLog(settings, clock=_fixed(day + timedelta(hours=10, minutes=4 * i)))
        _append(demo, log, NewAuditEvent(
            action=AuditAction.RECORD_VIEW, actor=TOM, actor_user_id=tom,
            actor_organization="riverton-probation", participant_id=lp1001,
            category="sud_treatment", decision="deny", reasons=("no_consent",)))
    night = [day - timedelta(minutes=30), day + timedelta(hours=1), day + timedelta(hours=5)]
    for at in night:
        log = AuditLog(settings, clock=_fixed(at))
        _append(demo, log, NewAuditEvent(
            action=AuditAction.RECORD_VIEW, actor=JAMES, actor_user_id=james,
            actor_organization="riverton-pd", participant_id=lp1001, category="progress",
            decision="permit", reasons=("consent",)))
    # A day-time view by the same officer is not part of the night.
    log = AuditLog(settings, clock=lambda: day + timedelta(hours=12))
    _append(demo, log, NewAuditEvent(
        action=AuditAction.RECORD_VIEW, actor=JAMES, actor_user_id=james,
        actor_organization="riverton-pd", participant_id=lp1001, category="progress",
        decision="permit"))

    officer = as_user(RENEE)
    page = officer.get("/compliance/oversight")
    assert page.status_code == 200
    body = page.text
    assert body.count("<svg") >= 3 and "Harbor LEAD Case Management" in body
    assert "style=" not in body
    assert re.search(r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="#',
                     body)

    assert not re.search(r'data-kind="many_participants".{0,400}' + re.escape(MARIA), body,
                         re.S)
    flag = body.split('data-kind="many_participants"')[1].split("</li>")[0]
    assert f"Opened {len(outside)} different participants outside their caseload" in flag
    many = officer.get(_flag_link(body, "many_participants", ALEX)).text
    with demo() as s:
        events = s.scalars(select(m.AuditEvent).where(
            m.AuditEvent.seq.in_(_seqs(many)))).all()
        opened = {s.get(m.Participant, e.participant_id).public_id  # type: ignore[union-attr]
                  for e in events}
    assert {(e.actor, e.action, e.decision, tuple(e.reasons)) for e in events} == {
        (ALEX, "participant:view", "deny", ("not_on_care_team",))}
    assert opened == set(outside) and f"See the {len(outside)} events" in flag

    burst = officer.get(_flag_link(body, "denial_burst", TOM)).text
    with demo() as s:
        events = s.scalars(select(m.AuditEvent).where(
            m.AuditEvent.seq.in_(_seqs(burst)))).all()
    assert len(events) == 12
    assert {(e.actor, e.decision) for e in events} == {(TOM, "deny")}

    odd = officer.get(_flag_link(body, "odd_hours", JAMES)).text
    with demo() as s:
        times = sorted(s.scalars(select(m.AuditEvent.occurred_at).where(
            m.AuditEvent.seq.in_(_seqs(odd)))).all())
    assert times == night

    # Below the thresholds, nothing is flagged for those people.
    assert "data-kind=\"many_participants\"" not in officer.get(
        "/compliance/oversight", params={"threshold": "500"}).text
    assert officer.get("/compliance/oversight", params={"threshold": "lots"}).status_code \
        == 400
    assert any(e.detail.get("view") == "oversight" for e in _events(demo, "audit:event:view"))


def test_odd_hours_are_the_programs_local_night(demo: sessionmaker[Session],
                                                settings: Settings) -> None:
    # Two views in one UTC night, 03:00 and 05:00 UTC, two days ago.
    day = datetime.combine(utcnow().date() - timedelta(days=2), datetime.min.time(), UTC)
    james, lp1001 = _user_id(demo, JAMES), _participant_id(demo, "LP-1001")
    for hour in (3, 5):
        _append(demo, AuditLog(settings, clock=_fixed(day + timedelta(hours=hour))),
                NewAuditEvent(action=AuditAction.RECORD_VIEW, actor=JAMES, actor_user_id=james,
                              actor_organization="riverton-pd", participant_id=lp1001,
                              category="progress", decision="permit", reasons=("consent",)))

    def odd(timezone: str) -> list[oversight.Flag]:
        zoned = Settings(env="test", database_url=settings.database_url,
                         data_dir=settings.data_dir, data_key_file=settings.data_key_file,
                         timezone=timezone)
        with demo.begin() as s:
            officer = repo.staff_by_email(s, RENEE)
            assert officer is not None
            report = oversight.oversight(s, Services.build(zoned), officer, RequestMeta(RENEE))
        return [f for f in report.flags if f.kind == "odd_hours"]

    assert [f.count for f in odd("UTC")] == [2]
    # The flag uses the zone's offset today (CST -6: 21:00 and 23:00; CDT -5: 22:00, 00:00).
    offset = utcnow().astimezone(ZoneInfo("America/Chicago")).utcoffset()
    chicago = odd("America/Chicago")
    assert [f.count for f in chicago] == [1 if offset == timedelta(hours=-6) else 2]
    assert "America/Chicago" in chicago[0].description


# --- metadata, never contents -------------------------------------------------------------------


def test_compliance_pages_never_show_record_contents(
        as_user: Callable[[str], TestClient[Any]], demo: sessionmaker[Session]) -> None:
    maria = as_user(MARIA)
    assert "Opioid use disorder" in maria.get("/participants/LP-1001").text
    _break_glass(as_user(LUIS))
    officer = as_user(RENEE)
    record_views = _events(demo, "record:view")
    paths = [*PAGES, "/compliance/audit?participant=LP-1001",
             "/compliance/audit?participant=LP-1003&break_glass=1",
             "/compliance/break-glass?status=all",
             "/compliance/disclosures?participant=LP-1003",
             "/compliance/disclosures.csv?participant=LP-1001",
             *(f"/compliance/audit/main/{e.seq}" for e in record_views)]
    for path in paths:
        response = officer.get(path)
        assert response.status_code == 200, path
        for secret in CONTENT:
            assert secret not in response.text, (path, secret)


@pytest.mark.parametrize("value", ["2026-11-28", "2026-11-28T22:30", "2026-11-28T22:30:05Z"])
def test_period_filters_accept_dates_and_times(value: str) -> None:
    start = search.parse_when(value, "start", end=False)
    assert start is not None and start.tzinfo is not None
    end = search.parse_when(value, "end", end=True)
    assert end is not None
    assert (end - start) == (timedelta(days=1) if len(value) == 10 else timedelta(0))
