"""The encryption migration: existing plaintext is encrypted on upgrade, and restored on
downgrade; nothing readable is left behind."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import inspect, text

from portal.config import Settings
from portal.crypto.keys import key_provider
from portal.crypto.vault import Vault
from portal.db import migrate
from portal.db.engine import make_engine, make_session_factory
from portal.db.models import Participant, Record

BEFORE = "3c041bcefa23"
ENCRYPTION = "1113c9a6da69"


def test_plaintext_is_encrypted_and_restored(new_database_url: str, tmp_path: object) -> None:
    settings = Settings(env="test", database_url=new_database_url, data_dir=tmp_path)  # type: ignore[arg-type]
    engine = make_engine(settings)
    migrate.upgrade(engine, BEFORE)
    pid, rid = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as c:
        c.execute(text("INSERT INTO organization (slug, name, sector, part2_program, "
                       "hipaa_covered, created_at) VALUES ('o', 'Org', 'housing', false, false, "
                       "CURRENT_TIMESTAMP)"))
        org = c.execute(text("SELECT id FROM organization")).scalar_one()
        c.execute(text(
            "INSERT INTO participant (id, public_id, given_name, family_name, date_of_birth, "
            "referral_pathway, status, preferred_language, created_at) VALUES (:id, 'LP-9', "
            "'Zoë', 'Quintero', :dob, 'social_contact', 'enrolled', 'en', CURRENT_TIMESTAMP)"),
            {"id": pid if engine.dialect.name == "postgresql" else pid.hex,
             "dob": date(1980, 2, 3)})
        c.execute(text(
            "INSERT INTO record (id, participant_id, organization_id, category, title, body, "
            "effective_date, created_at) VALUES (:id, :pid, :org, 'housing', 'Shelter plan', "
            "'Bed at the Riverside shelter', :d, CURRENT_TIMESTAMP)"),
            {"id": rid if engine.dialect.name == "postgresql" else rid.hex,
             "pid": pid if engine.dialect.name == "postgresql" else pid.hex, "org": org,
             "d": date(2026, 1, 1)})

    migrate.upgrade(engine, ENCRYPTION, settings)
    columns = {c["name"] for c in inspect(engine).get_columns("participant")}
    assert "given_name" not in columns and "given_name_enc" in columns
    with engine.connect() as c:
        dump = " ".join(str(v) for row in c.execute(text("SELECT * FROM participant")).all()
                        for v in row)
        dump += " ".join(str(v) for row in c.execute(text("SELECT * FROM record")).all()
                         for v in row)
    assert "Quintero" not in dump and "Riverside" not in dump and "1980-02-03" not in dump
    vault = Vault(key_provider(settings))
    with make_session_factory(engine).begin() as session:
        vault.ready(session)
        person = session.get(Participant, pid)
        record = session.get(Record, rid)
        assert person is not None and record is not None
        name = vault.open_participant(person)
        assert (name.given, name.family, name.date_of_birth) == ("Zoë", "Quintero",
                                                                 date(1980, 2, 3))
        assert vault.open(record, "body") == "Bed at the Riverside shelter"

    migrate.downgrade(engine, BEFORE, settings)
    with engine.connect() as c:
        row = c.execute(text("SELECT given_name, family_name, date_of_birth FROM participant")
                        ).one()
        body = c.execute(text("SELECT body FROM record")).scalar_one()
    assert (row[0], row[1]) == ("Zoë", "Quintero")
    assert str(row[2]).startswith("1980-02-03")
    assert body == "Bed at the Riverside shelter"
    migrate.upgrade(engine, "head", settings)
    engine.dispose()


def test_check_constraints_survive_the_migration_on_every_backend(
        new_database_url: str, tmp_path: object) -> None:
    settings = Settings(env="test", database_url=new_database_url, data_dir=tmp_path)  # type: ignore[arg-type]
    engine = make_engine(settings)
    migrate.upgrade(engine, "head", settings)
    names = {c["name"] for c in inspect(engine).get_check_constraints("consent")}
    assert {"ck_consent_kind", "ck_consent_status", "ck_consent_signed_when_in_force"} <= names
    names = {c["name"] for c in inspect(engine).get_check_constraints("participant")}
    assert "ck_participant_status" in names
    engine.dispose()
