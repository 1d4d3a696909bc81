"""Consent use cases: listing, capture as a draft, signing with a PDF copy, revocation."""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portal.consents.pdf import render_signed_consent
from portal.crypto.vault import DecryptionError
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.types import utcnow
from portal.domain.audit import AuditAction, NewAuditEvent
from portal.domain.consent import (
    ConsentError,
    ConsentKind,
    ConsentStatus,
    Directive,
    Provision,
    ProvisionEffect,
    Signature,
    SignatureMethod,
    SignerRelation,
    activate,
    ensure_editable,
    event_of,
    missing_elements,
    revocable_from,
    revoke,
    supersede,
)
from portal.domain.consent_text import (
    CONSENT_TEXT_VERSIONS,
    REVOCATION_STATEMENT,
    SECTOR_WORDS,
    TPO_STATEMENT,
    information_description,
    sentences,
)
from portal.domain.decision import Reason, never_honoured
from portal.domain.permissions import Permission
from portal.domain.vocabulary import DataCategory, Purpose, Sector
from portal.kernel.access import (
    user_may,
)
from portal.kernel.errors import InvalidInput, NotFound, Refused
from portal.kernel.events import refusal_event, staff_event
from portal.kernel.request import RequestMeta

if TYPE_CHECKING:
    from portal.kernel.wiring import Services


def consent_summaries(session: Session, participant_id: uuid.UUID,
                      at: datetime) -> list[dict[str, Any]]:
    """`[{"id", "kind", "status", "provisions", "expires", "revocable_after"}]`, newest first."""
    occurred = repo.occurred_events(session, participant_id)
    rows = session.scalars(
        select(m.Consent).where(m.Consent.participant_id == participant_id)
        .options(selectinload(m.Consent.provisions))
        .order_by(m.Consent.created_at.desc(), m.Consent.id)).all()
    out = []
    for row in rows:
        d = repo.directive(row)
        out.append({
            "id": d.id, "kind": d.kind.value, "status": d.status_at(at, occurred).value,
            "version": d.version,
            "provisions": [{
                "effect": p.effect.value, "disclosers": sorted(p.disclosers),
                "recipients": sorted(p.recipients), "categories": sorted(p.categories),
                "purposes": sorted(p.purposes),
                "period": [p.period_start.isoformat() if p.period_start else None,
                           p.period_end.isoformat() if p.period_end else None]}
                for p in d.provisions],
            "expires": d.expires_on.isoformat() if d.expires_on else d.expiry_event,
            "revocable_after": (d.revocable_after.isoformat() if d.revocable_after
                                else d.revocable_after_event),
        })
    return out


# --- capture, signing, revocation -----------------------------------------------------------

MAX_SCAN_BYTES = 5 * 1024 * 1024
# An optional drawing of the signature, sent by the form as a PNG data URL.
DRAWN_PREFIX = "data:image/png;base64,"
MAX_DRAWN_BYTES = 256 * 1024
MAX_DRAWN_PIXELS = (2000, 1000)
SCAN_TYPES = {b"%PDF-": "application/pdf", b"\x89PNG\r\n\x1a\n": "image/png",
              b"\xff\xd8\xff": "image/jpeg"}


@dataclass(frozen=True, slots=True)
class ConsentForm:
    kind: str
    disclosers: list[str]  # organization slugs
    recipients: list[str]
    categories: list[str]
    purposes: list[str]
    expires_on: str = ""
    expiry_event: str = ""
    language: str = "en"
    revocable_after: str = ""
    revocable_after_event: str = ""


def case_managed(session: Session, services: Services, user: m.StaffUser, public_id: str,
                 meta: RequestMeta, action: AuditAction) -> m.Participant:
    """The participant, when the user may capture consents with them (consents are captured by
    the participant's case-management agency, with them present): the role policy must give
    the user the permission of ``action`` (CONSENT_PERMISSIONS) and their agency must be on
    the care team. Off the team: NotFound (not found); on it without the permission:
    Refused (forbidden, with the reason). A
    refused attempt on an existing participant is audited first (the caller must commit it:
    `portal.web.deps.found_or`); the participant may be told of it
    (policies/accounting.csv)."""
    participant = repo.participant_by_public_id(session, public_id)
    if participant is None:
        raise NotFound()
    permission = CONSENT_PERMISSIONS[action]
    allowed = user_may(services.policy, user, permission)
    on_team = session.scalar(select(m.CareTeamMember.id).where(
        m.CareTeamMember.participant_id == participant.id,
        m.CareTeamMember.organization_id == user.organization_id,
        m.CareTeamMember.current_on(utcnow().date())).limit(1))
    if not allowed or on_team is None:
        services.audit.append(session, refusal_event(
            action, user, meta, participant.id,
            Reason.NOT_ON_CARE_TEAM if on_team is None else Reason.NO_ROLE_PERMISSION,
            services.policy.version))
        if on_team is None:
            raise NotFound()
        # On the care team, the participant's existence is no secret: say what is refused.
        raise Refused(CONSENT_REFUSALS[permission])
    return participant


# What each audited consent action needs from the role policy (policies/policy.csv).
CONSENT_PERMISSIONS = {
    AuditAction.CONSENT_VIEW: Permission.CONSENT_VIEW,
    AuditAction.CONSENT_CREATE: Permission.CONSENT_CREATE,
    AuditAction.CONSENT_SIGN: Permission.CONSENT_SIGN,
    AuditAction.CONSENT_REVOKE: Permission.CONSENT_REVOKE,
}
CONSENT_REFUSALS = {
    Permission.CONSENT_VIEW: "Your role cannot view consent forms.",
    Permission.CONSENT_CREATE: "Your role cannot prepare consent forms.",
    Permission.CONSENT_SIGN: "Your role cannot witness a consent signature.",
    Permission.CONSENT_REVOKE: "Your role cannot record a revocation.",
}


def open_form(session: Session, services: Services, user: m.StaffUser, public_id: str,
              meta: RequestMeta) -> m.Participant:
    """A new consent form: it lists the care team (which can itself say something, e.g. that
    a Part 2 program treats the participant), so opening it is audited like the care team."""
    participant = case_managed(session, services, user, public_id, meta,
                               AuditAction.CONSENT_CREATE)
    services.audit.append(session, staff_event(
        AuditAction.PARTICIPANT_VIEW, user, meta, participant_id=participant.id,
        decision="permit", reasons=("care_team",), policy_version=services.policy.version,
        detail={"view": "consent_form"}))
    return participant


def _parse_form(session: Session, participant: m.Participant,
                form: ConsentForm) -> tuple[Directive, dict[str, Any]]:
    problems: list[str] = []
    try:
        kind = ConsentKind(form.kind)
    except ValueError:
        problems.append("Choose the kind of consent.")
        kind = ConsentKind.ROI
    today = utcnow().date()
    team = {o.slug: o for o in session.scalars(
        select(m.Organization).join(m.CareTeamMember,
                                    m.CareTeamMember.organization_id == m.Organization.id)
        .where(m.CareTeamMember.participant_id == participant.id,
               m.CareTeamMember.current_on(today)))}
    disclosers = [s for s in form.disclosers if s in team]
    recipients = [s for s in form.recipients if s in team]
    if len(disclosers) != len(form.disclosers) or len(recipients) != len(form.recipients):
        problems.append("Only agencies on the care team can be named.")
    # 42 CFR 2.35(a): disclosed only to the justice agency that made treatment a condition.
    outside = sorted(team[s].name for s in recipients if not Sector(team[s].sector).is_justice)
    if kind is ConsentKind.PART2_CRIMINAL_JUSTICE and outside:
        problems.append("A criminal-justice consent (42 CFR 2.35) can name only justice "
                        "agencies (court, probation, prosecution, police), not "
                        f"{', '.join(outside)}.")
    categories, purposes = [], []
    for value in form.categories:
        try:
            categories.append(DataCategory(value))
        except ValueError:
            problems.append(f"Unknown kind of information: {value}.")
    for value in form.purposes:
        try:
            purposes.append(Purpose(value))
        except ValueError:
            problems.append(f"Unknown purpose: {value}.")
    for value in (form.expiry_event, form.revocable_after_event):
        if value.strip() and event_of(value.strip()) is None:
            problems.append("Choose the event from the list.")
    expires = _date(form.expires_on, "expiration date", problems)
    revocable_after = _date(form.revocable_after, "date it becomes revocable", problems)
    if expires is not None and expires <= utcnow().date():
        problems.append("The expiration date must be in the future.")
    if form.language not in ("en", "es"):
        problems.append("Choose English or Spanish.")
    if not problems:
        # What decide() would never honour is refused here, so that the participant never
        # reads that something is shared when it cannot be.
        problems += never_honoured(kind, [repo.organization(team[s]) for s in disclosers],
                                   [repo.organization(team[s]) for s in recipients],
                                   categories, purposes)
    if problems:
        raise InvalidInput(*problems)
    part2_source = any(team[s].part2_program for s in disclosers)
    directive = Directive(
        id="", participant_id=str(participant.id), kind=kind, status=ConsentStatus.DRAFT,
        provisions=(Provision(ProvisionEffect.PERMIT,
                              frozenset(f"org:{s}" for s in disclosers),
                              frozenset(f"org:{s}" for s in recipients), frozenset(categories),
                              frozenset(purposes)),),
        information_description=information_description(categories, part2_source)
        if categories else "",
        revocation_statement=REVOCATION_STATEMENT, expires_on=expires,
        tpo_statement=TPO_STATEMENT.get(form.language, TPO_STATEMENT["en"])
        if kind is ConsentKind.PART2_TPO else "",
        expiry_event=form.expiry_event.strip() or None,
        revocable_after=revocable_after if kind is ConsentKind.PART2_CRIMINAL_JUSTICE else None,
        revocable_after_event=(form.revocable_after_event.strip() or None)
        if kind is ConsentKind.PART2_CRIMINAL_JUSTICE else None)
    columns = {"kind": kind.value, "information_description": directive.information_description,
               "revocation_statement": REVOCATION_STATEMENT, "expires_on": expires,
               "tpo_statement": directive.tpo_statement,
               "expiry_event": directive.expiry_event, "language": form.language,
               "revocable_after": directive.revocable_after,
               "revocable_after_event": directive.revocable_after_event,
               "text_version": CONSENT_TEXT_VERSIONS.get(form.language, "")}
    return directive, columns


def _date(value: str, what: str, problems: list[str]) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        problems.append(f"The {what} must look like 2027-05-01.")
        return None


def save_draft(session: Session, services: Services, user: m.StaffUser, public_id: str,
               form: ConsentForm, meta: RequestMeta, consent_id: uuid.UUID | None = None,
               ) -> m.Consent:
    """Create or update a draft; a draft may be incomplete (it is checked when signed)."""
    participant = case_managed(session, services, user, public_id, meta,
                               AuditAction.CONSENT_CREATE)
    directive, columns = _parse_form(session, participant, form)
    if consent_id is None:
        row = m.Consent(id=uuid.uuid4(), participant_id=participant.id, status="draft",
                        created_by_user_id=user.id, **columns)
        session.add(row)
    else:
        row = _consent(session, consent_id, participant.id)
        try:
            ensure_editable(repo.directive(row))
        except ConsentError as exc:
            raise InvalidInput(*exc.problems) from None
        for key, value in columns.items():
            setattr(row, key, value)
    # The form states the first (permit) provision. Any further ones (a new version keeps
    # every provision of the consent it replaces, such as "never to police") are kept as
    # they are: the form cannot show them, so it must not drop them.
    kept = [_copy(x) for x in row.provisions[1:]]
    row.provisions.clear()
    p = directive.provisions[0]
    row.provisions.append(m.ConsentProvision(
        effect="permit", disclosers=sorted(p.disclosers), recipients=sorted(p.recipients),
        categories=sorted(c.value for c in p.categories),
        purposes=sorted(x.value for x in p.purposes)))
    row.provisions.extend(kept)
    session.flush()
    services.audit.append(session, _event(services, AuditAction.CONSENT_CREATE, user, meta,
                                          participant.id, row.id))
    return row


def form_of(row: m.Consent) -> ConsentForm:
    """The capture form as it would be filled in to make this consent again."""
    d = repo.directive(row)
    p = d.provisions[0] if d.provisions else None
    return ConsentForm(
        kind=d.kind.value,
        disclosers=sorted(r.removeprefix("org:") for r in (p.disclosers if p else [])),
        recipients=sorted(r.removeprefix("org:") for r in (p.recipients if p else [])),
        categories=sorted(c.value for c in (p.categories if p else [])),
        purposes=sorted(x.value for x in (p.purposes if p else [])),
        expires_on=row.expires_on.isoformat() if row.expires_on else "",
        expiry_event=row.expiry_event or "", language=row.language,
        revocable_after=row.revocable_after.isoformat() if row.revocable_after else "",
        revocable_after_event=row.revocable_after_event or "")


def new_version(session: Session, services: Services, user: m.StaffUser, public_id: str,
                consent_id: uuid.UUID, meta: RequestMeta) -> m.Consent:
    """A draft that will replace an active consent once the participant signs it (the
    active one stays in force until then). Resumes the draft already started, if any."""
    participant = case_managed(session, services, user, public_id, meta,
                               AuditAction.CONSENT_CREATE)
    old = _consent(session, consent_id, participant.id)
    status = repo.directive(old).status_at(utcnow(), repo.occurred_events(session,
                                                                         participant.id))
    if status is not ConsentStatus.ACTIVE:
        raise InvalidInput(*[f"Only an active consent gets a new version; this one is "
                                 f"{status.value}. Start a new consent instead."])
    started = session.scalar(select(m.Consent).where(
        m.Consent.supersedes_id == old.id, m.Consent.status == ConsentStatus.DRAFT.value))
    if started is not None:
        return started
    row = save_draft(session, services, user, public_id, form_of(old), meta)
    row.version, row.supersedes_id = old.version + 1, old.id
    # Every provision of the old version, not only the one the form shows.
    row.provisions.extend(_copy(x) for x in old.provisions[1:])
    session.flush()
    return row


def _copy(provision: m.ConsentProvision) -> m.ConsentProvision:
    return m.ConsentProvision(effect=provision.effect, disclosers=list(provision.disclosers),
                              recipients=list(provision.recipients),
                              categories=list(provision.categories),
                              purposes=list(provision.purposes))


def _consent(session: Session, consent_id: uuid.UUID, participant_id: uuid.UUID) -> m.Consent:
    row = session.get(m.Consent, consent_id)
    if row is None or row.participant_id != participant_id:
        raise NotFound()
    return row


def _event(services: Services, action: AuditAction, user: m.StaffUser, meta: RequestMeta,
           participant_id: uuid.UUID, consent_id: uuid.UUID, **detail: Any) -> NewAuditEvent:
    return staff_event(action, user, meta, participant_id=participant_id,
                       consent_ids=(str(consent_id),), policy_version=services.policy.version,
                       detail=detail)


@dataclass(frozen=True, slots=True)
class ChangeRequest:
    wish: str  # "more" | "less"
    note: str | None  # None: could not be decrypted


def change_requests(session: Session, services: Services,
                    consent_ids: list[uuid.UUID]) -> dict[uuid.UUID, ChangeRequest]:
    """The participants' own requests attached to these (draft) consents."""
    if not consent_ids:
        return {}
    vault = services.vault.ready(session)
    out = {}
    for row in session.scalars(select(m.ConsentRequest).where(
            m.ConsentRequest.consent_id.in_(consent_ids))):
        try:
            note = vault.open(row, "note")
        except DecryptionError:
            note = None
        out[row.consent_id] = ChangeRequest(row.wish, note)
    return out


@dataclass(frozen=True, slots=True)
class ConsentView:
    row: m.Consent
    directive: Directive
    status: str
    text: list[str]
    missing: list[str]
    revocable_from: str | None
    request: ChangeRequest | None = None


def view(session: Session, services: Services, user: m.StaffUser, public_id: str,
         consent_id: uuid.UUID, meta: RequestMeta) -> ConsentView:
    participant = case_managed(session, services, user, public_id, meta,
                               AuditAction.CONSENT_VIEW)
    row = _consent(session, consent_id, participant.id)
    directive = repo.directive(row)
    services.audit.append(session, _event(services, AuditAction.CONSENT_VIEW, user, meta,
                                          participant.id, row.id))
    names = reference_names(session, row.language)
    occurred = repo.occurred_events(session, participant.id)
    status = directive.status_at(utcnow(), occurred)
    return ConsentView(row, directive, status.value,
                       sentences(directive, names, row.language, utcnow().date(), occurred),
                       missing_elements(replace(directive, signature=Signature(
                           SignatureMethod.TYPED, "x", SignerRelation.SELF, utcnow())))
                       if status is ConsentStatus.DRAFT else [],
                       revocable_from(directive)
                       if directive.kind is ConsentKind.PART2_CRIMINAL_JUSTICE else None,
                       change_requests(session, services, [row.id]).get(row.id))


def reference_names(session: Session, lang: str = "en") -> dict[str, str]:
    """Readable names for the ``org:`` and ``sector:`` references of provisions."""
    names = {f"org:{o.slug}": o.name for o in session.scalars(select(m.Organization))}
    words = SECTOR_WORDS.get(lang, SECTOR_WORDS["en"])
    names |= {f"sector:{s.value}": words[s] for s in Sector}
    return names


def sign(session: Session, services: Services, user: m.StaffUser, public_id: str,
         consent_id: uuid.UUID, *, signer_name: str, relation: str, agreed: bool,
         scan: bytes | None, meta: RequestMeta, drawn: str = "") -> m.Consent:
    """Sign on the device (typed name and explicit agreement, staff witness, optionally a
    drawn signature) or attach a scan of a wet-ink form; then keep a PDF copy and its hash."""
    participant = case_managed(session, services, user, public_id, meta,
                               AuditAction.CONSENT_SIGN)
    # The keys are ready before any row changes: nothing below reloads them mid-change.
    vault = services.vault.ready(session)
    row = _consent(session, consent_id, participant.id)
    problems = []
    try:
        signer_relation = SignerRelation(relation or "self")
    except ValueError:
        problems.append("Choose who is signing.")
        signer_relation = SignerRelation.SELF
    media_type = None
    if scan:
        if len(scan) > MAX_SCAN_BYTES:
            problems.append("The scan must be at most 5 MB.")
        media_type = next((t for magic, t in SCAN_TYPES.items() if scan.startswith(magic)),
                          None)
        if media_type is None:
            problems.append("The scan must be a PDF, PNG or JPEG file.")
    elif not agreed:
        problems.append("The participant must tick the box to agree.")
    if not signer_name.strip():
        problems.append("Type the full name of the person signing.")
    drawing = None if scan else _drawing(drawn, problems)
    if problems:
        raise InvalidInput(*problems)
    now = utcnow()
    method = SignatureMethod.WET_INK_SCAN if scan else SignatureMethod.TYPED
    signature = Signature(method, signer_name.strip(), signer_relation, now, user.id)
    try:
        activate(repo.directive(row), signature)
    except ConsentError as exc:
        raise InvalidInput(*exc.problems) from None
    row.status = ConsentStatus.ACTIVE.value
    row.signature_method = method.value
    row.signer_relation = signer_relation.value
    row.witness_user_id = user.id
    row.signed_at = now
    vault.seal(row, {"signer_name": signer_name.strip()})
    content = scan if scan else render_signed_consent(
        sentences(repo.directive(row), reference_names(session, row.language), row.language),
        signer_name.strip(), now, user.display_name, row.language, drawing)
    document = m.ConsentDocument(consent_id=row.id, media_type=media_type or "application/pdf",
                                 sha256=hashlib.sha256(content).hexdigest(), created_at=now)
    vault.seal(document, {"content": content})
    row.document_sha256 = document.sha256
    session.add(document)
    session.flush()
    services.audit.append(session, _event(services, AuditAction.CONSENT_SIGN, user, meta,
                                          participant.id, row.id, method=method.value,
                                          document_sha256=document.sha256,
                                          drawn=drawing is not None))
    old = _consent(session, row.supersedes_id, participant.id) if row.supersedes_id else None
    # The version it replaces stops in the same transaction (if the participant has not
    # already taken it back or it has not expired meanwhile).
    if old is not None and repo.directive(old).status_at(
            now, repo.occurred_events(session, participant.id)) is ConsentStatus.ACTIVE:
        replaced, _ = supersede(repo.directive(old), repo.directive(row))
        old.status = replaced.status.value
        services.audit.append(session, _event(services, AuditAction.CONSENT_SUPERSEDE, user,
                                              meta, participant.id, old.id,
                                              superseded_by=str(row.id)))
    return row


def _drawing(value: str, problems: list[str]) -> bytes | None:
    """The drawn signature as PNG bytes (None when nothing was drawn), checked to be a small
    PNG image; anything else is a problem to report, never stored."""
    if not value:
        return None
    from PIL import Image, UnidentifiedImageError

    problem = "The drawn signature could not be read; clear it and draw again, or leave it."
    if not value.startswith(DRAWN_PREFIX) or len(value) > MAX_DRAWN_BYTES * 4 // 3 + 64:
        problems.append(problem)
        return None
    try:
        data = base64.b64decode(value.removeprefix(DRAWN_PREFIX), validate=True)
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "PNG" or image.width > MAX_DRAWN_PIXELS[0] \
                    or image.height > MAX_DRAWN_PIXELS[1]:
                raise ValueError(image.format)
            image.verify()
    except (ValueError, OSError, UnidentifiedImageError):
        problems.append(problem)
        return None
    return data


def document(session: Session, services: Services, user: m.StaffUser, public_id: str,
             consent_id: uuid.UUID, meta: RequestMeta) -> tuple[str, bytes]:
    view(session, services, user, public_id, consent_id, meta)
    row = session.get(m.ConsentDocument, consent_id)
    if row is None:
        raise NotFound()
    content = services.vault.ready(session).decrypt(
        row.content_enc, table="consent_document", column="content", row_id=row.consent_id)
    if hashlib.sha256(content).hexdigest() != row.sha256:
        raise NotFound()
    return row.media_type, content


def revoke_consent(session: Session, services: Services, user: m.StaffUser, public_id: str,
                   consent_id: uuid.UUID, *, confirmed: bool, how: str,
                   meta: RequestMeta) -> m.Consent:
    participant = case_managed(session, services, user, public_id, meta,
                               AuditAction.CONSENT_REVOKE)
    row = _consent(session, consent_id, participant.id)
    if not confirmed:
        raise InvalidInput(*["Tick the box to confirm that the participant wants to "
                                 "revoke it."])
    now = utcnow()
    try:
        revoke(repo.directive(row), now, repo.occurred_events(session, participant.id))
    except ConsentError as exc:
        raise InvalidInput(*exc.problems) from None
    row.status = ConsentStatus.REVOKED.value
    row.revoked_at = now
    row.revoked_by = "participant, with " + user.email
    row.revocation_method = (how.strip() or "in person")[:100]
    services.audit.append(session, _event(services, AuditAction.CONSENT_REVOKE, user, meta,
                                          participant.id, row.id, method=row.revocation_method))
    return row


def participant_consents(session: Session, services: Services, user: m.StaffUser,
                         public_id: str, meta: RequestMeta
                         ) -> tuple[m.Participant, list[dict[str, Any]]]:
    """Every consent of the participant, newest first, with the participant's own change
    requests; audited."""
    participant = case_managed(session, services, user, public_id, meta,
                               AuditAction.CONSENT_VIEW)
    summaries = consent_summaries(session, participant.id, utcnow())
    services.audit.append(session, staff_event(
        AuditAction.CONSENT_VIEW, user, meta, participant_id=participant.id,
        consent_ids=tuple(str(s["id"]) for s in summaries), purpose=Purpose.CAREMGT.value,
        decision="permit", reasons=("care_team",),
        policy_version=services.policy.version, detail={"view": "list"}))
    requests = change_requests(session, services, [uuid.UUID(s["id"]) for s in summaries
                                                   if s["status"] == "draft"])
    for summary in summaries:
        summary["requested"] = requests.get(uuid.UUID(summary["id"]))
    return participant, summaries
