"""Oversight: per-day charts and flags for unusual patterns (many participants outside the
caseload, bursts of refusals, record views at odd hours)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    and_,
    func,
    select,
)
from sqlalchemy.orm import Session

from portal.compliance import sql
from portal.compliance.charts import Chart, bar_chart
from portal.compliance.console import (
    BREAK_GLASS_CREATE,
    DENIAL_BURST,
    DENIAL_BURST_WINDOW,
    MANY_PARTICIPANTS,
    ODD_HOURS,
    OVERSIGHT_DAYS,
    RECORD_VIEW,
    requester,
)
from portal.compliance.sql import EVENTS, link_time
from portal.db import models as m
from portal.db.types import utcnow
from portal.domain.audit import (
    AuditAction,
    escape_for_display,
)
from portal.domain.vocabulary import (
    BreakGlassReview,
)
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services


@dataclass(frozen=True, slots=True)
class Flag:
    kind: str  # many_participants, denial_burst, odd_hours
    title: str
    who: str
    when: str
    count: int
    description: str
    search: dict[str, str]  # the audit-search filters that list the events behind the flag


@dataclass(frozen=True, slots=True)
class Oversight:
    days: list[date]
    accesses: list[Chart]  # one per organization with any access
    denials: Chart
    break_glass: Chart
    pending_reviews: int
    flags: list[Flag]
    threshold: int


def _search(**params: str) -> dict[str, str]:
    return {k: v for k, v in params.items() if v}


def _per_day(session: Session, start: datetime, end: datetime,
             *conditions: Any) -> dict[date, int]:
    day = sql.day(session, EVENTS.c.occurred_at)
    stmt = (select(day.label("day"), func.count()).where(
        EVENTS.c.occurred_at >= start, EVENTS.c.occurred_at < end, *conditions)
        .group_by(day))
    return {sql.as_date(d): int(n) for d, n in session.execute(stmt).tuples()}


def oversight(session: Session, services: Services, user: m.StaffUser, meta: RequestMeta, *,
              days: int = OVERSIGHT_DAYS, threshold: int = MANY_PARTICIPANTS,
              now: datetime | None = None) -> Oversight:
    """Charts and flags over the last ``days`` days (UTC), each a grouped SQL aggregate on a
    time range (ix_audit_action_time or ix_audit_time); the read is audited."""
    now = now or utcnow()
    today = now.astimezone(UTC).date()
    period = [today - timedelta(days=days - 1 - i) for i in range(days)]
    start = datetime.combine(period[0], time.min, tzinfo=UTC)
    end = datetime.combine(today + timedelta(days=1), time.min, tzinfo=UTC)
    in_period = (EVENTS.c.occurred_at >= start, EVENTS.c.occurred_at < end)
    day = sql.day(session, EVENTS.c.occurred_at)

    # Permitted record views per organization per day.
    per_org: dict[str, dict[date, int]] = defaultdict(dict)
    for org, d, n in session.execute(
            select(EVENTS.c.actor_organization, day.label("day"), func.count())
            .where(EVENTS.c.action == RECORD_VIEW, EVENTS.c.decision == "permit", *in_period)
            .group_by(EVENTS.c.actor_organization, day)).tuples():
        per_org[org or ""][sql.as_date(d)] = int(n)
    names = sql.pairs(session, select(m.Organization.slug, m.Organization.name))
    accesses = []
    for i, org in enumerate(sorted(per_org, key=lambda s: names.get(s, s))):
        label = escape_for_display(names.get(org, org) or "(no organization)")
        values = [per_org[org].get(d, 0) for d in period]
        accesses.append(bar_chart(
            f"chart-access-{i}", label, f"Permitted record views by {label} per day, "
            f"{period[0]:%d %b} to {period[-1]:%d %b}: {sum(values)} in all.", period, values))

    denials = _per_day(session, start, end, _refused())
    denial_values = [denials.get(d, 0) for d in period]
    grants = _per_day(session, start, end, EVENTS.c.action == BREAK_GLASS_CREATE,
                      EVENTS.c.decision == "permit")
    grant_values = [grants.get(d, 0) for d in period]
    pending = session.scalar(select(func.count()).select_from(m.BreakGlassGrant).where(
        m.BreakGlassGrant.review_status == BreakGlassReview.PENDING.value)) or 0

    flags = [*_many_participants(session, in_period, threshold),
             *_denial_bursts(session, in_period),
             *_odd_hours(session, in_period, services.settings.zone)]
    services.audit.append(session, requester(user, meta).event(
        AuditAction.AUDIT_EVENT_VIEW,
        detail={"view": "oversight", "days": days, "threshold": threshold,
                "flags": len(flags)}))
    return Oversight(
        days=period, accesses=accesses,
        denials=bar_chart("chart-denials", "Refused attempts", "Refused access attempts per "
                          f"day: {sum(denial_values)} in all.", period, denial_values),
        break_glass=bar_chart("chart-break-glass", "Emergency (break-glass) accesses",
                              f"Emergency accesses opened per day: {sum(grant_values)} in all.",
                              period, grant_values),
        pending_reviews=int(pending), flags=flags, threshold=threshold)


# Denied events that are not refused attempts: the withheld sections of a page the user may
# open, and explanations of a decision. Normal work must not look like probing.
NOT_ATTEMPTS = (AuditAction.RECORD_WITHHOLD.value, AuditAction.DECISION_EXPLAIN.value)


def _refused() -> ColumnElement[bool]:
    """Refused attempts: no relationship, an action the role may not take, emergency access
    refused (the oversight flags and chart count these)."""
    return and_(EVENTS.c.decision == "deny", EVENTS.c.action.not_in(NOT_ATTEMPTS))


def _many_participants(session: Session, in_period: tuple[Any, ...],
                       threshold: int) -> list[Flag]:
    """Users who opened more than ``threshold`` distinct participants outside their caseload
    in a day."""
    day = sql.day(session, EVENTS.c.occurred_at)
    distinct = func.count(EVENTS.c.participant_id.distinct())
    stmt = (select(EVENTS.c.actor_user_id, EVENTS.c.actor, day.label("day"),
                   distinct.label("people"), func.count().label("events"))
            .where(sql.outside_caseload(), EVENTS.c.participant_id.is_not(None), *in_period)
            .group_by(EVENTS.c.actor_user_id, EVENTS.c.actor, day)
            .having(distinct > threshold)
            .order_by(day.desc(), distinct.desc()))
    flags = []
    for _user_id, actor, d, people, events in session.execute(stmt).tuples():
        when = sql.as_date(d)
        flags.append(Flag(
            kind="many_participants", title="Many participants outside the caseload",
            who=escape_for_display(actor), when=when.isoformat(), count=int(events),
            description=f"Opened {people} different participants outside their caseload on "
                        f"{when:%d %b %Y} (more than {threshold}), by emergency access or "
                        "refused because their agency does not work with them.",
            search=_search(user=actor, outside_caseload="1",
                           since=when.isoformat(), until=when.isoformat())))
    return flags


def _denial_bursts(session: Session, in_period: tuple[Any, ...]) -> list[Flag]:
    """Users with DENIAL_BURST or more denials within DENIAL_BURST_WINDOW: for each denial,
    the one DENIAL_BURST - 1 later of the same user (a window function) is close enough."""
    ahead = func.lead(EVENTS.c.occurred_at, DENIAL_BURST - 1).over(
        partition_by=(EVENTS.c.actor_user_id, EVENTS.c.actor),
        order_by=(EVENTS.c.occurred_at, EVENTS.c.seq))
    denials = (select(EVENTS.c.actor_user_id, EVENTS.c.actor,
                      EVENTS.c.occurred_at.label("at"), ahead.label("last"))
               .where(_refused(), *in_period).subquery())
    day = sql.day(session, denials.c.at)
    stmt = (select(denials.c.actor_user_id, denials.c.actor, func.min(denials.c.at),
                   func.max(denials.c.last))
            .where(denials.c.last.is_not(None),
                   sql.within(session, denials.c.at, denials.c.last, DENIAL_BURST_WINDOW))
            .group_by(denials.c.actor_user_id, denials.c.actor, day)
            .order_by(func.min(denials.c.at).desc()))
    flags = []
    for user_id, actor, first, last in session.execute(stmt).tuples():
        since = sql.floor_second(sql.as_time(first))
        until = sql.floor_second(sql.as_time(last)) + timedelta(seconds=1)
        where = [_refused(), EVENTS.c.occurred_at >= since,
                 EVENTS.c.occurred_at < until,
                 EVENTS.c.actor_user_id == user_id if user_id is not None
                 else EVENTS.c.actor == actor]
        count = session.scalar(select(func.count()).select_from(EVENTS).where(*where)) or 0
        flags.append(Flag(
            kind="denial_burst", title="Burst of refused attempts",
            who=escape_for_display(actor), when=f"{since:%Y-%m-%d %H:%M}–{until:%H:%M} UTC",
            count=int(count),
            description=f"{count} refused access attempts between {since:%d %b %Y %H:%M} and "
                        f"{until:%H:%M} UTC ({DENIAL_BURST} or more within an hour).",
            search=_search(user=actor, decision="deny",
                           since=link_time(since), until=link_time(until))))
    return flags


def _odd_hours(session: Session, in_period: tuple[Any, ...], zone: ZoneInfo) -> list[Flag]:
    """Record views from 22:00 to 06:00 in the program's time zone, per user per night.
    Shifting local times by two hours puts a whole night (22:00 to 06:00) in one day, before
    08:00. The zone's offset today is used for the whole period (an hour off for the nights
    across a daylight-saving change)."""
    start_hour, end_hour = ODD_HOURS
    offset = utcnow().astimezone(zone).utcoffset() or timedelta()
    local = int(offset.total_seconds() // 60)
    shift = local + (24 - start_hour) * 60
    night = sql.day(session, EVENTS.c.occurred_at, shift)
    stmt = (select(EVENTS.c.actor_user_id, EVENTS.c.actor, night.label("night"),
                   func.count(), func.min(EVENTS.c.occurred_at),
                   func.max(EVENTS.c.occurred_at))
            .where(EVENTS.c.action == RECORD_VIEW, *in_period,
                   sql.hour(session, EVENTS.c.occurred_at, shift) < end_hour + 24 - start_hour)
            .group_by(EVENTS.c.actor_user_id, EVENTS.c.actor, night)
            .order_by(night.desc()))
    flags = []
    for _user_id, actor, d, count, first, last in session.execute(stmt).tuples():
        night_of = sql.as_date(d) - timedelta(days=1)
        since = sql.floor_second(sql.as_time(first))
        until = sql.floor_second(sql.as_time(last)) + timedelta(seconds=1)
        flags.append(Flag(
            kind="odd_hours", title="Access at odd hours", who=escape_for_display(actor),
            when=f"night of {night_of:%d %b %Y}", count=int(count),
            description=f"{count} record views between {start_hour:02d}:00 and "
                        f"{end_hour:02d}:00 ({zone.key}) in the night of {night_of:%d %b %Y} "
                        f"(first {since.astimezone(zone):%H:%M}, last "
                        f"{until.astimezone(zone):%H:%M}).",
            search=_search(user=actor, action=RECORD_VIEW,
                           since=link_time(since), until=link_time(until))))
    return flags


# The actions a compliance officer can filter by, for the search form.
