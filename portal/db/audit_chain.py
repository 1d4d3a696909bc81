"""The audit chain's database adapter: append in the caller's transaction, sign checkpoints,
verify, read events back.

Every service records what it does through ``AuditLog.append``, in the same transaction as the
access and before any information is returned (45 CFR 164.312(b) audit controls): if the event
cannot be written, ``AuditWriteError`` propagates, the transaction rolls back and the access
fails closed. Call ``append`` as late as possible in the transaction: on PostgreSQL it holds the
chain's lock until commit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from sqlalchemy import Select, Text, bindparam, cast, func, insert, or_, select
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Settings
from portal.db.models import AuditCheckpoint, AuditEvent, Participant
from portal.db.types import utcnow
from portal.domain.audit import (
    DISCLOSING_ACTIONS,
    EVENT_FIELDS,
    GENESIS_HASH,
    AuditAction,
    ChainedEvent,
    Checkpoint,
    Disclosure,
    NewAuditEvent,
    VerifyResult,
    chain_event,
    disclosure_of,
    format_time,
    key_id_of,
    public_key_bytes,
    revocation_order,
    segment_intact,
    sign_checkpoint,
    verify_chain,
)

logger = logging.getLogger(__name__)

DEFAULT_CHAIN = "main"
DEV_KEY_NAME = "audit-signing.pem"
# 45 CFR 164.528(a)(3): an accounting covers disclosures up to six years before the request.
ACCOUNTING_YEARS = 6

_events = AuditEvent.metadata.tables[AuditEvent.__tablename__]
_checkpoints = AuditCheckpoint.metadata.tables[AuditCheckpoint.__tablename__]


class AuditWriteError(RuntimeError):
    """The audit event could not be written: the access it records must not happen."""


class AuditBusy(AuditWriteError):
    """The chain's lock was not free within the lock timeout (another transaction holds it)."""


class AuditKeyError(AuditWriteError):
    """The checkpoint signing key is missing or unreadable."""


class AuditUnverified(AuditWriteError):
    """The chain since its last trusted checkpoint does not verify: no checkpoint is signed."""


# --- signing key -----------------------------------------------------------------------------


def write_signing_key(path: Path) -> Ed25519PrivateKey:
    """Create a new Ed25519 private key at ``path`` (PEM, owner-only); refuse to overwrite."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


def read_signing_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise AuditKeyError(f"PORTAL_AUDIT_SIGNING_KEY_FILE: cannot read {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"PORTAL_AUDIT_SIGNING_KEY_FILE: {path} is not an Ed25519 key")
    return key


def signing_key_path(settings: Settings) -> Path:
    """Where the signing key is: PORTAL_AUDIT_SIGNING_KEY_FILE, else the development key."""
    return settings.audit_signing_key_file or settings.data_dir / DEV_KEY_NAME


def retired_keys_path(settings: Settings) -> Path:
    """The public keys of earlier signing keys (PORTAL_AUDIT_RETIRED_KEYS_FILE, else
    ``<signing key file>.retired.jsonl``), kept so that older checkpoints still verify."""
    if settings.audit_retired_keys_file is not None:
        return settings.audit_retired_keys_file
    key = signing_key_path(settings)
    return key.with_name(key.name + ".retired.jsonl")


def read_retired_keys(path: Path) -> dict[str, bytes]:
    """Key id -> raw public key, from JSON lines ``{"key_id", "public_key", "retired_at"}``.

    A missing file is no keys; a line whose key does not match its key id is refused."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise AuditKeyError(f"cannot read the retired audit keys in {path}: {exc}") from exc
    keys: dict[str, bytes] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            raw = bytes.fromhex(str(record["public_key"]))
            key_id = str(record["key_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AuditKeyError(f"{path} line {number}: not a retired key ({exc})") from None
        if key_id_of(raw) != key_id or len(raw) != 32:
            raise AuditKeyError(f"{path} line {number}: the public key does not match its "
                                f"key id {key_id}")
        keys[key_id] = raw
    return keys


def rotate_signing_key(settings: Settings) -> tuple[str, str, Path]:
    """Replace the signing key with a new one; keep the old public key in the retired file.

    The old public key is appended (and synced) before the new key replaces the old one, so
    that no checkpoint is ever left without the key that verifies it. Returns the old and new
    key ids and the retired keys file."""
    path = signing_key_path(settings)
    if not path.exists():
        raise AuditKeyError(f"there is no audit signing key at {path} to rotate")
    old = read_signing_key(path)
    old_public = public_key_bytes(old)
    retired = retired_keys_path(settings)
    retired.parent.mkdir(parents=True, exist_ok=True)
    record = {"key_id": key_id_of(old_public), "public_key": old_public.hex(),
              "retired_at": format_time(utcnow())}
    try:
        with retired.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        staged = path.with_name(path.name + ".new")
        staged.unlink(missing_ok=True)
        new = write_signing_key(staged)
        os.replace(staged, path)
    except OSError as exc:
        raise AuditKeyError(f"could not rotate the audit signing key at {path}: {exc}") from exc
    return key_id_of(old_public), key_id_of(public_key_bytes(new)), retired


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The configured key; outside production, a development key kept in the data directory."""
    if settings.audit_signing_key_file is not None:
        return read_signing_key(settings.audit_signing_key_file)
    if settings.is_production:
        # Never generated silently in production: checkpoints must be signed by a managed key.
        raise AuditKeyError("PORTAL_AUDIT_SIGNING_KEY_FILE: production needs an audit signing key")
    path = settings.data_dir / DEV_KEY_NAME
    if not path.exists():
        try:
            key = write_signing_key(path)
        except FileExistsError:  # another process made it first
            return read_signing_key(path)
        except OSError as exc:
            raise AuditKeyError(f"cannot create a development audit key at {path}: {exc}") from exc
        logger.warning("Generated a development audit signing key at %s; set "
                       "PORTAL_AUDIT_SIGNING_KEY_FILE to a managed key in production.", path)
        return key
    return read_signing_key(path)


def _lock_key(chain: str) -> int:
    """A stable signed 64-bit advisory-lock key for a chain name."""
    digest = hashlib.sha256(f"portal.audit_event:{chain}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _last(column: Any, table: Any) -> Any:
    return (select(column).where(table.c.chain == bindparam("chain"))
            .order_by(table.c.seq.desc()).limit(1).scalar_subquery())


# One round trip while the chain is locked: the head event and the last checkpoint. Built once:
# statement construction costs as much as the query, and it runs while the lock is held.
_HEAD = select(_last(_events.c.seq, _events), _last(_events.c.hash, _events),
               _last(_checkpoints.c.seq, _checkpoints),
               _last(_checkpoints.c.signed_at, _checkpoints))
_INSERT_EVENT = insert(_events)
_INSERT_CHECKPOINT = insert(_checkpoints)
_JSON_FIELDS = frozenset({"actor_roles", "record_ids", "reasons", "consent_ids", "detail"})

# PostgreSQL, through psycopg directly: the chain lock is held until the caller commits, so
# every statement made under it delays every other access. The lock and the head read go out
# pipelined in one round trip; the server runs the read once the lock is granted, with a fresh
# READ COMMITTED snapshot, so it sees the previous writer's committed event.
_PG_LOCK_TIMEOUT = "SELECT set_config('lock_timeout', %(timeout)s, true)"
_PG_LOCK = "SELECT pg_advisory_xact_lock(%(key)s)"
_PG_HEAD = (
    "SELECT (SELECT seq FROM audit_event WHERE chain = %(chain)s ORDER BY seq DESC LIMIT 1),"
    " (SELECT hash FROM audit_event WHERE chain = %(chain)s ORDER BY seq DESC LIMIT 1),"
    " (SELECT seq FROM audit_checkpoint WHERE chain = %(chain)s ORDER BY seq DESC LIMIT 1),"
    " (SELECT signed_at FROM audit_checkpoint WHERE chain = %(chain)s ORDER BY seq DESC"
    " LIMIT 1)")
_PG_PLACEHOLDERS = ", ".join(f"%({n})s::json" if n in _JSON_FIELDS else f"%({n})s"
                             for n in EVENT_FIELDS)
# Built from the constant column names; every value is a parameter.
_PG_INSERT = "INSERT INTO audit_event (" + ", ".join(EVENT_FIELDS) + ") VALUES (" + \
    _PG_PLACEHOLDERS + ")"  # noqa: S608


# --- the log ---------------------------------------------------------------------------------


class AuditLog:
    """Appends hash-chained events and signs checkpoints every N events or T seconds."""

    def __init__(self, settings: Settings, signing_key: Ed25519PrivateKey | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._key = signing_key if signing_key is not None else load_signing_key(settings)
        self.public_key = public_key_bytes(self._key)
        self.key_id = key_id_of(self.public_key)
        self.checkpoint_every = settings.audit_checkpoint_every
        self.checkpoint_interval = timedelta(seconds=settings.audit_checkpoint_seconds)
        self.lock_timeout = f"{settings.audit_lock_timeout_seconds}s"
        self._clock = clock
        # Loaded from the settings, the log also trusts whatever key that file holds later (a
        # rotation by another process); a key given directly is trusted alone.
        self._key_path = signing_key_path(settings) if signing_key is None else None
        self._retired_path = retired_keys_path(settings)
        self.public_keys  # noqa: B018 -- a broken retired keys file stops start-up
        # Per chain, the checkpoint seq from which the chain was found not to verify: no
        # checkpoint is signed (nor the check repeated) until a newer trusted one exists.
        self._unsignable: dict[str, int | None] = {}

    @property
    def public_keys(self) -> dict[str, bytes]:
        """The keys this log trusts for verification: its own, the configured key file's
        (after a rotation by another process) and every retired key (`portal keys
        rotate-audit-key`), read afresh each time."""
        keys = read_retired_keys(self._retired_path)
        if self._key_path is not None:
            try:
                current = public_key_bytes(read_signing_key(self._key_path))
                keys[key_id_of(current)] = current
            except AuditKeyError:
                pass  # replaced as we read, or gone: this log's own key is still trusted
        keys[self.key_id] = self.public_key
        return keys

    def append(self, session: Session, event: NewAuditEvent,
               chain: str = DEFAULT_CHAIN, *, sign: bool = True,
               trusted: Iterable[Checkpoint] = ()) -> ChainedEvent:
        """Write ``event`` at the head of ``chain`` in the caller's transaction (never commits).

        Returns the event as stored. Raises AuditWriteError on any failure; the caller's
        transaction must then roll back, and the access it records must not happen.
        """
        return self.append_many(session, [event], chain, sign=sign, trusted=trusted)[0]

    def append_many(self, session: Session, events: Sequence[NewAuditEvent],
                    chain: str = DEFAULT_CHAIN, *, sign: bool = True,
                    trusted: Iterable[Checkpoint] = ()) -> list[ChainedEvent]:
        """Write ``events``, in order, at the head of ``chain`` under one lock and one insert.

        A page that decides many things gathers its events and appends them last, just
        before it commits: the chain lock (which serialises every writer) is then held for
        the insert and the commit only, not for the whole page. Same guarantees as `append`.

        A checkpoint falls due every N events or T seconds; it is signed only when ``sign``
        and the stored chain since the last trusted checkpoint verifies (see `_may_sign`;
        ``trusted`` adds checkpoints from an exported file that was just verified, with the
        public keys it lists).
        """
        if not events:
            return []
        # The caller's own pending changes are flushed first, so their errors stay theirs.
        session.flush()
        try:
            postgres = _psycopg(session)
            head_seq, head_hash, cp_seq, cp_at = _lock_and_read_head(session, postgres, chain,
                                                                     self.lock_timeout)
            now = self._clock()
            chained: list[ChainedEvent] = []
            seq, prev = head_seq or 0, head_hash or GENESIS_HASH
            for event in events:
                seq += 1
                link = chain_event(event, chain=chain, seq=seq, occurred_at=now,
                                   prev_hash=prev)
                chained.append(link)
                prev = link.hash
            rows = [{name: getattr(link, name) for name in EVENT_FIELDS} for link in chained]
            if postgres is not None:
                for values in rows:
                    for name in _JSON_FIELDS:
                        values[name] = orjson.dumps(values[name]).decode()
                with postgres.cursor() as cursor:
                    cursor.executemany(_PG_INSERT, rows)
            else:
                session.execute(_INSERT_EVENT, rows)
            last = chained[-1]
            due = (cp_at is None or last.seq - (cp_seq or 0) >= self.checkpoint_every
                   or now - cp_at >= self.checkpoint_interval)
            # A new chain's first checkpoint covers only what was just written here.
            if due and (head_seq is None or (sign and self._may_sign(
                    session, chain, head_seq, head_hash, cp_seq, trusted))):
                self._write_checkpoint(session, chain, last.seq, last.hash, now)
        except Exception as exc:
            error = AuditBusy if _lock_timed_out(exc) else AuditWriteError
            raise error(f"could not write the audit event ({type(exc).__name__}: "
                        f"{exc})") from exc
        return chained

    def checkpoint(self, session: Session, chain: str = DEFAULT_CHAIN, *,
                   trusted: Iterable[Checkpoint] = ()) -> Checkpoint | None:
        """Sign the current head now unless it is already signed (for a periodic job), if the
        chain verifies back to its last trusted checkpoint (stored, or among ``trusted``)."""
        try:
            head_seq, head_hash, cp_seq, _ = _lock_and_read_head(session, _psycopg(session),
                                                                 chain, self.lock_timeout)
            if head_seq is None or head_seq == cp_seq:
                return None
            if not self._may_sign(session, chain, head_seq, head_hash, cp_seq, trusted):
                raise AuditUnverified(
                    f"the {chain!r} chain does not verify back to its last trusted checkpoint "
                    "(or its stored checkpoints are gone), so its head is not signed: run "
                    "`portal audit verify --checkpoints FILE` with the exported checkpoints")
            return self._write_checkpoint(session, chain, head_seq, head_hash, self._clock())
        except AuditUnverified:
            raise
        except Exception as exc:
            raise AuditWriteError(f"could not write the audit checkpoint ({exc})") from exc

    def _may_sign(self, session: Session, chain: str, head_seq: int | None,
                  head_hash: str | None, cp_seq: int | None,
                  trusted: Iterable[Checkpoint] = ()) -> bool:
        """Whether the stored chain up to ``head_seq`` verifies from its last trusted (stored,
        validly signed) checkpoint, so that a checkpoint over a new head certifies only what
        was checked. Called under the chain lock; reads the events since that checkpoint.

        An empty chain has nothing to check. A chain with events but no stored checkpoint has
        lost them (the first event of every chain is signed), so it is never signed again from
        the database alone: only exported checkpoints (``trusted``) can vouch for it again.
        """
        if head_seq is None or head_hash is None:
            return True
        anchors = [c for c in trusted if c.chain == chain and c.seq <= head_seq]
        if not anchors and self._unsignable.get(chain, -1) == cp_seq:
            return False
        row = None if cp_seq is None else session.execute(select(
            _checkpoints.c.chain, _checkpoints.c.seq, _checkpoints.c.head_hash,
            _checkpoints.c.signed_at, _checkpoints.c.key_id, _checkpoints.c.signature,
        ).where(_checkpoints.c.chain == chain, _checkpoints.c.seq == cp_seq)).one_or_none()
        if row is not None:
            anchors.append(Checkpoint(*row))
        start = max(anchors, key=lambda c: c.seq, default=None)
        ok = start is not None and segment_intact(
            start, _segment(session, chain, start.seq, head_seq),
            # Only this log's own keys (current and retired) vouch for an anchor: a key named
            # in an exported file could be anyone's, and must never lead to a real signature.
            self.public_keys, head_seq=head_seq,
            head_hash=head_hash)
        if ok:
            self._unsignable.pop(chain, None)
        else:
            self._unsignable[chain] = cp_seq
            logger.error("audit chain %r does not verify since its last trusted checkpoint "
                         "(seq %s) up to seq %s: no checkpoint is signed; run `portal audit "
                         "verify --checkpoints FILE`", chain, cp_seq, head_seq)
        return ok

    def _write_checkpoint(self, session: Session, chain: str, seq: int, head_hash: str,
                          at: datetime) -> Checkpoint:
        cp = sign_checkpoint(self._key, chain=chain, seq=seq, head_hash=head_hash, signed_at=at)
        session.execute(_INSERT_CHECKPOINT, {
            "chain": cp.chain, "seq": cp.seq, "head_hash": cp.head_hash,
            "signed_at": cp.signed_at, "key_id": cp.key_id, "signature": cp.signature})
        return cp


def _psycopg(session: Session) -> Any:
    """The session's psycopg connection on PostgreSQL (same transaction), else None."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    return session.connection().connection.driver_connection


def _lock_timed_out(exc: BaseException) -> bool:
    """PostgreSQL's lock_not_available (55P03): the lock timeout passed."""
    return getattr(getattr(exc, "orig", exc), "sqlstate", None) == "55P03"


def _lock_and_read_head(session: Session, postgres: Any, chain: str,
                        lock_timeout: str) -> tuple[Any, ...]:
    """Lock the chain until commit; return head seq and hash, last checkpoint seq and time.

    On PostgreSQL the wait for the lock is bounded by ``lock_timeout`` (for the rest of the
    transaction, which only commits after this)."""
    if postgres is None:
        # SQLite: every transaction is BEGIN IMMEDIATE, so writers are already serialised.
        return tuple(session.execute(_HEAD, {"chain": chain}).one())
    if postgres.autocommit:
        raise AuditWriteError("an audit event must be written inside the access's transaction")
    # Serialise writers per chain until commit, so that the chain never forks or gaps.
    with postgres.cursor() as lock, postgres.cursor() as head:
        with postgres.pipeline():
            lock.execute(_PG_LOCK_TIMEOUT, {"timeout": lock_timeout})
            lock.execute(_PG_LOCK, {"key": _lock_key(chain)})
            head.execute(_PG_HEAD, {"chain": chain})
        row = head.fetchone()
    return tuple(row)


# --- reading the log ------------------------------------------------------------------------

# JSON columns are read as text and parsed with orjson: several times faster than the
# driver's json.loads, which matters when verifying millions of events.
_EVENT_COLUMNS = [cast(_events.c[name], Text) if name in _JSON_FIELDS else _events.c[name]
                  for name in EVENT_FIELDS]
_JSON_POSITIONS = [i for i, name in enumerate(EVENT_FIELDS) if name in _JSON_FIELDS]


def _to_event(row: Sequence[Any]) -> ChainedEvent:
    values = list(row)
    loads = orjson.loads
    try:
        for i in _JSON_POSITIONS:
            values[i] = loads(values[i])
    except (orjson.JSONDecodeError, TypeError):
        # orjson refuses lone surrogates that json accepts; a tampered row must still be read
        # (and then fail its hash) rather than stop verification.
        values = list(row)
        for i in _JSON_POSITIONS:
            values[i] = None if values[i] is None else json.loads(values[i])
    return ChainedEvent(*values)


def _event_query(*, chain: str | None = None, since: datetime | None = None,
                 until: datetime | None = None, participant_id: uuid.UUID | None = None,
                 from_seq: int | None = None) -> Select[Any]:
    query = select(*_EVENT_COLUMNS)
    if chain is not None:
        query = query.where(_events.c.chain == chain)
    if from_seq is not None:
        query = query.where(_events.c.seq >= from_seq)
    if since is not None:
        query = query.where(_events.c.occurred_at >= since)
    if until is not None:
        query = query.where(_events.c.occurred_at < until)
    if participant_id is not None:
        query = query.where(_events.c.participant_id == participant_id)
    return query.order_by(_events.c.chain, _events.c.seq)


def _segment(session: Session, chain: str, from_seq: int | None,
             to_seq: int) -> list[ChainedEvent]:
    """The events of ``chain`` from ``from_seq`` to ``to_seq`` (a short range, read at once)."""
    query = _event_query(chain=chain, from_seq=from_seq).where(_events.c.seq <= to_seq)
    return [_to_event(row) for row in session.execute(query)]


def iter_events(session: Session, *, since: datetime | None = None,
                until: datetime | None = None, participant_id: uuid.UUID | None = None,
                chain: str | None = None, batch: int = 2000) -> Iterator[ChainedEvent]:
    """Stored events in (chain, seq) order, optionally in [since, until) and for one person."""
    query = _event_query(chain=chain, since=since, until=until, participant_id=participant_id)
    for row in session.execute(query.execution_options(yield_per=batch)):
        yield _to_event(row)


def count_events(session: Session, *, since: datetime | None = None,
                 until: datetime | None = None, participant_id: uuid.UUID | None = None) -> int:
    query = _event_query(since=since, until=until, participant_id=participant_id)
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0


def stored_checkpoints(session: Session) -> list[Checkpoint]:
    rows = session.execute(select(
        _checkpoints.c.chain, _checkpoints.c.seq, _checkpoints.c.head_hash,
        _checkpoints.c.signed_at, _checkpoints.c.key_id, _checkpoints.c.signature,
    ).order_by(_checkpoints.c.chain, _checkpoints.c.seq))
    return [Checkpoint(*row) for row in rows]


def _chains(session: Session, extra: Iterable[str]) -> list[str]:
    names = set(session.scalars(select(_events.c.chain).distinct())) | set(extra)
    return sorted(names, key=lambda name: (name != DEFAULT_CHAIN, name))


def verify(source: Session | sessionmaker[Session], public_keys: Mapping[str, bytes],
           checkpoints: Iterable[Checkpoint] | None = None,
           progress: Callable[[int], None] | None = None) -> VerifyResult:
    """Recompute every chain and check the stored checkpoints plus ``checkpoints`` (a file's).

    Checkpoints are read before events: a checkpoint is committed with the events it covers, so
    every event it names is visible to the later scan even while writers go on appending.
    Returns the first damaged chain's result, or an intact result counting every event.
    """
    if isinstance(source, Session):
        return _verify(source, stored_checkpoints(source), public_keys, checkpoints, progress)
    with source() as session:
        stored = stored_checkpoints(session)
    with source() as session:
        return _verify(session, stored, public_keys, checkpoints, progress)


def _verify(session: Session, stored: list[Checkpoint], public_keys: Mapping[str, bytes],
            extra: Iterable[Checkpoint] | None,
            progress: Callable[[int], None] | None) -> VerifyResult:
    all_checkpoints = [*stored, *(extra or ())]
    total = 0
    result = VerifyResult(ok=True, events=0)
    for chain in _chains(session, (c.chain for c in all_checkpoints)):
        result = verify_chain(iter_events(session, chain=chain, batch=5000),
                              all_checkpoints, public_keys, chain=chain, progress=progress)
        total += result.events
        if not result.ok:
            return result
    return VerifyResult(ok=True, events=total, chain=result.chain,
                        checkpoints=len(all_checkpoints))


def checkpoint_record(cp: Checkpoint, public_keys: Mapping[str, bytes],
                      exported_at: datetime | None = None) -> dict[str, Any]:
    """One checkpoint as a JSON-lines record, with the public key that verifies it (and, in
    an export file, when it was exported)."""
    key = public_keys.get(cp.key_id)
    record = {"chain": cp.chain, "seq": cp.seq, "head_hash": cp.head_hash,
              "signed_at": format_time(cp.signed_at), "key_id": cp.key_id,
              "signature": cp.signature, "public_key": key.hex() if key is not None else None}
    if exported_at is not None:
        record["exported_at"] = format_time(exported_at)
    return record


def export_checkpoints(session: Session, public_keys: Mapping[str, bytes],
                       exported_at: datetime | None = None,
                       already: Iterable[Checkpoint] = ()) -> list[dict[str, Any]]:
    """The stored checkpoints not in ``already`` (those a file holds), ready to append as JSON
    lines and keep elsewhere."""
    kept = {_identity(cp) for cp in already}
    return [checkpoint_record(cp, public_keys, exported_at)
            for cp in stored_checkpoints(session) if _identity(cp) not in kept]


def _identity(cp: Checkpoint) -> tuple[str, int, str, str, str]:
    return cp.chain, cp.seq, cp.head_hash, cp.key_id, cp.signature


def parse_checkpoint_record(record: Mapping[str, Any]) -> tuple[Checkpoint, bytes | None]:
    """Read one exported line back; raise ValueError when it is malformed."""
    try:
        signed_at = datetime.fromisoformat(str(record["signed_at"]).replace("Z", "+00:00"))
        if signed_at.utcoffset() is None:
            raise ValueError("signed_at has no time zone")
        cp = Checkpoint(chain=str(record["chain"]), seq=int(record["seq"]),
                        head_hash=str(record["head_hash"]), signed_at=signed_at,
                        key_id=str(record["key_id"]), signature=str(record["signature"]))
        key = record.get("public_key")
        return cp, bytes.fromhex(key) if key else None
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a checkpoint record ({exc})") from None


# --- exports (each read of the log is itself audited) ----------------------------------------


# --- accounting of disclosures ----------------------------------------------------------------


def earliest_accounting_date(today: date) -> date:
    """The first day an accounting requested ``today`` may cover (six years back)."""
    try:
        return today.replace(year=today.year - ACCOUNTING_YEARS)
    except ValueError:  # 29 February
        return today.replace(year=today.year - ACCOUNTING_YEARS, day=28)


def disclosures(session: Session, participant_id: uuid.UUID, since: datetime | None = None,
                until: datetime | None = None, *, now: datetime | None = None) -> list[Disclosure]:
    """The accounting of disclosures for one participant, in chain order (oldest first).

    45 CFR 164.528 and 42 CFR 2.24/2.25: every permitted view or export of the participant's
    records by an organization other than the one that authored them, with date, recipient,
    category, purpose and basis. The period may reach back at most six years (164.528(a)(3));
    ``since`` defaults to that limit and ``until`` to now.

    A disclosure citing a consent since revoked says whether its decision read the consent
    before the revocation committed (``Disclosure.revocation``): requests in flight at a
    revocation finish and are logged after it, stamped later than the revocation's time.
    """
    now = now or utcnow()
    earliest = earliest_accounting_date(now.date())
    if since is None:
        since = datetime.combine(earliest, datetime.min.time(), tzinfo=now.tzinfo)
    if since.date() < earliest:
        raise ValueError(f"an accounting of disclosures covers at most {ACCOUNTING_YEARS} years "
                         f"(from {earliest.isoformat()})")
    if until is not None and until <= since:
        raise ValueError("the end of the period must be after its start")
    query = _event_query(since=since, until=until, participant_id=participant_id).where(
        _events.c.action.in_(sorted(DISCLOSING_ACTIONS)), _events.c.decision == "permit")
    found = [d for d in (disclosure_of(_to_event(row)) for row in session.execute(query))
             if d is not None]
    revoked = revocations(session, participant_id)
    # In chain order (the order of commit), never by clock: an event is stamped when it is
    # written, which for a page is after everything on it was decided.
    return sorted((revocation_order(d, revoked) for d in found), key=lambda d: d.seq)


def revocations(session: Session, participant_id: uuid.UUID,
                chain: str = DEFAULT_CHAIN) -> dict[str, int]:
    """Consent id -> the seq of the event that recorded its revocation (the first, if more
    than one), for one participant. Refused attempts to revoke do not count."""
    found: dict[str, int] = {}
    query = select(_events.c.seq, cast(_events.c.consent_ids, Text)).where(
        _events.c.chain == chain, _events.c.participant_id == participant_id,
        _events.c.action == AuditAction.CONSENT_REVOKE.value,
        or_(_events.c.decision.is_(None), _events.c.decision != "deny"),
    ).order_by(_events.c.seq)
    for seq, consent_ids in session.execute(query):
        try:
            ids = orjson.loads(consent_ids) if consent_ids else []
        except orjson.JSONDecodeError:
            continue
        for consent_id in ids if isinstance(ids, list) else ():
            found.setdefault(str(consent_id), seq)
    return found


def participant_uuid(session: Session, public_id: str) -> uuid.UUID | None:
    """The participant with this public id (e.g. LP-1001), or None."""
    return session.scalar(select(Participant.id).where(Participant.public_id == public_id))
