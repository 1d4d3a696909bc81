"""The break-glass review queue (42 CFR 2.51): grants, what was seen under them, the review."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from sqlalchemy import (
    func,
    literal_column,
    select,
)
from sqlalchemy.orm import Session

from portal.compliance import sql
from portal.compliance.console import NOTES_MAX, RECORD_VIEW, REVIEW_QUEUE_LIMIT, requester
from portal.compliance.sql import EVENTS
from portal.db import models as m
from portal.db.types import utcnow
from portal.domain.audit import (
    AuditAction,
)
from portal.domain.vocabulary import (
    BreakGlassReview,
    DataCategory,
)
from portal.kernel.errors import Conflict, InvalidInput, NotFound
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services

# --- break-glass review ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeenCategory:
    category: str
    label: str
    views: int
    records: int
    denied: int


@dataclass(frozen=True, slots=True)
class GrantRow:
    id: uuid.UUID
    staff: str
    staff_email: str
    organization: str
    participant: str
    # Opened from the grant; None when a value cannot be decrypted (shown as unavailable).
    reason: str | None
    emergency_nature: str | None
    facility: str | None
    started_at: datetime
    expires_at: datetime
    active: bool
    review_status: str
    reviewed_by: str
    reviewed_at: datetime | None
    review_notes: str | None
    seen: list[SeenCategory]


ReviewFilter = Literal["pending", "reviewed", "all"]


def _seen_under(session: Session, grants: Sequence[m.BreakGlassGrant]
                ) -> dict[str, list[SeenCategory]]:
    """What each grant's holder was shown, per category: counts of views and records, from
    the record:view events that name the grant (never the records themselves). Narrowed by
    participant and time first, so ix_audit_participant_time does the work."""
    if not grants:
        return {}
    grant_key = m.AuditEvent.detail["break_glass_grant"].as_string()
    stmt = (select(grant_key.label("grant_id"), EVENTS.c.category, EVENTS.c.decision,
                   func.count().label("views"),
                   func.coalesce(func.sum(func.json_array_length(EVENTS.c.record_ids)), 0)
                   .label("records"))
            .where(EVENTS.c.participant_id.in_({g.participant_id for g in grants}),
                   EVENTS.c.occurred_at >= min(g.started_at for g in grants),
                   EVENTS.c.action == RECORD_VIEW,
                   grant_key.in_([str(g.id) for g in grants]))
            .group_by(literal_column("grant_id"), EVENTS.c.category, EVENTS.c.decision))
    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    for grant, category, decision, views, records in session.execute(stmt).tuples():
        cell = counts[str(grant)][str(category)]
        if decision == "permit":
            cell[0] += int(views)
            cell[1] += int(records or 0)
        else:
            cell[2] += int(views)
    order = {c.value: i for i, c in enumerate(DataCategory)}
    return {grant: [SeenCategory(c, sql.category_label(c), v, r, d)
                    for c, (v, r, d) in sorted(cats.items(), key=lambda x: order.get(x[0], 99))]
            for grant, cats in counts.items()}


def review_queue(session: Session, services: Services, user: m.StaffUser, meta: RequestMeta,
                 status: ReviewFilter = "pending") -> list[GrantRow]:
    """Emergency accesses, newest first (pending ones by default), with what was seen; the
    read of the log behind "what was seen" is audited."""
    stmt = select(m.BreakGlassGrant).order_by(m.BreakGlassGrant.started_at.desc())
    if status == "pending":
        stmt = stmt.where(m.BreakGlassGrant.review_status == BreakGlassReview.PENDING.value)
    elif status == "reviewed":
        stmt = stmt.where(m.BreakGlassGrant.review_status != BreakGlassReview.PENDING.value)
    grants = list(session.scalars(stmt.limit(REVIEW_QUEUE_LIMIT)))
    people = {u.id: u for u in session.scalars(select(m.StaffUser).where(m.StaffUser.id.in_(
        {g.staff_user_id for g in grants} | {g.reviewed_by_user_id for g in grants
                                             if g.reviewed_by_user_id is not None})))}
    orgs = sql.pairs(session, select(m.Organization.id, m.Organization.name))
    names = sql.public_ids(session, {g.participant_id for g in grants})
    seen = _seen_under(session, grants)
    vault = services.vault.ready(session)
    now = utcnow()
    rows = []

    def opened(grant: m.BreakGlassGrant, column: str) -> str | None:
        value = vault.open_or_none(grant, column)
        return None if value is None else sql.display(value)

    for g in grants:
        staff = people.get(g.staff_user_id)
        reviewer = people.get(g.reviewed_by_user_id) if g.reviewed_by_user_id else None
        rows.append(GrantRow(
            id=g.id, staff=sql.display(staff.display_name if staff else f"user {g.staff_user_id}"),
            staff_email=sql.display(staff.email if staff else ""),
            organization=sql.display(orgs.get(g.organization_id, "")),
            participant=names.get(g.participant_id, ""), reason=opened(g, "reason"),
            emergency_nature=opened(g, "emergency_nature"), facility=opened(g, "facility"),
            started_at=g.started_at, expires_at=g.expires_at,
            active=g.started_at <= now < g.expires_at, review_status=g.review_status,
            reviewed_by=sql.display(reviewer.display_name if reviewer else ""),
            reviewed_at=g.reviewed_at, review_notes=opened(g, "review_notes"),
            seen=seen.get(str(g.id), [])))
    services.audit.append(session, requester(user, meta).event(
        AuditAction.AUDIT_EVENT_VIEW,
        detail={"view": "break_glass_queue", "status": status, "grants": len(rows)}))
    return rows


def review_grant(session: Session, services: Services, user: m.StaffUser, meta: RequestMeta,
                 grant_id: uuid.UUID, finding: str, notes: str) -> m.BreakGlassGrant:
    """Record the compliance finding on one emergency access; audited in the same
    transaction. A finding is final: a grant already reviewed is refused."""
    notes = notes.strip()
    if finding not in (BreakGlassReview.JUSTIFIED.value, BreakGlassReview.NOT_JUSTIFIED.value):
        raise InvalidInput("Choose whether the emergency access was justified.")
    if finding == BreakGlassReview.NOT_JUSTIFIED.value and not notes:
        raise InvalidInput("Say why the emergency access was not justified.")
    if len(notes) > NOTES_MAX:
        raise InvalidInput(f"Keep the notes to at most {NOTES_MAX:,} characters.")
    grant = session.scalar(select(m.BreakGlassGrant).where(m.BreakGlassGrant.id == grant_id)
                           .with_for_update())
    if grant is None:
        raise NotFound(str(grant_id))
    if grant.review_status != BreakGlassReview.PENDING.value:
        raise Conflict("This emergency access has already been reviewed.")
    if grant.staff_user_id == user.id:
        raise Conflict("You cannot review your own emergency access.")
    now = utcnow()
    grant.review_status = finding
    grant.reviewed_by_user_id = user.id
    grant.reviewed_at = now
    # The notes are sealed on the grant; the event says only whether there are any.
    services.vault.ready(session).seal(
        grant, {"review_notes": notes or None},
        version=grant.key_version)
    session.flush()
    event = requester(user, meta).event(
        AuditAction.BREAK_GLASS_GRANT_REVIEW, participant_id=grant.participant_id,
        detail={"break_glass_grant": str(grant.id), "finding": finding, "notes": bool(notes),
                "grantee_user_id": grant.staff_user_id})
    services.audit.append(session, replace(event, record_ids=(str(grant.id),),
                                           policy_version=services.policy.version))
    return grant
