"""Fixtures for the compliance service tests: the seeded demo, an audit log with a controlled
clock (for events whose times matter), and helpers to read what the log holds."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Settings
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.audit_chain import AuditLog
from portal.devtools.seed import seed_demo
from portal.domain.audit import NewAuditEvent
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services

RENEE = "renee.walsh@harbor-lead.example"  # compliance officer
MARIA = "maria.lopez@harbor-lead.example"  # case manager
ALEX = "alex.rivera@hope-housing.example"  # housing navigator
LUIS = "luis.moreno@eastgate-clinic.example"  # clinician, not on LP-1003's care team
TOM = "tom.becker@riverton-probation.example"  # probation officer
OLIVIA = "olivia.chen@harbor-lead.example"  # org admin
META = RequestMeta(actor="test", session_id="sess-test", client_address="10.1.2.3",
                   request_id="req-test")
# A fixed past week: times the events of the controlled log are written at.
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


class Clock:
    """A clock the test moves: each reading is ``now``; ``now`` moves only when told."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def demo(session_factory: sessionmaker[Session], services: Services) -> sessionmaker[Session]:
    with session_factory.begin() as session:
        seed_demo(session, issuer="http://127.0.0.1:8000/dev-idp", vault=services.vault)
    return session_factory


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed_log(settings: Settings, clock: Clock) -> AuditLog:
    """The same chain and signing key as services.audit, with the test's clock."""
    return AuditLog(settings, clock=clock)


@dataclass
class Demo:
    """The seeded demo as the tests use it: sessions, services, and lookups by name."""

    factory: sessionmaker[Session]
    services: Services
    log: AuditLog
    clock: Clock

    @contextmanager
    def as_staff(self, email: str) -> Iterator[tuple[Session, m.StaffUser]]:
        """A transaction, and the staff user loaded in it."""
        with self.factory.begin() as session:
            user = repo.staff_by_email(session, email)
            assert user is not None, email
            yield session, user

    def detached(self, email: str) -> m.StaffUser:
        """The staff user, loaded and then detached: for use cases that open their own
        sessions (no transaction is held meanwhile: SQLite's are BEGIN IMMEDIATE)."""
        with self.factory() as session:
            user = repo.staff_by_email(session, email)
            assert user is not None, email
            _ = user.organization.slug, user.role_names
            session.expunge_all()
        return user

    def user_id(self, email: str) -> int:
        with self.factory() as session:
            user = repo.staff_by_email(session, email)
            assert user is not None
            return user.id

    def participant_id(self, public_id: str) -> uuid.UUID:
        with self.factory() as session:
            p = repo.participant_by_public_id(session, public_id)
            assert p is not None
            return p.id

    def append(self, event: NewAuditEvent, *, at: datetime | None = None,
               chain: str = "main") -> int:
        """Write ``event`` at ``at`` (the clock's time otherwise); returns its seq."""
        if at is not None:
            self.clock.now = at
        with self.factory.begin() as session:
            return self.log.append(session, event, chain).seq

    def events(self, action: str | None = None, **where: Any) -> list[m.AuditEvent]:
        with self.factory() as session:
            stmt = select(m.AuditEvent).order_by(m.AuditEvent.chain, m.AuditEvent.seq)
            if action is not None:
                stmt = stmt.where(m.AuditEvent.action == action)
            for name, value in where.items():
                stmt = stmt.where(getattr(m.AuditEvent, name) == value)
            return list(session.scalars(stmt))

    def count(self) -> int:
        return len(self.events())


@pytest.fixture
def world(demo: sessionmaker[Session], services: Services, timed_log: AuditLog,
          clock: Clock) -> Demo:
    return Demo(demo, services, timed_log, clock)


def staff_view(email: str, org: str, roles: tuple[str, ...], user_id: int,
               participant_id: uuid.UUID | None, **changes: Any) -> NewAuditEvent:
    """A permitted record view by a staff user, as the workspace writes it."""
    values: dict[str, Any] = {
        "action": "record:view", "actor": email, "actor_user_id": user_id,
        "actor_organization": org, "actor_roles": roles, "participant_id": participant_id,
        "category": "housing", "record_ids": (str(uuid.uuid4()),), "purpose": "CAREMGT",
        "decision": "permit", "reasons": ("consent",), "consent_ids": ("consent-1",),
        "detail": {"disclosers": ["harbor-lead"]}}
    values.update(changes)
    return NewAuditEvent(**values)


Viewer = Callable[..., NewAuditEvent]


@pytest.fixture
def alex_view(world: Demo) -> Viewer:
    """A record view by Alex (Hope Housing), about LP-1001 unless told otherwise."""
    alex_id = world.user_id(ALEX)
    lp1001 = world.participant_id("LP-1001")

    def make(**changes: Any) -> NewAuditEvent:
        changes.setdefault("participant_id", lp1001)
        return staff_view(ALEX, "hope-housing", ("housing_navigator",), alex_id, **changes)

    return make


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
