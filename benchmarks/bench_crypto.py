"""Field encryption cost: encrypt/decrypt per field, and reading a participant with its records
with decryption on and off, side by side in one run."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from portal.config import Settings
from portal.crypto.keys import FileKeyProvider, write_key_file
from portal.crypto.vault import Vault
from portal.db import migrate
from portal.db import models as m
from portal.db.engine import make_engine, make_session_factory
from portal.services.seed import generate_participants, seed_demo
from portal.services.wiring import Services


def _per_call_us(fn: Callable[[], object], calls: int, rounds: int = 7) -> float:
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        results.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(results)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_key_file(root / "kek")
        vault = Vault.from_keys(FileKeyProvider(root / "kek"), {1: os.urandom(32)},
                                os.urandom(32))
        value = "Bed at the Riverside shelter until Friday; needs a bus pass."
        blob = vault.encrypt(value, table="record", column="body", row_id="r")
        enc = _per_call_us(lambda: vault.encrypt(value, table="record", column="body",
                                                 row_id="r"), 20_000)
        dec = _per_call_us(lambda: vault.decrypt(blob, table="record", column="body",
                                                 row_id="r"), 20_000)
        print(f"{'per field':<34}{'microseconds':>14}")
        print(f"{'encrypt (60-byte value)':<34}{enc:>14.2f}")
        print(f"{'decrypt (60-byte value)':<34}{dec:>14.2f}")
        print("Target: under 10 microseconds per field.\n")

        settings = Settings(env="test", database_url=f"sqlite:///{root / 'bench.db'}",
                            data_dir=root, data_key_file=root / "kek")
        engine = make_engine(settings)
        migrate.upgrade(engine, settings=settings)
        factory = make_session_factory(engine)
        services = Services.build(settings, factory)
        with factory.begin() as session:
            seed_demo(session, issuer="http://bench/dev-idp", vault=services.vault)
        generate_participants(factory, services.vault, 2000, seed=1)
        with factory() as session:
            ids = list(session.scalars(select(m.Participant.id).limit(500)))

        def read(decrypt: bool) -> None:
            with factory() as session:
                for pid in ids:
                    person = session.get(m.Participant, pid)
                    records = session.scalars(select(m.Record).where(
                        m.Record.participant_id == pid)).all()
                    if decrypt and person is not None:
                        services.vault.open_participant(person)
                        for record in records:
                            services.vault.open(record, "title")
                            services.vault.open(record, "body")
                session.expunge_all()

        plain = _per_call_us(lambda: read(False), 1, rounds=9) / len(ids)
        sealed = _per_call_us(lambda: read(True), 1, rounds=9) / len(ids)
        print(f"{'participant + records, per view':<34}{'microseconds':>14}{'ratio':>8}")
        print(f"{'  without decryption':<34}{plain:>14.1f}{1.0:>8.2f}")
        print(f"{'  with decryption':<34}{sealed:>14.1f}{sealed / plain:>8.2f}")
        print("Target: under 10% page overhead (this reads the data a participant page shows; "
              "the page itself adds rendering, so the real overhead is smaller).")
        engine.dispose()
