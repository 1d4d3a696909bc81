"""Every CLI read of participant information is audited, naming the operator, and shows nothing
when its event cannot be written (issue 19 item 3)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from portal.cli import main
from portal.config import Settings
from portal.crypto.vault import Vault
from portal.db.models import AuditEvent, Participant
from portal.devtools.seed import seed_demo
from tests.integration.test_audit_log import inserts_refused

OFFICER = "james.carter@riverton-pd.example"


@pytest.fixture
def seeded(session_factory: sessionmaker[Session], vault: Vault) -> sessionmaker[Session]:
    with session_factory.begin() as session:
        seed_demo(session, issuer="http://127.0.0.1:8000/dev-idp", vault=vault)
    return session_factory


def portal(settings: Settings, *args: str) -> Result:
    env = {"PORTAL_DATABASE_URL": settings.database_url,
           "PORTAL_DATA_DIR": str(settings.data_dir), "PORTAL_ENV": "test",
           "PORTAL_DATA_KEY_FILE": str(settings.data_key_file)}
    return CliRunner().invoke(main, list(args), env=env)


def events(factory: sessionmaker[Session], action: str) -> list[AuditEvent]:
    with factory() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                    .order_by(AuditEvent.seq)))


def test_participants_list_audits_every_participant_shown(
        settings: Settings, seeded: sessionmaker[Session]) -> None:
    before = len(events(seeded, "participant:view"))
    result = portal(settings, "participants", "list", "--json", "--limit", "4")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 4 and all(r["display_name"] for r in rows)
    logged = events(seeded, "participant:view")[before:]
    with seeded() as session:
        ids = {p.id: p.public_id for p in session.scalars(select(Participant))}
    assert [ids[e.participant_id] for e in logged] == [r["id"] for r in rows]
    assert all(e.actor.startswith("cli:") and e.actor != "cli:" for e in logged)
    assert all(e.detail["command"] == "participants list" for e in logged)


def test_explain_and_consents_list_are_audited_as_the_operator(
        settings: Settings, seeded: sessionmaker[Session]) -> None:
    with seeded() as session:
        public_id = session.scalars(select(Participant.public_id)
                                    .order_by(Participant.public_id)).first()
    assert public_id is not None
    explained = portal(settings, "access", "explain", "--user", OFFICER, "--participant",
                       public_id, "--category", "housing", "--json")
    assert explained.exit_code == 0, explained.output
    [explain] = events(seeded, "decision:explain")
    assert explain.actor.startswith("cli:") and explain.detail["explained_for"] == OFFICER
    listed = portal(settings, "consents", "list", "--participant", public_id, "--json")
    assert listed.exit_code == 0, listed.output
    assert [e.actor.startswith("cli:") for e in events(seeded, "consent:view")] == [True]


@pytest.mark.parametrize("command", [
    ("participants", "list", "--json"),
    ("participants", "list"),
    ("access", "explain", "--user", OFFICER, "--participant", "{pid}", "--category", "housing"),
    ("consents", "list", "--participant", "{pid}", "--json"),
])
def test_a_read_whose_event_cannot_be_written_shows_nothing(
        engine: Engine, settings: Settings, seeded: sessionmaker[Session],
        command: tuple[str, ...]) -> None:
    shown = json.loads(portal(settings, "participants", "list", "--json").stdout)
    public_id = shown[0]["id"]
    names = [r["display_name"] for r in shown]
    with seeded() as session:
        head = session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    assert head is not None
    with inserts_refused(engine, from_seq=head + 1):
        result = portal(settings, *(part.format(pid=public_id) for part in command))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the audit log could not record this read, so "
                                    "nothing is shown")
    assert result.stdout == ""
    assert not any(name in result.output for name in names)
    with seeded() as session:
        assert session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc())
                              .limit(1)) == head
