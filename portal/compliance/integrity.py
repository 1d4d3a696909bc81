"""Integrity: verification runs of the whole chain (run by a job runner), stored results,
checkpoints."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import (
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.orm import Session, sessionmaker

from portal.compliance.console import Requester, record_read, requester
from portal.compliance.jobs import THREADS, Jobs
from portal.compliance.sql import EVENTS
from portal.db import audit_chain as audit
from portal.db import models as m
from portal.db.audit_chain import DEFAULT_CHAIN, AuditLog
from portal.db.types import utcnow
from portal.domain.audit import (
    AuditAction,
    Checkpoint,
    VerifyResult,
    checkpoint_signature_valid,
    escape_for_display,
)
from portal.kernel.errors import NotFound
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services

logger = logging.getLogger(__name__)

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
    heads = session.execute(select(EVENTS.c.chain, func.max(EVENTS.c.seq))
                            .group_by(EVENTS.c.chain)).all()
    return sum(int(head or 0) for _, head in heads)


def start_verification(factory: sessionmaker[Session], services: Services, user: m.StaffUser,
                       meta: RequestMeta, *, runs: VerificationRuns = RUNS,
                       jobs: Jobs = THREADS) -> VerificationRun:
    """Record and audit the start of a verification, then run it as a job (a thread of this
    process unless told otherwise) with its own sessions. A run already in progress on this
    database is returned instead."""
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
            # Written before the check, so it may not sign a checkpoint over the head.
            services.audit.append(session, who.event(
                AuditAction.AUDIT_VERIFY, detail={"run": str(run.id), "phase": "started"}),
                sign=False)
    except Exception:
        runs.drop(run.id)
        raise
    task = _verification_task(factory, services.audit, who, run.id, runs)
    jobs.start(f"audit-verify-{run.id}", task)
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
                    **result.as_json()}), sign=result.ok)  # never a signature over damage
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
    head = session.scalar(select(func.max(EVENTS.c.seq))
                          .where(EVENTS.c.chain == DEFAULT_CHAIN))
    return Integrity(last=None if last is None else StoredVerification.of(last),
                     running=None if running is None else StoredVerification.of(running),
                     checkpoint=checkpoint, head_seq=head)


def export_checkpoints(factory: sessionmaker[Session], services: Services, user: m.StaffUser,
                       meta: RequestMeta) -> bytes:
    """Every signed checkpoint as JSON lines, to keep outside the portal; audited first."""
    record_read(factory, services.audit, requester(user, meta),
                      AuditAction.AUDIT_CHECKPOINTS_EXPORT, detail={"format": "jsonl"})
    with factory() as session:
        records = audit.export_checkpoints(session, services.audit.public_keys)
    return b"".join(orjson.dumps(r) + b"\n" for r in records)
