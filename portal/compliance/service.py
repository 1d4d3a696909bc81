"""The compliance console: audit search, integrity runs, break-glass review, the accounting of
disclosures and oversight charts with flags for unusual patterns.

Compliance officers see event metadata (who, when, which kind of access, which category, the
decision and its reasons), never record contents: nothing here opens a record or a name. Every
read of the log is itself an audit event (45 CFR 164.312(b)), appended as the last statement of
the read's transaction, so that nothing is shown unless the read was recorded (fail closed).

Queries are SQL aggregates over the audit_event indexes (participant, actor, action or time,
each followed by occurred_at); pages are keyset-paginated on (occurred_at, seq), never OFFSET.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import (
    ColumnElement,
    Date,
    Integer,
    Select,
    Text,
    and_,
    cast,
    create_engine,
    event,
    false,
    func,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session, sessionmaker

from portal.db import audit_chain as audit
from portal.db import models as m
from portal.db.audit_chain import DEFAULT_CHAIN, AuditLog, Requester
from portal.db.types import utcnow
from portal.domain.audit import (
    EVENT_FIELDS,
    GENESIS_HASH,
    AuditAction,
    ChainedEvent,
    Checkpoint,
    VerifyResult,
    checkpoint_signature_valid,
    escape_csv_cell,
    escape_for_display,
    event_hash,
    format_time,
)
from portal.domain.permissions import Permission
from portal.domain.vocabulary import (
    PURPOSE_LABELS,
    BreakGlassReview,
    DataCategory,
    Purpose,
)
from portal.kernel.access import RequestMeta, user_may
from portal.kernel.errors import Conflict, InvalidInput, NotFound
from portal.kernel.wiring import Services

logger = logging.getLogger(__name__)

PAGE_SIZE = 50
REVIEW_QUEUE_LIMIT = 100
NOTES_MAX = 2000
# Oversight defaults: the period charted, and what counts as unusual.
OVERSIGHT_DAYS = 14
# Distinct participants outside the user's caseload (emergency access, or refused because
# their agency does not work with them) that one user opened in one day.
MANY_PARTICIPANTS = 3
DENIAL_BURST = 10  # denials of one user ...
DENIAL_BURST_WINDOW = timedelta(hours=1)  # ... within this long
ODD_HOURS = (22, 6)  # record views from 22:00 to 06:00, the program's local time

_events = m.AuditEvent.__table__
RECORD_VIEW = AuditAction.RECORD_VIEW.value
BREAK_GLASS_CREATE = AuditAction.BREAK_GLASS_GRANT_CREATE.value


# --- who may use the console ----------------------------------------------------------------


def may_review(services: Services, user: m.StaffUser) -> bool:
    """The role policy lets this user view the audit log for healthcare operations."""
    return user_may(services.policy, user, Permission.AUDIT_LOG_VIEW)


def may_export(services: Services, user: m.StaffUser) -> bool:
    """The role policy lets this user export from the audit log (disclosure downloads)."""
    return user_may(services.policy, user, Permission.AUDIT_LOG_EXPORT)


def requester(user: m.StaffUser, meta: RequestMeta) -> Requester:
    return Requester(actor=user.email, actor_user_id=user.id,
                     actor_organization=user.organization.slug,
                     actor_roles=tuple(user.role_names), session_id=meta.session_id,
                     client_address=meta.client_address, request_id=meta.request_id)


# --- time expressions (the two backends differ) ----------------------------------------------


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _utc(session: Session, column: Any, minutes: int = 0) -> Any:
    """The column as a UTC wall-clock timestamp, shifted by ``minutes`` (constants inlined, so
    that the same expression in SELECT and GROUP BY is the same SQL)."""
    if _postgres(session):
        shifted: Any = func.timezone(literal_column("'UTC'"), column)
        if minutes:
            shifted = shifted + literal_column(f"interval '{int(minutes)} minutes'")
        return shifted
    if minutes:
        return func.datetime(column, literal_column(f"'{int(minutes):+d} minutes'"))
    return column


def _day(session: Session, column: Any, minutes: int = 0) -> Any:
    """The UTC calendar day of a timestamp column (shifted by ``minutes``)."""
    if _postgres(session):
        return cast(_utc(session, column, minutes), Date)
    return func.date(_utc(session, column, minutes))


def _hour(session: Session, column: Any, minutes: int = 0) -> Any:
    if _postgres(session):
        return cast(func.date_part(literal_column("'hour'"), _utc(session, column, minutes)),
                    Integer)
    return cast(func.strftime(literal_column("'%H'"), _utc(session, column, minutes)), Integer)


def _within(session: Session, start: Any, end: Any, window: timedelta) -> Any:
    seconds = int(window.total_seconds())
    if _postgres(session):
        return end <= start + literal_column(f"interval '{seconds} seconds'")
    return (func.julianday(end) - func.julianday(start)) * 86400 <= seconds


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _as_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _floor_second(value: datetime) -> datetime:
    return value.replace(microsecond=0)


def link_time(value: datetime) -> str:
    """A time as the audit search accepts it (UTC, to the second)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


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


def _break_glass_reason() -> ColumnElement[bool]:
    return cast(_events.c.reasons, Text).like('%"break\\_glass"%', escape="\\")


def _plus_minutes(postgres: bool, column: Any, minutes: int) -> Any:
    if postgres:
        return column + literal_column(f"interval '{int(minutes)} minutes'")
    # SQLite keeps times as text 'YYYY-MM-DD HH:MM:SS.ffffff'; this compares as text.
    return func.strftime(literal_column("'%Y-%m-%d %H:%M:%f'"), column,
                         literal_column(f"'+{int(minutes)} minutes'"))


def conditions(session: Session, filters: AuditFilters) -> tuple[list[Any], uuid.UUID | None,
                                                                 str | None]:
    """SQL conditions for the filters, the participant they name, and a note when a filter
    names nothing (no such participant). Raises InvalidInput for malformed filters."""
    where: list[Any] = [_events.c.chain == filters.chain]
    note = None
    participant_id = None
    if filters.participant:
        participant_id = audit.participant_uuid(session, filters.participant)
        if participant_id is None:
            note = f"There is no participant {filters.participant}."
            where.append(false())
        else:
            where.append(_events.c.participant_id == participant_id)
    if filters.user:
        staff = session.scalar(select(m.StaffUser.id).where(
            m.StaffUser.email == filters.user.lower()))
        where.append(_events.c.actor_user_id == staff if staff is not None
                     else _events.c.actor == filters.user)
    if filters.organization:
        where.append(_events.c.actor_organization == filters.organization)
    if filters.action:
        if filters.action not in {a.value for a in AuditAction}:
            raise InvalidInput("Choose an action from the list.")
        where.append(_events.c.action == filters.action)
    if filters.decision:
        if filters.decision not in ("permit", "deny"):
            raise InvalidInput("The decision is permit or deny.")
        where.append(_events.c.decision == filters.decision)
    since = parse_when(filters.since, "start of the period", end=False)
    until = parse_when(filters.until, "end of the period", end=True)
    if since is not None and until is not None and until <= since:
        raise InvalidInput("The end of the period must be after its start.")
    if since is not None:
        where.append(_events.c.occurred_at >= since)
    if until is not None:
        where.append(_events.c.occurred_at < until)
    if filters.outside_caseload:
        where.append(_outside_caseload())
    return where, participant_id, note


def _public_ids(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    return _pairs(session, select(m.Participant.id, m.Participant.public_id)
                  .where(m.Participant.id.in_(ids)))


def _pairs(session: Session, stmt: Select[Any, Any]) -> dict[Any, Any]:
    return dict(session.execute(stmt).tuples().all())


def _text(value: object) -> str:
    return "" if value is None else escape_for_display(str(value))


def _list_text(values: object) -> str:
    if not isinstance(values, list | tuple):
        return _text(values)
    return ", ".join(escape_for_display(str(v)) for v in values)


_COLUMNS = (_events.c.chain, _events.c.seq, _events.c.occurred_at, _events.c.action,
            _events.c.decision, _events.c.actor, _events.c.actor_organization,
            _events.c.participant_id, _events.c.category, _events.c.reasons)


def search_query(where: Sequence[Any], before: tuple[datetime, int] | None, limit: int, *,
                 break_glass: bool = False, postgres: bool = False) -> Select[Any]:
    """Newest first on (occurred_at, seq). The keyset bound ``occurred_at <= t`` is a plain
    range on the leading column of whichever index the filters pick (participant, actor,
    action or time), so a page costs the same at the start and at the end of the log.

    Emergency access is rare, so scanning the log for it would read nearly everything. Its
    events are found from where they can be: the break_glass:* actions (ix_audit_action_time),
    and the views under each grant, by the grant's participant and window
    (ix_audit_participant_time); each part is ordered and limited, then merged.
    """
    keyset: list[Any] = []
    if before is not None:
        at, seq = before
        keyset = [_events.c.occurred_at <= at,
                  or_(_events.c.occurred_at < at, _events.c.seq < seq)]
    newest = (_events.c.occurred_at.desc(), _events.c.seq.desc())
    if not break_glass:
        return select(*_COLUMNS).where(*where, *keyset).order_by(*newest).limit(limit + 1)
    actions = (select(*_COLUMNS)
               .where(*where, *keyset, _events.c.action.in_(BREAK_GLASS_ACTIONS))
               .order_by(*newest).limit(limit + 1).subquery())
    under_grant = _events.join(_grants, and_(
        _grants.c.participant_id == _events.c.participant_id,
        _events.c.occurred_at >= _grants.c.started_at,
        _events.c.occurred_at < _plus_minutes(postgres, _grants.c.expires_at,
                                              GRANT_SLACK_MINUTES)))
    # Grants may overlap: DISTINCT over the key only (JSON columns have no equality).
    keys = (select(_events.c.chain, _events.c.seq, _events.c.occurred_at)
            .select_from(under_grant)
            .where(*where, *keyset, _events.c.action.not_in(BREAK_GLASS_ACTIONS),
                   _break_glass_reason())
            .distinct().order_by(*newest).limit(limit + 1).subquery())
    views = (select(*_COLUMNS).select_from(_events.join(keys, and_(
        keys.c.chain == _events.c.chain, keys.c.seq == _events.c.seq))).subquery())
    both = union_all(select(actions), select(views)).subquery()
    return (select(*(both.c[c.name] for c in _COLUMNS))
            .order_by(both.c.occurred_at.desc(), both.c.seq.desc()).limit(limit + 1))


def search(session: Session, services: Services, user: m.StaffUser, meta: RequestMeta,
           filters: AuditFilters, *, before: int | None = None,
           limit: int = PAGE_SIZE) -> AuditPage:
    """One page of events matching the filters, newest first; the read is audited."""
    where, participant_id, note = conditions(session, filters)
    cursor = None
    if before is not None:
        at = session.scalar(select(_events.c.occurred_at).where(
            _events.c.chain == filters.chain, _events.c.seq == before))
        if at is None:
            raise InvalidInput("That page of results no longer exists; start again.")
        cursor = (at, before)
    found = session.execute(search_query(where, cursor, limit,
                                         break_glass=filters.break_glass,
                                         postgres=_postgres(session))).all()
    more = len(found) > limit
    found = found[:limit]
    names = _public_ids(session, {r.participant_id for r in found if r.participant_id})
    rows = []
    for r in found:
        reasons = r.reasons if isinstance(r.reasons, list) else []
        rows.append(EventRow(
            chain=r.chain, seq=r.seq, occurred_at=r.occurred_at, action=_text(r.action),
            decision=_text(r.decision), actor=_text(r.actor),
            organization=_text(r.actor_organization),
            participant=names.get(r.participant_id, "") if r.participant_id else "",
            category=_text(r.category), reasons=_list_text(reasons),
            break_glass="break_glass" in reasons or str(r.action).startswith("break_glass:")))
    services.audit.append(session, requester(user, meta).event(
        AuditAction.AUDIT_EVENT_VIEW, participant_id=participant_id,
        detail={"view": "search", "filters": filters.params(), "before": before,
                "shown": len(rows)}))
    return AuditPage(rows, filters, rows[-1].seq if more and rows else None, before, note)


# --- one event -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventDetail:
    chain: str
    seq: int
    head_seq: int
    occurred_at: datetime
    action: str
    participant: str
    fields: list[tuple[str, str]]
    detail: list[tuple[str, str]]
    prev_hash: str
    hash: str
    hash_matches: bool  # the stored hash is the hash of the stored content
    links_back: bool  # prev_hash is the stored hash of the previous event (or genesis)


def _json_text(value: object) -> str:
    if isinstance(value, str):
        return escape_for_display(value)
    try:
        return escape_for_display(orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())
    except TypeError:
        return escape_for_display(repr(value))


def event_detail(session: Session, services: Services, user: m.StaffUser, meta: RequestMeta,
                 chain: str, seq: int) -> EventDetail:
    """Every stored field of one event, escaped, with its place in the chain; audited."""
    row = session.get(m.AuditEvent, (chain, seq))
    if row is None:
        raise NotFound(f"{chain}:{seq}")
    event = ChainedEvent(**{name: getattr(row, name) for name in EVENT_FIELDS})
    try:
        matches = event_hash(event) == event.hash
    except (TypeError, ValueError):
        matches = False
    previous = session.scalar(select(_events.c.hash).where(
        _events.c.chain == chain, _events.c.seq == seq - 1)) if seq > 1 else GENESIS_HASH
    head = session.scalar(select(func.max(_events.c.seq)).where(_events.c.chain == chain)) or seq
    public_id = ""
    if event.participant_id is not None:
        public_id = _public_ids(session, {event.participant_id}).get(event.participant_id, "")
    fields: list[tuple[str, str]] = []
    for name in EVENT_FIELDS:
        if name in ("detail", "prev_hash", "hash"):
            continue
        value = getattr(event, name)
        if name == "occurred_at":
            fields.append((name, format_time(value)))
        elif name == "participant_id" and value is not None:
            fields.append((name, f"{value}" + (f" ({public_id})" if public_id else "")))
        elif isinstance(value, list | tuple):
            fields.append((name, _list_text(value)))
        else:
            fields.append((name, _text(value)))
    details = event.detail if isinstance(event.detail, Mapping) else {"": event.detail}
    shown_detail = [(escape_for_display(str(k)), _json_text(v))
                    for k, v in sorted(details.items())]
    services.audit.append(session, requester(user, meta).event(
        AuditAction.AUDIT_EVENT_VIEW, participant_id=event.participant_id,
        detail={"view": "event", "chain": chain, "seq": seq}))
    return EventDetail(chain=chain, seq=seq, head_seq=int(head), occurred_at=event.occurred_at,
                       action=_text(event.action), participant=public_id, fields=fields,
                       detail=shown_detail, prev_hash=_text(event.prev_hash),
                       hash=_text(event.hash), hash_matches=matches,
                       links_back=previous is not None and previous == event.prev_hash)


# --- integrity: verification runs ------------------------------------------------------------

RunStatus = Literal["running", "done", "failed"]


@dataclass
class VerificationRun:
    """A verification in progress (kept in memory by the process running it)."""

    id: uuid.UUID
    database: str
    started_at: datetime
    started_by: str
    total: int
    checked: int = 0
    status: RunStatus = "running"
    result: VerifyResult | None = None
    error: str | None = None
    finished_at: datetime | None = None

    @property
    def percent(self) -> int:
        if self.status != "running":
            return 100
        if self.total <= 0:
            return 0
        return min(99, self.checked * 100 // self.total)


class VerificationRuns:
    """The runs of this process, by id; at most one running per database."""

    KEEP = timedelta(hours=1)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[uuid.UUID, VerificationRun] = {}

    def reserve(self, run: VerificationRun) -> VerificationRun:
        """Add ``run`` unless one is already running on the same database (returned then)."""
        with self._lock:
            now = utcnow()
            for old in list(self._runs.values()):
                if old.finished_at is not None and now - old.finished_at > self.KEEP:
                    del self._runs[old.id]
            for other in self._runs.values():
                if other.database == run.database and other.status == "running":
                    return other
            self._runs[run.id] = run
            return run

    def drop(self, run_id: uuid.UUID) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def get(self, run_id: uuid.UUID) -> VerificationRun | None:
        with self._lock:
            run = self._runs.get(run_id)
            return None if run is None else replace(run)

    def advance(self, run_id: uuid.UUID, count: int) -> None:
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None:
                run.checked += count

    def finish(self, run_id: uuid.UUID, *, result: VerifyResult | None = None,
               error: str | None = None) -> None:
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None:
                run.status = "done" if result is not None else "failed"
                run.result, run.error = result, error
                run.finished_at = utcnow()
                if result is not None:
                    run.checked = result.events


RUNS = VerificationRuns()


def _database_key(factory: sessionmaker[Session]) -> str:
    bind = factory.kw.get("bind")
    return "" if bind is None else bind.url.render_as_string(hide_password=True)


def _estimated_events(session: Session) -> int:
    """The number of events to check: the head of each chain (gapless sequences)."""
    heads = session.execute(select(_events.c.chain, func.max(_events.c.seq))
                            .group_by(_events.c.chain)).all()
    return sum(int(head or 0) for _, head in heads)


def start_verification(factory: sessionmaker[Session], services: Services, user: m.StaffUser,
                       meta: RequestMeta, *, runs: VerificationRuns = RUNS,
                       background: bool = True) -> VerificationRun:
    """Record and audit the start of a verification, then run it in a background thread with
    its own sessions. A run already in progress on this database is returned instead."""
    run = VerificationRun(id=uuid.uuid4(), database=_database_key(factory), started_at=utcnow(),
                          started_by=user.email, total=0)
    reserved = runs.reserve(run)
    if reserved is not run:
        return replace(reserved)
    who = requester(user, meta)
    try:
        with factory.begin() as session:
            run.total = _estimated_events(session)
            session.add(m.AuditVerification(
                id=run.id, started_at=run.started_at, started_by=user.email,
                started_by_user_id=user.id, status="running", events=0, checkpoints=0))
            session.flush()
            services.audit.append(session, who.event(
                AuditAction.AUDIT_VERIFY, detail={"run": str(run.id), "phase": "started"}))
    except Exception:
        runs.drop(run.id)
        raise
    task = _verification_task(factory, services.audit, who, run.id, runs)
    if background:
        threading.Thread(target=task, name=f"audit-verify-{run.id}", daemon=True).start()
    else:
        task()
    return runs.get(run.id) or run


def _verification_task(factory: sessionmaker[Session], log: AuditLog, who: Requester,
                       run_id: uuid.UUID, runs: VerificationRuns) -> Callable[[], None]:
    def progress(count: int) -> None:
        runs.advance(run_id, count)

    def task() -> None:
        reader, close = _reading_sessions(factory)
        try:
            result = audit.verify(reader, log.public_keys, progress=progress)
        except Exception as exc:
            logger.exception("audit verification %s failed", run_id)
            _store_failure(factory, run_id, f"verification stopped ({type(exc).__name__})")
            runs.finish(run_id, error="The verification stopped with an error; see the "
                                      "server log, then try again.")
            return
        finally:
            close()
        try:
            with factory.begin() as session:
                row = session.get(m.AuditVerification, run_id)
                if row is not None:
                    row.status, row.finished_at = "done", utcnow()
                    row.ok, row.events = result.ok, result.events
                    row.first_bad_seq = result.first_bad_seq
                    row.damage = None if result.damage is None else result.damage.value
                    row.chain, row.checkpoints = result.chain, result.checkpoints
                log.append(session, who.event(AuditAction.AUDIT_VERIFY, detail={
                    "run": str(run_id), "phase": "finished", "chain": result.chain,
                    **result.as_json()}))
        except Exception as exc:
            logger.exception("could not store the result of audit verification %s", run_id)
            _store_failure(factory, run_id, f"result not stored ({type(exc).__name__})")
            runs.finish(run_id, error="The result could not be stored; try again.")
            return
        runs.finish(run_id, result=result)

    return task


def _reading_sessions(factory: sessionmaker[Session]
                      ) -> tuple[sessionmaker[Session], Callable[[], None]]:
    """Sessions for a long read. On SQLite the portal begins every transaction IMMEDIATE (a
    write lock, so that a read and its audit event are one transaction); a verification that
    held it for the whole scan would stall every access. Here a deferred BEGIN gives the scan a
    consistent snapshot (WAL) and takes no write lock."""
    bind = factory.kw.get("bind")
    if bind is None or bind.dialect.name != "sqlite":
        return factory, lambda: None
    engine = create_engine(bind.url, connect_args={"timeout": 30})

    def connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver's own BEGIN handling off
        dbapi_connection.execute("PRAGMA busy_timeout=30000")

    def begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")

    event.listen(engine, "connect", connect)
    event.listen(engine, "begin", begin)
    return sessionmaker(engine, expire_on_commit=False), engine.dispose


def _store_failure(factory: sessionmaker[Session], run_id: uuid.UUID, error: str) -> None:
    try:
        with factory.begin() as session:
            row = session.get(m.AuditVerification, run_id)
            if row is not None:
                row.status, row.finished_at, row.error = "failed", utcnow(), error[:300]
    except Exception:
        logger.exception("could not record the failure of audit verification %s", run_id)


@dataclass(frozen=True, slots=True)
class StoredVerification:
    id: uuid.UUID
    started_at: datetime
    finished_at: datetime | None
    started_by: str
    status: str
    ok: bool | None
    events: int
    first_bad_seq: int | None
    damage: str | None
    chain: str | None
    checkpoints: int
    error: str | None

    @classmethod
    def of(cls, row: m.AuditVerification) -> StoredVerification:
        return cls(id=row.id, started_at=row.started_at, finished_at=row.finished_at,
                   started_by=escape_for_display(row.started_by), status=row.status, ok=row.ok,
                   events=row.events, first_bad_seq=row.first_bad_seq, damage=row.damage,
                   chain=row.chain, checkpoints=row.checkpoints, error=row.error)


@dataclass(frozen=True, slots=True)
class RunView:
    """What the progress fragment shows about one run."""

    id: uuid.UUID
    status: str  # running, done, failed, or interrupted (running elsewhere or stopped)
    checked: int
    total: int
    percent: int
    ok: bool | None
    events: int
    first_bad_seq: int | None
    damage: str | None
    chain: str | None
    error: str | None


def run_view(factory: sessionmaker[Session], run_id: uuid.UUID, *,
             runs: VerificationRuns = RUNS) -> RunView:
    run = runs.get(run_id)
    if run is not None and run.database == _database_key(factory):
        result = run.result
        return RunView(id=run.id, status=run.status, checked=run.checked, total=run.total,
                       percent=run.percent, ok=None if result is None else result.ok,
                       events=run.checked, first_bad_seq=None if result is None
                       else result.first_bad_seq,
                       damage=None if result is None or result.damage is None
                       else result.damage.value,
                       chain=None if result is None else result.chain, error=run.error)
    with factory() as session:
        row = session.get(m.AuditVerification, run_id)
        if row is None:
            raise NotFound(str(run_id))
        stored = StoredVerification.of(row)
    status = "interrupted" if stored.status == "running" else stored.status
    return RunView(id=stored.id, status=status, checked=stored.events, total=stored.events,
                   percent=100, ok=stored.ok, events=stored.events,
                   first_bad_seq=stored.first_bad_seq, damage=stored.damage, chain=stored.chain,
                   error=stored.error)


@dataclass(frozen=True, slots=True)
class CheckpointView:
    chain: str
    seq: int
    head_hash: str
    signed_at: datetime
    key_id: str
    signature_valid: bool


@dataclass(frozen=True, slots=True)
class Integrity:
    last: StoredVerification | None
    running: StoredVerification | None
    checkpoint: CheckpointView | None
    head_seq: int | None


def integrity(session: Session, services: Services) -> Integrity:
    """The last stored verification result, a run in progress, and the latest checkpoint.

    Shows no event content; the checkpoint is read by its primary key, the results by their
    start time (ix_audit_verification_started)."""
    last = session.scalar(select(m.AuditVerification)
                          .where(m.AuditVerification.status != "running")
                          .order_by(m.AuditVerification.started_at.desc()).limit(1))
    running = session.scalar(select(m.AuditVerification)
                             .where(m.AuditVerification.status == "running")
                             .order_by(m.AuditVerification.started_at.desc()).limit(1))
    cp_row = session.scalar(select(m.AuditCheckpoint)
                            .where(m.AuditCheckpoint.chain == DEFAULT_CHAIN)
                            .order_by(m.AuditCheckpoint.seq.desc()).limit(1))
    checkpoint = None
    if cp_row is not None:
        cp = Checkpoint(chain=cp_row.chain, seq=cp_row.seq, head_hash=cp_row.head_hash,
                        signed_at=cp_row.signed_at, key_id=cp_row.key_id,
                        signature=cp_row.signature)
        checkpoint = CheckpointView(cp.chain, cp.seq, escape_for_display(cp.head_hash),
                                    cp.signed_at, escape_for_display(cp.key_id),
                                    checkpoint_signature_valid(cp, services.audit.public_keys))
    head = session.scalar(select(func.max(_events.c.seq))
                          .where(_events.c.chain == DEFAULT_CHAIN))
    return Integrity(last=None if last is None else StoredVerification.of(last),
                     running=None if running is None else StoredVerification.of(running),
                     checkpoint=checkpoint, head_seq=head)


def export_checkpoints(factory: sessionmaker[Session], services: Services, user: m.StaffUser,
                       meta: RequestMeta) -> bytes:
    """Every signed checkpoint as JSON lines, to keep outside the portal; audited first."""
    audit.record_read(factory, services.audit, requester(user, meta),
                      AuditAction.AUDIT_CHECKPOINTS_EXPORT, detail={"format": "jsonl"})
    with factory() as session:
        records = audit.export_checkpoints(session, services.audit.public_keys)
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


# --- break-glass review ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeenCategory:
    category: str
    label: str
    views: int
    records: int
    denied: int


@dataclass(frozen=True, slots=True)
class GrantRow:
    id: uuid.UUID
    staff: str
    staff_email: str
    organization: str
    participant: str
    reason: str
    emergency_nature: str
    facility: str
    started_at: datetime
    expires_at: datetime
    active: bool
    review_status: str
    reviewed_by: str
    reviewed_at: datetime | None
    review_notes: str
    seen: list[SeenCategory]


ReviewFilter = Literal["pending", "reviewed", "all"]


def _category_label(value: str | None) -> str:
    try:
        return DataCategory(value).info.label if value else "(none)"
    except ValueError:
        return escape_for_display(str(value))


def _seen_under(session: Session, grants: Sequence[m.BreakGlassGrant]
                ) -> dict[str, list[SeenCategory]]:
    """What each grant's holder was shown, per category: counts of views and records, from
    the record:view events that name the grant (never the records themselves). Narrowed by
    participant and time first, so ix_audit_participant_time does the work."""
    if not grants:
        return {}
    grant_key = m.AuditEvent.detail["break_glass_grant"].as_string()
    stmt = (select(grant_key.label("grant_id"), _events.c.category, _events.c.decision,
                   func.count().label("views"),
                   func.coalesce(func.sum(func.json_array_length(_events.c.record_ids)), 0)
                   .label("records"))
            .where(_events.c.participant_id.in_({g.participant_id for g in grants}),
                   _events.c.occurred_at >= min(g.started_at for g in grants),
                   _events.c.action == RECORD_VIEW,
                   grant_key.in_([str(g.id) for g in grants]))
            .group_by(literal_column("grant_id"), _events.c.category, _events.c.decision))
    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    for grant, category, decision, views, records in session.execute(stmt).tuples():
        cell = counts[str(grant)][str(category)]
        if decision == "permit":
            cell[0] += int(views)
            cell[1] += int(records or 0)
        else:
            cell[2] += int(views)
    order = {c.value: i for i, c in enumerate(DataCategory)}
    return {grant: [SeenCategory(c, _category_label(c), v, r, d)
                    for c, (v, r, d) in sorted(cats.items(), key=lambda x: order.get(x[0], 99))]
            for grant, cats in counts.items()}


def review_queue(session: Session, services: Services, user: m.StaffUser, meta: RequestMeta,
                 status: ReviewFilter = "pending") -> list[GrantRow]:
    """Emergency accesses, newest first (pending ones by default), with what was seen; the
    read of the log behind "what was seen" is audited."""
    stmt = select(m.BreakGlassGrant).order_by(m.BreakGlassGrant.started_at.desc())
    if status == "pending":
        stmt = stmt.where(m.BreakGlassGrant.review_status == BreakGlassReview.PENDING.value)
    elif status == "reviewed":
        stmt = stmt.where(m.BreakGlassGrant.review_status != BreakGlassReview.PENDING.value)
    grants = list(session.scalars(stmt.limit(REVIEW_QUEUE_LIMIT)))
    people = {u.id: u for u in session.scalars(select(m.StaffUser).where(m.StaffUser.id.in_(
        {g.staff_user_id for g in grants} | {g.reviewed_by_user_id for g in grants
                                             if g.reviewed_by_user_id is not None})))}
    orgs = _pairs(session, select(m.Organization.id, m.Organization.name))
    names = _public_ids(session, {g.participant_id for g in grants})
    seen = _seen_under(session, grants)
    now = utcnow()
    rows = []
    for g in grants:
        staff = people.get(g.staff_user_id)
        reviewer = people.get(g.reviewed_by_user_id) if g.reviewed_by_user_id else None
        rows.append(GrantRow(
            id=g.id, staff=_text(staff.display_name if staff else f"user {g.staff_user_id}"),
            staff_email=_text(staff.email if staff else ""),
            organization=_text(orgs.get(g.organization_id, "")),
            participant=names.get(g.participant_id, ""), reason=_text(g.reason),
            emergency_nature=_text(g.emergency_nature), facility=_text(g.facility),
            started_at=g.started_at, expires_at=g.expires_at,
            active=g.started_at <= now < g.expires_at, review_status=g.review_status,
            reviewed_by=_text(reviewer.display_name if reviewer else ""),
            reviewed_at=g.reviewed_at, review_notes=_text(g.review_notes),
            seen=seen.get(str(g.id), [])))
    services.audit.append(session, requester(user, meta).event(
        AuditAction.AUDIT_EVENT_VIEW,
        detail={"view": "break_glass_queue", "status": status, "grants": len(rows)}))
    return rows


def review_grant(session: Session, services: Services, user: m.StaffUser, meta: RequestMeta,
                 grant_id: uuid.UUID, finding: str, notes: str) -> m.BreakGlassGrant:
    """Record the compliance finding on one emergency access; audited in the same
    transaction. A finding is final: a grant already reviewed is refused."""
    notes = notes.strip()
    if finding not in (BreakGlassReview.JUSTIFIED.value, BreakGlassReview.NOT_JUSTIFIED.value):
        raise InvalidInput("Choose whether the emergency access was justified.")
    if finding == BreakGlassReview.NOT_JUSTIFIED.value and not notes:
        raise InvalidInput("Say why the emergency access was not justified.")
    if len(notes) > NOTES_MAX:
        raise InvalidInput(f"Keep the notes to at most {NOTES_MAX:,} characters.")
    grant = session.scalar(select(m.BreakGlassGrant).where(m.BreakGlassGrant.id == grant_id)
                           .with_for_update())
    if grant is None:
        raise NotFound(str(grant_id))
    if grant.review_status != BreakGlassReview.PENDING.value:
        raise Conflict("This emergency access has already been reviewed.")
    if grant.staff_user_id == user.id:
        raise Conflict("You cannot review your own emergency access.")
    now = utcnow()
    grant.review_status = finding
    grant.reviewed_by_user_id = user.id
    grant.reviewed_at = now
    grant.review_notes = notes or None
    session.flush()
    event = requester(user, meta).event(
        AuditAction.BREAK_GLASS_GRANT_REVIEW, participant_id=grant.participant_id,
        detail={"break_glass_grant": str(grant.id), "finding": finding, "notes": notes,
                "grantee_user_id": grant.staff_user_id})
    services.audit.append(session, replace(event, record_ids=(str(grant.id),),
                                           policy_version=services.policy.version))
    return grant


# --- accounting of disclosures ---------------------------------------------------------------

DISCLOSURE_COLUMNS = ("Date and time (UTC)", "Recipient", "Recipient organization",
                      "Recipient role", "Disclosed by", "Information", "Records", "Purpose",
                      "Basis", "Consent or emergency reference")
_BASIS_TEXT = {"consent": "Participant's written consent",
               "break_glass": "Medical emergency (42 CFR 2.51)",
               "unrecorded": "No basis recorded (follow up)"}


@dataclass(frozen=True, slots=True)
class DisclosureReport:
    public_id: str
    since: date | None
    until: date | None
    generated_at: datetime
    generated_by: str
    rows: list[list[str]]  # raw cell values (escape on output)

    @property
    def shown_rows(self) -> list[list[str]]:
        return [[escape_for_display(cell) for cell in row] for row in self.rows]

    def csv(self) -> str:
        """Spreadsheet-safe: control characters shown, a leading = + - @ neutralised."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(DISCLOSURE_COLUMNS)
        for row in self.rows:
            writer.writerow([escape_csv_cell(cell) for cell in row])
        return buffer.getvalue()

    def pdf(self) -> bytes:
        return render_disclosures_pdf(self)


def _period_date(text: str, what: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"The {what} must be a date like 2026-11-28.") from None


def disclosure_report(session: Session, services: Services, user: m.StaffUser,
                      meta: RequestMeta, public_id: str, since_text: str = "",
                      until_text: str = "", *, output: str = "html") -> DisclosureReport:
    """The accounting of disclosures for one participant (45 CFR 164.528; 42 CFR 2.24, 2.25):
    each permitted outside view or export with date, recipient, what, purpose and basis.
    ``until`` includes that day. Audited (audit:disclosures:view) with the output format."""
    public_id = public_id.strip().upper()
    since = _period_date(since_text, "start date")
    until = _period_date(until_text, "end date")
    participant_id = audit.participant_uuid(session, public_id)
    if participant_id is None:
        raise NotFound(public_id)
    since_at = None if since is None else datetime.combine(since, time.min, tzinfo=UTC)
    until_at = None if until is None else \
        datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC)
    try:
        found = audit.disclosures(session, participant_id, since_at, until_at)
    except ValueError as exc:
        raise InvalidInput(f"{str(exc)[:1].upper()}{str(exc)[1:]}.") from None
    orgs = _pairs(session, select(m.Organization.slug, m.Organization.name))
    rows = []
    for d in found:
        purpose = d.purpose or ""
        with contextlib.suppress(KeyError, ValueError):
            purpose = PURPOSE_LABELS[Purpose(purpose)]
        reference = ", ".join(d.consent_ids) if d.consent_ids else (d.break_glass_grant or "")
        rows.append([
            d.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"), d.recipient,
            orgs.get(d.recipient_organization or "", d.recipient_organization or ""),
            ", ".join(r.replace("_", " ") for r in d.recipient_roles),
            ", ".join(orgs.get(s, s) for s in d.disclosers), _category_label(d.category),
            str(len(d.record_ids)), purpose, _BASIS_TEXT.get(d.basis, d.basis), reference])
    services.audit.append(session, requester(user, meta).event(
        AuditAction.AUDIT_DISCLOSURES_VIEW, participant_id=participant_id,
        detail={"format": output, "since": None if since is None else since.isoformat(),
                "until": None if until is None else until.isoformat(), "count": len(rows)}))
    return DisclosureReport(public_id=public_id, since=since, until=until,
                            generated_at=utcnow(), generated_by=user.email, rows=rows)


def _latin1(text: str) -> str:
    return escape_for_display(text).encode("latin-1", "replace").decode("latin-1")


def render_disclosures_pdf(report: DisclosureReport) -> bytes:
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_title(f"Accounting of disclosures for {report.public_id}")
    pdf.set_author("LEAD Partner Portal")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("helvetica", style="B", size=14)
    pdf.multi_cell(0, 8, _latin1(f"Accounting of disclosures for {report.public_id}"),
                   new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=9)
    period = (f"Period: {report.since.isoformat() if report.since else 'six years back'} to "
              f"{report.until.isoformat() if report.until else 'today'}. Generated "
              f"{report.generated_at:%Y-%m-%d %H:%M} UTC by {report.generated_by}.")
    for line in (period, "Each disclosure of this participant's information to another "
                 "organization (45 CFR 164.528; 42 CFR 2.24, 2.25). Information categories "
                 "only; no record contents."):
        pdf.multi_cell(0, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    if not report.rows:
        pdf.multi_cell(0, 6, "No disclosures in this period.", new_x="LMARGIN", new_y="NEXT")
    else:
        pdf.set_font("helvetica", size=7)
        widths = (24, 38, 30, 22, 32, 24, 12, 25, 28, 42)
        with pdf.table(col_widths=widths, headings_style=FontFace(emphasis="BOLD"),
                       line_height=4) as table:
            table.row([_latin1(c) for c in DISCLOSURE_COLUMNS])
            for row in report.rows:
                table.row([_latin1(c) for c in row])
    return bytes(pdf.output())


# --- oversight -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """A server-rendered bar chart: geometry in SVG user units, no styles (CSP-safe)."""

    id: str
    title: str
    description: str
    days: list[date]
    values: list[int]
    bars: list[Bar]
    width: int
    height: int
    plot_top: int
    plot_bottom: int
    max_value: int
    ticks: list[tuple[float, str]]  # (x, label) along the bottom

    @property
    def total(self) -> int:
        return sum(self.values)


CHART_WIDTH, CHART_HEIGHT = 560, 150
_LEFT, _RIGHT, _TOP, _BOTTOM = 36, 8, 14, 24


def bar_chart(chart_id: str, title: str, description: str, days: list[date],
              values: list[int]) -> Chart:
    plot_width = CHART_WIDTH - _LEFT - _RIGHT
    plot_height = CHART_HEIGHT - _TOP - _BOTTOM
    slot = plot_width / max(len(days), 1)
    top = max([*values, 1])
    bars, ticks = [], []
    for i, (day, value) in enumerate(zip(days, values, strict=True)):
        height = plot_height * value / top
        x = _LEFT + i * slot
        bars.append(Bar(x=round(x + slot * 0.15, 1), y=round(_TOP + plot_height - height, 1),
                        width=round(slot * 0.7, 1), height=round(height, 1), value=value,
                        label=f"{day:%d %b}: {value}"))
        if i % 2 == 0 or len(days) <= 7:
            ticks.append((round(x + slot / 2, 1), f"{day.day} {day:%b}"))
    return Chart(id=chart_id, title=title, description=description, days=days, values=values,
                 bars=bars, width=CHART_WIDTH, height=CHART_HEIGHT, plot_top=_TOP,
                 plot_bottom=_TOP + plot_height, max_value=top, ticks=ticks)


@dataclass(frozen=True, slots=True)
class Flag:
    kind: str  # many_participants, denial_burst, odd_hours
    title: str
    who: str
    when: str
    count: int
    description: str
    link: str  # the audit search that lists the events behind the flag


@dataclass(frozen=True, slots=True)
class Oversight:
    days: list[date]
    accesses: list[Chart]  # one per organization with any access
    denials: Chart
    break_glass: Chart
    pending_reviews: int
    flags: list[Flag]
    threshold: int


def _search_link(**params: str) -> str:
    return "/compliance/audit?" + urlencode({k: v for k, v in params.items() if v})


def _per_day(session: Session, start: datetime, end: datetime,
             *conditions: Any) -> dict[date, int]:
    day = _day(session, _events.c.occurred_at)
    stmt = (select(day.label("day"), func.count()).where(
        _events.c.occurred_at >= start, _events.c.occurred_at < end, *conditions)
        .group_by(day))
    return {_as_date(d): int(n) for d, n in session.execute(stmt).tuples()}


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
    in_period = (_events.c.occurred_at >= start, _events.c.occurred_at < end)
    day = _day(session, _events.c.occurred_at)

    # Permitted record views per organization per day.
    per_org: dict[str, dict[date, int]] = defaultdict(dict)
    for org, d, n in session.execute(
            select(_events.c.actor_organization, day.label("day"), func.count())
            .where(_events.c.action == RECORD_VIEW, _events.c.decision == "permit", *in_period)
            .group_by(_events.c.actor_organization, day)).tuples():
        per_org[org or ""][_as_date(d)] = int(n)
    names = _pairs(session, select(m.Organization.slug, m.Organization.name))
    accesses = []
    for i, org in enumerate(sorted(per_org, key=lambda s: names.get(s, s))):
        label = escape_for_display(names.get(org, org) or "(no organization)")
        values = [per_org[org].get(d, 0) for d in period]
        accesses.append(bar_chart(
            f"chart-access-{i}", label, f"Permitted record views by {label} per day, "
            f"{period[0]:%d %b} to {period[-1]:%d %b}: {sum(values)} in all.", period, values))

    denials = _per_day(session, start, end, _refused())
    denial_values = [denials.get(d, 0) for d in period]
    grants = _per_day(session, start, end, _events.c.action == BREAK_GLASS_CREATE,
                      _events.c.decision == "permit")
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
    return and_(_events.c.decision == "deny", _events.c.action.not_in(NOT_ATTEMPTS))


def _outside_caseload() -> ColumnElement[bool]:
    """Events of a user opening a participant outside their caseload: record views under an
    emergency grant, and attempts refused because their agency does not work with them."""
    reasons = cast(_events.c.reasons, Text)
    return or_(and_(_events.c.action == RECORD_VIEW, _break_glass_reason()),
               and_(_events.c.decision == "deny",
                    reasons.like('%"not\\_on\\_care\\_team"%', escape="\\")))


def _many_participants(session: Session, in_period: tuple[Any, ...],
                       threshold: int) -> list[Flag]:
    """Users who opened more than ``threshold`` distinct participants outside their caseload
    in a day."""
    day = _day(session, _events.c.occurred_at)
    distinct = func.count(_events.c.participant_id.distinct())
    stmt = (select(_events.c.actor_user_id, _events.c.actor, day.label("day"),
                   distinct.label("people"), func.count().label("events"))
            .where(_outside_caseload(), _events.c.participant_id.is_not(None), *in_period)
            .group_by(_events.c.actor_user_id, _events.c.actor, day)
            .having(distinct > threshold)
            .order_by(day.desc(), distinct.desc()))
    flags = []
    for _user_id, actor, d, people, events in session.execute(stmt).tuples():
        when = _as_date(d)
        flags.append(Flag(
            kind="many_participants", title="Many participants outside the caseload",
            who=escape_for_display(actor), when=when.isoformat(), count=int(events),
            description=f"Opened {people} different participants outside their caseload on "
                        f"{when:%d %b %Y} (more than {threshold}), by emergency access or "
                        "refused because their agency does not work with them.",
            link=_search_link(user=actor, outside_caseload="1",
                              since=when.isoformat(), until=when.isoformat())))
    return flags


def _denial_bursts(session: Session, in_period: tuple[Any, ...]) -> list[Flag]:
    """Users with DENIAL_BURST or more denials within DENIAL_BURST_WINDOW: for each denial,
    the one DENIAL_BURST - 1 later of the same user (a window function) is close enough."""
    ahead = func.lead(_events.c.occurred_at, DENIAL_BURST - 1).over(
        partition_by=(_events.c.actor_user_id, _events.c.actor),
        order_by=(_events.c.occurred_at, _events.c.seq))
    denials = (select(_events.c.actor_user_id, _events.c.actor,
                      _events.c.occurred_at.label("at"), ahead.label("last"))
               .where(_refused(), *in_period).subquery())
    day = _day(session, denials.c.at)
    stmt = (select(denials.c.actor_user_id, denials.c.actor, func.min(denials.c.at),
                   func.max(denials.c.last))
            .where(denials.c.last.is_not(None),
                   _within(session, denials.c.at, denials.c.last, DENIAL_BURST_WINDOW))
            .group_by(denials.c.actor_user_id, denials.c.actor, day)
            .order_by(func.min(denials.c.at).desc()))
    flags = []
    for user_id, actor, first, last in session.execute(stmt).tuples():
        since = _floor_second(_as_time(first))
        until = _floor_second(_as_time(last)) + timedelta(seconds=1)
        where = [_refused(), _events.c.occurred_at >= since,
                 _events.c.occurred_at < until,
                 _events.c.actor_user_id == user_id if user_id is not None
                 else _events.c.actor == actor]
        count = session.scalar(select(func.count()).select_from(_events).where(*where)) or 0
        flags.append(Flag(
            kind="denial_burst", title="Burst of refused attempts",
            who=escape_for_display(actor), when=f"{since:%Y-%m-%d %H:%M}–{until:%H:%M} UTC",
            count=int(count),
            description=f"{count} refused access attempts between {since:%d %b %Y %H:%M} and "
                        f"{until:%H:%M} UTC ({DENIAL_BURST} or more within an hour).",
            link=_search_link(user=actor, decision="deny",
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
    night = _day(session, _events.c.occurred_at, shift)
    stmt = (select(_events.c.actor_user_id, _events.c.actor, night.label("night"),
                   func.count(), func.min(_events.c.occurred_at),
                   func.max(_events.c.occurred_at))
            .where(_events.c.action == RECORD_VIEW, *in_period,
                   _hour(session, _events.c.occurred_at, shift) < end_hour + 24 - start_hour)
            .group_by(_events.c.actor_user_id, _events.c.actor, night)
            .order_by(night.desc()))
    flags = []
    for _user_id, actor, d, count, first, last in session.execute(stmt).tuples():
        night_of = _as_date(d) - timedelta(days=1)
        since = _floor_second(_as_time(first))
        until = _floor_second(_as_time(last)) + timedelta(seconds=1)
        flags.append(Flag(
            kind="odd_hours", title="Access at odd hours", who=escape_for_display(actor),
            when=f"night of {night_of:%d %b %Y}", count=int(count),
            description=f"{count} record views between {start_hour:02d}:00 and "
                        f"{end_hour:02d}:00 ({zone.key}) in the night of {night_of:%d %b %Y} "
                        f"(first {since.astimezone(zone):%H:%M}, last "
                        f"{until.astimezone(zone):%H:%M}).",
            link=_search_link(user=actor, action=RECORD_VIEW,
                              since=link_time(since), until=link_time(until))))
    return flags


# The actions a compliance officer can filter by, for the search form.
ACTIONS: list[str] = sorted(a.value for a in AuditAction)


def organizations(session: Session) -> list[tuple[str, str]]:
    return [(slug, name) for slug, name in session.execute(
        select(m.Organization.slug, m.Organization.name).order_by(m.Organization.name))]

