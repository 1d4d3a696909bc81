"""Oversight: per-day charts and the flags for unusual patterns, over events written at
controlled times; the read is audited. And who may use the console at all."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from portal.compliance import console, oversight
from portal.compliance.console import Requester
from portal.domain.audit import AuditAction
from portal.kernel.wiring import Services
from tests.integration.compliance.conftest import (
    ALEX,
    MARIA,
    META,
    OLIVIA,
    RENEE,
    TOM,
    Demo,
    Viewer,
    staff_view,
)

LUIS = "luis.moreno@eastgate-clinic.example"
NOW = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)  # a Saturday; the week charted is 1 to 7 March


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def _oversight(world: Demo, services: Services | None = None,
               **kw: object) -> oversight.Oversight:
    kw.setdefault("now", NOW)
    with world.as_staff(RENEE) as (session, renee):
        return oversight.oversight(session, services or world.services, renee, META,
                                   **kw)  # type: ignore[arg-type]


def test_charts_count_per_day_and_organization(world: Demo, alex_view: Viewer) -> None:
    maria_id = world.user_id(MARIA)
    lp1001 = world.participant_id("LP-1001")
    for day, n in ((2, 2), (5, 1), (7, 3)):
        for i in range(n):
            world.append(alex_view(), at=_at(day, 10, i))
    world.append(staff_view(MARIA, "harbor-lead", ("case_manager",), maria_id, lp1001),
                 at=_at(3, 11))
    world.append(staff_view("cli", None, (), None, lp1001), at=_at(4, 11))  # type: ignore[arg-type]
    # Outside the period, or not permitted views: not in the access charts.
    world.append(alex_view(), at=_at(1, 10) - timedelta(days=7))
    world.append(alex_view(), at=_at(8, 0, 1))
    world.append(alex_view(decision="deny", reasons=("no_role_permission",)), at=_at(6, 10))
    world.append(alex_view(action="record:withhold", decision="deny"), at=_at(6, 11))
    world.append(alex_view(action="decision:explain", decision="deny"), at=_at(6, 12))
    world.append(alex_view(action="participant:view", decision="deny",
                           reasons=("not_on_care_team",)), at=_at(7, 9))

    result = _oversight(world, days=7)
    assert result.days == [date(2026, 3, d) for d in range(1, 8)]
    charts = {c.title: c for c in result.accesses}
    assert list(charts) == ["(no organization)", "Harbor LEAD Case Management",
                            "Hope Housing Collaborative"]
    assert charts["Hope Housing Collaborative"].values == [0, 2, 0, 0, 1, 0, 3]
    assert charts["Harbor LEAD Case Management"].values == [0, 0, 1, 0, 0, 0, 0]
    assert charts["(no organization)"].values == [0, 0, 0, 1, 0, 0, 0]
    hope = charts["Hope Housing Collaborative"]
    assert hope.description == ("Permitted record views by Hope Housing Collaborative per day, "
                                "01 Mar to 07 Mar: 6 in all.")
    assert [c.id for c in result.accesses] == ["chart-access-0", "chart-access-1",
                                               "chart-access-2"]
    # Refused attempts: withheld sections and explanations are normal work, not attempts.
    assert result.denials.values == [0, 0, 0, 0, 0, 1, 1]
    assert result.denials.description == "Refused access attempts per day: 2 in all."
    assert result.break_glass.total == 0 and result.pending_reviews == 0
    assert result.flags == [] and result.threshold == 3
    (read,) = world.events("audit:event:view")
    assert read.actor == RENEE
    assert read.detail == {"view": "oversight", "days": 7, "threshold": 3, "flags": 0}


def test_emergency_accesses_and_pending_reviews(world: Demo) -> None:
    from portal.db import repositories as repo

    with world.as_staff(LUIS) as (session, luis):
        p = repo.participant_by_public_id(session, "LP-1003")
        assert p is not None
        world.services.access.grant_break_glass(
            session, luis, p, reason="r", emergency_nature="n", facility="f", minutes=10,
            meta=META)
    # The chart counts grants opened (permitted) per day at the time they were logged.
    (created,) = world.events("break_glass:grant:create")
    result = _oversight(world, days=7, now=created.occurred_at)
    assert result.pending_reviews == 1
    assert result.break_glass.values[-1] == 1 and result.break_glass.total == 1


def test_many_participants_outside_the_caseload_in_a_day(world: Demo) -> None:
    luis_id = world.user_id(LUIS)
    people = [world.participant_id(f"LP-100{i}") for i in range(1, 5)]

    def luis(participant: object, **changes: object) -> object:
        return staff_view(LUIS, "eastgate-clinic", ("clinician",), luis_id,
                          participant, **changes)  # type: ignore[arg-type]

    for i, p in enumerate(people[:3]):
        world.append(luis(p, reasons=("break_glass",)), at=_at(4, 9, i))  # type: ignore[arg-type]
    world.append(luis(people[3], action="participant:view", decision="deny",
                      reasons=("not_on_care_team",)), at=_at(4, 15))  # type: ignore[arg-type]
    world.append(luis(people[0], reasons=("break_glass",)), at=_at(4, 16))  # type: ignore[arg-type]
    # Another day: two participants only; and ordinary views do not count.
    for p in people[:2]:
        world.append(luis(p, reasons=("break_glass",)), at=_at(5, 9))  # type: ignore[arg-type]
    for p in people:
        world.append(luis(p), at=_at(6, 9))  # type: ignore[arg-type]

    (flag,) = _oversight(world, days=7).flags
    assert (flag.kind, flag.who, flag.when, flag.count) == (
        "many_participants", LUIS, "2026-03-04", 5)
    assert flag.description.startswith("Opened 4 different participants outside their "
                                       "caseload on 04 Mar 2026 (more than 3)")
    assert flag.search == {"user": LUIS, "outside_caseload": "1",
                                 "since": "2026-03-04", "until": "2026-03-04"}
    lower = _oversight(world, days=7, threshold=1).flags
    assert [(f.when, f.count) for f in lower] == [("2026-03-05", 2), ("2026-03-04", 5)]
    assert world.events("audit:event:view")[-1].detail["threshold"] == 1


def test_a_burst_of_refusals_is_flagged(world: Demo, alex_view: Viewer) -> None:
    def denied(**changes: object) -> object:
        return alex_view(action="participant:view", decision="deny",
                         reasons=("not_on_care_team",), **changes)

    for i in range(10):  # ten within 45 minutes
        world.append(denied(), at=_at(3, 14, i * 5))  # type: ignore[arg-type]
    for i in range(9):  # nine only, on another day
        world.append(denied(), at=_at(5, 14, i * 5))  # type: ignore[arg-type]
    for i in range(10):  # ten, but spread over more than an hour
        world.append(denied(), at=_at(6, 10, 0) + timedelta(minutes=i * 8))  # type: ignore[arg-type]
    for i in range(12):  # withheld sections are no attempts
        world.append(alex_view(action="record:withhold", decision="deny"), at=_at(7, 9, i))

    (flag,) = _oversight(world, days=7).flags
    assert (flag.kind, flag.who, flag.count) == ("denial_burst", ALEX, 10)
    # From the first to just after the last (14:45): the search link finds all ten.
    assert flag.when == "2026-03-03 14:00–14:45 UTC"
    assert flag.description == ("10 refused access attempts between 03 Mar 2026 14:00 and "
                                "14:45 UTC (10 or more within an hour).")
    assert flag.search == {"user": ALEX, "decision": "deny",
                                 "since": "2026-03-03T14:00:00", "until": "2026-03-03T14:45:01"}


def test_a_burst_by_an_actor_without_an_account(world: Demo, alex_view: Viewer) -> None:
    for i in range(10):
        world.append(alex_view(actor="intruder", actor_user_id=None, decision="deny",
                               action="participant:view", reasons=("x",)),
                     at=_at(2, 3, i))
    (flag,) = _oversight(world, days=7).flags
    assert (flag.who, flag.count) == ("intruder", 10)


def test_record_views_at_odd_hours_are_grouped_by_night(world: Demo, alex_view: Viewer) -> None:
    for at in (_at(3, 22, 30), _at(4, 1), _at(4, 5, 59)):  # one night
        world.append(alex_view(), at=at)
    world.append(alex_view(), at=_at(5, 23))  # another night
    for at in (_at(3, 21, 59), _at(4, 6), _at(4, 12)):  # daytime
        world.append(alex_view(), at=at)

    flags = _oversight(world, days=7).flags
    assert [(f.kind, f.when, f.count) for f in flags] == [
        ("odd_hours", "night of 05 Mar 2026", 1), ("odd_hours", "night of 03 Mar 2026", 3)]
    night = flags[1]
    assert night.who == ALEX
    assert night.description == ("3 record views between 22:00 and 06:00 (UTC) in the night "
                                  "of 03 Mar 2026 (first 22:30, last 05:59).")
    assert night.search == {"user": ALEX, "action": "record:view",
                                  "since": "2026-03-03T22:30:00",
                                  "until": "2026-03-04T05:59:01"}


def test_odd_hours_are_the_programs_local_time(world: Demo, alex_view: Viewer) -> None:
    # UTC-5 all year: 22:00 there is 03:00 UTC.
    local = replace(world.services, settings=replace(world.services.settings,
                                                     timezone="Etc/GMT+5"))
    world.append(alex_view(), at=_at(4, 2, 30))  # 21:30 there: not odd
    world.append(alex_view(), at=_at(4, 3, 30))  # 22:30 there
    world.append(alex_view(), at=_at(4, 10, 30))  # 05:30 there
    (flag,) = _oversight(world, local, days=7).flags
    assert (flag.when, flag.count) == ("night of 03 Mar 2026", 2)
    assert "(Etc/GMT+5)" in flag.description and "(first 22:30, last 05:30)" in flag.description
    (utc,) = _oversight(world, days=7).flags  # in UTC: 02:30 and 03:30, one night
    assert (utc.when, utc.count) == ("night of 03 Mar 2026", 2)


# --- who may use the console ----------------------------------------------------------------


@pytest.mark.parametrize(("email", "review", "export"), [
    (RENEE, True, True), (MARIA, False, False), (OLIVIA, False, False),
    (ALEX, False, False), (TOM, False, False)])
def test_only_compliance_roles_may_read_or_export_the_log(world: Demo, email: str,
                                                          review: bool, export: bool) -> None:
    with world.as_staff(email) as (_, user):
        assert console.may_review(world.services, user) is review
        assert console.may_export(world.services, user) is export


def test_a_read_of_the_log_is_recorded_before_anything_is_shown(world: Demo) -> None:
    with world.as_staff(RENEE) as (_, renee):
        who = console.requester(renee, META)
    assert who == Requester(actor=RENEE, actor_user_id=world.user_id(RENEE),
                            actor_organization="harbor-lead",
                            actor_roles=("compliance_officer",), session_id="sess-test",
                            client_address="10.1.2.3", request_id="req-test")
    lp1001 = world.participant_id("LP-1001")
    console.record_read(world.factory, world.services.audit, who, AuditAction.AUDIT_EXPORT,
                        participant_id=lp1001, detail={"format": "csv"})
    console.record_read(world.factory, world.services.audit, Requester(actor="cli"),
                        AuditAction.AUDIT_EXPORT)
    first, second = world.events("audit:export")
    assert (first.actor, first.participant_id, first.purpose, first.decision, first.detail,
            first.session_id) == (RENEE, lp1001, "HOPERAT", "permit", {"format": "csv"},
                                  "sess-test")
    assert (second.actor, second.actor_user_id, second.detail, second.actor_roles) == (
        "cli", None, {}, [])
