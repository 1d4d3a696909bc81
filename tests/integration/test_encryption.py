"""Encryption at rest over a real database: nothing readable in a dump, values bound to their
row and column, rotation and retirement, and search through the blind indexes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import Engine, event, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from portal.admin import keys as key_service
from portal.config import Settings
from portal.crypto.vault import DecryptionError
from portal.db import models as m
from portal.db.engine import make_engine, make_session_factory
from portal.devtools.seed import GOALS, PARTICIPANTS, RECORDS, seed_demo
from portal.kernel.wiring import Services
from portal.web.app import create_app
from portal.workspace import people


@pytest.fixture
def demo(session_factory: sessionmaker[Session], services: Services) -> sessionmaker[Session]:
    with session_factory.begin() as session:
        seed_demo(session, issuer="http://127.0.0.1:8000/dev-idp", vault=services.vault)
    return session_factory


def _dump(engine: Engine) -> tuple[str, str]:
    """Every stored value: the text columns, and the binary ones (read as latin-1)."""
    text_values, binary_values = [], []
    with engine.connect() as c:
        for table in m.Base.metadata.sorted_tables:
            for row in c.execute(table.select()):
                for value in row:
                    if isinstance(value, bytes):
                        binary_values.append(value.decode("latin-1"))
                    else:
                        text_values.append(str(value))
    return "\n".join(text_values).lower(), "\n".join(binary_values).lower()


def test_a_database_dump_reveals_no_names_birth_dates_or_record_text(
        demo: sessionmaker[Session], engine: Engine) -> None:
    text_dump, binary_dump = _dump(engine)
    needles: list[str] = []
    for _, given, family, dob, *_ in PARTICIPANTS:
        needles += [given.lower(), family.lower(), f"{given} {family}".lower(), dob.isoformat()]
    for items in RECORDS.values():
        for _, title, body in items:
            needles += [re.sub(r"\{.*?\}", "", t)[:30].strip().lower() for t in (title, body)]
    needles += [detail[:25].lower() for _, _, _, detail, *_ in GOALS]
    for needle in needles:
        assert needle not in text_dump, needle
        # Ciphertext is random bytes: a short name ("Eli") turns up in it by chance, so
        # binary columns are searched for the longer strings (a whole name, a date, a text).
        if len(needle) >= 8:
            assert needle not in binary_dump, needle


def _person(session: Session, public_id: str) -> m.Participant:
    person = session.scalar(select(m.Participant).where(m.Participant.public_id == public_id))
    assert person is not None
    return person


def test_a_ciphertext_moved_to_another_row_or_column_fails_clearly(
        demo: sessionmaker[Session], services: Services, settings: Settings) -> None:
    with demo.begin() as s:
        marcus, angela = _person(s, "LP-1001"), _person(s, "LP-1002")
        angela.given_name_enc = marcus.given_name_enc  # another row
        marcus.family_name_enc = marcus.given_name_enc  # another column
    with demo() as s:
        for public_id, column in (("LP-1002", "given_name"), ("LP-1001", "family_name")):
            with pytest.raises(DecryptionError) as info:
                services.vault.open_participant(_person(s, public_id))
            assert info.value.column == column
            assert "does not belong to this row and column" in str(info.value)

    # The participant's own page shows the name as unavailable, and the failure is audited.
    app_settings = Settings(env="test", database_url=settings.database_url,
                            data_dir=settings.data_dir, data_key_file=settings.data_key_file,
                            dev_idp=False)
    with TestClient(create_app(app_settings), base_url="http://127.0.0.1:8000") as client:
        page = client.get("/me/login")
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
        assert token
        client.post("/me/login", data={"username": "angela", "passphrase":
                                       "cielo azul tranquilo", "_csrf_token": token.group(1)},
                    follow_redirects=False)
        home = client.get("/me")
    assert home.status_code == 200
    assert "cannot be shown right now" in home.text
    with demo() as s:
        failure = s.scalars(select(m.AuditEvent).where(
            m.AuditEvent.action == "crypto:decrypt:failure")).one()
        assert failure.detail == {"table": "participant", "column": "given_name"}


def test_rotation_reencryption_and_retirement(demo: sessionmaker[Session],
                                              services: Services) -> None:
    vault = services.vault
    with demo.begin() as s:
        old_blob = _person(s, "LP-1001").given_name_enc
        old_version = vault.ready(s).current_version
        new_version = key_service.rotate(s, vault)
    assert new_version > old_version
    with demo.begin() as s:
        waiting = key_service.pending(s, vault)
        assert waiting["participant"] == len(PARTICIPANTS)
        with pytest.raises(key_service.KeyRotationError, match="still under version"):
            key_service.retire(s, vault, old_version)
    done: list[int] = []
    total = key_service.reencrypt(demo, vault, batch_size=7, progress=done.append)
    assert total == sum(done) > len(PARTICIPANTS)
    with demo.begin() as s:
        assert set(key_service.pending(s, vault).values()) == {0}
        for person in s.scalars(select(m.Participant)):
            assert person.key_version == new_version
            assert vault.open_participant(person).given
        for record in s.scalars(select(m.Record)):
            assert vault.open(record, "body")
        with pytest.raises(key_service.KeyRotationError, match="current key"):
            key_service.retire(s, vault, new_version)
        key_service.retire(s, vault, old_version)
        marcus = _person(s, "LP-1001")
    assert vault.open_participant(marcus).given == "Marcus"
    with pytest.raises(DecryptionError, match=f"key version {old_version} is retired"):
        vault.decrypt(old_blob, table="participant", column="given_name", row_id=marcus.id)


def test_reencryption_resumes_where_it_stopped(demo: sessionmaker[Session],
                                               services: Services) -> None:
    with demo.begin() as s:
        key_service.rotate(s, services.vault)

    class Interrupted(Exception):
        pass

    def stop_after_first_batch(n: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        key_service.reencrypt(demo, services.vault, batch_size=5,
                              progress=stop_after_first_batch)
    with demo.begin() as s:
        assert key_service.pending(s, services.vault)["participant"] == len(PARTICIPANTS) - 5
    key_service.reencrypt(demo, services.vault, batch_size=5)
    with demo.begin() as s:
        assert set(key_service.pending(s, services.vault).values()) == {0}


@pytest.mark.parametrize(("query", "expected"), [
    ("Marcus Reed", ["LP-1001"]), ("marcus  REED", ["LP-1001"]), ("reed", ["LP-1001"]),
    ("1986-03-14", ["LP-1001"]), ("03/14/1986", ["LP-1001"]), ("Marcus", []),
    ("Reed Marcus", []), ("lp-1002", ["LP-1002"]), ("", [])])
def test_search_by_name_and_date_of_birth(demo: sessionmaker[Session], services: Services,
                                          query: str, expected: list[str]) -> None:
    with demo.begin() as s:
        assert [p.public_id for p in people.find(s, services.vault, query)] == expected


def test_no_blind_index_on_low_cardinality_fields() -> None:
    columns: list[Any] = [c.name for c in m.Participant.__table__.columns]
    assert {c for c in columns if c.endswith("_bidx")} == {"name_bidx", "family_bidx",
                                                           "dob_bidx"}


def test_raw_sql_search_by_name_finds_nothing(demo: sessionmaker[Session],
                                              engine: Engine) -> None:
    with engine.connect() as c:
        hits = c.execute(text("SELECT count(*) FROM participant WHERE "
                              "CAST(given_name_enc AS VARCHAR(400)) LIKE '%Marcus%'")).scalar()
    assert hits == 0


def test_a_locked_database_at_start_up_is_an_error_not_a_warning(settings: Settings,
                                                                  engine: Engine) -> None:
    """Services.build leaves the keys for later only when the database is down or not migrated
    (tests/e2e/test_app_skeleton.py); waiting out another transaction's lock and carrying on
    would hide a deadlock, so a lock error reaches the caller."""
    if settings.is_sqlite:
        waiting = make_engine(settings)
        event.listen(waiting, "connect",
                     lambda connection, _: connection.execute("PRAGMA busy_timeout=100"))
        lock = "SELECT 1"  # BEGIN IMMEDIATE (portal/db/engine.py) takes the write lock
    else:
        waiting = make_engine(settings, connect_args={"options": "-c lock_timeout=100"})
        lock = "LOCK TABLE data_key IN ACCESS EXCLUSIVE MODE"
    try:
        with engine.begin() as holder:
            holder.execute(text(lock))
            with pytest.raises(OperationalError):
                Services.build(settings, make_session_factory(waiting))
        assert Services.build(settings, make_session_factory(waiting)).vault.current_version
    finally:
        waiting.dispose()
