"""Server-side sessions: a random token in an HttpOnly cookie, its SHA-256 as the row id.

Idle and absolute timeouts are enforced on every request; a sign-in always starts a new session
(the id rotates), and sign-out deletes the row.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from litestar import Request, Response
from litestar.datastructures import Cookie
from sqlalchemy import delete
from sqlalchemy.orm import Session

from portal.auth.service import token_hash
from portal.config import Settings
from portal.db import models as m
from portal.db.audit_chain import AuditLog
from portal.db.types import utcnow
from portal.domain.audit import AuditAction, NewAuditEvent

TOUCH_EVERY = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is signed in on this request."""

    session_id: str
    staff: m.StaffUser | None = None
    participant: m.Participant | None = None

    @property
    def label(self) -> str:
        if self.staff is not None:
            return self.staff.email
        assert self.participant is not None
        return self.participant.public_id


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """A session found ended on this request: whose it was, and why."""

    staff_user_id: int | None
    reason: str  # idle_timeout, absolute_timeout, suspended


COOKIE_GRACE = timedelta(hours=1)


class SessionManager:
    def __init__(self, settings: Settings, audit: AuditLog) -> None:
        self.secure = settings.base_url.startswith("https://")
        # __Host- cookies must be Secure; plain-http development on loopback uses a plain name.
        self.cookie_name = "__Host-portal_session" if self.secure else "portal_session"
        self.idle = timedelta(minutes=settings.session_idle_minutes)
        self.absolute = timedelta(hours=settings.session_absolute_hours)
        self.audit = audit

    def start(self, db: Session, *, staff_user_id: int | None = None,
              participant_id: uuid.UUID | None = None, provider_id: str | None = None,
              id_token: str | None = None, client_address: str | None = None,
              previous_token: str | None = None) -> str:
        """A new session; the previous one (if any) ends, so the id always rotates at sign-in."""
        if previous_token:
            db.execute(delete(m.WebSession).where(m.WebSession.id == token_hash(previous_token)))
        token = secrets.token_urlsafe(32)
        now = utcnow()
        db.add(m.WebSession(id=token_hash(token), staff_user_id=staff_user_id,
                            participant_id=participant_id, csrf_token=secrets.token_hex(16),
                            provider_id=provider_id, id_token_hint=id_token,
                            client_address=client_address, created_at=now, last_seen_at=now,
                            expires_at=now + self.absolute))
        return token

    def resolve(self, db: Session, token: str | None, *,
                client_address: str | None = None,
                ended: list[SessionEnded] | None = None) -> Principal | None:
        """The signed-in principal, or None; an expired session is deleted and audited (and,
        when ``ended`` is given, described there: the sign-in page says why it is shown)."""
        if not token:
            return None
        row = db.get(m.WebSession, token_hash(token))
        if row is None:
            return None
        now = utcnow()
        if row.ended_at is not None:
            # Ended earlier (audited then): still told how, while its cookie may arrive.
            if now - row.ended_at >= COOKIE_GRACE:
                db.delete(row)
            elif ended is not None and row.ended_reason:
                ended.append(SessionEnded(staff_user_id=row.staff_user_id,
                                          reason=row.ended_reason))
            return None
        reason = ("absolute_timeout" if now >= row.expires_at
                  else "idle_timeout" if now - row.last_seen_at >= self.idle else None)
        staff = db.get(m.StaffUser, row.staff_user_id) if row.staff_user_id else None
        if reason is None and staff is not None and staff.status != "active":
            reason = "suspended"
        if reason is not None:
            self.audit.append(db, NewAuditEvent(
                action=AuditAction.AUTH_SESSION_EXPIRED,
                actor=staff.email if staff else str(row.participant_id or ""),
                actor_user_id=row.staff_user_id, participant_id=row.participant_id,
                session_id=row.id[:16], client_address=client_address, reasons=(reason,)))
            if reason == "suspended":
                db.delete(row)
            else:
                row.ended_at, row.ended_reason = now, reason
            if ended is not None:
                ended.append(SessionEnded(staff_user_id=row.staff_user_id, reason=reason))
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            row.last_seen_at = now
        participant = db.get(m.Participant, row.participant_id) if row.participant_id else None
        return Principal(session_id=row.id, staff=staff, participant=participant)

    def end(self, db: Session, token: str | None) -> m.WebSession | None:
        if not token:
            return None
        row = db.get(m.WebSession, token_hash(token))
        if row is not None:
            db.delete(row)
        return row

    def set_cookie(self, response: Response[Any], token: str) -> None:
        # The browser keeps the cookie an hour past the absolute timeout (the server refuses
        # the session from then on): a form posted just after it ended still carries the
        # session its CSRF token is bound to, so it is kept for re-sign-in, not refused.
        response.set_cookie(Cookie(key=self.cookie_name, value=token, path="/", httponly=True,
                                   secure=self.secure, samesite="lax",
                                   max_age=int((self.absolute + COOKIE_GRACE).total_seconds())))

    def clear_cookie(self, response: Response[Any]) -> None:
        response.delete_cookie(self.cookie_name, path="/")

    def token(self, request: Request[Any, Any, Any]) -> str | None:
        return request.cookies.get(self.cookie_name)


def session_label(principal: Principal | None) -> str | None:
    return principal.session_id[:16] if principal else None


def client_address(request: Request[Any, Any, Any]) -> str | None:
    return request.client.host if request.client else None


