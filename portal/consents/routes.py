"""Consent pages for case managers, with the participant present: capture a draft, review the
plain-language text, sign on the device or attach a wet-ink scan, download the copy, revoke."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State, UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, MultipartBody, URLEncodedBody
from litestar.response import Redirect, Template
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.auth.guards import request_meta
from portal.auth.sessions import Principal
from portal.consents import service as cs
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.types import utcnow
from portal.domain.consent import EVENT_LABELS, ConsentKind
from portal.domain.consent_text import WORDS
from portal.domain.vocabulary import DataCategory, Purpose
from portal.kernel.errors import InvalidInput
from portal.web.deps import db_of, found_or, services_of, staff_of

KIND_LABELS = {
    ConsentKind.ROI: "Multi-party release (no substance use treatment records)",
    ConsentKind.PART2: "42 CFR Part 2 consent (substance use treatment records)",
    ConsentKind.PART2_TPO: "42 CFR Part 2 consent for treatment, payment and operations",
    ConsentKind.PART2_CRIMINAL_JUSTICE: "42 CFR 2.35 criminal-justice consent (court or "
                                        "probation monitoring)",
}


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFoundException() from None


def _form(data: dict[str, Any]) -> cs.ConsentForm:
    def many(key: str) -> list[str]:
        value = data.get(key, [])
        return [value] if isinstance(value, str) else [str(v) for v in value]

    def one(key: str) -> str:
        value = data.get(key, "")
        return value if isinstance(value, str) else (value[0] if value else "")

    return cs.ConsentForm(kind=one("kind"), disclosers=many("disclosers"),
                          recipients=many("recipients"), categories=many("categories"),
                          purposes=many("purposes"), expires_on=one("expires_on"),
                          expiry_event=one("expiry_event"), language=one("language") or "en",
                          revocable_after=one("revocable_after"),
                          revocable_after_event=one("revocable_after_event"))


def _form_context(session: Session, public_id: str, form: cs.ConsentForm | None,
                  **extra: Any) -> dict[str, Any]:
    today = utcnow().date()
    participant = repo.participant_by_public_id(session, public_id)
    team = [] if participant is None else list(session.scalars(
        select(m.Organization).join(m.CareTeamMember,
                                    m.CareTeamMember.organization_id == m.Organization.id)
        .where(m.CareTeamMember.participant_id == participant.id,
               m.CareTeamMember.current_on(today))
        .distinct().order_by(m.Organization.name)))
    shown = participant.public_id if participant is not None else public_id.upper()
    return {"public_id": shown, "team": team, "form": form, "kinds": KIND_LABELS,
            "events": {e.value: label for e, label in EVENT_LABELS.items()},
            "categories": list(DataCategory),
            "purposes": [Purpose.CAREMGT, Purpose.TREAT, Purpose.LEADMON], **extra}


class ConsentController(Controller):
    """Every handler runs its service call through `found_or`: a refused attempt (the user's
    agency is not the participant's case manager) is audited and committed, then answered
    "not found"; bad input rolls back and is shown with what to fix."""

    path = "/participants/{public_id:str}/consents"

    @get("/", sync_to_thread=True)
    def index(self, public_id: FromPath[str], request: Request[Any, Any, Any], state: State,
              principal: NamedDependency[Principal | None]) -> Template:
        who, user = staff_of(principal)
        participant, rows = found_or(state, lambda db: cs.participant_consents(
            db, services_of(state), user, public_id, request_meta(request, who)))
        return Template("consents/index.html", context={
            "user": user, "public_id": participant.public_id, "consents": rows,
            "kinds": KIND_LABELS})

    @get("/new", sync_to_thread=True)
    def new(self, public_id: FromPath[str], request: Request[Any, Any, Any], state: State,
            principal: NamedDependency[Principal | None]) -> Template:
        who, user = staff_of(principal)

        def read(db: Session) -> dict[str, Any]:
            cs.open_form(db, services_of(state), user, public_id, request_meta(request, who))
            return _form_context(db, public_id, None, user=user)

        return Template("consents/form.html", context=found_or(state, read))

    @post("/", sync_to_thread=True)
    def create(self, public_id: FromPath[str], request: Request[Any, Any, Any], state: State,
               principal: NamedDependency[Principal | None],
               data: URLEncodedBody[dict[str, Any]]) -> Response[Any]:
        return self._save(public_id, None, request, state, principal, data)

    @get("/{consent_id:str}/edit", sync_to_thread=True)
    def edit(self, public_id: FromPath[str], consent_id: FromPath[str],
             request: Request[Any, Any, Any], state: State,
             principal: NamedDependency[Principal | None]) -> Template:
        who, user = staff_of(principal)

        def read(db: Session) -> dict[str, Any]:
            view = cs.view(db, services_of(state), user, public_id, _uuid(consent_id),
                           request_meta(request, who))
            return _form_context(db, public_id, cs.form_of(view.row), user=user,
                                 consent_id=consent_id)

        return Template("consents/form.html", context=found_or(state, read))

    @post("/{consent_id:str}", sync_to_thread=True)
    def update(self, public_id: FromPath[str], consent_id: FromPath[str],
               request: Request[Any, Any, Any], state: State,
               principal: NamedDependency[Principal | None],
               data: URLEncodedBody[dict[str, Any]]) -> Response[Any]:
        return self._save(public_id, _uuid(consent_id), request, state, principal, data)

    def _save(self, public_id: str, consent_id: uuid.UUID | None,
              request: Request[Any, Any, Any], state: State, principal: Principal | None,
              data: dict[str, Any]) -> Response[Any]:
        who, user = staff_of(principal)
        form = _form(data)
        try:
            saved = found_or(state, lambda db: cs.save_draft(
                db, services_of(state), user, public_id, form, request_meta(request, who),
                consent_id).id)
        except InvalidInput as exc:
            with db_of(state).begin() as db:
                context = _form_context(db, public_id, form, user=user, problems=exc.problems,
                                        consent_id=str(consent_id) if consent_id else None)
            return Template("consents/form.html", status_code=400, context=context)
        return Redirect(f"/participants/{public_id.upper()}/consents/{saved}")

    @get("/{consent_id:str}", sync_to_thread=True)
    def show(self, public_id: FromPath[str], consent_id: FromPath[str],
             request: Request[Any, Any, Any], state: State,
             principal: NamedDependency[Principal | None]) -> Template:
        who, user = staff_of(principal)
        return self._show_with(public_id, consent_id, request, state, user, who, [], 200)

    @post("/{consent_id:str}/sign", sync_to_thread=True)
    def sign(self, public_id: FromPath[str], consent_id: FromPath[str],
             request: Request[Any, Any, Any], state: State,
             principal: NamedDependency[Principal | None],
             data: MultipartBody[dict[str, Any]]) -> Response[Any]:
        who, user = staff_of(principal)
        upload = data.get("scan")
        scan = None
        if isinstance(upload, UploadFile) and upload.filename:
            scan = upload.file.read(cs.MAX_SCAN_BYTES + 1)
        try:
            found_or(state, lambda db: cs.sign(
                db, services_of(state), user, public_id, _uuid(consent_id),
                signer_name=str(data.get("signer_name", "")),
                relation=str(data.get("relation", "self")),
                agreed=data.get("agree") == "yes", scan=scan,
                drawn=str(data.get("drawn_signature") or ""), meta=request_meta(request, who)))
        except InvalidInput as exc:
            return self._show_with(public_id, consent_id, request, state, user, who,
                                   exc.problems, 400)
        return Redirect(f"/participants/{public_id.upper()}/consents/{consent_id}#signed")

    @post("/{consent_id:str}/new-version", sync_to_thread=True)
    def new_version(self, public_id: FromPath[str], consent_id: FromPath[str],
                    request: Request[Any, Any, Any], state: State,
                    principal: NamedDependency[Principal | None]) -> Response[Any]:
        """Change an active consent: a new draft version to review and sign with the
        participant (the active one stays in force until then)."""
        who, user = staff_of(principal)
        try:
            draft_id = found_or(state, lambda db: cs.new_version(
                db, services_of(state), user, public_id, _uuid(consent_id),
                request_meta(request, who)).id)
        except InvalidInput as exc:
            return self._show_with(public_id, consent_id, request, state, user, who,
                                   exc.problems, 400)
        return Redirect(f"/participants/{public_id.upper()}/consents/{draft_id}/edit")

    @post("/{consent_id:str}/revoke", sync_to_thread=True)
    def revoke(self, public_id: FromPath[str], consent_id: FromPath[str],
               request: Request[Any, Any, Any], state: State,
               principal: NamedDependency[Principal | None],
               data: URLEncodedBody[dict[str, str]]) -> Response[Any]:
        who, user = staff_of(principal)
        try:
            found_or(state, lambda db: cs.revoke_consent(
                db, services_of(state), user, public_id, _uuid(consent_id),
                confirmed=data.get("confirm") == "yes", how=data.get("how", ""),
                meta=request_meta(request, who)))
        except InvalidInput as exc:
            return self._show_with(public_id, consent_id, request, state, user, who,
                                   exc.problems, 400)
        return Redirect(f"/participants/{public_id.upper()}/consents/{consent_id}")

    def _show_with(self, public_id: str, consent_id: str, request: Request[Any, Any, Any],
                   state: State, user: m.StaffUser, who: Principal, problems: list[str],
                   status: int) -> Template:
        view = found_or(state, lambda db: cs.view(db, services_of(state), user, public_id,
                                                  _uuid(consent_id), request_meta(request, who)))
        return Template("consents/show.html", status_code=status, context={
            "user": user, "public_id": public_id.upper(), "view": view, "kinds": KIND_LABELS,
            "problems": problems,
            "agree_text": WORDS.get(view.row.language, WORDS["en"])["agree"]})

    @get("/{consent_id:str}/document", sync_to_thread=True)
    def document(self, public_id: FromPath[str], consent_id: FromPath[str],
                 request: Request[Any, Any, Any], state: State,
                 principal: NamedDependency[Principal | None]) -> Response[bytes]:
        who, user = staff_of(principal)
        media_type, content = found_or(state, lambda db: cs.document(
            db, services_of(state), user, public_id, _uuid(consent_id),
            request_meta(request, who)))
        extension = {"application/pdf": "pdf", "image/png": "png"}.get(media_type, "jpg")
        return Response(content, media_type=media_type, headers={
            "content-disposition": f'attachment; filename="consent-{consent_id}.{extension}"',
            "cache-control": "no-store"})
