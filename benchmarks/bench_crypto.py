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
from portal.devtools.seed import generate_participants, seed_demo
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services
from portal.workspace import service as ws


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
            ids = [p.public_id for p in session.scalars(select(m.Participant).limit(200))]
            user = session.scalar(select(m.StaffUser).where(
                m.StaffUser.email == "maria.lopez@harbor-lead.example"))
        assert user is not None
        meta = RequestMeta(actor="bench")

        def pages() -> None:
            for public_id in ids:
                with factory.begin() as session:
                    ws.participant_page(session, services, user, public_id, meta)

        # Encryption off: the same page, with every value handed over as if stored in
        # plaintext (decrypted once beforehand), measured in the same run.
        plain_values: dict[tuple[str, str, object], str | None] = {}
        real_open = Vault.open

        def remember(self: Vault, row: object, column: str) -> str | None:
            key = (row.__tablename__, column, row.id)  # type: ignore[attr-defined]
            if key not in plain_values:
                plain_values[key] = real_open(self, row, column)
            return plain_values[key]

        Vault.open = remember  # type: ignore[method-assign]
        pages()  # fills the plaintext cache
        encrypted, plaintext = [], []
        for _ in range(5):
            Vault.open = real_open  # type: ignore[method-assign]
            start = time.perf_counter()
            pages()
            encrypted.append((time.perf_counter() - start) / len(ids) * 1e3)
            Vault.open = remember  # type: ignore[method-assign]
            start = time.perf_counter()
            pages()
            plaintext.append((time.perf_counter() - start) / len(ids) * 1e3)
        Vault.open = real_open  # type: ignore[method-assign]
        on, off = statistics.median(encrypted), statistics.median(plaintext)
        print(f"{'participant page (decide, audit, data)':<40}{'ms per page':>12}{'ratio':>8}")
        print(f"{'  encryption off (plaintext values)':<40}{off:>12.2f}{1.0:>8.2f}")
        print(f"{'  encryption on':<40}{on:>12.2f}{on / off:>8.2f}")
        print("Target: page overhead under 10%.")
        engine.dispose()
