"""Audit search as a service: filters, keyset pages, emergency access, the audited read."""

from __future__ import annotations

import pytest

from portal.compliance import search
from portal.compliance.search import AuditFilters
from portal.kernel.errors import InvalidInput
from tests.integration.compliance.conftest import (
    ALEX,
    MARIA,
    META,
    RENEE,
    T0,
    Demo,
    Viewer,
    hours,
    staff_view,
)


def _search(world: Demo, filters: AuditFilters, **kw: object) -> search.AuditPage:
    with world.as_staff(RENEE) as (session, renee):
        return search.search(session, world.services, renee, META, filters, **kw)  # type: ignore[arg-type]


def _reads(world: Demo) -> list[dict[str, object]]:
    return [e.detail for e in world.events("audit:event:view")]


def test_participant_filter_narrows_and_the_read_is_audited(world: Demo,
                                                            alex_view: Viewer) -> None:
    lp1002 = world.participant_id("LP-1002")
    mine = [world.append(alex_view(), at=T0 + hours(i)) for i in range(3)]
    world.append(alex_view(participant_id=lp1002), at=T0 + hours(4))

    page = _search(world, AuditFilters(participant="LP-1001", action="record:view"))

    assert [r.seq for r in page.rows] == sorted(mine, reverse=True)  # newest first
    assert {r.participant for r in page.rows} == {"LP-1001"}
    row = page.rows[0]
    assert (row.action, row.decision, row.actor, row.organization, row.category,
            row.reasons, row.break_glass) == ("record:view", "permit", ALEX, "hope-housing",
                                              "housing", "consent", False)
    assert page.next_before is None and page.note is None
    reads = world.events("audit:event:view")
    assert len(reads) == 1
    read = reads[0]
    assert (read.actor, read.decision, read.purpose, read.session_id, read.client_address,
            read.request_id) == (RENEE, "permit", "HOPERAT", "sess-test", "10.1.2.3",
                                 "req-test")
    assert read.participant_id == world.participant_id("LP-1001")
    assert read.actor_roles == ["compliance_officer"]
    assert read.detail == {"view": "search", "before": None, "shown": 3,
                           "filters": {"participant": "LP-1001", "action": "record:view"}}


def test_an_unknown_participant_finds_nothing_and_says_so(world: Demo,
                                                          alex_view: Viewer) -> None:
    world.append(alex_view())
    page = _search(world, AuditFilters(participant="LP-9999"))
    assert page.rows == []
    assert page.note == "There is no participant LP-9999."
    (read,) = world.events("audit:event:view")
    assert read.participant_id is None and read.detail["shown"] == 0


def test_user_organization_and_decision_filters(world: Demo, alex_view: Viewer) -> None:
    maria_id = world.user_id(MARIA)
    lp1001 = world.participant_id("LP-1001")
    alex_seq = world.append(alex_view(), at=T0)
    denied = world.append(alex_view(decision="deny", reasons=("no_role_permission",),
                                    action="participant:view"), at=T0 + hours(1))
    maria_seq = world.append(staff_view(MARIA, "harbor-lead", ("case_manager",), maria_id,
                                        lp1001), at=T0 + hours(2))
    # An actor with no staff account (a participant, the CLI): matched on the actor text.
    cli = world.append(staff_view("LP-1001", None, (), None, lp1001,  # type: ignore[arg-type]
                                  action="consent:view"), at=T0 + hours(3))

    by_email = _search(world, AuditFilters(user=ALEX.upper()))  # emails match any case
    assert [r.seq for r in by_email.rows] == [denied, alex_seq]
    assert [r.seq for r in _search(world, AuditFilters(user="LP-1001")).rows] == [cli]
    assert [r.seq for r in _search(world, AuditFilters(organization="harbor-lead",
                                                       action="record:view")).rows] \
        == [maria_seq]
    assert [r.seq for r in _search(world, AuditFilters(decision="deny")).rows] == [denied]


def test_period_filters_take_whole_days_or_exact_times(world: Demo, alex_view: Viewer) -> None:
    monday = world.append(alex_view(), at=T0)  # 2026-03-02 09:00
    tuesday = world.append(alex_view(), at=T0 + hours(24))
    wednesday = world.append(alex_view(), at=T0 + hours(48))

    def seqs(**filters: str) -> list[int]:
        return [r.seq for r in _search(world, AuditFilters(action="record:view",
                                                           **filters)).rows]

    assert seqs(since="2026-03-03") == [wednesday, tuesday]
    assert seqs(until="2026-03-03") == [tuesday, monday]  # the end day is included
    assert seqs(since="2026-03-03", until="2026-03-03") == [tuesday]
    # Exact times: the end is exclusive; an offset is turned into UTC.
    assert seqs(since="2026-03-03T09:00", until="2026-03-04T09:00Z") == [tuesday]
    assert seqs(since="2026-03-03T10:00+01:00", until="2026-03-03T09:00:01") == [tuesday]


@pytest.mark.parametrize(("filters", "message"), [
    (AuditFilters(action="record:peek"), "Choose an action"),
    (AuditFilters(decision="maybe"), "permit or deny"),
    (AuditFilters(since="yesterday"), "start of the period must look like 2026-11-28"),
    (AuditFilters(until="2026-13-01"), "end of the period must look like"),
    (AuditFilters(since="2026-02-02", until="2026-02-01"), "after its start"),
    (AuditFilters(since="2026-02-02T10:00", until="2026-02-02T10:00"), "after its start"),
])
def test_malformed_filters_are_refused_and_nothing_is_logged(
        world: Demo, filters: AuditFilters, message: str) -> None:
    before = world.count()
    with pytest.raises(InvalidInput, match=message):
        _search(world, filters)
    assert world.count() == before


def test_keyset_pages_walk_the_log_without_gaps(world: Demo, alex_view: Viewer) -> None:
    seqs = [world.append(alex_view(), at=T0 + hours(i)) for i in range(7)]
    # Two events at the same instant: the seq breaks the tie.
    seqs.append(world.append(alex_view(), at=T0 + hours(6)))
    expected = sorted(seqs, reverse=True)
    filters = AuditFilters(action="record:view")
    shown: list[int] = []
    before = None
    pages = 0
    while True:
        page = _search(world, filters, before=before, limit=3)
        pages += 1
        shown.extend(r.seq for r in page.rows)
        assert page.before == before
        if page.next_before is None:
            break
        assert page.next_query == f"action=record%3Aview&before={page.next_before}"
        before = page.next_before
    assert shown == expected and pages == 3
    assert [d["before"] for d in _reads(world)] == [None, expected[2], expected[5]]
    assert [d["shown"] for d in _reads(world)] == [3, 3, 2]


def test_a_page_that_no_longer_exists_is_refused(world: Demo, alex_view: Viewer) -> None:
    world.append(alex_view())
    with pytest.raises(InvalidInput, match="no longer exists"):
        _search(world, AuditFilters(), before=999_999)
    # The cursor is looked up in the chain searched.
    with pytest.raises(InvalidInput, match="no longer exists"):
        _search(world, AuditFilters(chain="other"), before=1)


def test_break_glass_finds_the_grant_and_what_was_seen_under_it(
        world: Demo, alex_view: Viewer) -> None:
    with world.as_staff("luis.moreno@eastgate-clinic.example") as (session, luis):
        from portal.db import repositories as repo
        p = repo.participant_by_public_id(session, "LP-1003")
        assert p is not None
        grant = world.services.access.grant_break_glass(
            session, luis, p, reason="unresponsive", emergency_nature="overdose",
            facility="Eastgate", minutes=30, meta=META)
        grant_id, started, lp1003 = grant.id, grant.started_at, p.id
    luis_id = world.user_id("luis.moreno@eastgate-clinic.example")

    def luis_view(**changes: object) -> object:
        return staff_view("luis.moreno@eastgate-clinic.example", "eastgate-clinic",
                          ("clinician",), luis_id, lp1003, reasons=("break_glass",),
                          consent_ids=(), purpose="ETREAT",
                          detail={"disclosers": ["cedar-recovery"],
                                  "break_glass_grant": str(grant_id)}, **changes)

    under = world.append(luis_view(), at=started + hours(0.1))  # type: ignore[arg-type]
    late = world.append(luis_view(), at=started + hours(0.55))  # type: ignore[arg-type]
    # Not under the grant: after its window (and the slack), or not made under it.
    world.append(luis_view(), at=started + hours(2))  # type: ignore[arg-type]
    world.append(alex_view(participant_id=lp1003), at=started + hours(0.2))
    world.append(alex_view(), at=started + hours(0.2))

    page = _search(world, AuditFilters(break_glass=True))
    created = world.events("break_glass:grant:create")[0].seq
    assert sorted(r.seq for r in page.rows) == sorted([created, under, late])
    assert all(r.break_glass for r in page.rows)
    assert {r.participant for r in page.rows} == {"LP-1003"}
    assert _reads(world)[-1]["filters"] == {"break_glass": "1"}
    # Limited like any page: the two parts are merged, newest first.
    small = _search(world, AuditFilters(break_glass=True), limit=1)
    assert len(small.rows) == 1 and small.next_before == small.rows[0].seq


def test_outside_caseload_finds_emergency_views_and_off_team_refusals(
        world: Demo, alex_view: Viewer) -> None:
    emergency = world.append(alex_view(reasons=("break_glass",)), at=T0)
    off_team = world.append(alex_view(action="participant:view", decision="deny",
                                      reasons=("not_on_care_team",)), at=T0 + hours(1))
    world.append(alex_view(), at=T0 + hours(2))
    world.append(alex_view(decision="deny", reasons=("no_role_permission",)), at=T0 + hours(3))
    page = _search(world, AuditFilters(outside_caseload=True))
    assert [r.seq for r in page.rows] == [off_team, emergency]


def test_rows_are_escaped_for_display_and_chains_are_kept_apart(
        world: Demo, alex_view: Viewer) -> None:
    nasty = "x\r\nFAKE auth:login:success\x1b[31m"
    world.append(alex_view(actor=nasty, actor_user_id=None, reasons=("a\tb", "c")))
    other = world.append(alex_view(), chain="other")
    (row,) = _search(world, AuditFilters(action="record:view")).rows
    assert row.actor == "x\\r\\nFAKE auth:login:success\\x1b[31m"
    assert row.reasons == "a\\tb, c"
    rows = _search(world, AuditFilters(chain="other")).rows
    assert [(r.chain, r.seq) for r in rows] == [("other", other)]
    assert _reads(world)[-1]["filters"] == {"chain": "other"}


def test_organizations_are_listed_by_name(world: Demo) -> None:
    with world.factory() as session:
        orgs = search.organizations(session)
    assert len(orgs) == 10
    assert [name for _, name in orgs] == sorted(name for _, name in orgs)
    assert ("harbor-lead", "Harbor LEAD Case Management") in orgs


def test_results_are_in_chain_order_not_clock_order(world: Demo, alex_view: Viewer) -> None:
    # The second event was committed later but stamped earlier (a clock step, or a host whose
    # clock lags): the search lists events in the order they were committed.
    first = world.append(alex_view(), at=T0 + hours(2))
    second = world.append(alex_view(), at=T0 + hours(1))
    page = _search(world, AuditFilters(action="record:view"), limit=1)
    assert [r.seq for r in page.rows] == [second]
    page = _search(world, AuditFilters(action="record:view"), before=page.next_before,
                   limit=1)
    assert [r.seq for r in page.rows] == [first]
