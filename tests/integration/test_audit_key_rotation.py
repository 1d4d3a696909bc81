"""Rotating the audit signing key: checkpoints name their key, old public keys are kept, and a
verification after a rotation is intact (issue 19 item 6)."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from portal.cli import main
from portal.config import Settings
from portal.db import audit_chain as service
from portal.db.audit_chain import AuditKeyError, AuditLog
from portal.domain.audit import (
    AuditAction,
    Damage,
    NewAuditEvent,
    checkpoint_signature_valid,
    sign_checkpoint,
)

T0 = datetime(2099, 1, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def every_five(settings: Settings) -> Settings:
    return replace(settings, audit_checkpoint_every=5, audit_checkpoint_seconds=3600)


def write(factory: sessionmaker[Session], log: AuditLog, count: int) -> None:
    for i in range(count):
        with factory.begin() as session:
            log.append(session, NewAuditEvent(action=AuditAction.RECORD_VIEW, actor=f"u{i}",
                                              participant_id=uuid.UUID(int=1)))


def portal(settings: Settings, *args: str) -> Result:
    env = {"PORTAL_DATABASE_URL": settings.database_url,
           "PORTAL_DATA_DIR": str(settings.data_dir), "PORTAL_ENV": "test",
           "PORTAL_AUDIT_CHECKPOINT_EVERY": "5",
           "PORTAL_DATA_KEY_FILE": str(settings.data_key_file)}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def stored(factory: sessionmaker[Session]) -> list[service.Checkpoint]:
    with factory() as session:
        return service.stored_checkpoints(session)


def test_verify_is_intact_after_a_rotation_and_old_checkpoints_keep_their_key(
        engine: Engine, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    before = AuditLog(every_five(settings), clock=Clock())
    write(session_factory, before, 7)  # checkpoints at 1 and 6, by the first key
    old_id, old_public = before.key_id, before.public_key

    rotated = portal(settings, "keys", "rotate-audit-key")
    assert rotated.exit_code == 0, rotated.output
    assert old_id in rotated.output
    retired = service.retired_keys_path(settings)
    assert retired.exists()
    assert json.loads(retired.read_text().splitlines()[0])["key_id"] == old_id

    after = AuditLog(every_five(settings), clock=Clock())  # the restarted portal
    assert after.key_id != old_id
    assert set(after.public_keys) == {old_id, after.key_id}
    # A process still running with the old key trusts the new one too (it reads the file).
    assert after.key_id in before.public_keys
    write(session_factory, after, 8)  # checkpoints at 11 and 16, by the new key

    checkpoints = stored(session_factory)
    assert [(c.seq, c.key_id) for c in checkpoints] == [
        (1, old_id), (6, old_id), (11, after.key_id)]
    # The old checkpoints verify with the kept public key alone.
    assert all(checkpoint_signature_valid(c, {old_id: old_public})
               for c in checkpoints if c.key_id == old_id)

    verified = portal(settings, "audit", "verify", "--json")
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["ok"] is True
    assert json.loads(verified.stdout)["events"] == 15

    # The export carries each checkpoint's own public key, so a file verifies on its own.
    exported = settings.data_dir / "kept.jsonl"
    assert portal(settings, "audit", "checkpoints", "export", str(exported)).exit_code == 0
    records = [json.loads(line) for line in exported.read_text().splitlines()]
    assert {r["key_id"]: r["public_key"] for r in records} == {
        old_id: old_public.hex(), after.key_id: after.public_key.hex()}

    # Without the kept public key the first checkpoint could not be checked: that is why the
    # rotation keeps it.
    retired.unlink()
    assert service.verify(session_factory, {after.key_id: after.public_key}).damage == \
        Damage.BAD_CHECKPOINT


def test_a_checkpoint_by_an_unknown_key_is_still_reported_after_a_rotation(
        engine: Engine, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    first = AuditLog(every_five(settings), clock=Clock())
    write(session_factory, first, 3)
    assert portal(settings, "keys", "rotate-audit-key").exit_code == 0
    log = AuditLog(every_five(settings), clock=Clock())
    write(session_factory, log, 2)
    with session_factory() as session:
        head = list(service.iter_events(session))[-1]
    forged = sign_checkpoint(Ed25519PrivateKey.generate(), chain="main", seq=head.seq,
                             head_hash=head.hash, signed_at=T0)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO audit_checkpoint (chain, seq, head_hash, signed_at, key_id, signature) "
            "VALUES (:chain, :seq, :head_hash, :signed_at, :key_id, :signature)"), {
            "chain": forged.chain, "seq": forged.seq, "head_hash": forged.head_hash,
            "signed_at": forged.signed_at, "key_id": forged.key_id,
            "signature": forged.signature})
    result = service.verify(session_factory, log.public_keys)
    assert (result.damage, result.first_bad_seq) == (Damage.BAD_CHECKPOINT, head.seq)
    verified = portal(settings, "audit", "verify")
    assert verified.exit_code == 1 and "bad_checkpoint at seq 5" in verified.stdout


def test_a_retired_key_that_does_not_match_its_id_stops_the_log(settings: Settings) -> None:
    AuditLog(settings)  # makes the development key
    retired = service.retired_keys_path(settings)
    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    retired.write_text(json.dumps({"key_id": "0" * 16, "public_key": other.hex()}) + "\n")
    with pytest.raises(AuditKeyError, match="does not match its key id"):
        AuditLog(settings)


def test_rotation_without_a_key_is_one_clear_error(settings: Settings) -> None:
    result = portal(replace(settings, data_dir=settings.data_dir / "empty"),
                    "keys", "rotate-audit-key")
    assert result.exit_code == 1
    assert result.output.startswith("error: there is no audit signing key at")


def test_a_deployment_key_rotates_with_its_retired_keys_file(
        engine: Engine, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    """The docker-compose layout: generate-audit-key makes the key and the (empty) retired keys
    file next to it, both mounted; rotation on the host appends to that file."""
    secrets = settings.data_dir / "secrets"
    key = secrets / "audit_signing_key"
    made = portal(settings, "keys", "generate-audit-key", str(key))
    assert made.exit_code == 0, made.output
    retired = secrets / "audit_signing_key.retired.jsonl"
    assert retired.read_text() == ""
    deployed = replace(every_five(settings), audit_signing_key_file=key,
                       audit_retired_keys_file=retired)
    first = AuditLog(deployed, clock=Clock())
    write(session_factory, first, 2)
    env = {"PORTAL_AUDIT_SIGNING_KEY_FILE": str(key),
           "PORTAL_AUDIT_RETIRED_KEYS_FILE": str(retired)}
    rotated = CliRunner().invoke(main, ["keys", "rotate-audit-key"], env={
        "PORTAL_DATABASE_URL": settings.database_url, "PORTAL_DATA_DIR": str(settings.data_dir),
        "PORTAL_ENV": "test", **env})
    assert rotated.exit_code == 0, rotated.output
    assert [json.loads(line)["key_id"] for line in retired.read_text().splitlines()] == [
        first.key_id]
    second = AuditLog(deployed, clock=Clock())
    write(session_factory, second, 5)
    assert {c.key_id for c in stored(session_factory)} == {first.key_id, second.key_id}
    assert service.verify(session_factory, second.public_keys).ok
