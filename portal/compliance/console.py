"""Who may use the compliance console, and who the audit log records as reading it.

Compliance officers see event metadata (who, when, which kind of access, which category, the
decision and its reasons), never record contents: nothing here opens a record or a name. Every
read of the log is itself an audit event (45 CFR 164.312(b)), appended as the last statement of
the read's transaction, so that nothing is shown unless the read was recorded (fail closed)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from portal.db import models as m
from portal.db.audit_chain import AuditLog
from portal.domain.audit import (
    AuditAction,
    NewAuditEvent,
)
from portal.domain.permissions import Permission
from portal.kernel.access import user_may
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services

PAGE_SIZE = 50
REVIEW_QUEUE_LIMIT = 100
NOTES_MAX = 2000
# Oversight defaults: the period charted, and what counts as unusual.
OVERSIGHT_DAYS = 14
# Distinct participants outside the user's caseload (emergency access, or refused because
# their agency does not work with them) that one user opened in one day.
MANY_PARTICIPANTS = 3
DENIAL_BURST = 10  # denials of one user ...
DENIAL_BURST_WINDOW = timedelta(hours=1)  # ... within this long
ODD_HOURS = (22, 6)  # record views from 22:00 to 06:00, the program's local time

RECORD_VIEW = AuditAction.RECORD_VIEW.value
BREAK_GLASS_CREATE = AuditAction.BREAK_GLASS_GRANT_CREATE.value


# --- who may use the console ----------------------------------------------------------------


def may_review(services: Services, user: m.StaffUser) -> bool:
    """The role policy lets this user view the audit log for healthcare operations."""
    return user_may(services.policy, user, Permission.AUDIT_LOG_VIEW)


def may_export(services: Services, user: m.StaffUser) -> bool:
    """The role policy lets this user export from the audit log (disclosure downloads)."""
    return user_may(services.policy, user, Permission.AUDIT_LOG_EXPORT)


def requester(user: m.StaffUser, meta: RequestMeta) -> Requester:
    return Requester(actor=user.email, actor_user_id=user.id,
                     actor_organization=user.organization.slug,
                     actor_roles=tuple(user.role_names), session_id=meta.session_id,
                     client_address=meta.client_address, request_id=meta.request_id)


@dataclass(frozen=True, slots=True)
class Requester:
    """Who is reading the audit log, copied into the event that records the read."""

    actor: str
    actor_user_id: int | None = None
    actor_organization: str | None = None
    actor_roles: tuple[str, ...] = ()
    session_id: str | None = None
    client_address: str | None = None
    request_id: str | None = None

    def event(self, action: AuditAction, *, participant_id: uuid.UUID | None = None,
              detail: Mapping[str, Any] | None = None) -> NewAuditEvent:
        return NewAuditEvent(
            action=action, actor=self.actor, actor_user_id=self.actor_user_id,
            actor_organization=self.actor_organization, actor_roles=self.actor_roles,
            session_id=self.session_id, client_address=self.client_address,
            request_id=self.request_id, participant_id=participant_id, purpose="HOPERAT",
            decision="permit", detail=dict(detail or {}))


def record_read(factory: sessionmaker[Session], log: AuditLog, requester: Requester,
                action: AuditAction, *, participant_id: uuid.UUID | None = None,
                detail: Mapping[str, Any] | None = None) -> None:
    """Audit a read of the log itself, committed before anything is shown (fail closed).

    Large reads log in their own short transaction rather than around the whole read: on
    PostgreSQL the append holds the chain lock until commit, which would stall every access.
    """
    with factory.begin() as session:
        log.append(session, requester.event(action, participant_id=participant_id,
                                            detail=detail))
