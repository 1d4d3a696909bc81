"""Audit log throughput on PostgreSQL, each figure beside a plain baseline measured in the same run.

- append: 1, 8 and 32 writer threads, each append its own short transaction (as a real access
  is), against a plain INSERT of the same rows into a copy of the table (no lock, no head read,
  no hashing);
- verify: recompute a chain of --events events (default 1,000,000), against a plain full scan
  of the same rows.

Needs a PostgreSQL server (PORTAL_BENCH_POSTGRES_URL, default the local one); works in a
throw-away database that it drops afterwards. Run: python -m benchmarks.bench_audit [--events N]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, MetaData, Table, Text, cast, create_engine, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Settings
from portal.db import audit_chain as service
from portal.db import migrate
from portal.db.audit_chain import AuditLog
from portal.db.engine import make_engine, make_session_factory
from portal.db.models import AuditEvent
from portal.domain.audit import (
    EVENT_FIELDS,
    GENESIS_HASH,
    AuditAction,
    ChainedEvent,
    NewAuditEvent,
    chain_event,
    sign_checkpoint,
)

ADMIN_URL = os.environ.get("PORTAL_BENCH_POSTGRES_URL",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TARGET_APPENDS_8 = 1_500
TARGET_VERIFY = 100_000
JSON_COLUMNS = {"actor_roles", "record_ids", "reasons", "consent_ids", "detail"}


def sample_event(i: int) -> NewAuditEvent:
    """A realistic record view: a case manager reading another agency's information."""
    return NewAuditEvent(
        action=AuditAction.RECORD_VIEW, actor=f"user{i % 500}@harbor.example",
        actor_user_id=i % 500, actor_organization="harbor-lead", actor_roles=("case_manager",),
        session_id=f"{i % 9973:064x}", client_address="10.20.30.40",
        participant_id=uuid.UUID(int=i % 20_000 + 1), category="housing",
        record_ids=(str(uuid.UUID(int=i + 10**9)),), purpose="CAREMGT", decision="permit",
        reasons=("consent",), consent_ids=(str(uuid.UUID(int=i % 20_000 + 10**6)),),
        policy_version="c" * 64, request_id=f"{i:032x}",
        detail={"disclosers": ["hope-housing"]})


@dataclass
class Row:
    label: str
    unit: str
    chained: float
    plain: float

    @property
    def overhead(self) -> float:
        return self.plain / self.chained if self.chained else float("inf")


def run_threads(writers: int, per_writer: int, work: Callable[[int, int], None]) -> float:
    """Run work(writer, i) for every i in per_writer threads; return operations per second."""
    barrier = threading.Barrier(writers + 1)
    errors: list[BaseException] = []

    def loop(number: int) -> None:
        barrier.wait()
        try:
            for i in range(per_writer):
                work(number, i)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return writers * per_writer / elapsed


def bench_appends(engine: Engine, settings: Settings, plain: Table, writers: int,
                  total: int) -> Row:
    factory = make_session_factory(engine)
    log = AuditLog(settings)
    per_writer = max(total // writers, 1)
    template = chain_event(sample_event(0), chain="main", seq=1,
                           occurred_at=datetime.now(UTC), prev_hash=GENESIS_HASH)
    values = {name: getattr(template, name) for name in EVENT_FIELDS}

    def chained(number: int, i: int) -> None:
        with factory.begin() as session:
            log.append(session, sample_event(number * per_writer + i))

    def baseline(number: int, i: int) -> None:
        with factory.begin() as session:
            session.execute(insert(plain), {**values, "chain": f"w{writers}-{number}",
                                            "seq": i + 1, "occurred_at": datetime.now(UTC)})

    # Alternate the two so that neither gets a warmer cache or a quieter machine.
    run_threads(writers, min(per_writer, 20), chained)  # warm-up
    rates_plain = run_threads(writers, per_writer, baseline)
    rates_chained = run_threads(writers, per_writer, chained)
    return Row(f"append, {writers} writer{'s' if writers > 1 else ''}", "appends/s",
               rates_chained, rates_plain)


def generate_chain(engine: Engine, key: Ed25519PrivateKey, count: int,
                   progress: Callable[[int], None]) -> None:
    """Write a valid chain of ``count`` events with COPY, and a checkpoint every 1,000."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    columns = ", ".join(EVENT_FIELDS)
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        prev = GENESIS_HASH
        checkpoints: list[tuple[Any, ...]] = []
        with cursor.copy(f"COPY audit_event ({columns}) FROM STDIN") as copy:
            for seq in range(1, count + 1):
                event = chain_event(sample_event(seq), chain="main", seq=seq,
                                    occurred_at=start + timedelta(milliseconds=seq),
                                    prev_hash=prev)
                prev = event.hash
                copy.write_row(_copy_values(event))
                if seq % 1000 == 0 or seq == count:
                    cp = sign_checkpoint(key, chain="main", seq=seq, head_hash=event.hash,
                                         signed_at=event.occurred_at)
                    checkpoints.append((cp.chain, cp.seq, cp.head_hash, cp.signed_at,
                                        cp.key_id, cp.signature))
                if seq % 10_000 == 0:
                    progress(seq)
        cursor.executemany(
            "INSERT INTO audit_checkpoint (chain, seq, head_hash, signed_at, key_id, signature)"
            " VALUES (%s, %s, %s, %s, %s, %s)", checkpoints)
        raw.commit()
        cursor.execute("ANALYZE audit_event")
        raw.commit()
    finally:
        raw.close()


def _copy_values(event: ChainedEvent) -> list[Any]:
    values: list[Any] = []
    for name in EVENT_FIELDS:
        value = getattr(event, name)
        if name in JSON_COLUMNS:
            value = orjson.dumps(value).decode()
        elif name == "participant_id" and value is not None:
            value = str(value)
        values.append(value)
    return values


def bench_verify(engine: Engine, log: AuditLog, count: int) -> Row:
    factory: sessionmaker[Session] = make_session_factory(engine)
    table = AuditEvent.metadata.tables[AuditEvent.__tablename__]

    # The same columns, order and streaming as verification reads (JSON as text), no hashing.
    columns = [cast(c, Text) if c.name in JSON_COLUMNS else c for c in table.c]

    def scan() -> float:
        started = time.perf_counter()
        rows = 0
        with factory() as session:
            query = select(*columns).order_by(table.c.chain, table.c.seq)
            for _row in session.execute(query.execution_options(yield_per=5000)):
                rows += 1
        assert rows == count, rows
        return count / (time.perf_counter() - started)

    def verify() -> float:
        started = time.perf_counter()
        result = service.verify(factory, log.public_keys)
        elapsed = time.perf_counter() - started
        if not result.ok or result.events != count:
            raise SystemExit(f"verification failed on a valid chain: {result}")
        return count / elapsed

    scan()  # warm the buffer cache for both
    plain, chained = scan(), verify()
    return Row(f"verify {count:,} events", "events/s", chained, plain)


def print_table(rows: Sequence[Row], header: str) -> None:
    print(header)
    print(f"{'measure':<28}{'unit':<11}{'chained':>10}{'plain':>10}{'plain/chained':>15}")
    for r in rows:
        print(f"{r.label:<28}{r.unit:<11}{r.chained:>10,.0f}{r.plain:>10,.0f}"
              f"{r.overhead:>14.2f}x")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_audit",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000,
                        help="size of the chain to verify (default 1,000,000)")
    parser.add_argument("--appends", type=int, default=3_200,
                        help="appends per writer count (default 3,200)")
    parser.add_argument("--writers", default="1,8,32", help="writer thread counts")
    args = parser.parse_args(argv)
    writer_counts = [int(w) for w in args.writers.split(",")]

    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"portal_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        version = connection.execute(text("SHOW server_version")).scalar()
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        with TemporaryDirectory() as data_dir:
            url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
            settings = Settings(env="test", database_url=url, data_dir=Path(data_dir))
            engine = make_engine(settings, pool_size=max(writer_counts) + 2, max_overflow=0)
            migrate.upgrade(engine)
            with engine.begin() as connection:  # same columns, keys and indexes
                connection.execute(text("CREATE TABLE bench_audit_plain (LIKE audit_event "
                                        "INCLUDING ALL)"))
            plain = Table("bench_audit_plain", MetaData(), autoload_with=engine)
            rows = []
            for writers in writer_counts:
                rows.append(bench_appends(engine, settings, plain, writers, args.appends))
                print(f"  measured {rows[-1].label}", file=sys.stderr)
            with engine.begin() as connection:
                connection.execute(text("TRUNCATE audit_event, audit_checkpoint"))
            key = service.load_signing_key(settings)
            log = AuditLog(settings, signing_key=key)
            started = time.perf_counter()
            generate_chain(engine, key, args.events,
                           lambda n: print(f"\r  generating {n:,}/{args.events:,}", end="",
                                           file=sys.stderr))
            print(f"\r  generated {args.events:,} events in "
                  f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
            rows.append(bench_verify(engine, log, args.events))
            engine.dispose()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    print_table(rows, f"Audit log on PostgreSQL {version} ({os.cpu_count()} CPUs)")
    by_label = {r.label: r for r in rows}
    eight = by_label.get("append, 8 writers")
    verify = rows[-1]
    if eight:
        print(f"target: >= {TARGET_APPENDS_8:,} appends/s at 8 writers: "
              f"{'met' if eight.chained >= TARGET_APPENDS_8 else 'MISSED'} "
              f"({eight.chained:,.0f})")
    print(f"target: verify >= {TARGET_VERIFY:,} events/s: "
          f"{'met' if verify.chained >= TARGET_VERIFY else 'MISSED'} ({verify.chained:,.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
