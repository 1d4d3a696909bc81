"""A participant's place in LEAD ends, or their case is decided: the recorded events that end
consents (42 CFR 2.31(a)(7)) or make a 2.35 consent revocable (2.35(c)). Each use case is one
transaction, audited; decide() reads the events at every decision."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db import models as m
from portal.db import repositories as repo
from portal.db.types import utcnow
from portal.domain.audit import AuditAction
from portal.domain.consent import ConsentEvent
from portal.domain.decision import Reason, on_care_team
from portal.domain.permissions import Permission, may
from portal.domain.text import N_
from portal.domain.vocabulary import ParticipantStatus
from portal.kernel.errors import InvalidInput, NotFound, Refused
from portal.kernel.events import refusal_event, staff_event
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services

# Why a participant left LEAD (recorded with the exit).
EXIT_REASONS = {
    "completed": N_("Completed the program"),
    "moved": N_("Moved away"),
    "declined": N_("Chose to leave"),
    "no_contact": N_("No contact for a long time"),
    "incarcerated": N_("In custody"),
    "died": N_("Died"),
    "other": N_("Other reason"),
}
EVENT_PERMISSION = {ConsentEvent.LEAD_EXIT: Permission.PARTICIPANT_EXIT,
                    ConsentEvent.FINAL_DISPOSITION: Permission.DISPOSITION_CREATE}
EVENT_ACTION = {ConsentEvent.LEAD_EXIT: AuditAction.PARTICIPANT_EXIT,
                ConsentEvent.FINAL_DISPOSITION: AuditAction.PARTICIPANT_DISPOSITION_CREATE}


def _allowed(session: Session, services: Services, user: m.StaffUser, public_id: str,
             event: ConsentEvent, meta: RequestMeta) -> m.Participant:
    participant = repo.participant_by_public_id(session, public_id)
    if participant is None:
        raise NotFound(public_id)
    actor = repo.actor(user)
    at = utcnow()
    context = repo.load_context(session, participant.id, user_id=user.id, at=at)
    team = on_care_team(context, actor.organization.slug, at.date())
    permitted = may(services.policy, actor, EVENT_PERMISSION[event])
    if not team or not permitted:
        services.audit.append(session, refusal_event(
            EVENT_ACTION[event], user, meta, participant.id,
            Reason.NO_ROLE_PERMISSION if team else Reason.NOT_ON_CARE_TEAM,
            services.policy.version))
        if not team:
            raise NotFound(public_id)
        raise Refused("Your role cannot record this." if event is ConsentEvent.LEAD_EXIT
                           else "Your role cannot record the final disposition of a case.")
    return participant


def recorded(session: Session,
             participant: m.Participant) -> dict[ConsentEvent, m.ParticipantEvent]:
    return {ConsentEvent(e.event): e for e in session.scalars(select(m.ParticipantEvent).where(
        m.ParticipantEvent.participant_id == participant.id))}


def event_page(session: Session, services: Services, user: m.StaffUser, public_id: str,
               event: ConsentEvent, meta: RequestMeta) -> dict[str, Any]:
    """What the form shows: whether the event is recorded already (and when)."""
    participant = _allowed(session, services, user, public_id, event, meta)
    done = recorded(session, participant).get(event)
    return {"public_id": participant.public_id, "done": done}


def record(session: Session, services: Services, user: m.StaffUser, public_id: str,
           event: ConsentEvent, on: str, reason: str,
           meta: RequestMeta) -> m.ParticipantEvent:
    """Record that the participant left LEAD (with a reason) or that their case reached its
    final disposition. Consents that end on it are expired from that day on; a 2.35 consent
    irrevocable until it becomes revocable."""
    participant = _allowed(session, services, user, public_id, event, meta)
    today = utcnow().date()
    problems = []
    try:
        day = date.fromisoformat(on.strip()) if on.strip() else today
    except ValueError:
        problems.append("The date must look like 2026-11-28.")
        day = today
    if day > today:
        problems.append("The date cannot be in the future.")
    if participant.enrolled_on and day < participant.enrolled_on:
        problems.append("The date cannot be before the participant enrolled.")
    if event is ConsentEvent.LEAD_EXIT and reason not in EXIT_REASONS:
        problems.append("Choose why the participant left.")
    if event in recorded(session, participant):
        problems.append("This is already recorded.")
    if problems:
        raise InvalidInput(" ".join(problems))
    row = m.ParticipantEvent(participant_id=participant.id, event=event.value, occurred_on=day,
                             reason=(reason if event is ConsentEvent.LEAD_EXIT else ""),
                             recorded_by_user_id=user.id, recorded_at=utcnow())
    session.add(row)
    if event is ConsentEvent.LEAD_EXIT:
        # Sign-in codes issued before stop working (auth.enrol refuses an exited participant);
        # the participant keeps signing in to see their information and who looked.
        participant.status = ParticipantStatus.EXITED.value
    session.flush()
    services.audit.append(session, staff_event(
        EVENT_ACTION[event], user, meta, participant_id=participant.id, decision="permit",
        policy_version=services.policy.version,
        detail={"event": event.value, "on": day.isoformat(), "reason": row.reason}))
    return row
