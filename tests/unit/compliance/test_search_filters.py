"""Audit search filters as typed: parsing times and dates, the query string they make."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from portal.compliance.search import AuditFilters, parse_when
from portal.kernel.errors import InvalidInput


@pytest.mark.parametrize(("text", "end", "expected"), [
    ("2026-11-28", False, datetime(2026, 11, 28, tzinfo=UTC)),
    ("2026-11-28", True, datetime(2026, 11, 29, tzinfo=UTC)),  # the whole end day
    (" 2026-11-28T22:30 ", False, datetime(2026, 11, 28, 22, 30, tzinfo=UTC)),
    ("2026-11-28T22:30:15Z", True, datetime(2026, 11, 28, 22, 30, 15, tzinfo=UTC)),
    ("2026-11-28T22:30+02:00", False, datetime(2026, 11, 28, 20, 30, tzinfo=UTC)),
])
def test_parse_when(text: str, end: bool, expected: datetime) -> None:
    assert parse_when(text, "start", end=end) == expected


def test_blank_is_no_bound_and_nonsense_is_refused() -> None:
    assert parse_when("   ", "start", end=False) is None
    for bad in ("yesterday", "2026-02-30", "28/11/2026", "2026-11-28T25:00"):
        with pytest.raises(InvalidInput, match="The end of it must look like 2026-11-28"):
            parse_when(bad, "end of it", end=True)


def test_from_query_trims_limits_and_normalises() -> None:
    filters = AuditFilters.from_query({
        "participant": " lp-1001 ", "user": "  alex@example ", "organization": "o" * 100,
        "action": "record:view", "decision": "permit-and-more", "since": "2026-01-01",
        "until": "", "break_glass": "on", "outside_caseload": "0", "chain": ""})
    assert filters.participant == "LP-1001"
    assert filters.user == "alex@example"
    assert filters.organization == "o" * 64
    assert filters.decision == "permit-a"  # cut to 8 characters, refused later
    assert filters.break_glass is True and filters.outside_caseload is False
    assert filters.chain == "main"
    assert AuditFilters.from_query({"break_glass": "true", "outside_caseload": "1"}) \
        == AuditFilters(break_glass=True, outside_caseload=True)


def test_params_leave_out_what_is_not_set() -> None:
    assert AuditFilters().params() == {}
    assert not AuditFilters().active
    filters = AuditFilters(participant="LP-1001", break_glass=True, outside_caseload=True,
                           chain="other")
    assert filters.active
    assert filters.params() == {"participant": "LP-1001", "break_glass": "1",
                                "outside_caseload": "1", "chain": "other"}
    assert filters.query_string(before=42, empty="", none=None) == (
        "participant=LP-1001&break_glass=1&outside_caseload=1&chain=other&before=42")
    assert AuditFilters(user="a b&c").query_string() == "user=a+b%26c"
