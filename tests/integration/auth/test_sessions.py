"""Server-side sessions: start (the id rotates), resolve (idle and absolute timeouts, a
suspended account; each expiry audited), end, and the cookie."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from litestar import Response
from litestar.testing import RequestFactory
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from portal.auth import sessions
from portal.auth.service import token_hash
from portal.auth.sessions import Principal, SessionManager
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.types import utcnow
from portal.kernel.wiring import Services

MARIA = "maria.lopez@harbor-lead.example"


def _manager(services: Services, **changes: object) -> SessionManager:
    return SessionManager(replace(services.settings, **changes), services.audit)  # type: ignore[arg-type]


def _maria(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        user = repo.staff_by_email(session, MARIA)
        assert user is not None
        return user.id


def _row(factory: sessionmaker[Session], token: str) -> m.WebSession | None:
    with factory() as session:
        return session.get(m.WebSession, token_hash(token))


def _expired(factory: sessionmaker[Session]) -> list[m.AuditEvent]:
    with factory() as session:
        return list(session.scalars(select(m.AuditEvent).where(
            m.AuditEvent.action == "auth:session:expired").order_by(m.AuditEvent.seq)))


def _age(factory: sessionmaker[Session], token: str, *, seen: timedelta = timedelta(),
         expires: timedelta | None = None) -> None:
    with factory.begin() as session:
        row = session.get(m.WebSession, token_hash(token))
        assert row is not None
        row.last_seen_at = utcnow() - seen
        if expires is not None:
            row.expires_at = utcnow() - expires


def test_start_resolve_and_end(demo: sessionmaker[Session], services: Services) -> None:
    manager = _manager(services)
    maria_id = _maria(demo)
    with demo.begin() as session:
        token = manager.start(session, staff_user_id=maria_id, provider_id="dev",
                              id_token="id.token.hint", client_address="10.0.0.1")
    row = _row(demo, token)
    assert row is not None and row.id != token and row.id == token_hash(token)
    assert (row.staff_user_id, row.provider_id, row.id_token_hint, row.client_address) == (
        maria_id, "dev", "id.token.hint", "10.0.0.1")
    assert len(row.csrf_token) == 32
    assert row.expires_at - row.created_at == timedelta(hours=services.settings
                                                        .session_absolute_hours)
    with demo.begin() as session:
        principal = manager.resolve(session, token)
        assert principal is not None and principal.staff is not None
        assert principal.label == MARIA and principal.participant is None
        assert sessions.session_label(principal) == row.id[:16]
    assert sessions.session_label(None) is None

    # A new sign-in ends the previous session: the id always rotates.
    with demo.begin() as session:
        rotated = manager.start(session, staff_user_id=maria_id, previous_token=token)
    assert _row(demo, token) is None and _row(demo, rotated) is not None
    with demo.begin() as session:
        assert manager.resolve(session, token) is None
        assert manager.resolve(session, None) is None and manager.resolve(session, "") is None
        ended = manager.end(session, rotated)
        assert ended is not None and ended.staff_user_id == maria_id
    assert _row(demo, rotated) is None
    with demo.begin() as session:
        assert manager.end(session, rotated) is None and manager.end(session, None) is None
    assert _expired(demo) == []  # ended, not expired


def test_a_participant_session(demo: sessionmaker[Session], services: Services) -> None:
    manager = _manager(services)
    with demo.begin() as session:
        p = repo.participant_by_public_id(session, "LP-1001")
        assert p is not None
        token = manager.start(session, participant_id=p.id)
    with demo.begin() as session:
        principal = manager.resolve(session, token)
        assert principal is not None and principal.staff is None
        assert principal.participant is not None and principal.label == "LP-1001"


def test_timeouts_and_suspension_end_the_session_and_are_audited(
        demo: sessionmaker[Session], services: Services) -> None:
    manager = _manager(services, session_idle_minutes=20, session_absolute_hours=8)
    maria_id = _maria(demo)

    def start() -> str:
        with demo.begin() as session:
            return manager.start(session, staff_user_id=maria_id)

    idle, absolute, fine = start(), start(), start()
    _age(demo, idle, seen=timedelta(minutes=20))
    _age(demo, absolute, expires=timedelta(seconds=1))
    _age(demo, fine, seen=timedelta(minutes=19))
    with demo.begin() as session:
        assert manager.resolve(session, idle, client_address="10.0.0.2") is None
        assert manager.resolve(session, absolute) is None
        assert manager.resolve(session, fine) is not None
    # Timed out: kept, ended, for the hour the cookie may still arrive (so every request in
    # it is told how it ended), and then deleted; it never signs anyone in again.
    for token, reason in ((idle, "idle_timeout"), (absolute, "absolute_timeout")):
        row = _row(demo, token)
        assert row is not None and row.ended_reason == reason and row.ended_at is not None
        told: list[sessions.SessionEnded] = []
        with demo.begin() as session:
            assert manager.resolve(session, token, ended=told) is None
        assert [(e.staff_user_id, e.reason) for e in told] == [(maria_id, reason)]
    with demo.begin() as session:
        session.get(m.WebSession, token_hash(idle)).ended_at -= sessions.COOKIE_GRACE  # type: ignore[union-attr]
    with demo.begin() as session:
        assert manager.resolve(session, idle) is None
    assert _row(demo, idle) is None
    # Seen again: the idle clock restarts (touched at most every 30 seconds).
    touched = _row(demo, fine)
    assert touched is not None and utcnow() - touched.last_seen_at < timedelta(minutes=1)

    with demo.begin() as session:
        user = session.get(m.StaffUser, maria_id)
        assert user is not None
        user.status = "suspended"
    with demo.begin() as session:
        assert manager.resolve(session, fine) is None
    events = _expired(demo)
    assert [e.reasons for e in events] == [["idle_timeout"], ["absolute_timeout"],
                                           ["suspended"]]
    assert all(e.actor == MARIA and e.actor_user_id == maria_id for e in events)
    assert events[0].client_address == "10.0.0.2"
    assert events[0].session_id == token_hash(idle)[:16]
    with demo() as session:  # the suspended one is gone at once; the ended one is kept
        assert session.scalar(select(func.count()).select_from(m.WebSession)) == 1


def test_an_expired_participant_session_names_the_participant(
        demo: sessionmaker[Session], services: Services) -> None:
    manager = _manager(services)
    with demo.begin() as session:
        p = repo.participant_by_public_id(session, "LP-1002")
        assert p is not None
        token = manager.start(session, participant_id=p.id)
    _age(demo, token, expires=timedelta(seconds=1))
    with demo.begin() as session:
        assert manager.resolve(session, token) is None
    (event,) = _expired(demo)
    assert (event.actor, event.participant_id, event.actor_user_id) == (str(p.id), p.id, None)


def test_the_cookie(services: Services) -> None:
    plain = _manager(services, base_url="http://127.0.0.1:8000")
    secure = _manager(services, base_url="https://portal.example")
    assert (plain.cookie_name, plain.secure) == ("portal_session", False)
    assert (secure.cookie_name, secure.secure) == ("__Host-portal_session", True)
    response: Response[str] = Response("x")
    secure.set_cookie(response, "tok")
    (cookie,) = response.cookies
    assert (cookie.key, cookie.value, cookie.path, cookie.httponly, cookie.secure,
            cookie.samesite, cookie.max_age) == (
        "__Host-portal_session", "tok", "/", True, True, "lax",
        (services.settings.session_absolute_hours + 1) * 3600)
    cleared: Response[str] = Response("x")
    plain.clear_cookie(cleared)
    (gone,) = cleared.cookies
    assert gone.key == "portal_session" and gone.max_age == 0

    request = RequestFactory().get("/", headers={"cookie": "portal_session=abc"})
    assert plain.token(request) == "abc" and secure.token(request) is None
    assert sessions.client_address(request) == "test.org"


def test_a_principal_without_anyone_has_no_label() -> None:
    with pytest.raises(AssertionError):
        _ = Principal(session_id="s").label
