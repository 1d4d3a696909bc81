"""The free text people type is encrypted at rest too (issue 19 item 7): a real dump of the
database (pg_dump on PostgreSQL, SQLite's own dump) after the demo is seeded and break-glass,
a referral with a location, goals with updates and a failed participant sign-in have been
entered holds none of it, while every page that reads it still gets it back."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess

import pytest
from sqlalchemy import Engine, make_url, select
from sqlalchemy.orm import Session, sessionmaker

from portal.admin import keys as key_service
from portal.auth import service as auth_service
from portal.compliance import review
from portal.db import models as m
from portal.devtools.seed import GOALS, PARTICIPANTS, seed_demo
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

REASON = "Collapsed outside Quillfeather Pharmacy"
NATURE = "Suspected xylazine overdose, unresponsive"
FACILITY = "Marrowbank Urgent Care"
REVIEW_NOTES = "Confirmed with the Marrowbank charge nurse"
WHERE = "Under the Juniperwick overpass, most mornings"
REFERRED = ("Thaddeus", "Vornholt")
DECLINED_WHERE = "Behind the Oxleigh laundromat"
DECLINE_REASON = "Already enrolled elsewhere as Ottoline Brabazon"
GOAL = "Tenancy at the Wrenfield co-op"
GOAL_DETAIL = "Landlord reference from Wrenfield"
NOTE = "Interview booked with the Wrenfield board"
USERNAME = "zebulon.quartermaine"


@pytest.fixture
def demo(session_factory: sessionmaker[Session], services: Services) -> sessionmaker[Session]:
    with session_factory.begin() as session:
        seed_demo(session, issuer=ISSUER, vault=services.vault)
    return session_factory


def _dump(engine: Engine) -> str:
    """The whole database as its own dump tool writes it."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        pg_dump = shutil.which("pg_dump")
        assert pg_dump, "pg_dump is needed for this test"
        libpq = make_url(url.render_as_string(hide_password=False)).set(
            drivername="postgresql").render_as_string(hide_password=False)
        done = subprocess.run([pg_dump, "--data-only", "--no-owner", libpq],
                              check=True, capture_output=True)
        return done.stdout.decode("utf-8", "replace")
    assert url.database
    connection = sqlite3.connect(url.database)
    try:
        return "\n".join(connection.iterdump())
    finally:
        connection.close()


def test_a_dump_holds_none_of_the_text_people_typed(
        demo: sessionmaker[Session], services: Services, engine: Engine) -> None:
    with demo.begin() as session:
        luis, darnell = staff(session, LUIS), person(session, "LP-1003")
        grant = services.access.grant_break_glass(
            session, luis, darnell, reason=REASON, emergency_nature=NATURE, facility=FACILITY,
            minutes=30, meta=META)
        grant_id = grant.id
        james = staff(session, JAMES)
        kept = rs.refer(session, services, james, pathway="social_contact", given=REFERRED[0],
                        family=REFERRED[1], born="1979-04-05", where=WHERE, meta=META)
        kept_id = kept.id
        declined = rs.refer(session, services, james, pathway="social_contact",
                            given="Ottoline", family="Brabazon", born="", where=DECLINED_WHERE,
                            meta=META)
        maria = staff(session, MARIA)
        rs.decide_referral(session, services, maria, declined.id, accept=False,
                           reason=DECLINE_REASON, meta=META)
        goal = ws.add_goal(session, services, maria, "LP-1001", "housing", GOAL, GOAL_DETAIL,
                           False, META)
        ws.update_goal(session, services, maria, "LP-1001", str(goal.id), "in_progress", NOTE,
                       META)
    with demo.begin() as session:
        review.review_grant(session, services, staff(session, RENEE), META, grant_id,
                            "justified", REVIEW_NOTES)
    with demo.begin() as session, pytest.raises(auth_service.SignInRefused):
        auth_service.authenticate_participant(session, services.audit, services.vault,
                                              USERNAME, "not the passphrase", None, META)

    dump = _dump(engine).lower()
    # It is a real dump, with the rows: what is not sealed (a staff email) is there.
    assert MARIA in dump
    typed = [REASON, NATURE, FACILITY, REVIEW_NOTES, WHERE, *REFERRED, DECLINED_WHERE,
             DECLINE_REASON, GOAL, GOAL_DETAIL, NOTE, USERNAME, "Marrowbank", "Wrenfield",
             "Juniperwick", "Quillfeather", "xylazine"]
    for text in typed:
        assert text.lower() not in dump, text
    for _, given, family, dob, *_ in PARTICIPANTS:
        full = f"{given} {family}".lower()
        assert full not in dump, dump[max(0, dump.find(full) - 600):dump.find(full) + 100]
        assert dob.isoformat() not in dump
    for _, _, summary, detail, *_ in GOALS:
        assert summary.lower() not in dump, summary
        assert detail[:25].lower() not in dump, detail

    # ... and every reader gets it back.
    with demo.begin() as session:
        queue = review.review_queue(session, services, staff(session, RENEE), META, "all")
        row = next(r for r in queue if r.id == grant_id)
        assert (row.reason, row.emergency_nature, row.facility, row.review_notes) == (
            REASON, NATURE, FACILITY, REVIEW_NOTES)
        pending = rs.pending(session, services, staff(session, MARIA), META)
        line = next(x for x in pending if x.id == str(kept_id))
        assert (line.given, line.family, line.where) == (*REFERRED, WHERE)
        page = ws.participant_page(session, services, staff(session, MARIA), "LP-1001", META)
        shown = next(g for g in page.goals if g.id == str(goal.id))
        assert (shown.summary, shown.status_note, shown.detail) == (GOAL, NOTE, GOAL_DETAIL)
        vault = services.vault.ready(session)
        stored = session.get(m.Goal, goal.id)
        assert stored is not None
        assert [vault.open(u, "note") for u in sorted(stored.updates, key=lambda u: u.id)] == [
            "Goal set", NOTE]
        failure = session.scalars(select(m.AuditEvent).where(
            m.AuditEvent.action == "auth:login:failure").order_by(m.AuditEvent.seq.desc())
        ).first()
        assert failure is not None
        assert failure.actor == auth_service.username_actor(
            auth_service.username_index(services.vault, session, USERNAME))


def test_rotation_re_encrypts_the_typed_text_too(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        grant = services.access.grant_break_glass(
            session, staff(session, LUIS), person(session, "LP-1003"), reason=REASON,
            emergency_nature=NATURE, facility=FACILITY, minutes=30, meta=META)
        goal = ws.add_goal(session, services, staff(session, MARIA), "LP-1001", "housing",
                           GOAL, "", False, META)
        ws.update_goal(session, services, staff(session, MARIA), "LP-1001", str(goal.id),
                       "in_progress", NOTE, META)
        rs.refer(session, services, staff(session, JAMES), pathway="social_contact",
                 given=REFERRED[0], family=REFERRED[1], born="", where=WHERE, meta=META)
        old = services.vault.ready(session).current_version
        ids = grant.id, goal.id
    with demo.begin() as session:
        key_service.rotate(session, services.vault)
    key_service.reencrypt(demo, services.vault)
    with demo.begin() as session:
        # Refused while any value (of any table in ENCRYPTED) is still under the old key.
        key_service.retire(session, services.vault, old)
    with demo.begin() as session:
        row = next(r for r in review.review_queue(session, services, staff(session, RENEE),
                                                  META, "all") if r.id == ids[0])
        assert (row.reason, row.emergency_nature, row.facility) == (REASON, NATURE, FACILITY)
        page = ws.participant_page(session, services, staff(session, MARIA), "LP-1001", META)
        shown = next(g for g in page.goals if g.id == str(ids[1]))
        assert (shown.summary, shown.status_note) == (GOAL, NOTE)
        stored = session.get(m.Goal, ids[1])
        assert stored is not None
        assert {u.key_version for u in stored.updates} == {services.vault.current_version}
        assert [services.vault.open(u, "note") for u in sorted(stored.updates,
                                                                key=lambda u: u.id)] == [
            "Goal set", NOTE]
        line = next(x for x in rs.pending(session, services, staff(session, MARIA), META)
                    if x.given == REFERRED[0])
        assert line.where == WHERE
