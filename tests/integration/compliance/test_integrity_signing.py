"""The web integrity check certifies nothing it has not checked: its "started" event signs no
checkpoint, and its "finished" event signs one only over a chain it found intact (issue 19
item 1)."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import Engine, text

from portal.compliance import integrity
from portal.compliance.integrity import VerificationRun, VerificationRuns
from portal.compliance.jobs import INLINE
from portal.db import audit_chain
from portal.db.audit_chain import AuditLog
from tests.integration.compliance.conftest import META, RENEE, Demo, Viewer
from tests.integration.test_audit_log import _rewrite


def _run(world: Demo) -> VerificationRun:
    # Every append is due for a checkpoint: any signature the check could give, it would.
    eager = AuditLog(replace(world.services.settings, audit_checkpoint_every=1))
    services = replace(world.services, audit=eager)
    return integrity.start_verification(world.factory, services, world.detached(RENEE), META,
                                        runs=VerificationRuns(), jobs=INLINE)


def _checkpoint_seqs(world: Demo) -> list[int]:
    with world.factory() as session:
        return [cp.seq for cp in audit_chain.stored_checkpoints(session)]


def _head(world: Demo) -> int:
    return max(e.seq for e in world.events())


def test_an_intact_chain_is_signed_only_after_the_check(world: Demo, alex_view: Viewer) -> None:
    for _ in range(3):
        world.append(alex_view())
    before = _checkpoint_seqs(world)
    run = _run(world)
    assert run.result is not None and run.result.ok
    started, finished = world.events("audit:verify")
    new = [seq for seq in _checkpoint_seqs(world) if seq not in before]
    assert new == [finished.seq] and started.seq not in new


def test_damage_found_is_never_signed(world: Demo, alex_view: Viewer, engine: Engine) -> None:
    for _ in range(3):
        world.append(alex_view())
    head = _head(world)
    with engine.begin() as connection:
        connection.execute(text("UPDATE audit_event SET purpose = 'TREAT' WHERE seq = :s"),
                           {"s": head})
    before = _checkpoint_seqs(world)
    run = _run(world)
    assert run.result is not None and not run.result.ok
    assert run.result.first_bad_seq == head
    assert _checkpoint_seqs(world) == before


def test_a_forged_rewrite_without_its_checkpoints_gets_no_new_signature(
        world: Demo, alex_view: Viewer, engine: Engine) -> None:
    for _ in range(3):
        world.append(alex_view())
    # Every event rewritten with recomputed hashes, and the stored checkpoints deleted: the
    # database alone cannot tell (the exported file can: tests/integration/test_audit_log.py),
    # but the check must not certify the forged head.
    _rewrite(engine, world.factory, 1)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_checkpoint"))
    run = _run(world)
    assert run.result is not None
    assert _checkpoint_seqs(world) == []
    # Nor does the portal's next access, nor the periodic signer.
    world.append(alex_view())
    assert _checkpoint_seqs(world) == []
