"""The access service over a real database: bounded loading, explanations audited, break-glass."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from portal.cli import main
from portal.config import Settings
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.types import utcnow
from portal.devtools.seed import generate_participants, seed_demo
from portal.domain.vocabulary import Action, DataCategory, Purpose
from portal.kernel.errors import Refused
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services

META = RequestMeta(actor="test")


@pytest.fixture
def demo(session_factory: sessionmaker[Session], services: Services) -> sessionmaker[Session]:
    with session_factory.begin() as session:
        seed_demo(session, issuer="http://127.0.0.1:8000/dev-idp", vault=services.vault)
    return session_factory


def _count_queries(engine: Engine) -> list[str]:
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *args: statements.append(statement))
    return statements


def test_context_loads_in_a_fixed_number_of_queries(
        demo: sessionmaker[Session], engine: Engine) -> None:
    with demo.begin() as session:
        p = repo.participant_by_public_id(session, "LP-1001")
        assert p is not None
        # Many more consents must not mean more queries.
        for i in range(30):
            session.add(m.Consent(participant_id=p.id, kind="roi", status="draft",
                                  provisions=[m.ConsentProvision(
                                      effect="permit", disclosers=[f"org:x{i}"],
                                      recipients=["org:y"], categories=["housing"],
                                      purposes=["CAREMGT"])]))
    statements = _count_queries(engine)
    with demo() as session:
        p = repo.participant_by_public_id(session, "LP-1001")
        assert p is not None
        statements.clear()
        context = repo.load_context(session, p.id, user_id=1, at=utcnow())
    assert len(context.consents) >= 33
    # The audit chain's head (read first: the decision's place in commit order), care team,
    # consents, their provisions, recorded events, break-glass grants.
    assert len(statements) == 6, statements
    assert "max(audit_event.seq)" in statements[0].lower()
    assert "consent" in statements[2]


def test_explain_is_audited_and_never_shows_content(
        demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        user = repo.staff_by_email(session, "alex.rivera@hope-housing.example")
        p = repo.participant_by_public_id(session, "LP-1001")
        assert user is not None and p is not None
        explanation = services.access.explain(session, user, p, DataCategory.SUD_TREATMENT,
                                              Purpose.CAREMGT, Action.VIEW, META)
    assert explanation.decision == "deny"
    assert "Opioid" not in explanation.text()
    assert explanation.as_json()["reasons"] == ["no_role_permission"]
    with demo() as session:
        events = session.scalars(select(m.AuditEvent).where(
            m.AuditEvent.action == "decision:explain")).all()
    assert len(events) == 1
    assert events[0].participant_id == p.id
    assert events[0].decision == "deny"
    assert events[0].detail["explained_for"] == "alex.rivera@hope-housing.example"


def test_revocation_takes_effect_on_the_next_decision(
        demo: sessionmaker[Session], services: Services) -> None:
    def housing_for_hope() -> str:
        with demo.begin() as session:
            user = repo.staff_by_email(session, "alex.rivera@hope-housing.example")
            p = repo.participant_by_public_id(session, "LP-1001")
            assert user is not None and p is not None
            e = services.access.explain(session, user, p, DataCategory.PROGRESS,
                                        Purpose.CAREMGT, Action.VIEW, META)
            return next(s.decision.decision for s in e.sources
                        if s.organization == "harbor-lead")

    assert housing_for_hope() == "permit"
    with demo.begin() as session:
        p = repo.participant_by_public_id(session, "LP-1001")
        assert p is not None
        roi = session.scalars(select(m.Consent).where(
            m.Consent.participant_id == p.id, m.Consent.kind == "roi")).first()
        assert roi is not None
        roi.status, roi.revoked_at = "revoked", utcnow()
    assert housing_for_hope() == "deny"


def test_break_glass_rules(demo: sessionmaker[Session], services: Services) -> None:
    with demo.begin() as session:
        clinician = repo.staff_by_email(session, "luis.moreno@eastgate-clinic.example")
        officer = repo.staff_by_email(session, "james.carter@riverton-pd.example")
        p = repo.participant_by_public_id(session, "LP-1003")  # Eastgate not on this team
        assert clinician is not None and officer is not None and p is not None
        with pytest.raises(ValueError, match="nature of the emergency"):
            services.access.grant_break_glass(session, clinician, p, reason="ER visit",
                                              emergency_nature=" ", facility="Eastgate",
                                              minutes=60, meta=META)
        with pytest.raises(ValueError, match="4 hours"):
            services.access.grant_break_glass(session, clinician, p, reason="ER visit",
                                              emergency_nature="overdose", facility="Eastgate",
                                              minutes=241, meta=META)
        grant = services.access.grant_break_glass(
            session, clinician, p, reason="Unresponsive at clinic",
            emergency_nature="suspected opioid overdose", facility="Eastgate clinic",
            minutes=60, meta=META)
        assert grant.review_status == "pending"
        assert grant.expires_at - grant.started_at == timedelta(minutes=60)
    with demo.begin() as session:
        officer = repo.staff_by_email(session, "james.carter@riverton-pd.example")
        p = repo.participant_by_public_id(session, "LP-1003")
        assert officer is not None and p is not None
        with pytest.raises(Refused):
            services.access.grant_break_glass(session, officer, p, reason="x",
                                              emergency_nature="y", facility="z", minutes=30,
                                              meta=META)
    with demo.begin() as session:
        clinician = repo.staff_by_email(session, "luis.moreno@eastgate-clinic.example")
        p = repo.participant_by_public_id(session, "LP-1003")
        assert clinician is not None and p is not None
        e = services.access.explain(session, clinician, p, DataCategory.SUD_TREATMENT,
                                    Purpose.ETREAT, Action.VIEW, META)
        assert e.decision == "permit"
        assert e.as_json()["reasons"] == ["break_glass"]
        assert "notice_part2" in e.as_json()["obligations"]
        actions = list(session.scalars(select(m.AuditEvent.action).order_by(m.AuditEvent.seq)))
        denied = session.scalar(select(func.count()).select_from(m.AuditEvent).where(
            m.AuditEvent.action == "break_glass:grant:create", m.AuditEvent.decision == "deny"))
    assert actions.count("break_glass:grant:create") == 2
    assert denied == 1


def _cli(settings: Settings, *args: str) -> Any:
    env = {"PORTAL_DATABASE_URL": settings.database_url, "PORTAL_DATA_DIR": str(settings.data_dir),
           "PORTAL_DATA_KEY_FILE": str(settings.data_key_file)}
    return CliRunner().invoke(main, list(args), env=env)


def test_explain_and_consents_cli(settings: Settings, demo: sessionmaker[Session]) -> None:
    result = _cli(settings, "access", "explain", "--user", "tom.becker@riverton-probation.example",
                  "--participant", "LP-1001", "--category", "progress", "--purpose", "LEADMON",
                  "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"decision", "reasons", "policy_rule", "consent_id", "obligations"} <= set(data)
    assert data["decision"] == "permit"
    assert "notice_part2" in data["obligations"]

    text = _cli(settings, "access", "explain", "--user", "james.carter@riverton-pd.example",
                "--participant", "LP-1001", "--category", "sud_treatment")
    assert text.exit_code == 0
    assert "No: Riverton Police Department may not see substance use" in text.output
    assert "Golden Rule" in text.output

    bad = _cli(settings, "access", "explain", "--user", "nobody@example", "--participant",
               "LP-1001", "--category", "housing")
    assert bad.exit_code == 2
    assert "no staff user" in bad.output

    listed = _cli(settings, "consents", "list", "--participant", "LP-1003", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert all({"id", "kind", "status", "provisions", "expires", "revocable_after"} <= set(r)
               for r in rows)
    assert "expired" in {r["status"] for r in rows}


def test_bulk_participants_have_decidable_contexts(demo: sessionmaker[Session],
                                                   services: Services) -> None:
    generate_participants(demo, services.vault, 20, seed=3)
    with demo.begin() as session:
        user = repo.staff_by_email(session, "maria.lopez@harbor-lead.example")
        assert user is not None
        for p in session.scalars(select(m.Participant).where(
                m.Participant.public_id.not_like("LP-10%"))).all():
            e = services.access.explain(session, user, p, DataCategory.CONTACT,
                                        Purpose.CAREMGT, Action.VIEW, META)
            assert e.decision == "permit"
