"""The audit log on a real database: append, tampering caught, checkpoints, CLI, exports."""

from __future__ import annotations

import csv
import io
import itertools
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from portal.cli_audit import UNANCHORED, audit
from portal.compliance import exports
from portal.compliance.console import Requester
from portal.config import Settings
from portal.crypto.vault import Vault
from portal.db import audit_chain as service
from portal.db.audit_chain import AuditLog, AuditUnverified, AuditWriteError
from portal.db.models import AuditCheckpoint, AuditEvent, Organization, Participant
from portal.domain.audit import (
    AuditAction,
    Damage,
    NewAuditEvent,
    event_hash,
    public_key_bytes,
    sign_checkpoint,
)

# The controlled clock starts after any real time these tests run at, so that the events
# written with the real clock (by the CLI, by an intruder's log) never fall due for a
# time-based checkpoint: the count-based ones are what these tests are about.
T0 = datetime(2099, 1, 1, 9, 0, tzinfo=UTC)
CEDAR, HARBOR = "cedar-recovery", "harbor-lead"
NASTY = "x\r\nFAKE auth:login:success\x1b[31m\"q\" 𝄞😀"


class Clock:
    """A controllable clock: each reading moves on by ``step``."""

    def __init__(self, start: datetime = T0, step: timedelta = timedelta(seconds=1)) -> None:
        self.now, self.step = start, step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


@pytest.fixture
def log(settings: Settings) -> AuditLog:
    return AuditLog(replace(settings, audit_checkpoint_every=5, audit_checkpoint_seconds=3600),
                    clock=Clock())


def view(i: int, **changes: Any) -> NewAuditEvent:
    values: dict[str, Any] = {
        "action": AuditAction.RECORD_VIEW, "actor": f"user{i}@harbor.example",
        "actor_user_id": i, "actor_organization": HARBOR, "actor_roles": ("case_manager",),
        "session_id": f"sess-{i}", "client_address": "10.0.0.7",
        "participant_id": uuid.UUID(int=1), "category": "housing",
        "record_ids": (str(uuid.UUID(int=100 + i)),), "purpose": "CAREMGT",
        "decision": "permit", "reasons": ("consent",), "consent_ids": ("consent-1",),
        "policy_version": "p" * 64, "request_id": f"req-{i}",
        "detail": {"disclosers": [CEDAR], "i": i}}
    values.update(changes)
    return NewAuditEvent(**values)


def append_many(factory: sessionmaker[Session], log: AuditLog, count: int,
                make: Callable[[int], NewAuditEvent] = view) -> None:
    for i in range(1, count + 1):
        with factory.begin() as session:
            log.append(session, make(i))


def run_sql(engine: Engine, *statements: str, **params: Any) -> None:
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement), params)


def check(factory: sessionmaker[Session], log: AuditLog) -> tuple[Damage | None, int | None]:
    result = service.verify(factory, log.public_keys)
    return result.damage, result.first_bad_seq


def seqs(factory: sessionmaker[Session]) -> list[int]:
    with factory() as session:
        return list(session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)))


# --- append --------------------------------------------------------------------------------


@contextmanager
def inserts_refused(engine: Engine, from_seq: int = 1) -> Iterator[None]:
    """The database refuses audit inserts from ``from_seq`` on, whichever driver path sends
    them (a trigger, as a full disk or a broken constraint would)."""
    if engine.dialect.name == "sqlite":
        create = [f"CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_event WHEN NEW.seq >= "
                  f"{int(from_seq)} BEGIN SELECT RAISE(ABORT, 'disk full (injected)'); END"]
        drop = ["DROP TRIGGER refuse_audit"]
    else:
        create = ["CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                  f"$$BEGIN IF NEW.seq >= {int(from_seq)} THEN "
                  "RAISE EXCEPTION 'disk full (injected)'; END IF; RETURN NEW; END$$",
                  "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_event "
                  "FOR EACH ROW EXECUTE FUNCTION refuse_audit()"]
        drop = ["DROP TRIGGER refuse_audit ON audit_event", "DROP FUNCTION refuse_audit()"]
    run_sql(engine, *create)
    try:
        yield
    finally:
        run_sql(engine, *drop)


def test_append_chains_and_verifies(session_factory: sessionmaker[Session],
                                    log: AuditLog) -> None:
    append_many(session_factory, log, 12)
    with session_factory() as session:
        rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert [r.seq for r in rows] == list(range(1, 13))
        assert rows[0].prev_hash == "0" * 64
        assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
        events = list(service.iter_events(session))
    assert [event_hash(e) for e in events] == [r.hash for r in rows]
    result = service.verify(session_factory, log.public_keys)
    assert (result.ok, result.events, result.checkpoints) == (True, 12, 3)


def test_append_uses_the_callers_transaction(session_factory: sessionmaker[Session],
                                             log: AuditLog) -> None:
    with session_factory() as session:
        session.begin()
        row = log.append(session, view(1))
        assert row.seq == 1
        session.rollback()
    append_many(session_factory, log, 2)
    assert seqs(session_factory) == [1, 2]  # the rolled-back event left no gap
    assert service.verify(session_factory, log.public_keys).ok


def test_a_batch_is_appended_in_order_under_one_lock(
        engine: Engine, session_factory: sessionmaker[Session], log: AuditLog) -> None:
    append_many(session_factory, log, 2)
    with session_factory.begin() as session:
        batch = log.append_many(session, [view(i) for i in range(3, 10)])
        assert log.append_many(session, []) == []
    assert [e.seq for e in batch] == list(range(3, 10))
    assert [e.actor for e in batch] == [f"user{i}@harbor.example" for i in range(3, 10)]
    assert seqs(session_factory) == list(range(1, 10))
    with session_factory() as session:
        # One checkpoint after the batch, at its last event (5 events since the one at 1).
        assert list(session.scalars(select(AuditCheckpoint.seq).order_by(
            AuditCheckpoint.seq))) == [1, 9]
    result = service.verify(session_factory, log.public_keys)
    assert (result.ok, result.events, result.checkpoints) == (True, 9, 2)
    # A batch that cannot be written leaves nothing behind.
    with pytest.raises(AuditWriteError, match="injected"), inserts_refused(engine, 11), \
            session_factory.begin() as session:
        log.append_many(session, [view(10), view(11), view(12)])
    assert seqs(session_factory) == list(range(1, 10))


def test_injection_strings_are_stored_faithfully(session_factory: sessionmaker[Session],
                                                 log: AuditLog) -> None:
    with session_factory.begin() as session:
        log.append(session, view(1, actor=NASTY, session_id=NASTY[:60], reasons=(NASTY,),
                                 detail={"query": NASTY, "deep": [{"k": NASTY}]}))
    with session_factory() as session:
        stored = session.scalars(select(AuditEvent)).one()
        assert stored.actor == NASTY and stored.reasons == [NASTY]
        assert stored.detail == {"query": NASTY, "deep": [{"k": NASTY}]}
    assert service.verify(session_factory, log.public_keys).ok


def test_an_access_fails_closed_when_the_event_cannot_be_written(
        engine: Engine, session_factory: sessionmaker[Session], log: AuditLog) -> None:
    def read_with_audit() -> str:
        """A stand-in access: change something, log, then return the information."""
        with session_factory.begin() as session:
            session.add(Organization(slug="side-effect", name="Side effect",
                                     sector="housing"))
            log.append(session, view(1))
            return "the information"

    with pytest.raises(AuditWriteError, match="injected"), inserts_refused(engine):
        read_with_audit()
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Organization)) == 0
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0
    assert read_with_audit() == "the information"


def test_checkpoints_every_n_events(session_factory: sessionmaker[Session],
                                    log: AuditLog) -> None:
    append_many(session_factory, log, 12)
    with session_factory() as session:
        assert list(session.scalars(select(AuditCheckpoint.seq).order_by(
            AuditCheckpoint.seq))) == [1, 6, 11]
        records = service.export_checkpoints(session, log.public_keys)
    assert [r["seq"] for r in records] == [1, 6, 11]
    assert all(r["public_key"] == log.public_key.hex() and r["key_id"] == log.key_id
               for r in records)


def test_checkpoints_every_t_seconds(settings: Settings,
                                     session_factory: sessionmaker[Session]) -> None:
    slow = AuditLog(replace(settings, audit_checkpoint_every=1000, audit_checkpoint_seconds=60),
                    clock=Clock(step=timedelta(seconds=25)))
    append_many(session_factory, slow, 7)
    with session_factory() as session:
        # 25 s apart: the first event, then whenever 60 s have passed since the last.
        assert list(session.scalars(select(AuditCheckpoint.seq).order_by(
            AuditCheckpoint.seq))) == [1, 4, 7]


def test_signing_key_is_generated_once_outside_production(settings: Settings) -> None:
    first, second = AuditLog(settings), AuditLog(settings)
    assert first.key_id == second.key_id
    assert (settings.data_dir / service.DEV_KEY_NAME).stat().st_mode & 0o077 == 0
    with pytest.raises(service.AuditKeyError, match="production"):
        service.load_signing_key(_production_like(settings))


def _production_like(settings: Settings) -> Settings:
    # Settings refuses production without a key file; bypass it to test the log's own guard.
    unsafe = replace(settings)
    object.__setattr__(unsafe, "env", "production")
    return unsafe


# --- tampering, by raw SQL as someone with database access would do it ------------------------


def test_update_of_one_field(engine: Engine, session_factory: sessionmaker[Session],
                             log: AuditLog) -> None:
    append_many(session_factory, log, 10)
    run_sql(engine, "UPDATE audit_event SET purpose = 'TREAT' WHERE seq = 5")
    assert check(session_factory, log) == (Damage.ALTERED, 5)


def test_update_of_detail_json(engine: Engine, session_factory: sessionmaker[Session],
                               log: AuditLog) -> None:
    append_many(session_factory, log, 10)
    run_sql(engine, "UPDATE audit_event SET detail = :d WHERE seq = 9", d='{"disclosers": []}')
    assert check(session_factory, log) == (Damage.ALTERED, 9)


def test_delete_of_a_middle_event(engine: Engine, session_factory: sessionmaker[Session],
                                  log: AuditLog) -> None:
    append_many(session_factory, log, 10)
    run_sql(engine, "DELETE FROM audit_event WHERE seq = 4")
    assert check(session_factory, log) == (Damage.DELETED, 4)


def test_forged_event_inserted(engine: Engine, session_factory: sessionmaker[Session],
                               log: AuditLog) -> None:
    append_many(session_factory, log, 10)
    # Make room at seq 6 (two steps: the primary key is checked row by row), then forge.
    run_sql(engine,
            "UPDATE audit_event SET seq = seq + 1000 WHERE seq >= 6",
            "UPDATE audit_event SET seq = seq - 999 WHERE seq >= 1006",
            "INSERT INTO audit_event (chain, seq, occurred_at, action, actor_user_id, actor, "
            " actor_organization, actor_roles, session_id, client_address, participant_id, "
            " category, record_ids, purpose, decision, reasons, consent_ids, policy_version, "
            " request_id, detail, prev_hash, hash) "
            "SELECT chain, 6, occurred_at, action, actor_user_id, 'forger@example', "
            " actor_organization, actor_roles, session_id, client_address, participant_id, "
            " category, record_ids, purpose, decision, reasons, consent_ids, policy_version, "
            " request_id, detail, hash, prev_hash FROM audit_event WHERE seq = 5")
    assert seqs(session_factory) == list(range(1, 12))
    assert check(session_factory, log) == (Damage.INSERTED, 6)


def test_two_events_swapped(engine: Engine, session_factory: sessionmaker[Session],
                            log: AuditLog) -> None:
    append_many(session_factory, log, 10)
    run_sql(engine, "UPDATE audit_event SET seq = 9999 WHERE seq = 3",
            "UPDATE audit_event SET seq = 3 WHERE seq = 4",
            "UPDATE audit_event SET seq = 4 WHERE seq = 9999")
    assert check(session_factory, log) == (Damage.REORDERED, 3)


def test_tail_truncated(engine: Engine, session_factory: sessionmaker[Session],
                        log: AuditLog) -> None:
    append_many(session_factory, log, 12)  # checkpoints at 1, 6, 11
    run_sql(engine, "DELETE FROM audit_event WHERE seq > 8")
    assert check(session_factory, log) == (Damage.TRUNCATED, 9)


def _rewrite(engine: Engine, factory: sessionmaker[Session], from_seq: int) -> None:
    """Change one event and recompute every hash after it, as a capable forger would."""
    with factory() as session:
        events = list(service.iter_events(session))
    prev = events[from_seq - 2].hash if from_seq > 1 else "0" * 64
    with engine.begin() as connection:
        for e in events[from_seq - 1:]:
            changed = replace(e, prev_hash=prev,
                              purpose="TREAT" if e.seq == from_seq else e.purpose)
            new_hash = event_hash(changed)
            connection.execute(text("UPDATE audit_event SET purpose = :p, prev_hash = :prev, "
                                    "hash = :h WHERE chain = 'main' AND seq = :s"),
                               {"p": changed.purpose, "prev": prev, "h": new_hash, "s": e.seq})
            prev = new_hash


@pytest.mark.parametrize(("from_seq", "caught_at"), [(1, 1), (3, 6), (7, 11)])
def test_rewrite_with_recomputed_hashes(engine: Engine, session_factory: sessionmaker[Session],
                                        log: AuditLog, from_seq: int, caught_at: int) -> None:
    append_many(session_factory, log, 12)  # checkpoints at 1, 6, 11
    _rewrite(engine, session_factory, from_seq)
    assert check(session_factory, log) == (Damage.BAD_CHECKPOINT, caught_at)


def test_checkpoint_signed_by_an_unknown_key(engine: Engine,
                                             session_factory: sessionmaker[Session],
                                             settings: Settings, log: AuditLog) -> None:
    append_many(session_factory, log, 4)
    intruder = AuditLog(settings, signing_key=Ed25519PrivateKey.generate())
    with session_factory.begin() as session:
        intruder.append(session, view(99))
    # The intruder's own log will not sign a chain whose checkpoints it cannot verify...
    with session_factory.begin() as session, pytest.raises(AuditUnverified):
        intruder.checkpoint(session)
    # ...so it writes its checkpoint row itself.
    with session_factory() as session:
        head = list(service.iter_events(session))[-1]
    forged = sign_checkpoint(Ed25519PrivateKey.generate(), chain="main", seq=head.seq,
                             head_hash=head.hash, signed_at=T0)
    run_sql(engine, "INSERT INTO audit_checkpoint (chain, seq, head_hash, signed_at, key_id, "
            "signature) VALUES (:chain, :seq, :head_hash, :signed_at, :key_id, :signature)",
            chain=forged.chain, seq=forged.seq, head_hash=forged.head_hash,
            signed_at=forged.signed_at, key_id=forged.key_id, signature=forged.signature)
    assert check(session_factory, log) == (Damage.BAD_CHECKPOINT, 5)


# --- the command line ------------------------------------------------------------------------


def cli(settings: Settings, *args: str) -> Result:
    env = {"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_DATA_DIR": str(
        settings.data_dir), "PORTAL_ENV": "test", "PORTAL_AUDIT_CHECKPOINT_EVERY": "5",
        "PORTAL_DATA_KEY_FILE": str(settings.data_key_file)}
    return CliRunner().invoke(audit, list(args), env=env, catch_exceptions=False)


def test_cli_verify_exit_codes_and_json(engine: Engine, settings: Settings,
                                        session_factory: sessionmaker[Session],
                                        log: AuditLog) -> None:
    append_many(session_factory, log, 7)
    ok = cli(settings, "verify", "--json")
    assert ok.exit_code == 0, ok.output
    # The check comes before the verify's own event: 7 events checked, then the 8th written.
    assert json.loads(ok.stdout) == {"ok": True, "events": 7, "first_bad_seq": None,
                                     "damage": None, "exported_checkpoints": 0,
                                     "warning": UNANCHORED}
    with session_factory() as session:
        last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert last is not None and last.action == "audit:verify"
        assert last.actor.startswith("cli:")

    run_sql(engine, "UPDATE audit_event SET actor = 'nobody' WHERE seq = 2")
    bad = cli(settings, "verify", "--json")
    assert bad.exit_code == 1
    assert json.loads(bad.stdout) == {"ok": False, "events": 8, "first_bad_seq": 2,
                                      "damage": "altered", "exported_checkpoints": 0,
                                      "warning": UNANCHORED}
    human = cli(settings, "verify")
    assert human.exit_code == 1 and "altered at seq 2" in human.stdout
    assert "truncation and a rewrite from the start cannot be ruled out" in human.stdout

    usage = cli(settings, "verify", "--checkpoints", str(settings.data_dir / "missing.jsonl"))
    assert usage.exit_code == 2


def test_cli_verify_with_exported_checkpoints_catches_a_full_rewrite(
        engine: Engine, settings: Settings, session_factory: sessionmaker[Session],
        log: AuditLog, tmp_path: Path) -> None:
    append_many(session_factory, log, 12)
    kept = tmp_path / "kept" / "checkpoints.jsonl"
    kept.parent.mkdir()
    exported = cli(settings, "checkpoints", "export", str(kept))
    assert exported.exit_code == 0, exported.output
    lines = [json.loads(line) for line in kept.read_text().splitlines()]
    assert [r["seq"] for r in lines] == [1, 6, 11]
    assert set(lines[0]) == {"chain", "seq", "head_hash", "signed_at", "key_id", "signature",
                             "public_key", "exported_at"}

    # The forger rewrites every event from the start and removes the stored checkpoints.
    _rewrite(engine, session_factory, 1)
    run_sql(engine, "DELETE FROM audit_checkpoint")
    fooled = cli(settings, "verify", "--json")
    assert fooled.exit_code == 0  # the database alone is fooled, and says it may be
    assert json.loads(fooled.stdout)["warning"] == UNANCHORED
    caught = cli(settings, "verify", "--json", "--checkpoints", str(kept))
    assert caught.exit_code == 1
    assert json.loads(caught.stdout)["damage"] == "bad_checkpoint"
    assert json.loads(caught.stdout)["first_bad_seq"] == 1
    # Neither verify, nor the portal's next appends, signed anything over the forged head.
    append_many(session_factory, log, 7)
    assert stored_checkpoint_seqs(session_factory) == []
    # A later export appends (nothing new to keep) and loses none of the evidence.
    again = cli(settings, "checkpoints", "export", str(kept))
    assert again.exit_code == 0, again.output
    assert [json.loads(line) for line in kept.read_text().splitlines()] == lines
    still = cli(settings, "verify", "--json", "--checkpoints", str(kept))
    assert (still.exit_code, json.loads(still.stdout)["damage"]) == (1, "bad_checkpoint")
    assert stored_checkpoint_seqs(session_factory) == []

    kept.write_text("not json\n")
    assert cli(settings, "verify", "--checkpoints", str(kept)).exit_code == 2
    refused = cli(settings, "checkpoints", "export", str(kept))
    assert refused.exit_code == 1 and "nothing was appended" in refused.stderr
    assert kept.read_text() == "not json\n"


def stored_checkpoint_seqs(factory: sessionmaker[Session]) -> list[int]:
    with factory() as session:
        return [cp.seq for cp in service.stored_checkpoints(session)]


def test_export_appends_with_the_export_time_and_never_overwrites(
        settings: Settings, session_factory: sessionmaker[Session], log: AuditLog,
        tmp_path: Path) -> None:
    append_many(session_factory, log, 7)  # checkpoints at 1, 6
    kept = tmp_path / "checkpoints.jsonl"
    assert cli(settings, "checkpoints", "export", str(kept)).exit_code == 0
    first = kept.read_text().splitlines()
    assert [json.loads(line)["seq"] for line in first] == [1, 6]
    append_many(session_factory, log, 5)  # the export's event and these: checkpoint at 11
    assert cli(settings, "checkpoints", "export", str(kept)).exit_code == 0
    both = kept.read_text().splitlines()
    assert both[:2] == first  # earlier lines untouched
    records = [json.loads(line) for line in both]
    assert [r["seq"] for r in records] == [1, 6, 11]
    assert all(datetime.fromisoformat(r["exported_at"].replace("Z", "+00:00")) for r in records)
    assert records[2]["exported_at"] >= records[0]["exported_at"]
    ok = cli(settings, "verify", "--json", "--checkpoints", str(kept))
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["exported_checkpoints"] == 3
    assert json.loads(ok.stdout)["warning"] is None


def test_verify_signs_no_checkpoint_over_a_head_it_found_damaged(
        engine: Engine, settings: Settings, session_factory: sessionmaker[Session],
        log: AuditLog, tmp_path: Path) -> None:
    append_many(session_factory, log, 7)  # checkpoints at 1, 6
    kept = tmp_path / "checkpoints.jsonl"
    assert cli(settings, "checkpoints", "export", str(kept)).exit_code == 0  # event 8
    # Events after the last stored checkpoint are rewritten with recomputed hashes, then the
    # stored checkpoints deleted: the database cannot tell, the exported file can.
    _rewrite(engine, session_factory, 2)
    run_sql(engine, "DELETE FROM audit_checkpoint")
    # Every verify sees damage against the file; a checkpoint would be due (every 5) at each.
    for _ in range(6):
        result = cli(settings, "verify", "--json", "--checkpoints", str(kept))
        assert (result.exit_code, json.loads(result.stdout)["damage"]) == (1, "bad_checkpoint")
    assert stored_checkpoint_seqs(session_factory) == []
    signed = cli(settings, "checkpoints", "sign")
    assert signed.exit_code == 1 and "not signed" in signed.stderr
    assert stored_checkpoint_seqs(session_factory) == []


def test_lost_checkpoints_are_signed_again_only_from_a_verified_export(
        engine: Engine, settings: Settings, session_factory: sessionmaker[Session],
        log: AuditLog, tmp_path: Path) -> None:
    append_many(session_factory, log, 7)  # checkpoints at 1, 6
    kept = tmp_path / "checkpoints.jsonl"
    assert cli(settings, "checkpoints", "export", str(kept)).exit_code == 0  # event 8
    run_sql(engine, "DELETE FROM audit_checkpoint")  # lost, the events untouched
    append_many(session_factory, log, 6)
    assert stored_checkpoint_seqs(session_factory) == []
    refused = cli(settings, "checkpoints", "sign")
    assert refused.exit_code == 1 and "not signed" in refused.stderr
    # From the exported checkpoint at 6, events 6..14 verify: the head may be signed again.
    signed = cli(settings, "checkpoints", "sign", "--checkpoints", str(kept))
    assert signed.exit_code == 0, signed.output
    assert stored_checkpoint_seqs(session_factory) == [14]
    # Appends sign again (at once: the test's clock is years ahead of the CLI's).
    append_many(session_factory, log, 5)
    assert stored_checkpoint_seqs(session_factory)[0] == 14
    assert stored_checkpoint_seqs(session_factory)[-1] > 14
    # A verify against the file (intact) may sign over its own event as well.
    run_sql(engine, "DELETE FROM audit_checkpoint")
    verified = cli(settings, "verify", "--json", "--checkpoints", str(kept))
    assert verified.exit_code == 0, verified.output
    assert stored_checkpoint_seqs(session_factory) == [20]
    assert check(session_factory, log) == (None, None)


def test_a_file_with_its_own_key_never_gets_a_forged_head_signed(
        engine: Engine, settings: Settings, session_factory: sessionmaker[Session],
        log: AuditLog, tmp_path: Path) -> None:
    """A forger who rewrote the log and deleted its checkpoints writes a checkpoints file of
    their own, signed by a key of their own and naming it: the real key never signs it."""
    append_many(session_factory, log, 7)
    _rewrite(engine, session_factory, 1)
    run_sql(engine, "DELETE FROM audit_checkpoint")
    with session_factory() as session:
        head = list(service.iter_events(session))[-1]
    forger = Ed25519PrivateKey.generate()
    forged = sign_checkpoint(forger, chain="main", seq=head.seq, head_hash=head.hash,
                             signed_at=T0)
    kept = tmp_path / "forged.jsonl"
    kept.write_text(json.dumps(service.checkpoint_record(
        forged, {forged.key_id: public_key_bytes(forger)})) + "\n")
    refused = cli(settings, "checkpoints", "sign", "--checkpoints", str(kept))
    assert refused.exit_code == 1 and "not signed" in refused.stderr
    cli(settings, "verify", "--checkpoints", str(kept))
    assert stored_checkpoint_seqs(session_factory) == []


def test_an_append_signs_only_a_head_that_verifies_from_the_last_checkpoint(
        engine: Engine, session_factory: sessionmaker[Session], log: AuditLog) -> None:
    append_many(session_factory, log, 7)  # checkpoints at 1, 6
    # An event after the last checkpoint altered in place (its hash no longer matches).
    run_sql(engine, "UPDATE audit_event SET actor = 'nobody' WHERE seq = 7")
    append_many(session_factory, log, 10)  # a checkpoint would be due at 11 and 16
    assert stored_checkpoint_seqs(session_factory) == [1, 6]
    assert check(session_factory, log) == (Damage.ALTERED, 7)


def test_cli_errors_are_one_line(settings: Settings, tmp_path: Path) -> None:
    result = CliRunner().invoke(audit, ["verify"], env={
        "PORTAL_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        "PORTAL_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 1
    # (A first run in an empty data directory also says it generated development keys.)
    lines = [line for line in result.stderr.splitlines()
             if not line.startswith("Generated a development")]
    assert len(lines) == 1 and lines[0].startswith("error: PORTAL_DATABASE_URL: cannot connect")


# --- exports ---------------------------------------------------------------------------------


REQUESTER = Requester(actor="compliance@harbor.example", actor_user_id=77,
                      actor_organization=HARBOR, actor_roles=("compliance_officer",),
                      client_address="10.0.0.9")


def _mixed_events(factory: sessionmaker[Session], log: AuditLog) -> None:
    kinds: list[NewAuditEvent] = [
        view(1), view(2, decision="deny", reasons=("no_consent",), consent_ids=()),
        view(3, actor="=cmd|' /C calc'!A0", session_id=NASTY[:60], reasons=(NASTY,)),
        NewAuditEvent(action=AuditAction.AUTH_LOGIN_FAILURE, actor="mallory@example",
                      client_address="203.0.113.5", detail={"why": "bad password"}),
        NewAuditEvent(action=AuditAction.CONSENT_REVOKE, actor="LP-1001",
                      participant_id=uuid.UUID(int=1), consent_ids=("consent-1",)),
        NewAuditEvent(action=AuditAction.RECORD_EXPORT, actor="", record_ids=("",),
                      reasons=("",), actor_roles=("",)),
        NewAuditEvent(action=AuditAction.CRYPTO_DECRYPT_FAILURE),
    ]
    with factory.begin() as session:
        for new in kinds:
            log.append(session, new)


def test_csv_export_for_people(session_factory: sessionmaker[Session], log: AuditLog) -> None:
    _mixed_events(session_factory, log)
    text_out = "".join(exports.export_csv(session_factory, log, REQUESTER))
    rows = list(csv.reader(io.StringIO(text_out)))
    assert rows[0] == list(exports.CSV_COLUMNS)
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert len(body) == 8  # seven events and the export itself, logged first
    assert body[-1]["action"] == "audit:export" and body[-1]["actor"] == REQUESTER.actor
    nasty = body[2]
    assert nasty["actor"] == "'=cmd|' /C calc'!A0"  # no formula
    assert "\\r\\n" in nasty["reasons"] and "\\x1b[31m" in nasty["reasons"]
    assert "𝄞😀" in nasty["reasons"]
    assert "\r" not in "".join(text_out.split("\r\n"))  # one physical line per event
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_fhir_export_validates_and_is_audited(session_factory: sessionmaker[Session],
                                              log: AuditLog) -> None:
    _mixed_events(session_factory, log)
    lines = list(exports.export_fhir_ndjson(session_factory, log, REQUESTER))
    assert len(lines) == 8 and all(line.endswith("\n") and line.count("\n") == 1
                                   for line in lines)
    resources = [FhirAuditEvent.model_validate_json(line) for line in lines]
    for resource in resources:
        assert resource.action in {"C", "R", "U", "D", "E"}
        assert resource.outcome in {"0", "4", "8", "12"}
        assert resource.recorded is not None and resource.agent[0].requestor is True
    first = resources[0]
    assert first.type.code == "rest" and first.subtype[0].code == "record:view"
    assert first.agent[0].network.address == "10.0.0.7"
    assert first.purposeOfEvent[0].coding[0].code == "CAREMGT"
    assert {e.what.identifier.system for e in first.entity} == {
        "urn:lead-portal:participant", "urn:lead-portal:record"}
    assert resources[1].outcome == "4"
    assert resources[3].type.code == "110114" and resources[3].outcome == "4"
    assert resources[6].outcome == "8"
    assert resources[-1].subtype[0].code == "audit:export"
    assert resources[-1].agent[0].who.display == REQUESTER.actor


def test_export_filters_by_participant_and_period(session_factory: sessionmaker[Session],
                                                  log: AuditLog) -> None:
    other = uuid.UUID(int=2)
    append_many(session_factory, log, 6,
                lambda i: view(i, participant_id=other if i % 2 else uuid.UUID(int=1)))
    lines = list(exports.export_fhir_ndjson(session_factory, log, REQUESTER,
                                            participant_id=other))
    # Events 1, 3, 5 and the export itself (which names the participant).
    assert [json.loads(line)["id"] for line in lines] == ["main-1", "main-3", "main-5", "main-7"]
    window = list(exports.export_csv(session_factory, log, REQUESTER,
                                     since=T0 + timedelta(seconds=2),
                                     until=T0 + timedelta(seconds=4)))
    assert [row.split(",")[1] for row in window[1:]] == ["2", "3"]


def test_cli_export_to_file_is_audited(settings: Settings, session_factory: sessionmaker[Session],
                                       log: AuditLog, tmp_path: Path) -> None:
    append_many(session_factory, log, 3)
    out = tmp_path / "audit.ndjson"
    result = cli(settings, "export", "--format", "fhir", "--output", str(out))
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and json.loads(lines[-1])["subtype"][0]["code"] == "audit:export"
    stdout = cli(settings, "export", "--format", "csv", "--since", "2000-01-01")
    assert stdout.exit_code == 0 and stdout.stdout_bytes.count(b"\r\n") == 1 + 5
    assert cli(settings, "export", "--format", "xml").exit_code == 2
    missing = cli(settings, "export", "--format", "csv", "--participant", "LP-0000")
    assert missing.exit_code == 1 and missing.stderr.startswith("error: --participant")


# --- accounting of disclosures ---------------------------------------------------------------


@pytest.fixture
def participant(session_factory: sessionmaker[Session], vault: Vault) -> uuid.UUID:
    pid = uuid.UUID(int=1)
    with session_factory.begin() as session:
        person = Participant(id=pid, public_id="LP-1001", referral_pathway="social_contact")
        vault.ready(session).seal_participant(person, "Ana", "Ruiz", None)
        session.add(person)
    return pid


def test_accounting_of_disclosures(settings: Settings, session_factory: sessionmaker[Session],
                                   participant: uuid.UUID) -> None:
    now = datetime.now(UTC)
    clock = Clock(start=now - timedelta(days=400), step=timedelta(days=30))
    log = AuditLog(settings, clock=clock)
    events = [
        view(1),  # harbor sees cedar's information on consent: a disclosure
        view(2, detail={"disclosers": [HARBOR]}),  # its own information: not one
        view(3, decision="deny", consent_ids=()),  # refused: not one
        view(4, participant_id=uuid.UUID(int=9)),  # someone else
        view(5, action=AuditAction.RECORD_EXPORT, actor_organization="riverton-probation",
             actor_roles=("probation_officer",), category="progress", purpose="LEADMON",
             consent_ids=("cj-1",), detail={"disclosers": [CEDAR, HARBOR]}),
        view(6, consent_ids=(), purpose="ETREAT",
             detail={"disclosers": [CEDAR], "break_glass_grant": "bg-1"}),
        view(7, action=AuditAction.CONSENT_VIEW),
    ]
    with session_factory.begin() as session:
        for new in events:
            log.append(session, new)
    with session_factory() as session:
        found = service.disclosures(session, participant)
        assert [(d.recipient, d.basis) for d in found] == [
            ("user1@harbor.example", "consent"), ("user5@harbor.example", "consent"),
            ("user6@harbor.example", "break_glass")]
        assert found[1].recipient_organization == "riverton-probation"
        assert found[1].disclosers == (CEDAR, HARBOR) and found[1].purpose == "LEADMON"
        recent = service.disclosures(session, participant, since=now - timedelta(days=300))
        assert [d.seq for d in recent] == [5, 6]
        with pytest.raises(ValueError, match="6 years"):
            service.disclosures(session, participant, since=now - timedelta(days=6 * 366))

    result = cli(settings, "disclosures", "--participant", "LP-1001", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["basis"] for r in rows] == ["consent", "consent", "break_glass"]
    assert rows[0]["date"] == (now - timedelta(days=370)).date().isoformat()
    too_old = (now - timedelta(days=6 * 366)).date().isoformat()
    refused = cli(settings, "disclosures", "--participant", "LP-1001", "--since", too_old)
    assert refused.exit_code == 1 and refused.stderr.startswith("error: an accounting")
    table = cli(settings, "disclosures", "--participant", "LP-1001")
    assert table.exit_code == 0 and "ETREAT" in table.stdout and "LEADMON" in table.stdout
    with session_factory() as session:
        reads = session.scalars(select(AuditEvent).where(
            AuditEvent.action == "audit:disclosures:view")).all()
        assert len(reads) == 2 and all(r.participant_id == participant for r in reads)


def test_cli_signs_the_head_of_a_quiet_log(settings: Settings,
                                           session_factory: sessionmaker[Session],
                                           log: AuditLog) -> None:
    append_many(session_factory, log, 8)  # checkpoints at 1 and 6 (every 5): 7 and 8 unsigned
    signed = cli(settings, "checkpoints", "sign")
    assert signed.exit_code == 0, signed.output
    assert "Signed a checkpoint at event 8." in signed.output
    again = cli(settings, "checkpoints", "sign")
    assert again.exit_code == 0 and "already signed" in again.output
    with session_factory() as session:
        assert list(session.scalars(select(AuditCheckpoint.seq).order_by(
            AuditCheckpoint.seq))) == [1, 6, 8]
    result = service.verify(session_factory, log.public_keys)
    assert (result.ok, result.events, result.checkpoints) == (True, 8, 3)
