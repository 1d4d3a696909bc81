"""Who may use the compliance console, and who the audit log records as reading it.

Compliance officers see event metadata (who, when, which kind of access, which category, the
decision and its reasons), never record contents: nothing here opens a record or a name. Every
read of the log is itself an audit event (45 CFR 164.312(b)), appended as the last statement of
the read's transaction, so that nothing is shown unless the read was recorded (fail closed)."""

from __future__ import annotations

from datetime import timedelta

from portal.db import models as m
from portal.db.audit_chain import Requester
from portal.domain.audit import (
    AuditAction,
)
from portal.domain.permissions import Permission
from portal.kernel.access import RequestMeta, user_may
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
