"""Organization administration as a service: the staff list, suspension and reinstatement
(every attempt audited, refusals included), and data key rotation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from portal.admin import keys, service
from portal.auth.sessions import SessionManager
from portal.db import models as m
from portal.db import repositories as repo
from portal.kernel.errors import InvalidInput, NotFound, Refused
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services

OLIVIA = "olivia.chen@harbor-lead.example"  # org admin of Harbor LEAD
MARIA = "maria.lopez@harbor-lead.example"  # case manager at Harbor LEAD
DEV = "dev.patel@harbor-lead.example"
ALEX = "alex.rivera@hope-housing.example"  # another organization
META = RequestMeta(actor="test", session_id="sess-admin", client_address="10.0.0.9",
                   request_id="req-admin")


@contextmanager
def as_staff(factory: sessionmaker[Session], email: str) -> Iterator[tuple[Session,
                                                                            m.StaffUser]]:
    with factory.begin() as session:
        user = repo.staff_by_email(session, email)
        assert user is not None
        yield session, user


def _id(factory: sessionmaker[Session], email: str) -> int:
    with factory() as session:
        user = repo.staff_by_email(session, email)
        assert user is not None
        return user.id


def _events(factory: sessionmaker[Session], action: str) -> list[m.AuditEvent]:
    with factory() as session:
        return list(session.scalars(select(m.AuditEvent).where(m.AuditEvent.action == action)
                                    .order_by(m.AuditEvent.seq)))


def _sessions_of(factory: sessionmaker[Session], user_id: int) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(m.WebSession).where(
            m.WebSession.staff_user_id == user_id)) or 0


def _sign_in(factory: sessionmaker[Session], services: Services, user_id: int) -> str:
    with factory.begin() as session:
        return SessionManager(services.settings, services.audit).start(
            session, staff_user_id=user_id)


def _status(factory: sessionmaker[Session], user_id: int) -> str:
    with factory() as session:
        user = session.get(m.StaffUser, user_id)
        assert user is not None
        return user.status


# --- the staff list ---------------------------------------------------------------------------


def test_the_staff_list_is_the_admins_own_organization(demo: sessionmaker[Session],
                                                       services: Services) -> None:
    with as_staff(demo, OLIVIA) as (session, olivia):
        staff = service.staff_list(session, services, olivia)
        assert service.is_org_admin(services, olivia)
    assert staff.organization == "Harbor LEAD Case Management"
    assert [r.name for r in staff.rows] == ["Dev Patel", "Maria Lopez", "Olivia Chen",
                                            "Renee Walsh"]
    olivia_row = staff.row(_id(demo, OLIVIA))
    assert olivia_row is not None and olivia_row.is_self and not olivia_row.suspended
    maria_row = staff.row(_id(demo, MARIA))
    assert maria_row is not None and not maria_row.is_self
    assert maria_row.roles == ("case manager",)
    assert maria_row.email == MARIA and maria_row.status == "active"
    assert staff.row(_id(demo, ALEX)) is None


def test_role_labels_are_plain_language() -> None:
    assert service._role_label("org_admin") == "organization administrator"
    # The database only holds known roles; anything else is at least readable.
    assert service._role_label("volunteer_driver") == "volunteer driver"


def test_only_org_admins_see_the_staff_list(demo: sessionmaker[Session],
                                            services: Services) -> None:
    with as_staff(demo, MARIA) as (session, maria):
        assert not service.is_org_admin(services, maria)
        with pytest.raises(Refused, match="administrators"):
            service.staff_list(session, services, maria)


# --- suspension --------------------------------------------------------------------------------


def test_suspension_ends_every_session_and_is_audited(demo: sessionmaker[Session],
                                                      services: Services) -> None:
    maria_id = _id(demo, MARIA)
    tokens = [_sign_in(demo, services, maria_id) for _ in range(2)]
    dev_token = _sign_in(demo, services, _id(demo, DEV))

    with as_staff(demo, OLIVIA) as (session, olivia):
        change = service.suspend(session, services, olivia, maria_id, META)
    assert change == service.StatusChange(maria_id, "Maria Lopez", "suspended", True, 2)
    assert _status(demo, maria_id) == "suspended" and _sessions_of(demo, maria_id) == 0
    manager = SessionManager(services.settings, services.audit)
    with demo.begin() as session:
        assert all(manager.resolve(session, t) is None for t in tokens)
        assert manager.resolve(session, dev_token) is not None  # others keep theirs
    (event,) = _events(demo, "staff:suspend")
    assert (event.actor, event.actor_organization, event.decision, event.reasons,
            event.session_id, event.client_address) == (
        OLIVIA, "harbor-lead", "permit", ["org_admin"], "sess-admin", "10.0.0.9")
    assert event.detail == {"target_user_id": maria_id, "target_email": MARIA,
                            "before": "active", "after": "suspended", "sessions_ended": 2}

    # Again: nothing to change, nothing written.
    with as_staff(demo, OLIVIA) as (session, olivia):
        again = service.suspend(session, services, olivia, maria_id, META)
    assert (again.changed, again.sessions_ended, again.status) == (False, 0, "suspended")
    assert len(_events(demo, "staff:suspend")) == 1

    # A session that appeared meanwhile (written directly) is still ended, and audited.
    _sign_in(demo, services, maria_id)
    with as_staff(demo, OLIVIA) as (session, olivia):
        late = service.suspend(session, services, olivia, maria_id, META)
    assert (late.changed, late.sessions_ended) == (False, 1)
    assert _events(demo, "staff:suspend")[-1].detail["sessions_ended"] == 1

    with as_staff(demo, OLIVIA) as (session, olivia):
        listed = service.staff_list(session, services, olivia).row(maria_id)
    assert listed is not None and listed.suspended


def test_reinstatement_lifts_the_suspension(demo: sessionmaker[Session],
                                            services: Services) -> None:
    maria_id = _id(demo, MARIA)
    with as_staff(demo, OLIVIA) as (session, olivia):
        service.suspend(session, services, olivia, maria_id, META)
    with as_staff(demo, OLIVIA) as (session, olivia):
        change = service.reinstate(session, services, olivia, maria_id, META)
    assert (change.status, change.changed, change.sessions_ended) == ("active", True, 0)
    assert _status(demo, maria_id) == "active"
    (event,) = _events(demo, "staff:reinstate")
    assert event.decision == "permit"
    assert event.detail == {"target_user_id": maria_id, "target_email": MARIA,
                            "before": "suspended", "after": "active", "sessions_ended": 0}
    with as_staff(demo, OLIVIA) as (session, olivia):
        unchanged = service.reinstate(session, services, olivia, maria_id, META)
        # An admin's own active account: reinstating it changes nothing either.
        own = service.reinstate(session, services, olivia, olivia.id, META)
    assert not unchanged.changed and not own.changed
    assert len(_events(demo, "staff:reinstate")) == 1


@pytest.mark.parametrize("change", [service.suspend, service.reinstate])
def test_refusals_are_audited_then_raised(demo: sessionmaker[Session], services: Services,
                                          change: object) -> None:
    maria_id, alex_id, olivia_id = _id(demo, MARIA), _id(demo, ALEX), _id(demo, OLIVIA)
    action = "staff:suspend" if change is service.suspend else "staff:reinstate"
    attempts = [(MARIA, _id(demo, DEV), Refused, "not_org_admin"),
                (OLIVIA, alex_id, NotFound, "not_found"),  # another organization's user
                (OLIVIA, 999_999, NotFound, "not_found")]
    for email, target, error, reason in attempts:
        # The refusal is caught inside the transaction, so that its event is committed.
        with as_staff(demo, email) as (session, user), pytest.raises(error):
            change(session, services, user, target, META)  # type: ignore[operator]
        denied = _events(demo, action)[-1]
        assert (denied.actor, denied.decision, denied.reasons) == (email, "deny", [reason])
        assert denied.detail == {"target_user_id": target}
    assert len(_events(demo, action)) == 3
    assert _status(demo, alex_id) == "active" and _status(demo, maria_id) == "active"
    assert _status(demo, olivia_id) == "active"


def test_an_admin_cannot_suspend_themselves(demo: sessionmaker[Session],
                                            services: Services) -> None:
    olivia_id = _id(demo, OLIVIA)
    token = _sign_in(demo, services, olivia_id)
    with (as_staff(demo, OLIVIA) as (session, olivia),
          pytest.raises(InvalidInput, match="cannot suspend your own account")):
        service.suspend(session, services, olivia, olivia_id, META)
    (event,) = _events(demo, "staff:suspend")
    assert (event.decision, event.reasons) == ("deny", ["self"])
    assert event.detail == {"target_user_id": olivia_id, "target_email": OLIVIA}
    assert _status(demo, olivia_id) == "active"
    with demo.begin() as session:
        manager = SessionManager(services.settings, services.audit)
        assert manager.resolve(session, token) is not None


# --- data keys ----------------------------------------------------------------------------------


def test_key_rotation_reencryption_and_retirement(demo: sessionmaker[Session],
                                                  services: Services) -> None:
    vault = services.vault
    with demo.begin() as session:
        before = keys.key_versions(session)
        assert [(k["purpose"], k["retired_at"]) for k in before] == [
            ("field", None), ("blind_index", None)]
        old = next(k["version"] for k in before if k["purpose"] == "field")
        blind = next(k["version"] for k in before if k["purpose"] == "blind_index")
        assert all(k["kek_id"] and k["created_at"] for k in before)
        new = keys.rotate(session, vault)
        assert new == max(k["version"] for k in before) + 1
        assert vault.current_version == new
        waiting = keys.pending(session, vault)
    assert set(waiting) == {model.__tablename__ for model, _ in keys.ENCRYPTED}
    assert waiting["participant"] > 0 and waiting["record"] > 0

    with demo.begin() as session:
        for version, message in ((999, "no data key version 999"),
                                 (blind, f"version {blind} is the blind-index key .* "
                                         f"can be: {old}$"),
                                 (new, "is the current key; rotate first"),
                                 (old, f"still under version {old}")):
            with pytest.raises(keys.KeyRotationError, match=message):
                keys.retire(session, vault, version)

    done: list[int] = []
    total = keys.reencrypt(demo, vault, batch_size=50, progress=done.append)
    assert total == sum(waiting.values()) and sum(done) == total
    assert all(n <= 50 for n in done)
    with demo.begin() as session:
        assert set(keys.pending(session, vault).values()) == {0}
        keys.retire(session, vault, old)
        retired = {k["version"]: k["retired_at"] for k in keys.key_versions(session)}
    assert retired[old] is not None and retired[new] is None
    with demo.begin() as session:
        with pytest.raises(keys.KeyRotationError, match="already retired"):
            keys.retire(session, vault, old)
        # Everything still reads under the new key.
        p = repo.participant_by_public_id(session, "LP-1001")
        assert p is not None and vault.ready(session).open(p, "given_name") == "Marcus"
    assert keys.reencrypt(demo, vault) == 0  # nothing left: no batch, no progress
