"""Referral, enrolment, care-team and sign-in-code pages (thin: parse, one service, render)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from portal.auth import service as auth_service
from portal.auth.guards import request_meta
from portal.auth.service import ENROLMENT_CODE_HOURS
from portal.auth.sessions import Principal
from portal.config import Settings
from portal.db import models as m
from portal.kernel.errors import InvalidInput, NotFound, Refused
from portal.referrals import service as rs
from portal.web.deps import RowNumber, db_of, found_or, services_of, staff_of
from portal.web.i18n import LANGUAGE_NAMES


class ReferralController(Controller):
    path = "/referrals"

    @get("/", sync_to_thread=True)
    def index(self, request: Request[Any, Any, Any], state: State,
              principal: NamedDependency[Principal | None]) -> Template:
        who, user = staff_of(principal)
        return self._page(request, state, who, user, {}, None, 200,
                          request.query_params.get("done", ""))

    def _page(self, request: Request[Any, Any, Any], state: State, who: Principal,
              user: m.StaffUser, form: dict[str, str], error: str | None, status: int,
              done: str = "") -> Template:
        services = services_of(state)
        referrer, decider = rs.is_referrer(services, user), rs.decides_referrals(services, user)
        if not referrer and not decider:
            raise PermissionDeniedException("Referrals are made by police officers and "
                                            "handled by case managers.")
        with db_of(state).begin() as db:
            mine = rs.own_referrals(db, services, user) if referrer else []
            queue = rs.pending(db, services, user, request_meta(request, who)) \
                if decider else []
        return Template("referrals/index.html", status_code=status, context={
            "user": user, "mine": mine, "queue": queue, "form": form, "error": error,
            "referrer": referrer, "done": done})

    @post("/", sync_to_thread=True)
    def create(self, request: Request[Any, Any, Any], state: State,
               principal: NamedDependency[Principal | None],
               data: URLEncodedBody[dict[str, str]]) -> Response[Any]:
        who, user = staff_of(principal)
        error = None
        with db_of(state).begin() as db:
            try:
                rs.refer(db, services_of(state), user, pathway=data.get("pathway", ""),
                         given=data.get("given", ""), family=data.get("family", ""),
                         born=data.get("born", ""), where=data.get("where", ""),
                         meta=request_meta(request, who))
            except Refused as exc:
                raise PermissionDeniedException(str(exc)) from None
            except InvalidInput as exc:
                error = str(exc)
        if error:
            return self._page(request, state, who, user, data, error, 400)
        return Redirect("/referrals/?done=sent")

    @post("/{referral_id:str}/decide", sync_to_thread=True)
    def decide(self, referral_id: FromPath[str], request: Request[Any, Any, Any],
               state: State, principal: NamedDependency[Principal | None],
               data: URLEncodedBody[dict[str, str]]) -> Response[Any]:
        who, user = staff_of(principal)
        error = None
        participant = None
        try:
            rid = uuid.UUID(referral_id)
        except ValueError:
            raise NotFoundException() from None
        with db_of(state).begin() as db:
            try:
                participant = rs.decide_referral(
                    db, services_of(state), user, rid, accept=data.get("decision") == "accept",
                    reason=data.get("reason", ""), meta=request_meta(request, who))
            except NotFound:
                raise NotFoundException() from None
            except InvalidInput as exc:
                error = str(exc)
        if error:
            return self._page(request, state, who, user, {}, error, 400)
        if participant is not None:
            # The care-team page confirms it: whom was enrolled (by name), and what next.
            return Redirect(f"/participants/{participant.public_id}/care-team?done=enrolled",
                            status_code=303)
        return Redirect("/referrals/?done=declined")


class CareTeamController(Controller):
    path = "/participants/{public_id:str}"

    @get("/care-team", sync_to_thread=True)
    def page(self, public_id: FromPath[str], request: Request[Any, Any, Any], state: State,
             principal: NamedDependency[Principal | None]) -> Template:
        who, user = staff_of(principal)
        done = request.query_params.get("done", "")
        return self._render(request, state, who, user, public_id, None, 200,
                            done=done if done in ("enrolled",) else "")

    def _render(self, request: Request[Any, Any, Any], state: State, who: Principal,
                user: m.StaffUser, public_id: str, error: str | None, status: int,
                done: str = "") -> Template:
        def read(db: Session) -> tuple[rs.Person, list[tuple[Any, ...]],
                                       list[m.Organization], list[auth_service.SignInNotice]]:
            person, links, others = rs.care_team_page(db, services_of(state), user, public_id,
                                                      request_meta(request, who))
            # Sign-in changes and pauses, for the case manager (the view above is audited).
            notices = auth_service.sign_in_notices(db, person.public_id,
                                                   services_of(state).settings.zone)
            return person, [(link.id, link.organization.name, link.start_date, link.end_date,
                             link.organization_id == user.organization_id)
                            for link in links], others, notices

        person, rows, others, notices = found_or(state, read)
        return Template("referrals/care_team.html", status_code=status, context={
            "user": user, "public_id": person.public_id, "person": person, "rows": rows,
            "others": others, "error": error, "done": done, "sign_in_notices": notices})

    @post("/care-team", sync_to_thread=True)
    def add(self, public_id: FromPath[str], request: Request[Any, Any, Any], state: State,
            principal: NamedDependency[Principal | None],
            data: URLEncodedBody[dict[str, str]]) -> Response[Any]:
        who, user = staff_of(principal)
        try:
            found_or(state, lambda db: rs.add_member(
                db, services_of(state), user, public_id, data.get("organization", ""),
                request_meta(request, who)))
        except InvalidInput as exc:
            return self._render(request, state, who, user, public_id, str(exc), 400)
        return Redirect(f"/participants/{public_id.upper()}/care-team")

    @post("/care-team/{member_id:int}/end", sync_to_thread=True)
    def end(self, public_id: FromPath[str], member_id: RowNumber,
            request: Request[Any, Any, Any], state: State,
            principal: NamedDependency[Principal | None]) -> Response[Any]:
        who, user = staff_of(principal)
        try:
            found_or(state, lambda db: rs.end_member(
                db, services_of(state), user, public_id, member_id,
                request_meta(request, who)))
        except InvalidInput as exc:
            return self._render(request, state, who, user, public_id, str(exc), 400)
        return Redirect(f"/participants/{public_id.upper()}/care-team")

    @get("/enrolment-code", sync_to_thread=True)
    def confirm_code(self, public_id: FromPath[str], request: Request[Any, Any, Any],
                     state: State, principal: NamedDependency[Principal | None]) -> Template:
        """What issuing a code does, asked before anything changes."""
        who, user = staff_of(principal)
        return self._confirm_code(request, state, who, user, public_id)

    def _confirm_code(self, request: Request[Any, Any, Any], state: State, who: Principal,
                      user: m.StaffUser, public_id: str) -> Template:
        try:
            person = found_or(state, lambda db: rs.code_confirmation(
                db, services_of(state), user, public_id, request_meta(request, who)))
        except InvalidInput as exc:
            return self._render(request, state, who, user, public_id, str(exc), 400)
        return Template("referrals/code_confirm.html", context={
            "user": user, "person": person, "public_id": person.public_id,
            "language": LANGUAGE_NAMES.get(person.language, LANGUAGE_NAMES["en"])})

    @post("/enrolment-code", sync_to_thread=True)
    def code(self, public_id: FromPath[str], request: Request[Any, Any, Any], state: State,
             principal: NamedDependency[Principal | None],
             data: URLEncodedBody[dict[str, str]]) -> Response[Any]:
        """Post-redirect-get: the code is kept sealed for this session's next page, which
        shows it once; it is never in a URL and never stored readable beyond that."""
        who, user = staff_of(principal)
        if data.get("confirm") != "issue":
            # Not confirmed (an old form, a stray post): ask, change nothing.
            return self._confirm_code(request, state, who, user, public_id)
        try:
            canonical = found_or(state, lambda db: rs.issue_code_for_display(
                db, services_of(state), user, public_id, who.session_id,
                request_meta(request, who)))
        except InvalidInput as exc:
            return self._render(request, state, who, user, public_id, str(exc), 400)
        return Redirect(f"/participants/{canonical}/enrolment-code/issued", status_code=303)

    @get("/enrolment-code/issued", sync_to_thread=True)
    def issued(self, public_id: FromPath[str], request: Request[Any, Any, Any], state: State,
               principal: NamedDependency[Principal | None]) -> Template:
        """The new code and the printable slip, once: a reload shows neither, issues none."""
        who, user = staff_of(principal)
        person, code = found_or(state, lambda db: rs.take_issued_code(
            db, services_of(state), user, public_id, who.session_id,
            request_meta(request, who)))
        settings: Settings = state.settings
        return Template("referrals/code_issued.html",
                        headers={"cache-control": "no-store"}, context={
            "user": user, "person": person, "public_id": person.public_id, "code": code,
            "slip_language": person.language if person.language in LANGUAGE_NAMES else "en",
            "enrol_url": settings.base_url.rstrip("/") + "/me/enrol",
            "hours": ENROLMENT_CODE_HOURS})
