"""Shared helpers for the service-level tests (tests/integration/<area>/test_services.py):
the seeded demo, staff and participants by name, the audit events a call appended, and row
counts to show that refused or invalid input changed nothing.

The use-case functions are called directly with a database session, as the web layer calls
them (`portal.web.deps.found_or`): NotFound and Refused commit (the refused attempt is
audited), anything else rolls back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from portal.db import models as m
from portal.db import repositories as repo
from portal.db.audit_chain import DEFAULT_CHAIN, AuditWriteError
from portal.devtools.seed import seed_demo
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services

ISSUER = "http://127.0.0.1:8000/dev-idp"
META = RequestMeta(actor="test", session_id="session-1", client_address="203.0.113.7",
                   request_id="request-1")

MARIA = "maria.lopez@harbor-lead.example"  # case manager, Harbor (case management)
DEV = "dev.patel@harbor-lead.example"  # case manager, Harbor
OLIVIA = "olivia.chen@harbor-lead.example"  # org admin, Harbor
RENEE = "renee.walsh@harbor-lead.example"  # compliance officer, Harbor
SAM = "sam.okafor@cedar-recovery.example"  # counselor, Part 2 program
GRACE = "grace.kim@northside-bh.example"  # clinician, mental health
LUIS = "luis.moreno@eastgate-clinic.example"  # clinician, health clinic
ALEX = "alex.rivera@hope-housing.example"  # housing navigator
JAMES = "james.carter@riverton-pd.example"  # police officer
PRIYA = "priya.shah@riverton-pa.example"  # prosecutor
TOM = "tom.becker@riverton-probation.example"  # probation officer
LINDA = "linda.nguyen@riverton-court.example"  # court liaison
NADIA = "nadia.okonkwo@riverton-defender.example"  # defender


@pytest.fixture
def demo(session_factory: sessionmaker[Session], services: Services) -> sessionmaker[Session]:
    """The demo site (portal.devtools.seed), committed; returns the session factory."""
    with session_factory.begin() as session:
        seed_demo(session, issuer=ISSUER, vault=services.vault)
    return session_factory


def staff(session: Session, email: str) -> m.StaffUser:
    user = repo.staff_by_email(session, email)
    assert user is not None, email
    return user


def person(session: Session, public_id: str) -> m.Participant:
    participant = repo.participant_by_public_id(session, public_id)
    assert participant is not None, public_id
    return participant


def org(session: Session, slug: str) -> m.Organization:
    return session.scalars(select(m.Organization).where(m.Organization.slug == slug)).one()


def head(session: Session) -> int:
    """The last audit sequence number (0 when the log is empty)."""
    return session.scalar(select(func.coalesce(func.max(m.AuditEvent.seq), 0))) or 0


def events_since(session: Session, seq: int) -> list[m.AuditEvent]:
    session.flush()
    return list(session.scalars(select(m.AuditEvent).where(m.AuditEvent.seq > seq)
                                .order_by(m.AuditEvent.seq)))


COUNTED = (m.Participant, m.CareTeamMember, m.Record, m.Goal, m.GoalUpdate, m.Consent,
           m.ConsentProvision, m.ConsentDocument, m.Referral, m.ParticipantEvent,
           m.ParticipantCredential, m.AuditEvent)


def counts(session: Session) -> dict[str, int]:
    """Rows per table: compared before and after, shows that nothing was written."""
    session.flush()
    return {model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in COUNTED}


@contextmanager
def unchanged(session: Session) -> Iterator[None]:
    """The block (which raises, caught by the caller) leaves every counted table as it was,
    including what the session would flush."""
    before = counts(session)
    yield
    assert not session.new and not session.dirty and not session.deleted
    assert counts(session) == before


def assert_staff_event(event: m.AuditEvent, action: str, user: m.StaffUser, *,
                       participant_id: uuid.UUID | None = None, decision: str | None = None,
                       reasons: list[str] | None = None) -> None:
    """The event names the action, the staff actor and the request it came from."""
    assert event.action == action
    assert event.actor == user.email and event.actor_user_id == user.id
    assert event.actor_organization == user.organization.slug
    assert event.actor_roles == list(user.role_names)
    assert (event.session_id, event.client_address, event.request_id) == (
        META.session_id, META.client_address, META.request_id)
    if participant_id is not None:
        assert event.participant_id == participant_id
    if decision is not None:
        assert event.decision == decision
    if reasons is not None:
        assert event.reasons == reasons


def fail_audit_on(monkeypatch: pytest.MonkeyPatch, services: Services, action: str) -> None:
    """The audit log refuses any batch holding an event of ``action`` (a full disk, say):
    the use case must fail and its transaction roll back, so that nothing it changed stays."""
    real = services.audit.append_many

    def append_many(session: Session, events: Any, chain: str = DEFAULT_CHAIN,
                    **options: Any) -> Any:
        if any(e.action == action for e in events):
            raise AuditWriteError(f"could not write the audit event ({action}, injected)")
        return real(session, events, chain, **options)

    monkeypatch.setattr(services.audit, "append_many", append_many)
