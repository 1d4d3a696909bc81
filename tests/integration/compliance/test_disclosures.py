"""The accounting of disclosures for one participant, and its CSV and PDF documents."""

from __future__ import annotations

import csv
import io
import re
import zlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.compliance import disclosures, reports
from portal.compliance.disclosures import DISCLOSURE_COLUMNS, DisclosureReport
from portal.db import audit_chain
from portal.db.types import utcnow
from portal.domain.audit import AuditAction, NewAuditEvent
from portal.kernel.errors import InvalidInput, NotFound
from portal.workspace.service import participant_page
from tests.integration.compliance.conftest import ALEX, META, RENEE, Demo, Viewer


def _report(world: Demo, public_id: str = "LP-1001", since: str = "", until: str = "",
            output: str = "html") -> DisclosureReport:
    with world.as_staff(RENEE) as (session, renee):
        return disclosures.disclosure_report(session, world.services, renee, META, public_id,
                                             since, until, output=output)


def _day(days_ago: int) -> datetime:
    return datetime.combine(utcnow().date() - timedelta(days=days_ago),
                            datetime.min.time(), tzinfo=UTC) + timedelta(hours=10)


def test_real_views_by_another_agency_are_listed(world: Demo) -> None:
    with world.as_staff(ALEX) as (session, alex):
        participant_page(session, world.services, alex, "LP-1001", META)
    views = [e for e in world.events("record:view", actor=ALEX) if e.record_ids]
    assert views

    report = _report(world, "lp-1001 ")
    assert report.public_id == "LP-1001" and report.generated_by == RENEE
    assert report.rows, "Alex was shown information other agencies wrote"
    for row in report.rows:
        cells = dict(zip(DISCLOSURE_COLUMNS, row, strict=True))
        assert (cells["Recipient"], cells["Recipient organization"], cells["Recipient role"],
                cells["Purpose"], cells["Basis"]) == (
            ALEX, "Hope Housing Collaborative", "housing navigator", "LEAD care coordination",
            "Participant's written consent")
        assert "Hope Housing Collaborative" not in row[4]  # one's own records are no disclosure
        assert row[9]  # the consent it was under
        # ... and, for the PDF, described in words: kind, recipient, date signed.
        for consent_id in row[9].split(", "):
            assert re.fullmatch(r"[A-Z0-9].* to .*Hope Housing Collaborative.*, signed "
                                r"\d{4}-\d\d-\d\d \(version \d+\)",
                                report.consents[consent_id]), report.consents
    assert len(report.times) == len(report.rows)
    assert all(t.tzinfo is not None for t in report.times)
    (event,) = world.events("audit:disclosures:view")
    assert (event.actor, event.participant_id, event.purpose) == (
        RENEE, world.participant_id("LP-1001"), "HOPERAT")
    assert event.detail == {"format": "html", "since": None, "until": None,
                            "count": len(report.rows)}


def test_each_basis_purpose_and_period(world: Demo, alex_view: Viewer) -> None:
    world.append(alex_view(detail={"disclosers": ["cedar-recovery", "hope-housing"]},
                           record_ids=("r1", "r2")), at=_day(10))
    world.append(alex_view(consent_ids=(), reasons=("break_glass",), purpose="ETREAT",
                           detail={"disclosers": "northside-bh", "break_glass_grant": "g-1"}),
                 at=_day(5))
    world.append(alex_view(consent_ids=(), purpose="SOMETHING", category="sud_treatment",
                           detail={"disclosers": ["unknown-org"]}), at=_day(2))
    # Not disclosures: refused, or the agency's own information.
    world.append(alex_view(decision="deny"), at=_day(3))
    world.append(alex_view(detail={"disclosers": ["hope-housing"]}), at=_day(3))

    rows = _report(world).rows
    assert [r[1:] for r in rows] == [
        [ALEX, "Hope Housing Collaborative", "housing navigator", "Cedar Recovery Services",
         "Housing", "2", "LEAD care coordination", "Participant's written consent",
         "consent-1"],
        [ALEX, "Hope Housing Collaborative", "housing navigator",
         "Northside Behavioral Health", "Housing", "1", "a medical emergency",
         "Medical emergency (42 CFR 2.51)", "g-1"],
        [ALEX, "Hope Housing Collaborative", "housing navigator", "unknown-org",
         "Substance use treatment", "1", "SOMETHING", "No basis recorded (follow up)", ""]]
    assert rows[0][0] == _day(10).strftime("%Y-%m-%d %H:%M")

    since, until = (utcnow().date() - timedelta(days=6)).isoformat(), \
        (utcnow().date() - timedelta(days=5)).isoformat()
    narrowed = _report(world, since=since, until=until, output="csv")
    assert [r[9] for r in narrowed.rows] == ["g-1"]  # the end day is included
    assert (narrowed.since.isoformat(), narrowed.until.isoformat()) == (since, until)  # type: ignore[union-attr]
    assert world.events("audit:disclosures:view")[-1].detail == {
        "format": "csv", "since": since, "until": until, "count": 1}


@pytest.mark.parametrize(("since", "until", "message"), [
    ("28/11/2026", "", "The start date must be a date like 2026-11-28."),
    ("", "tomorrow", "The end date must be a date like 2026-11-28."),
    ("2026-02-02", "2026-02-01", "The end of the period must be after its start."),
    ("2001-01-01", "", "An accounting of disclosures covers at most 6 years"),
])
def test_a_bad_period_is_refused_and_nothing_is_logged(world: Demo, since: str, until: str,
                                                       message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)) as caught:
        _report(world, since=since, until=until)
    assert str(caught.value).endswith(".")
    assert world.events("audit:disclosures:view") == []


def test_an_unknown_participant_is_not_found(world: Demo) -> None:
    with pytest.raises(NotFound, match="LP-9999"):
        _report(world, "lp-9999")
    assert world.events("audit:disclosures:view") == []


# --- documents -------------------------------------------------------------------------------


def _document(rows: list[list[str]], **changes: object) -> DisclosureReport:
    values: dict[str, object] = {
        "public_id": "LP-1001", "since": None, "until": None,
        "generated_at": datetime(2026, 3, 2, 9, 30, tzinfo=UTC), "generated_by": RENEE,
        "rows": rows}
    values.update(changes)
    return DisclosureReport(**values)  # type: ignore[arg-type]


ROW = ["2026-03-01 10:00", "=HYPERLINK(\"x\")", "Hope Housing", "housing navigator",
       "Cedar\nRecovery", "Housing", "2", "LEAD care coordination",
       "Participant's written consent", "@consent-1"]


def test_shown_rows_are_escaped() -> None:
    (shown,) = _document([ROW]).shown_rows
    assert shown[4] == "Cedar\\nRecovery" and shown[1] == ROW[1]


def test_the_csv_is_spreadsheet_safe() -> None:
    text = reports.disclosures_csv(_document([ROW]))
    lines = text.split("\r\n")
    assert lines[0] == ",".join(DISCLOSURE_COLUMNS)
    assert list(csv.reader(io.StringIO(text))) == [
        list(DISCLOSURE_COLUMNS),
        ["2026-03-01 10:00", "'=HYPERLINK(\"x\")", *ROW[2:4], "Cedar\\nRecovery", *ROW[5:9],
         "'@consent-1"]]
    assert lines[1] == ('2026-03-01 10:00,"\'=HYPERLINK(""x"")",Hope Housing,housing navigator,'
                        "Cedar\\nRecovery,Housing,2,LEAD care coordination,"
                        "Participant's written consent,'@consent-1")
    assert lines[2] == "" and len(lines) == 3
    assert reports.disclosures_csv(_document([])).count("\r\n") == 1


def _pdf_text(data: bytes, *, joined: bool = True) -> str | list[str]:
    """The text drawn on the pages (fpdf deflates each page's content stream)."""
    text = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            content = zlib.decompress(stream)
        except zlib.error:
            continue
        text.extend(re.findall(rb"\((.*?)(?<!\\)\)\s*Tj", content, re.S))
    lines = [t.decode("latin-1").replace("\\(", "(").replace("\\)", ")") for t in text]
    return " ".join(lines) if joined else lines


def _pdf_lines(data: bytes) -> list[str]:
    """The text drawn on the pages, one string per line drawn."""
    return _pdf_text(data, joined=False)  # type: ignore[return-value]


def test_the_pdf_has_the_header_period_and_rows() -> None:
    report = _document([ROW, [*ROW[:1], "Zoë ✓", *ROW[2:]]],
                       since=datetime(2026, 1, 1).date(),  # noqa: DTZ001
                       until=datetime(2026, 3, 1).date())  # noqa: DTZ001
    data = reports.render_disclosures_pdf(report)
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    text = _pdf_text(data)
    assert "Accounting of disclosures for LP-1001" in text
    assert "Period: 2026-01-01 to 2026-03-01." in text
    assert f"Generated 2026-03-02 09:30 UTC by {RENEE}." in text
    assert "Hope Housing" in text and "Cedar\\\\nRecovery" in text  # escaped, not a newline
    assert "Zo\xeb ?" in text  # outside Latin-1: replaced, never an error
    assert "Consent or emergency" in text
    assert "No disclosures in this period." not in text


LONG_EMAIL = "maria.lopez-hernandez.case-management@harbor-lead-case-management.example"
CONSENT_ID = "0b7f1c2e-5a4d-4c3b-9e8f-1a2b3c4d5e6f"


def test_the_pdf_reads_naturally() -> None:
    """Issue 18: left-aligned text (never stretched), long addresses broken at their
    punctuation, consents described in words, local times with the zone named, page numbers."""
    zone = ZoneInfo("America/Los_Angeles")
    rows = [["2026-03-01 10:00", LONG_EMAIL + LONG_EMAIL, "Hope Housing", "housing navigator",
             "Cedar Recovery", "Housing", "2", "LEAD care coordination",
             "Participant's written consent", CONSENT_ID]] * 40
    report = _document(rows, times=[datetime(2026, 3, 1, 10, 0, tzinfo=UTC)] * 40,
                       consents={CONSENT_ID: "42 CFR Part 2 consent to Hope Housing "
                                             "Collaborative, signed 2026-02-14 (version 1)"})
    data = reports.render_disclosures_pdf(report, zone)
    # No word spacing stretched to justify a line (fpdf's Tw operator with a non-zero value).
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            content = zlib.decompress(stream)
        except zlib.error:
            continue
        assert not re.search(rb"[1-9][0-9.]* Tw", content), "justified (stretched) text"
    lines = _pdf_lines(data)
    text = " ".join(lines)
    assert "Times are in the America/Los_Angeles time zone." in text
    assert "Generated 2026-03-02 01:30 PST by" in text
    assert "1. 2026-03-01 02:00 PST: Housing" in text
    assert "UTC" not in text
    assert "\\n" not in text  # the lines wrapped here are lines, not escaped newlines
    assert "42 CFR Part 2 consent to Hope Housing Collaborative, signed 2026-02-14 (version 1)" \
        in text
    assert CONSENT_ID not in text
    # The address too long for its line breaks after its punctuation, not inside a word.
    email_lines = [line for line in lines if "harbor-lead" in line or "maria." in line]
    assert email_lines
    for line in email_lines:
        assert line[-1] in "@.-_" or line.endswith("example"), line
    assert "".join(email_lines).count(LONG_EMAIL) == 2 * 40  # nothing lost or added
    pages = re.findall(r"Page (\d+) of\s+(\d+)", text)
    assert len(pages) >= 2
    assert [int(n) for n, _ in pages] == list(range(1, len(pages) + 1))
    assert {int(total) for _, total in pages} == {len(pages)}


def test_an_empty_pdf_says_there_was_nothing() -> None:
    text = _pdf_text(reports.render_disclosures_pdf(_document([])))
    assert "No disclosures in this period." in text
    assert "Period: six years back to today." in text
    assert "Recipient organization" not in text


def test_disclosures_in_flight_at_a_revocation_say_they_were_decided_before_it(
        world: Demo, alex_view: Viewer) -> None:
    # Events stamped out of clock order: the accounting goes by chain position.
    at = _day(3)
    lp1001 = world.participant_id("LP-1001")
    consent = {"consent_ids": ("c-roi",)}
    early = world.append(alex_view(**consent), at=at)
    revoke = world.append(NewAuditEvent(action=AuditAction.CONSENT_REVOKE,
                                        actor="LP-1001", participant_id=lp1001,
                                        consent_ids=("c-roi",)), at=at + timedelta(seconds=2))
    # A refused attempt to revoke does not count as the revocation.
    world.append(NewAuditEvent(action=AuditAction.CONSENT_REVOKE, actor="someone",
                               participant_id=lp1001, consent_ids=("c-other",),
                               decision="deny"), at=at + timedelta(seconds=2))
    detail = {"disclosers": ["harbor-lead"]}
    in_flight = world.append(alex_view(**consent, detail={**detail, "observed_seq": revoke - 1}),
                             at=at + timedelta(seconds=3))
    after = world.append(alex_view(**consent, detail={**detail, "observed_seq": revoke}),
                         at=at + timedelta(seconds=1))  # stamped early, committed last
    other = world.append(alex_view(consent_ids=("c-other",)), at=at + timedelta(seconds=4))
    with world.factory() as session:
        found = audit_chain.disclosures(session, lp1001)
    assert [d.seq for d in found] == [early, in_flight, after, other]
    assert [d.revocation for d in found] == ["before", "before", "after", None]
    assert [d.in_flight_at_revocation for d in found] == [False, True, False, False]
    basis = [row[DISCLOSURE_COLUMNS.index("Basis")] for row in _report(world).rows]
    assert basis == [
        "Participant's written consent, since revoked: decided before the revocation committed",
        "Participant's written consent, since revoked: decided before the revocation committed",
        "Participant's written consent, since revoked: decided after the revocation committed "
        "(follow up)",
        "Participant's written consent"]
