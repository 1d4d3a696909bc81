"""Integrity: verification runs (inline jobs), their stored results and progress, the
integrity summary and the checkpoint export."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from portal.compliance import integrity
from portal.compliance.integrity import VerificationRun, VerificationRuns
from portal.compliance.jobs import INLINE
from portal.db import audit_chain
from portal.db import models as m
from portal.db.audit_chain import AuditWriteError
from portal.db.types import utcnow
from portal.domain.audit import VerifyResult
from portal.kernel.errors import NotFound
from tests.integration.compliance.conftest import META, RENEE, Demo, Viewer


class Captured:
    """A job runner that keeps the task to run it when the test says."""

    def __init__(self) -> None:
        self.tasks: list[tuple[str, Callable[[], None]]] = []

    def start(self, name: str, task: Callable[[], None]) -> None:
        self.tasks.append((name, task))


def _start(world: Demo, runs: VerificationRuns, jobs: object = INLINE) -> VerificationRun:
    return integrity.start_verification(world.factory, world.services, world.detached(RENEE),
                                        META, runs=runs, jobs=jobs)  # type: ignore[arg-type]


def _verifications(factory: sessionmaker[Session]) -> list[m.AuditVerification]:
    with factory() as session:
        return list(session.query(m.AuditVerification).order_by(m.AuditVerification.started_at))


def test_a_verification_run_checks_the_chain_and_stores_the_result(
        world: Demo, alex_view: Viewer) -> None:
    for _ in range(4):
        world.append(alex_view())
    runs = VerificationRuns()
    run = _start(world, runs)

    assert run.status == "done" and run.percent == 100
    assert run.total == 4 and run.checked == 5  # the "started" event is checked too
    assert run.result is not None and run.result.ok and run.error is None
    (row,) = _verifications(world.factory)
    assert (row.id, row.status, row.ok, row.events, row.started_by, row.chain,
            row.first_bad_seq, row.damage) == (run.id, "done", True, 5, RENEE, "main", None,
                                               None)
    assert row.finished_at is not None
    started, finished = world.events("audit:verify")
    assert started.detail == {"run": str(run.id), "phase": "started"}
    assert finished.detail == {"run": str(run.id), "phase": "finished", "chain": "main",
                               "ok": True, "events": 5, "first_bad_seq": None, "damage": None}
    assert {started.actor, finished.actor} == {RENEE}

    view = integrity.run_view(world.factory, run.id, runs=runs)
    assert (view.status, view.ok, view.events, view.percent, view.chain) == (
        "done", True, 5, 100, "main")


def test_tampering_is_found_and_named(world: Demo, alex_view: Viewer, engine: Engine) -> None:
    for _ in range(5):
        world.append(alex_view())
    with engine.begin() as connection:
        connection.execute(text("UPDATE audit_event SET purpose = 'TREAT' WHERE seq = 3"))
    run = _start(world, VerificationRuns())
    assert run.result is not None and not run.result.ok
    (row,) = _verifications(world.factory)
    assert (row.ok, row.first_bad_seq, row.damage) == (False, 3, "altered")
    finished = world.events("audit:verify")[-1]
    assert finished.detail["ok"] is False and finished.detail["damage"] == "altered"
    # A fresh process (no run in memory) reads the stored result.
    view = integrity.run_view(world.factory, run.id, runs=VerificationRuns())
    assert (view.status, view.ok, view.first_bad_seq, view.damage, view.percent) == (
        "done", False, 3, "altered", 100)


def test_one_run_at_a_time_per_database(world: Demo, alex_view: Viewer) -> None:
    world.append(alex_view())
    runs, jobs = VerificationRuns(), Captured()
    first = _start(world, runs, jobs)
    assert first.status == "running" and first.total == 1
    assert integrity.run_view(world.factory, first.id, runs=runs).status == "running"
    again = _start(world, runs, jobs)
    assert again.id == first.id and len(jobs.tasks) == 1
    assert len(world.events("audit:verify")) == 1  # the second start wrote nothing
    # Seen from another process, the run stored as running was interrupted.
    view = integrity.run_view(world.factory, first.id, runs=VerificationRuns())
    assert view.status == "interrupted"
    assert jobs.tasks[0][0] == f"audit-verify-{first.id}"
    jobs.tasks[0][1]()
    assert integrity.run_view(world.factory, first.id, runs=runs).status == "done"
    assert _start(world, runs, jobs).id != first.id  # finished: a new run may start


def test_a_failed_verification_is_recorded(world: Demo, alex_view: Viewer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    world.append(alex_view())

    def broken(*args: object, **kwargs: object) -> VerifyResult:
        raise RuntimeError("disk gone")

    monkeypatch.setattr(audit_chain, "verify", broken)
    runs = VerificationRuns()
    run = _start(world, runs)
    assert run.status == "failed" and run.result is None
    assert run.error is not None and "server log" in run.error
    (row,) = _verifications(world.factory)
    assert (row.status, row.error, row.ok) == ("failed", "verification stopped (RuntimeError)",
                                               None)
    assert [e.detail["phase"] for e in world.events("audit:verify")] == ["started"]
    stored = integrity.run_view(world.factory, run.id, runs=VerificationRuns())
    assert (stored.status, stored.error) == ("failed", "verification stopped (RuntimeError)")


def test_a_result_that_cannot_be_stored_fails_the_run(world: Demo, alex_view: Viewer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    world.append(alex_view())
    runs, jobs = VerificationRuns(), Captured()
    run = _start(world, runs, jobs)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AuditWriteError("full")

    monkeypatch.setattr(world.services.audit, "append", refuse)
    jobs.tasks[0][1]()
    view = integrity.run_view(world.factory, run.id, runs=runs)
    assert view.status == "failed" and view.error == "The result could not be stored; try again."
    (row,) = _verifications(world.factory)
    assert (row.status, row.error) == ("failed", "result not stored (AuditWriteError)")


def test_a_start_that_cannot_be_audited_leaves_no_run(world: Demo,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    runs = VerificationRuns()

    def refuse(*args: object, **kwargs: object) -> None:
        raise AuditWriteError("full")

    with monkeypatch.context() as patch:
        patch.setattr(world.services.audit, "append", refuse)
        with pytest.raises(AuditWriteError):
            _start(world, runs)
    assert _verifications(world.factory) == []  # rolled back with the event
    assert _start(world, runs).status == "done"  # nothing left reserved


def test_an_unknown_run_is_not_found(world: Demo) -> None:
    with pytest.raises(NotFound):
        integrity.run_view(world.factory, uuid.uuid4(), runs=VerificationRuns())


def test_runs_in_memory() -> None:
    runs = VerificationRuns()
    run = VerificationRun(id=uuid.uuid4(), database="db", started_at=utcnow(),
                          started_by="x", total=0)
    assert runs.reserve(run) is run
    assert run.percent == 0  # nothing to count yet
    run.total = 40
    runs.advance(run.id, 10)
    copy = runs.get(run.id)
    assert copy is not None and copy is not run and copy.percent == 25
    runs.advance(run.id, 100)
    assert runs.get(run.id).percent == 99  # type: ignore[union-attr]  # never 100 while running
    other_db = replace(run, id=uuid.uuid4(), database="other")
    assert runs.reserve(other_db) is other_db
    runs.finish(run.id, result=VerifyResult(ok=True, events=7))
    done = runs.get(run.id)
    assert done is not None and (done.status, done.checked, done.percent) == ("done", 7, 100)
    runs.finish(other_db.id, error="boom")
    assert runs.get(other_db.id).status == "failed"  # type: ignore[union-attr]
    # Unknown ids are ignored; finished runs are forgotten after an hour.
    runs.advance(uuid.uuid4(), 1)
    runs.finish(uuid.uuid4(), error="x")
    runs._runs[run.id].finished_at = utcnow() - VerificationRuns.KEEP - timedelta(seconds=1)
    fresh = replace(run, id=uuid.uuid4(), finished_at=None, status="running")
    assert runs.reserve(fresh) is fresh
    assert runs.get(run.id) is None and runs.get(other_db.id) is not None
    runs.drop(fresh.id)
    assert runs.get(fresh.id) is None


def test_the_integrity_summary(world: Demo, alex_view: Viewer) -> None:
    with world.factory() as session:
        empty = integrity.integrity(session, world.services)
    assert (empty.last, empty.running, empty.checkpoint, empty.head_seq) == (
        None, None, None, None)

    for _ in range(3):
        world.append(alex_view())
    with world.factory.begin() as session:
        cp = world.services.audit.checkpoint(session)
    assert cp is not None
    done = _start(world, VerificationRuns())
    running = _start(world, VerificationRuns(), Captured())
    with world.factory() as session:
        summary = integrity.integrity(session, world.services)
    assert summary.last is not None and summary.last.id == done.id and summary.last.ok
    assert summary.running is not None and summary.running.id == running.id
    assert summary.head_seq == 6  # three views and three audit:verify events
    assert summary.checkpoint is not None
    assert (summary.checkpoint.seq, summary.checkpoint.head_hash,
            summary.checkpoint.signature_valid) == (3, cp.head_hash, True)
    # A checkpoint signed by a key this portal does not trust is shown as invalid.
    other = replace(world.services, audit=audit_chain.AuditLog(
        world.services.settings, signing_key=Ed25519PrivateKey.generate()))
    with world.factory() as session:
        untrusted = integrity.integrity(session, other).checkpoint
    assert untrusted is not None and untrusted.signature_valid is False


def test_checkpoints_export_as_json_lines_after_the_export_is_audited(
        world: Demo, alex_view: Viewer) -> None:
    renee = world.detached(RENEE)
    # Audited first: the export's own event (the log's first, signed at once) is in it.
    first = integrity.export_checkpoints(world.factory, world.services, renee, META)
    assert [orjson.loads(line)["seq"] for line in first.splitlines()] == [1]
    world.append(alex_view())
    with world.factory.begin() as session:
        world.services.audit.checkpoint(session)
    world.append(alex_view())
    with world.factory.begin() as session:
        world.services.audit.checkpoint(session)
    data = integrity.export_checkpoints(world.factory, world.services, renee, META)
    lines = [orjson.loads(line) for line in data.splitlines()]
    assert [r["seq"] for r in lines] == [1, 2, 3]
    assert all(set(r) == {"chain", "seq", "head_hash", "signed_at", "key_id", "signature",
                          "public_key"} for r in lines)
    assert all(r["public_key"] == world.services.audit.public_key.hex() for r in lines)
    exports = world.events("audit:checkpoints:export")
    assert len(exports) == 2 and exports[0].detail == {"format": "jsonl"}
    assert exports[0].actor == RENEE and exports[0].purpose == "HOPERAT"


def test_the_database_key_of_an_unbound_factory_is_empty() -> None:
    assert integrity._database_key(sessionmaker()) == ""


def test_a_failure_that_cannot_be_recorded_is_only_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    class Down:
        def begin(self) -> None:
            raise RuntimeError("database down")

    integrity._store_failure(Down(), uuid.uuid4(), "x")  # type: ignore[arg-type]
    assert "could not record the failure" in caplog.text


def test_thread_jobs_run_the_task_in_a_daemon_thread() -> None:
    import threading

    from portal.compliance.jobs import THREADS

    ran = threading.Event()
    names: list[tuple[str, bool]] = []

    def task() -> None:
        names.append((threading.current_thread().name, threading.current_thread().daemon))
        ran.set()

    THREADS.start("audit-verify-test", task)
    assert ran.wait(5)
    assert names == [("audit-verify-test", True)]
