"""Audit search: filters, keyset pages on (occurred_at, seq) (never OFFSET), the audited read."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import (
    Select,
    and_,
    false,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from portal.compliance import sql
from portal.compliance.console import PAGE_SIZE, requester
from portal.compliance.sql import EVENTS
from portal.db import audit_chain as audit
from portal.db import models as m
from portal.db.audit_chain import DEFAULT_CHAIN
from portal.domain.audit import (
    AuditAction,
)
from portal.kernel.errors import InvalidInput
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services

# --- audit search --------------------------------------------------------------------------


def parse_when(text: str, what: str, *, end: bool) -> datetime | None:
    """``YYYY-MM-DD`` (a whole UTC day; an end date includes that day) or a UTC time
    ``YYYY-MM-DDTHH:MM[:SS]`` (an end time is exclusive)."""
    text = text.strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime.combine(day, time.min, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        value = datetime.fromisoformat(text.removesuffix("Z"))
    except ValueError:
        raise InvalidInput(f"The {what} must look like 2026-11-28 or 2026-11-28T22:30.") \
            from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """What the audit search is narrowed to, exactly as typed (validated by ``conditions``)."""

    participant: str = ""  # public id, e.g. LP-1001
    user: str = ""  # staff email (or the actor text of an event without a user)
    organization: str = ""  # organization slug
    action: str = ""
    decision: str = ""
    since: str = ""
    until: str = ""
    break_glass: bool = False
    # Only events of opening a participant outside the user's caseload (the oversight flag).
    outside_caseload: bool = False
    chain: str = DEFAULT_CHAIN

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> AuditFilters:
        def text(name: str, limit: int = 300) -> str:
            return str(params.get(name) or "").strip()[:limit]

        return cls(participant=text("participant", 32).upper(), user=text("user"),
                   organization=text("organization", 64), action=text("action", 64),
                   decision=text("decision", 8), since=text("since", 32),
                   until=text("until", 32),
                   break_glass=str(params.get("break_glass") or "") in ("1", "on", "true"),
                   outside_caseload=str(params.get("outside_caseload") or "") in (
                       "1", "on", "true"),
                   chain=text("chain", 32) or DEFAULT_CHAIN)

    def params(self) -> dict[str, str]:
        values = {"participant": self.participant, "user": self.user,
                  "organization": self.organization, "action": self.action,
                  "decision": self.decision, "since": self.since, "until": self.until,
                  "break_glass": "1" if self.break_glass else "",
                  "outside_caseload": "1" if self.outside_caseload else "",
                  "chain": "" if self.chain == DEFAULT_CHAIN else self.chain}
        return {k: v for k, v in values.items() if v}

    def query_string(self, **extra: str | int | None) -> str:
        values: dict[str, str] = self.params()
        values.update({k: str(v) for k, v in extra.items() if v not in (None, "")})
        return urlencode(values)

    @property
    def active(self) -> bool:
        return bool(self.params())


@dataclass(frozen=True, slots=True)
class EventRow:
    """One event in the search results: metadata only, every text escaped for display."""

    chain: str
    seq: int
    occurred_at: datetime
    action: str
    decision: str
    actor: str
    organization: str
    participant: str
    category: str
    reasons: str
    break_glass: bool


@dataclass(frozen=True, slots=True)
class AuditPage:
    rows: list[EventRow]
    filters: AuditFilters
    next_before: int | None
    before: int | None
    note: str | None = None

    @property
    def next_query(self) -> str:
        return self.filters.query_string(before=self.next_before)


BREAK_GLASS_ACTIONS = sorted(a.value for a in AuditAction if a.value.startswith("break_glass:"))
# A decision made under a grant is written a moment later; events this long after the grant
# expired still count as made under it.
GRANT_SLACK_MINUTES = 5
_grants = m.BreakGlassGrant.__table__



def conditions(session: Session, filters: AuditFilters) -> tuple[list[Any], uuid.UUID | None,
                                                                 str | None]:
    """SQL conditions for the filters, the participant they name, and a note when a filter
    names nothing (no such participant). Raises InvalidInput for malformed filters."""
    where: list[Any] = [EVENTS.c.chain == filters.chain]
    note = None
    participant_id = None
    if filters.participant:
        participant_id = audit.participant_uuid(session, filters.participant)
        if participant_id is None:
            note = f"There is no participant {filters.participant}."
            where.append(false())
        else:
            where.append(EVENTS.c.participant_id == participant_id)
    if filters.user:
        staff = session.scalar(select(m.StaffUser.id).where(
            m.StaffUser.email == filters.user.lower()))
        where.append(EVENTS.c.actor_user_id == staff if staff is not None
                     else EVENTS.c.actor == filters.user)
    if filters.organization:
        where.append(EVENTS.c.actor_organization == filters.organization)
    if filters.action:
        if filters.action not in {a.value for a in AuditAction}:
            raise InvalidInput("Choose an action from the list.")
        where.append(EVENTS.c.action == filters.action)
    if filters.decision:
        if filters.decision not in ("permit", "deny"):
            raise InvalidInput("The decision is permit or deny.")
        where.append(EVENTS.c.decision == filters.decision)
    since = parse_when(filters.since, "start of the period", end=False)
    until = parse_when(filters.until, "end of the period", end=True)
    if since is not None and until is not None and until <= since:
        raise InvalidInput("The end of the period must be after its start.")
    if since is not None:
        where.append(EVENTS.c.occurred_at >= since)
    if until is not None:
        where.append(EVENTS.c.occurred_at < until)
    if filters.outside_caseload:
        where.append(sql.outside_caseload())
    return where, participant_id, note




_COLUMNS = (EVENTS.c.chain, EVENTS.c.seq, EVENTS.c.occurred_at, EVENTS.c.action,
            EVENTS.c.decision, EVENTS.c.actor, EVENTS.c.actor_organization,
            EVENTS.c.participant_id, EVENTS.c.category, EVENTS.c.reasons)


def search_query(where: Sequence[Any], before: int | None, limit: int, *,
                 break_glass: bool = False, postgres: bool = False) -> Select[Any]:
    """Newest first by chain position (seq), the order events were committed: a decision's
    event is stamped when it is written, so the clock can put an in-flight read after the
    revocation it preceded. Every query names one chain, so ``seq < before`` is a keyset on
    the primary key (chain, seq), and a page never uses OFFSET.

    Emergency access is rare, so scanning the log for it would read nearly everything. Its
    events are found from where they can be: the break_glass:* actions (ix_audit_action_time),
    and the views under each grant, by the grant's participant and window
    (ix_audit_participant_time); each part is ordered and limited, then merged.
    """
    keyset: list[Any] = [] if before is None else [EVENTS.c.seq < before]
    newest = (EVENTS.c.seq.desc(),)
    if not break_glass:
        return select(*_COLUMNS).where(*where, *keyset).order_by(*newest).limit(limit + 1)
    actions = (select(*_COLUMNS)
               .where(*where, *keyset, EVENTS.c.action.in_(BREAK_GLASS_ACTIONS))
               .order_by(*newest).limit(limit + 1).subquery())
    under_grant = EVENTS.join(_grants, and_(
        _grants.c.participant_id == EVENTS.c.participant_id,
        EVENTS.c.occurred_at >= _grants.c.started_at,
        EVENTS.c.occurred_at < sql.plus_minutes(postgres, _grants.c.expires_at,
                                              GRANT_SLACK_MINUTES)))
    # Grants may overlap: DISTINCT over the key only (JSON columns have no equality).
    keys = (select(EVENTS.c.chain, EVENTS.c.seq, EVENTS.c.occurred_at)
            .select_from(under_grant)
            .where(*where, *keyset, EVENTS.c.action.not_in(BREAK_GLASS_ACTIONS),
                   sql.break_glass_reason())
            .distinct().order_by(*newest).limit(limit + 1).subquery())
    views = (select(*_COLUMNS).select_from(EVENTS.join(keys, and_(
        keys.c.chain == EVENTS.c.chain, keys.c.seq == EVENTS.c.seq))).subquery())
    both = union_all(select(actions), select(views)).subquery()
    return (select(*(both.c[c.name] for c in _COLUMNS))
            .order_by(both.c.seq.desc()).limit(limit + 1))


def search(session: Session, services: Services, user: m.StaffUser, meta: RequestMeta,
           filters: AuditFilters, *, before: int | None = None,
           limit: int = PAGE_SIZE) -> AuditPage:
    """One page of events matching the filters, newest first by chain position; the read is
    audited."""
    where, participant_id, note = conditions(session, filters)
    if before is not None and session.scalar(select(EVENTS.c.seq).where(
            EVENTS.c.chain == filters.chain, EVENTS.c.seq == before)) is None:
        raise InvalidInput("That page of results no longer exists; start again.")
    found = session.execute(search_query(where, before, limit,
                                         break_glass=filters.break_glass,
                                         postgres=sql.postgres(session))).all()
    more = len(found) > limit
    found = found[:limit]
    names = sql.public_ids(session, {r.participant_id for r in found if r.participant_id})
    rows = []
    for r in found:
        reasons = r.reasons if isinstance(r.reasons, list) else []
        rows.append(EventRow(
            chain=r.chain, seq=r.seq, occurred_at=r.occurred_at, action=sql.display(r.action),
            decision=sql.display(r.decision), actor=sql.display(r.actor),
            organization=sql.display(r.actor_organization),
            participant=names.get(r.participant_id, "") if r.participant_id else "",
            category=sql.display(r.category), reasons=sql.display_list(reasons),
            break_glass="break_glass" in reasons or str(r.action).startswith("break_glass:")))
    services.audit.append(session, requester(user, meta).event(
        AuditAction.AUDIT_EVENT_VIEW, participant_id=participant_id,
        detail={"view": "search", "filters": filters.params(), "before": before,
                "shown": len(rows)}))
    return AuditPage(rows, filters, rows[-1].seq if more and rows else None, before, note)



ACTIONS: list[str] = sorted(a.value for a in AuditAction)


def organizations(session: Session) -> list[tuple[str, str]]:
    return [(slug, name) for slug, name in session.execute(
        select(m.Organization.slug, m.Organization.name).order_by(m.Organization.name))]
