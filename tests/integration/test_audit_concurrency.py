"""PostgreSQL: concurrent writers with random rollbacks make one gapless, fork-free chain."""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Settings
from portal.db import audit_chain as service
from portal.db import migrate
from portal.db.audit_chain import AuditLog
from portal.db.engine import make_engine, make_session_factory
from portal.db.models import AuditCheckpoint, AuditEvent
from portal.domain.audit import AuditAction, NewAuditEvent
from tests.conftest import PostgresDatabases

pytestmark = pytest.mark.postgres

WRITERS = 32
PER_WRITER = 25


class Rollback(Exception):
    """Raised inside a transaction to abandon it after the event was appended."""


@pytest.fixture
def pg_settings(postgres_databases: PostgresDatabases, tmp_path: Path) -> Settings:
    url = postgres_databases.create()
    settings = Settings(env="test", database_url=url, data_dir=tmp_path,
                        audit_checkpoint_every=40)
    engine = make_engine(settings)
    migrate.upgrade(engine)
    engine.dispose()
    return settings


@pytest.fixture
def pg_engine(pg_settings: Settings) -> Iterator[Engine]:
    engine = make_engine(pg_settings, pool_size=WRITERS, max_overflow=0)
    yield engine
    engine.dispose()


def test_concurrent_writers_with_rollbacks(pg_settings: Settings, pg_engine: Engine) -> None:
    factory: sessionmaker[Session] = make_session_factory(pg_engine)
    log = AuditLog(pg_settings)
    committed: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS)
    lock = threading.Lock()

    def writer(number: int) -> None:
        rng = random.Random(number)
        start.wait()
        for i in range(PER_WRITER):
            try:
                with factory.begin() as session:
                    row = log.append(session, NewAuditEvent(
                        action=AuditAction.RECORD_VIEW, actor=f"writer-{number}",
                        detail={"writer": number, "i": i}))
                    if rng.random() < 0.3:
                        raise Rollback
                    seq = row.seq
                with lock:
                    committed.append((number, seq))
            except Rollback:
                continue
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)
                return

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

    with factory() as session:
        stored = session.execute(select(AuditEvent.seq, AuditEvent.prev_hash, AuditEvent.hash)
                                 .order_by(AuditEvent.seq)).all()
        checkpoints = session.scalar(select(func.count()).select_from(AuditCheckpoint))
    # Gapless: every committed append and nothing else, numbered 1..n.
    assert len(committed) > WRITERS * PER_WRITER // 2
    assert [s for s, _, _ in stored] == list(range(1, len(committed) + 1))
    assert sorted(seq for _, seq in committed) == [s for s, _, _ in stored]
    # Fork-free: each event links to the one before it; no two share a predecessor.
    assert all(b[1] == a[2] for a, b in itertools.pairwise(stored))
    assert len({prev for _, prev, _ in stored}) == len(stored)
    assert checkpoints and checkpoints >= len(stored) // 40
    result = service.verify(factory, log.public_keys)
    assert (result.ok, result.events) == (True, len(stored))
