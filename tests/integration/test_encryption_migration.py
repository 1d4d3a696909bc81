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


FREE_TEXT_BEFORE = "5e1f0b7c9a3d"


def test_typed_free_text_is_encrypted_and_restored(new_database_url: str,
                                                    tmp_path: object) -> None:
    """7c2e5a9d1f40: emergency-access reasons, referral locations and goal text already
    stored come back in plaintext on downgrade and are sealed again on upgrade."""
    from portal.compliance import review
    from portal.db import models as m
    from portal.devtools.seed import seed_demo
    from portal.kernel.wiring import Services
    from portal.referrals import service as rs
    from portal.workspace import service as ws
    from tests.integration.service_support import (
        ISSUER,
        JAMES,
        LUIS,
        MARIA,
        META,
        RENEE,
        person,
        staff,
    )

    settings = Settings(env="test", database_url=new_database_url, data_dir=tmp_path)  # type: ignore[arg-type]
    engine = make_engine(settings)
    migrate.upgrade(engine, "head", settings)
    factory = make_session_factory(engine)
    services = Services.build(settings, factory)
    with factory.begin() as session:
        seed_demo(session, issuer=ISSUER, vault=services.vault)
    with factory.begin() as session:
        grant = services.access.grant_break_glass(
            session, staff(session, LUIS), person(session, "LP-1003"), reason="Found at Elm St",
            emergency_nature="overdose", facility="Eastgate", minutes=30, meta=META)
        referral = rs.refer(session, services, staff(session, JAMES), pathway="social_contact",
                            given="Ada", family="Quill", born="", where="Pier 9 benches",
                            meta=META)
        goal = ws.add_goal(session, services, staff(session, MARIA), "LP-1001", "housing",
                           "Lease at Birch Court", "", False, META)
        ws.update_goal(session, services, staff(session, MARIA), "LP-1001", str(goal.id),
                       "in_progress", "Viewing on Friday", META)
        ids = grant.id, referral.id, goal.id
    with factory.begin() as session:
        review.review_grant(session, services, staff(session, RENEE), META, ids[0],
                            "justified", "Checked with Eastgate")

    def one(sql: str, row_id: uuid.UUID) -> tuple[object, ...]:
        with engine.connect() as c:
            value = row_id if engine.dialect.name == "postgresql" else row_id.hex
            return tuple(c.execute(text(sql), {"id": value}).one())

    migrate.downgrade(engine, FREE_TEXT_BEFORE, settings)
    assert one("SELECT reason, emergency_nature, facility, review_notes FROM break_glass_grant "
               "WHERE id = :id", ids[0]) == ("Found at Elm St", "overdose", "Eastgate",
                                             "Checked with Eastgate")
    assert one("SELECT where_to_find, decline_reason FROM referral WHERE id = :id",
               ids[1]) == ("Pier 9 benches", None)
    assert one("SELECT summary, status_note FROM goal WHERE id = :id", ids[2]) == (
        "Lease at Birch Court", "Viewing on Friday")
    with engine.connect() as c:
        notes = c.execute(text("SELECT note FROM goal_update WHERE goal_id = :id ORDER BY id"),
                          {"id": ids[2] if engine.dialect.name == "postgresql"
                           else ids[2].hex}).scalars().all()
    assert notes == ["Goal set", "Viewing on Friday"]
    assert "reason_enc" not in {c["name"] for c in inspect(engine).get_columns(
        "break_glass_grant")}

    migrate.upgrade(engine, "head", settings)
    for table, plain in (("break_glass_grant", "reason"), ("referral", "where_to_find"),
                         ("goal", "summary"), ("goal_update", "note")):
        columns = {c["name"] for c in inspect(engine).get_columns(table)}
        assert plain not in columns and f"{plain}_enc" in columns and "key_version" in columns
    with engine.connect() as c:
        dump = " ".join(str(v) for table in ("break_glass_grant", "referral", "goal",
                                             "goal_update")
                        for row in c.execute(text(f"SELECT * FROM {table}")).all()
                        for v in row)
    for typed in ("Elm St", "Eastgate", "Pier 9", "Birch Court", "Viewing on Friday"):
        assert typed not in dump
    vault = Vault(key_provider(settings))
    with factory() as session:
        vault.ready(session)
        stored_grant = session.get(m.BreakGlassGrant, ids[0])
        stored_referral = session.get(m.Referral, ids[1])
        stored_goal = session.get(m.Goal, ids[2])
        assert stored_grant and stored_referral and stored_goal
        assert vault.open(stored_grant, "review_notes") == "Checked with Eastgate"
        assert vault.open(stored_referral, "where_to_find") == "Pier 9 benches"
        assert vault.open(stored_referral, "given_name") == "Ada"  # its other values still open
        assert vault.open(stored_goal, "summary") == "Lease at Birch Court"
        assert [vault.open(u, "note") for u in sorted(stored_goal.updates, key=lambda u: u.id)
                ] == ["Goal set", "Viewing on Friday"]
    engine.dispose()
