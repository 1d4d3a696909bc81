"""SQL shared by the console's queries: time expressions (the two backends differ) and small
read helpers. Queries are SQL aggregates over the audit_event indexes (participant, actor,
action or time, each followed by occurred_at)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Select,
    Text,
    and_,
    cast,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session

from portal.db import models as m
from portal.domain.audit import (
    AuditAction,
    escape_for_display,
)
from portal.domain.vocabulary import (
    DataCategory,
)

EVENTS = m.AuditEvent.__table__

# --- time expressions (the two backends differ) ----------------------------------------------


def postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def utc(session: Session, column: Any, minutes: int = 0) -> Any:
    """The column as a UTC wall-clock timestamp, shifted by ``minutes`` (constants inlined, so
    that the same expression in SELECT and GROUP BY is the same SQL)."""
    if postgres(session):
        shifted: Any = func.timezone(literal_column("'UTC'"), column)
        if minutes:
            shifted = shifted + literal_column(f"interval '{int(minutes)} minutes'")
        return shifted
    if minutes:
        return func.datetime(column, literal_column(f"'{int(minutes):+d} minutes'"))
    return column


def day(session: Session, column: Any, minutes: int = 0) -> Any:
    """The UTC calendar day of a timestamp column (shifted by ``minutes``)."""
    if postgres(session):
        return cast(utc(session, column, minutes), Date)
    return func.date(utc(session, column, minutes))


def hour(session: Session, column: Any, minutes: int = 0) -> Any:
    if postgres(session):
        return cast(func.date_part(literal_column("'hour'"), utc(session, column, minutes)),
                    Integer)
    return cast(func.strftime(literal_column("'%H'"), utc(session, column, minutes)), Integer)


def within(session: Session, start: Any, end: Any, window: timedelta) -> Any:
    seconds = int(window.total_seconds())
    if postgres(session):
        return end <= start + literal_column(f"interval '{seconds} seconds'")
    return (func.julianday(end) - func.julianday(start)) * 86400 <= seconds


def as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def as_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def floor_second(value: datetime) -> datetime:
    return value.replace(microsecond=0)


def link_time(value: datetime) -> str:
    """A time as the audit search accepts it (UTC, to the second)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")



def plus_minutes(postgres: bool, column: Any, minutes: int) -> Any:
    if postgres:
        return column + literal_column(f"interval '{int(minutes)} minutes'")
    # SQLite keeps times as text 'YYYY-MM-DD HH:MM:SS.ffffff'; this compares as text.
    return func.strftime(literal_column("'%Y-%m-%d %H:%M:%f'"), column,
                         literal_column(f"'+{int(minutes)} minutes'"))



def public_ids(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    return pairs(session, select(m.Participant.id, m.Participant.public_id)
                  .where(m.Participant.id.in_(ids)))


def pairs(session: Session, stmt: Select[Any, Any]) -> dict[Any, Any]:
    return dict(session.execute(stmt).tuples().all())


def display(value: object) -> str:
    return "" if value is None else escape_for_display(str(value))


def display_list(values: object) -> str:
    if not isinstance(values, list | tuple):
        return display(values)
    return ", ".join(escape_for_display(str(v)) for v in values)


def break_glass_reason() -> ColumnElement[bool]:
    return cast(EVENTS.c.reasons, Text).like('%"break\\_glass"%', escape="\\")


def outside_caseload() -> ColumnElement[bool]:
    """Events of a user opening a participant outside their caseload: record views under an
    emergency grant, and attempts refused because their agency does not work with them."""
    reasons = cast(EVENTS.c.reasons, Text)
    return or_(and_(EVENTS.c.action == AuditAction.RECORD_VIEW.value, break_glass_reason()),
               and_(EVENTS.c.decision == "deny",
                    reasons.like('%"not\\_on\\_care\\_team"%', escape="\\")))


def category_label(value: str | None) -> str:
    try:
        return DataCategory(value).info.label if value else "(none)"
    except ValueError:
        return escape_for_display(str(value))
