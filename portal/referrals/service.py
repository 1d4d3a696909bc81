"""The LEAD front door: police referrals, acceptance and enrolment by case management, the care
team, and the participant's sign-in code. Each use case is one transaction and audited."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from portal.auth import service as auth_service
from portal.crypto.vault import DecryptionError
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.types import utcnow
from portal.domain import public_ids
from portal.domain.audit import AuditAction, NewAuditEvent
from portal.domain.decision import Reason
from portal.domain.permissions import Permission
from portal.domain.vocabulary import (
    ParticipantStatus,
    ReferralPathway,
    ReferralStatus,
)
from portal.kernel.access import user_may
from portal.kernel.errors import Conflict, InvalidInput, NotFound, Refused
from portal.kernel.events import refusal_event, request_event, staff_event
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services


def is_referrer(services: Services, user: m.StaffUser) -> bool:
    return user_may(services.policy, user, Permission.REFERRAL_CREATE)


def decides_referrals(services: Services, user: m.StaffUser) -> bool:
    return user_may(services.policy, user, Permission.REFERRAL_DECIDE)


def refer(session: Session, services: Services, user: m.StaffUser, *, pathway: str,
          given: str, family: str, born: str, where: str, meta: RequestMeta) -> m.Referral:
    """A police referral with the minimum needed to find the person."""
    if not is_referrer(services, user):
        raise Refused("Only police officers make referrals.")
    problems = []
    try:
        path = ReferralPathway(pathway)
    except ValueError:
        problems.append("Choose arrest diversion or social contact.")
        path = ReferralPathway.SOCIAL_CONTACT
    if not given.strip() or not family.strip():
        problems.append("Give the person's first and last name (as they gave it).")
    dob = None
    if born.strip():
        try:
            dob = date.fromisoformat(born.strip())
        except ValueError:
            problems.append("The date of birth must look like 1990-01-31, or leave it empty.")
    if len(where) > 500:
        problems.append("Keep 'where to find them' under 500 characters.")
    if problems:
        raise InvalidInput(" ".join(problems))
    referral = m.Referral(id=uuid.uuid4(), referring_user_id=user.id,
                          referring_organization_id=user.organization_id, pathway=path.value,
                          status=ReferralStatus.PENDING.value, created_at=utcnow())
    services.vault.ready(session).seal(referral, {
        "given_name": given.strip(), "family_name": family.strip(),
        "date_of_birth": dob.isoformat() if dob else None,
        "where_to_find": where.strip() or None})
    session.add(referral)
    session.flush()
    services.audit.append(session, staff_event(AuditAction.REFERRAL_CREATE, user, meta,
                                          record_ids=(str(referral.id),), decision="permit"))
    return referral


@dataclass(frozen=True, slots=True)
class ReferralLine:
    id: str
    status: str
    pathway: str
    created: date
    given: str | None = None
    family: str | None = None
    born: str | None = None
    # Where to find them, opened; None when it cannot be decrypted (shown as unavailable).
    where: str | None = ""
    referred_by: str = ""


def own_referrals(session: Session, services: Services, user: m.StaffUser) -> list[ReferralLine]:
    """What the referring officer learns: the names they gave and whether it was accepted."""
    vault = services.vault.ready(session)
    rows = session.scalars(select(m.Referral).where(m.Referral.referring_user_id == user.id)
                           .order_by(m.Referral.created_at.desc()).limit(50))
    return [ReferralLine(str(r.id), r.status, r.pathway, r.created_at.date(),
                         vault.open_or_none(r, "given_name"),
                         vault.open_or_none(r, "family_name"))
            for r in rows]


def pending(session: Session, services: Services, user: m.StaffUser,
            meta: RequestMeta) -> list[ReferralLine]:
    if not decides_referrals(services, user):
        raise NotFound()
    vault = services.vault.ready(session)
    rows = session.execute(
        select(m.Referral, m.Organization.name)
        .join(m.Organization, m.Organization.id == m.Referral.referring_organization_id)
        .where(m.Referral.status == ReferralStatus.PENDING.value)
        .order_by(m.Referral.created_at)).all()
    lines = [ReferralLine(str(r.id), r.status, r.pathway, r.created_at.date(),
                          vault.open_or_none(r, "given_name"),
                          vault.open_or_none(r, "family_name"),
                          vault.open_or_none(r, "date_of_birth"),
                          vault.open_or_none(r, "where_to_find"), org_name)
             for r, org_name in rows]
    services.audit.append(session, staff_event(AuditAction.PARTICIPANT_VIEW, user, meta,
                                          record_ids=tuple(x.id for x in lines),
                                          detail={"view": "pending referrals"}))
    return lines


def decide_referral(session: Session, services: Services, user: m.StaffUser,
                    referral_id: uuid.UUID, *, accept: bool, reason: str,
                    meta: RequestMeta) -> m.Participant | None:
    """Accept (enrol the participant, with the case manager's agency on the care team) or
    decline with a reason."""
    if not decides_referrals(services, user):
        raise NotFound()
    referral = session.get(m.Referral, referral_id)
    if referral is None:
        raise NotFound()
    if referral.status != ReferralStatus.PENDING.value:
        raise InvalidInput(f"This referral was already {referral.status}.")
    if not accept and not reason.strip():
        raise InvalidInput("Say why the referral is declined.")
    now = utcnow()
    referral.decided_by_user_id = user.id
    referral.decided_at = now
    participant = None
    if accept:
        vault = services.vault.ready(session)
        try:
            given, family = vault.open(referral, "given_name"), vault.open(referral, "family_name")
            born = vault.open(referral, "date_of_birth")
        except DecryptionError:
            raise Conflict("This referral's details cannot be decrypted, so the person cannot "
                           "be enrolled from it; decline it and ask for a new referral."
                           ) from None
        participant = m.Participant(
            id=uuid.uuid4(), public_id=_new_public_id(session), enrolled_on=now.date(),
            referral_pathway=referral.pathway, status=ParticipantStatus.ENROLLED.value,
            preferred_language="en", created_at=now)
        vault.seal_participant(participant, given or "", family or "",
                               date.fromisoformat(born) if born else None)
        session.add(participant)
        session.flush()
        session.add(m.CareTeamMember(participant_id=participant.id,
                                     organization_id=user.organization_id,
                                     staff_user_id=user.id, start_date=now.date()))
        referral.status = ReferralStatus.ACCEPTED.value
        referral.participant_id = participant.id
        services.audit.append(session, staff_event(AuditAction.PARTICIPANT_ENROL, user, meta,
                                              participant_id=participant.id,
                                              record_ids=(str(referral.id),)))
    else:
        referral.status = ReferralStatus.DECLINED.value
        services.vault.ready(session).seal(referral, {"decline_reason": reason.strip()[:500]},
                                           version=referral.key_version)
    services.audit.append(session, staff_event(
        AuditAction.REFERRAL_DECIDE, user, meta, record_ids=(str(referral.id),),
        participant_id=participant.id if participant else None,
        decision="permit" if accept else "deny", detail={"accepted": accept}))
    return participant


def _new_public_id(session: Session) -> str:
    """A grouped id without look-alikes; taken if any stored spelling of it is (an older
    ungrouped id with the same characters would answer the same lookup)."""
    while True:
        candidate = public_ids.new_public_id()
        if session.scalar(select(m.Participant.id).where(
                m.Participant.public_id.in_(public_ids.stored_forms(candidate)))) is None:
            return candidate


# --- the care team -------------------------------------------------------------------------


def _managed(session: Session, services: Services, user: m.StaffUser, public_id: str,
             meta: RequestMeta, action: AuditAction,
             permission: Permission = Permission.CARE_TEAM_MANAGE) -> m.Participant:
    """The participant, if the role policy gives the user ``permission`` and their agency is
    on the care team; else NotFound, the refused attempt on an existing participant
    audited first (the caller commits it: `portal.web.deps.found_or`)."""
    participant = repo.participant_by_public_id(session, public_id)
    if participant is None:
        raise NotFound()
    today = utcnow().date()
    on_team = any(link.organization_id == user.organization_id and link.current(today)
                  for link in _links(session, participant.id))
    if not on_team or not user_may(services.policy, user, permission):
        services.audit.append(session, refusal_event(
            action, user, meta, participant.id,
            Reason.NO_ROLE_PERMISSION if on_team else Reason.NOT_ON_CARE_TEAM,
            services.policy.version))
        raise NotFound()
    return participant


def _links(session: Session, participant_id: uuid.UUID) -> list[m.CareTeamMember]:
    return list(session.scalars(select(m.CareTeamMember).where(
        m.CareTeamMember.participant_id == participant_id)
        .order_by(m.CareTeamMember.start_date, m.CareTeamMember.id)))


@dataclass(frozen=True, slots=True)
class Person:
    """Who a care-team page is about, as the managing agency may see them."""

    public_id: str
    name: str | None  # None when it cannot be decrypted (the failure is audited)
    language: str
    status: str


def _person(session: Session, services: Services, participant: m.Participant,
            meta: RequestMeta) -> Person:
    try:
        name: str | None = services.vault.ready(session).open_participant(participant).display
    except DecryptionError as exc:
        services.audit.append(session, request_event(
            AuditAction.CRYPTO_DECRYPT_FAILURE, meta, participant_id=participant.id,
            reasons=(exc.reason,), detail={"table": exc.table, "column": exc.column}))
        name = None
    return Person(participant.public_id, name, participant.preferred_language,
                  participant.status)


def care_team(session: Session, services: Services, user: m.StaffUser, public_id: str,
              meta: RequestMeta) -> tuple[list[m.CareTeamMember], list[m.Organization]]:
    """Who works with the participant (which can itself say something, e.g. that a Part 2
    program does): audited."""
    _, links, others = care_team_page(session, services, user, public_id, meta)
    return links, others


def care_team_page(session: Session, services: Services, user: m.StaffUser, public_id: str,
                   meta: RequestMeta
                   ) -> tuple[Person, list[m.CareTeamMember], list[m.Organization]]:
    """The care team and whom it is for (the managing agency sees the name): audited."""
    participant = _managed(session, services, user, public_id, meta,
                           AuditAction.PARTICIPANT_VIEW)
    links = _links(session, participant.id)
    services.audit.append(session, staff_event(AuditAction.PARTICIPANT_VIEW, user, meta,
                                          participant_id=participant.id, decision="permit",
                                          reasons=("care_team",),
                                          detail={"view": "care_team"}))
    today = utcnow().date()
    current = {link.organization_id for link in links if link.current(today)}
    others = [o for o in session.scalars(select(m.Organization).order_by(m.Organization.name))
              if o.id not in current]
    return _person(session, services, participant, meta), links, others


def add_member(session: Session, services: Services, user: m.StaffUser, public_id: str,
               organization_slug: str, meta: RequestMeta) -> None:
    """Adding an agency grants nothing by itself: the participant's consent still decides."""
    participant = _managed(session, services, user, public_id, meta,
                           AuditAction.CARE_TEAM_MEMBER_ADD)
    org = session.scalar(select(m.Organization).where(m.Organization.slug == organization_slug))
    if org is None:
        raise InvalidInput("Choose an agency.")
    today = utcnow().date()
    if any(link.organization_id == org.id and link.current(today)
           for link in _links(session, participant.id)):
        raise InvalidInput(f"{org.name} is already on the care team.")
    session.add(m.CareTeamMember(participant_id=participant.id, organization_id=org.id,
                                 start_date=utcnow().date()))
    services.audit.append(session, staff_event(AuditAction.CARE_TEAM_MEMBER_ADD, user, meta,
                                          participant_id=participant.id,
                                          detail={"organization": org.slug}))


def end_member(session: Session, services: Services, user: m.StaffUser, public_id: str,
               member_id: int, meta: RequestMeta) -> None:
    participant = _managed(session, services, user, public_id, meta,
                           AuditAction.CARE_TEAM_MEMBER_END)
    link = session.get(m.CareTeamMember, member_id)
    if link is None or link.participant_id != participant.id or link.end_date is not None:
        raise NotFound()
    if link.organization_id == user.organization_id:
        raise InvalidInput("Your own agency stays on the care team while you manage the case.")
    link.end_date = utcnow().date()
    services.audit.append(session, staff_event(AuditAction.CARE_TEAM_MEMBER_END, user, meta,
                                          participant_id=participant.id,
                                          detail={"organization": link.organization.slug}))


def _code_issuable(session: Session, services: Services, user: m.StaffUser, public_id: str,
                   meta: RequestMeta) -> m.Participant:
    participant = _managed(session, services, user, public_id, meta,
                           AuditAction.AUTH_ENROLMENT_CODE_ISSUE, Permission.SIGN_IN_CODE_CREATE)
    if participant.status == ParticipantStatus.EXITED.value:
        raise InvalidInput("This participant has left LEAD, so no sign-in code is issued. "
                            "To enrol them again, make a new referral.")
    return participant


def code_confirmation(session: Session, services: Services, user: m.StaffUser,
                      public_id: str, meta: RequestMeta) -> Person:
    """Whom a new sign-in code would be for, before anything changes: audited as a view."""
    participant = _code_issuable(session, services, user, public_id, meta)
    services.audit.append(session, staff_event(AuditAction.PARTICIPANT_VIEW, user, meta,
                                          participant_id=participant.id, decision="permit",
                                          reasons=("care_team",),
                                          detail={"view": "sign_in_code_confirmation"}))
    return _person(session, services, participant, meta)


def issue_code(session: Session, services: Services, user: m.StaffUser, public_id: str,
               meta: RequestMeta) -> str:
    participant = _code_issuable(session, services, user, public_id, meta)
    return auth_service.issue_enrolment_code(session, services.audit, participant, user, meta)


# --- a new code, shown once after the redirect ----------------------------------------------

# Long enough to write the code down or print the slip; the code itself lasts 72 hours.
CODE_SHOWN_MINUTES = 15


def _shown_once_id(web_session_id: str, public_id: str) -> str:
    return hashlib.sha256(f"{web_session_id}:enrolment-code:{public_id}".encode()).hexdigest()


def issue_code_for_display(session: Session, services: Services, user: m.StaffUser,
                           public_id: str, web_session_id: str, meta: RequestMeta) -> str:
    """Issue a code and keep it, sealed, for the next page of this staff session only (the
    result page after the redirect takes it: reloading it shows nothing and issues nothing).
    Returns the participant's canonical public id. One transaction with the issue."""
    code = issue_code(session, services, user, public_id, meta)
    participant = repo.participant_by_public_id(session, public_id)
    assert participant is not None  # issue_code found it in this transaction
    row_id = _shown_once_id(web_session_id, participant.public_id)
    session.execute(delete(m.ShownOnce).where(
        (m.ShownOnce.id == row_id) | (m.ShownOnce.expires_at < utcnow())))
    row = m.ShownOnce(id=row_id, web_session_id=web_session_id,
                      expires_at=utcnow() + timedelta(minutes=CODE_SHOWN_MINUTES))
    services.vault.ready(session).seal(row, {"payload": code})
    session.add(row)
    return participant.public_id


def take_issued_code(session: Session, services: Services, user: m.StaffUser, public_id: str,
                     web_session_id: str, meta: RequestMeta) -> tuple[Person, str | None]:
    """The code issued in this session, once (taken: deleted as it is read), and whom it is
    for; None when it was already shown, has expired or was never issued here."""
    participant = _managed(session, services, user, public_id, meta,
                           AuditAction.AUTH_ENROLMENT_CODE_ISSUE, Permission.SIGN_IN_CODE_CREATE)
    row_id = _shown_once_id(web_session_id, participant.public_id)
    # Taken in one statement, so two loads of the page at once cannot both show it.
    taken = session.execute(delete(m.ShownOnce).where(
        m.ShownOnce.id == row_id, m.ShownOnce.web_session_id == web_session_id)
        .returning(m.ShownOnce.payload_enc, m.ShownOnce.expires_at)).first()
    code = None
    failed: list[NewAuditEvent] = []
    if taken is not None and taken.expires_at > utcnow():
        try:
            code = services.vault.ready(session).decrypt_text(
                taken.payload_enc, table=m.ShownOnce.__tablename__, column="payload",
                row_id=row_id)
        except DecryptionError as exc:  # shown as "already shown": a new code can be issued
            failed.append(staff_event(
                AuditAction.CRYPTO_DECRYPT_FAILURE, user, meta, participant_id=participant.id,
                reasons=(exc.reason,), detail={"table": exc.table, "column": exc.column}))
    services.audit.append_many(session, [*failed, staff_event(
        AuditAction.PARTICIPANT_VIEW, user, meta, participant_id=participant.id,
        decision="permit", reasons=("care_team",),
        detail={"view": "sign_in_code_issued", "code_shown": code is not None})])
    return _person(session, services, participant, meta), code
