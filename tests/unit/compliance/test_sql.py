"""The console's SQL helpers: time expressions on each backend (run on SQLite, compiled for
PostgreSQL), conversions of what the drivers return, display escaping."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import create_engine, literal, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from portal.compliance import sql


class _Pretend:
    """A session bound to a PostgreSQL engine, as far as sql.postgres can tell."""

    def get_bind(self) -> Any:
        return SimpleNamespace(dialect=SimpleNamespace(name="postgresql"))


PG: Any = _Pretend()


def _pg(expression: Any) -> str:
    return str(expression.compile(dialect=postgresql.dialect(),
                                  compile_kwargs={"literal_binds": True}))


@pytest.fixture
def sqlite() -> Any:
    engine = create_engine("sqlite://")
    with Session(engine) as session:
        yield session
    engine.dispose()


def _run(session: Session, expression: Any) -> Any:
    return session.execute(select(expression)).scalar_one()


# SQLite keeps times as text; this is how the portal's rows look there.
STORED = "2026-03-02 23:30:00.000000"


def test_backend_detection(sqlite: Session) -> None:
    assert sql.postgres(sqlite) is False
    assert sql.postgres(PG) is True


def test_sqlite_time_expressions(sqlite: Session) -> None:
    column = literal(STORED)
    assert _run(sqlite, sql.utc(sqlite, column)) == STORED
    assert _run(sqlite, sql.utc(sqlite, column, 45)) == "2026-03-03 00:15:00"
    assert _run(sqlite, sql.utc(sqlite, column, -90)) == "2026-03-02 22:00:00"
    assert _run(sqlite, sql.day(sqlite, column)) == "2026-03-02"
    assert _run(sqlite, sql.day(sqlite, column, 30)) == "2026-03-03"
    assert _run(sqlite, sql.hour(sqlite, column)) == 23
    assert _run(sqlite, sql.hour(sqlite, column, 60)) == 0
    later = literal("2026-03-03 00:29:59.000000")
    assert _run(sqlite, sql.within(sqlite, column, later, timedelta(hours=1))) == 1
    assert _run(sqlite, sql.within(sqlite, column, later, timedelta(minutes=59))) == 0
    assert _run(sqlite, sql.plus_minutes(False, column, 5)) == "2026-03-02 23:35:00.000"


@pytest.mark.xfail(strict=True, reason=(
    "bug: on SQLite sql.within() compares (julianday(end) - julianday(start)) * 86400 with "
    "the window in floating point, so two times exactly one window apart are sometimes "
    "outside it (23:30 to 00:30 gives 3600.0000268 s), while PostgreSQL's interval "
    "comparison always includes them: a denial burst spanning exactly an hour is flagged on "
    "PostgreSQL and not on SQLite"))
def test_within_includes_exactly_one_window_on_sqlite(sqlite: Session) -> None:
    start, end = literal(STORED), literal("2026-03-03 00:30:00.000000")
    assert _run(sqlite, sql.within(sqlite, start, end, timedelta(hours=1))) == 1


def test_time_expressions_compiled_for_pg_are_the_same_sql_every_time() -> None:
    column = sql.EVENTS.c.occurred_at
    assert _pg(sql.utc(PG, column)) == "timezone('UTC', audit_event.occurred_at)"
    assert _pg(sql.utc(PG, column, 30)) == (
        "timezone('UTC', audit_event.occurred_at) + interval '30 minutes'")
    assert _pg(sql.day(PG, column, 30)) == (
        "CAST(timezone('UTC', audit_event.occurred_at) + interval '30 minutes' AS DATE)")
    assert _pg(sql.hour(PG, column)) == (
        "CAST(date_part('hour', timezone('UTC', audit_event.occurred_at)) AS INTEGER)")
    assert _pg(sql.within(PG, column, column, timedelta(hours=1))) == (
        "audit_event.occurred_at <= audit_event.occurred_at + interval '3600 seconds'")
    assert _pg(sql.plus_minutes(True, column, 5)) == (
        "audit_event.occurred_at + interval '5 minutes'")
    # Constants are inlined: the SELECT and the GROUP BY compile to the same text.
    assert _pg(sql.day(PG, column, 7)) == _pg(sql.day(PG, column, 7))


def test_conversions_of_driver_values() -> None:
    moment = datetime(2026, 3, 2, 23, 30, 15, 123456, tzinfo=UTC)
    assert sql.as_date(moment) == date(2026, 3, 2)
    assert sql.as_date(date(2026, 3, 2)) == date(2026, 3, 2)
    assert sql.as_date("2026-03-02") == date(2026, 3, 2)
    assert sql.as_date("2026-03-02 23:30:00") == date(2026, 3, 2)
    assert sql.as_time(moment) is moment
    naive = datetime(2026, 3, 2, 23, 30)  # noqa: DTZ001 - what SQLite hands back
    assert sql.as_time(naive) == naive.replace(tzinfo=UTC)
    assert sql.as_time("2026-03-02 23:30:00.5") == datetime(2026, 3, 2, 23, 30, 0, 500000,
                                                             tzinfo=UTC)
    assert sql.floor_second(moment) == moment.replace(microsecond=0)
    east = moment.astimezone(timezone(timedelta(hours=5)))
    assert sql.link_time(east) == "2026-03-02T23:30:15"


def test_display_escapes_and_joins() -> None:
    assert sql.display(None) == ""
    assert sql.display(42) == "42"
    assert sql.display("a\nb\x1b") == "a\\nb\\x1b"
    assert sql.display_list(["a", "b\tc"]) == "a, b\\tc"
    assert sql.display_list(("x",)) == "x"
    assert sql.display_list("not a list\n") == "not a list\\n"
    assert sql.display_list(None) == ""


def test_category_labels() -> None:
    assert sql.category_label("sud_treatment") == "Substance use treatment"
    assert sql.category_label(None) == "(none)"
    assert sql.category_label("") == "(none)"
    assert sql.category_label("secret\n") == "secret\\n"


def test_reason_conditions_match_whole_reasons_only(sqlite: Session) -> None:
    sql.EVENTS.create(sqlite.get_bind())
    rows = [("a", "record:view", "permit", '["break_glass"]'),
            ("b", "record:view", "permit", '["breakXglass"]'),  # LIKE's _ must not match
            ("c", "participant:view", "permit", '["break_glass"]'),
            ("d", "participant:view", "deny", '["not_on_care_team"]'),
            ("e", "participant:view", "deny", '["notXonXcareXteam"]'),
            ("f", "record:view", "deny", '["no_role_permission"]')]
    for i, (actor, action, decision, reasons) in enumerate(rows, 1):
        sqlite.execute(sql.EVENTS.insert().values(
            chain="main", seq=i, occurred_at=datetime(2026, 3, 2, tzinfo=UTC), action=action,
            actor=actor, decision=decision, reasons=[], actor_roles=[], record_ids=[],
            consent_ids=[], detail={}, prev_hash="0" * 64, hash=str(i) * 64))
        sqlite.execute(sql.EVENTS.update().where(sql.EVENTS.c.seq == i)
                       .values(reasons=literal(reasons)))
    def actors(condition: Any) -> list[str]:
        return list(sqlite.scalars(select(sql.EVENTS.c.actor).where(condition)
                                   .order_by(sql.EVENTS.c.seq)))

    assert actors(sql.break_glass_reason()) == ["a", "c"]
    assert actors(sql.outside_caseload()) == ["a", "d"]
