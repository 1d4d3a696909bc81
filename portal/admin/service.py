"""Organization administration: an org admin lists their own organization's staff and suspends
or reinstates them locally.

Roles are not edited here: they come from the agency's identity provider groups through
policies/role_mapping.csv and are refreshed at every sign-in (services.auth.sign_in_staff).
Suspension is the portal's own lock: sign-in is refused while it lasts (sign_in_staff) and every
session of the user is deleted in the same transaction that suspends them, so all of them end
at once (the session manager also treats a non-active status as expired).

Every attempted change is audited, permitted or refused (CJIS: permission changes and access
attempts). A refused attempt writes its event and then raises; the caller catches the exception
inside its transaction so that the event is committed, and answers with the error afterwards.
A staff user of another organization is indistinguishable from an unknown id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal.db import models as m
from portal.domain.audit import AuditAction, NewAuditEvent
from portal.domain.explain import ROLE_LABELS
from portal.domain.permissions import Permission
from portal.domain.vocabulary import Role, StaffStatus
from portal.kernel.access import user_may
from portal.kernel.errors import InvalidInput, NotFound, Refused
from portal.kernel.events import staff_event
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services


@dataclass(frozen=True, slots=True)
class StaffRow:
    id: int
    name: str
    email: str
    roles: tuple[str, ...]  # plain-language labels, as mapped from the identity provider
    last_login_at: datetime | None
    status: str
    is_self: bool

    @property
    def suspended(self) -> bool:
        return self.status == StaffStatus.SUSPENDED.value


@dataclass(frozen=True, slots=True)
class StaffList:
    organization: str
    rows: list[StaffRow]

    def row(self, user_id: int) -> StaffRow | None:
        return next((r for r in self.rows if r.id == user_id), None)


@dataclass(frozen=True, slots=True)
class StatusChange:
    user_id: int
    name: str
    status: str
    changed: bool  # False: the user already had that status (nothing written)
    sessions_ended: int


def is_org_admin(services: Services, user: m.StaffUser) -> bool:
    return user_may(services.policy, user, Permission.STAFF_MANAGE)


def _role_label(role: str) -> str:
    try:
        return ROLE_LABELS.get(Role(role), role.replace("_", " "))
    except ValueError:
        return role.replace("_", " ")


def staff_list(session: Session, services: Services, admin: m.StaffUser) -> StaffList:
    """The staff of the administrator's own organization, by name."""
    if not is_org_admin(services, admin):
        raise Refused("Only your organization's administrators can manage staff.")
    users = session.scalars(select(m.StaffUser)
                            .where(m.StaffUser.organization_id == admin.organization_id)
                            .order_by(m.StaffUser.display_name, m.StaffUser.id))
    rows = [StaffRow(u.id, u.display_name, u.email, tuple(_role_label(r) for r in u.role_names),
                     u.last_login_at, u.status, u.id == admin.id) for u in users]
    return StaffList(admin.organization.name, rows)


# staff_user.id is a 32-bit integer on every database; a path number outside it names nobody
# (and must not reach the database, where it would overflow).
MAX_STAFF_ID = 2**31 - 1


def staff_member(session: Session, services: Services, admin: m.StaffUser,
                 user_id: int) -> StaffRow:
    """One person of the administrator's organization (for the confirmation page); NotFound
    for anyone else, as for an unknown or impossible id."""
    if not is_org_admin(services, admin):
        raise Refused("Only your organization's administrators can manage staff.")
    if not 1 <= user_id <= MAX_STAFF_ID:
        raise NotFound(user_id)
    target = session.scalar(select(m.StaffUser).where(
        m.StaffUser.id == user_id, m.StaffUser.organization_id == admin.organization_id))
    if target is None:
        raise NotFound(user_id)
    return StaffRow(target.id, target.display_name, target.email,
                    tuple(_role_label(r) for r in target.role_names), target.last_login_at,
                    target.status, target.id == admin.id)


def suspend(session: Session, services: Services, admin: m.StaffUser, user_id: int,
            meta: RequestMeta) -> StatusChange:
    """Suspend a staff user of the administrator's organization and end all their sessions."""
    return _change(session, services, admin, user_id, StaffStatus.SUSPENDED, meta)


def reinstate(session: Session, services: Services, admin: m.StaffUser, user_id: int,
              meta: RequestMeta) -> StatusChange:
    """Lift a suspension: the user can sign in again (no session is restored)."""
    return _change(session, services, admin, user_id, StaffStatus.ACTIVE, meta)


def _event(action: AuditAction, admin: m.StaffUser, meta: RequestMeta, *, decision: str,
           reasons: tuple[str, ...], detail: dict[str, object]) -> NewAuditEvent:
    return staff_event(action, admin, meta,
                       decision="permit" if decision == "permit" else "deny",
                       reasons=reasons, detail=detail)


def _change(session: Session, services: Services, admin: m.StaffUser, user_id: int,
            to: StaffStatus, meta: RequestMeta) -> StatusChange:
    audit = services.audit
    action = (AuditAction.STAFF_SUSPEND if to is StaffStatus.SUSPENDED
              else AuditAction.STAFF_REINSTATE)

    in_range = 1 <= user_id <= MAX_STAFF_ID
    # An impossible number is kept as text (JSON numbers are portable only up to 2**53).
    target_ref: object = user_id if in_range else str(user_id)[:40]

    def refuse(reason: str, error: Exception, **detail: object) -> Exception:
        audit.append(session, _event(action, admin, meta, decision="deny", reasons=(reason,),
                                     detail={"target_user_id": target_ref, **detail}))
        return error

    if not is_org_admin(services, admin):
        raise refuse("not_org_admin", Refused(
            "Only your organization's administrators can manage staff."))
    if not in_range:
        raise refuse("not_found", NotFound(user_id))
    # Locked for the change (PostgreSQL; SQLite transactions here are BEGIN IMMEDIATE).
    target = session.scalar(select(m.StaffUser)
                            .where(m.StaffUser.id == user_id,
                                   m.StaffUser.organization_id == admin.organization_id)
                            .with_for_update(of=m.StaffUser))
    if target is None:
        raise refuse("not_found", NotFound(user_id))
    if target.id == admin.id and to is StaffStatus.SUSPENDED:
        raise refuse("self", InvalidInput(
            "You cannot suspend your own account. Ask another administrator of your "
            "organization if it needs to be suspended."), target_email=target.email)
    before = target.status
    ended = 0
    if to is StaffStatus.SUSPENDED:
        # Delete the sessions even when already suspended: none may outlive a suspension.
        result = session.execute(delete(m.WebSession)
                                 .where(m.WebSession.staff_user_id == target.id)
                                 .execution_options(synchronize_session=False))
        ended = int(getattr(result, "rowcount", 0) or 0)
    if before == to.value and not ended:
        return StatusChange(target.id, target.display_name, before, False, 0)
    target.status = to.value
    audit.append(session, _event(action, admin, meta, decision="permit", reasons=("org_admin",),
                                 detail={"target_user_id": target.id,
                                         "target_email": target.email,
                                         "before": before, "after": to.value,
                                         "sessions_ended": ended}))
    return StatusChange(target.id, target.display_name, to.value, before != to.value, ended)
