"""Staff workspace pages: caseload, participant page, why-withheld, add record, break-glass.
Thin: parse, call one service in one transaction, render. One URL serves the full page and,
for an htmx request, only the fragment."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, URLEncodedBody
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from portal.auth.guards import request_meta
from portal.auth.sessions import Principal
from portal.db import models as m
from portal.kernel.errors import InvalidInput, Refused
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services
from portal.web.deps import db_of, found_or, services_of, staff_of
from portal.workspace import people
from portal.workspace import service as ws


def local_time(zone: ZoneInfo) -> Callable[[datetime], str]:
    """A moment as staff read it: the program's local date and time, with the zone's
    abbreviation (PORTAL_TIMEZONE; everything is stored in UTC)."""
    def say(at: datetime) -> str:
        return f"{at.astimezone(zone):%Y-%m-%d %H:%M %Z}"
    return say


def _local(state: State) -> Callable[[datetime], str]:
    return local_time(services_of(state).settings.zone)


class WorkspaceController(Controller):
    @get("/staff", sync_to_thread=True, name="caseload")
    def caseload(self, request: HTMXRequest, state: State,
                 principal: NamedDependency[Principal | None]) -> Template:
        who, user = staff_of(principal)
        query = request.query_params.get("q", "")[:200]
        after = request.query_params.get("after") or None
        urgent = request.query_params.get("urgent") == "1"
        changes = request.query_params.get("changes") == "1"
        with db_of(state).begin() as db:
            page = ws.caseload(db, services_of(state), user, request_meta(request, who),
                               query=query, after=after, urgent_only=urgent,
                               consent_changes_only=changes)
        context = {"user": user, "caseload": page, "urgent": urgent, "changes": changes,
                   "local_time": _local(state)}
        if request.htmx and request.htmx.target == "caseload-rows":
            return Template("workspace/_caseload_rows.html", context=context)
        return Template("workspace/caseload.html", context=context)

    @get("/participants/{public_id:str}", sync_to_thread=True, name="participant")
    def participant(self, public_id: FromPath[str], request: Request[Any, Any, Any],
                    state: State, principal: NamedDependency[Principal | None]) -> Template:
        who, user = staff_of(principal)
        page = found_or(state, lambda db: ws.participant_page(
            db, services_of(state), user, public_id, request_meta(request, who)))
        return Template("workspace/participant.html", context={
            "user": user, "page": page, "local_time": _local(state)})

    @get("/participants/{public_id:str}/why/{category:str}", sync_to_thread=True)
    def why(self, public_id: FromPath[str], category: FromPath[str], request: HTMXRequest,
            state: State, principal: NamedDependency[Principal | None]) -> Template:
        who, user = staff_of(principal)
        lines = found_or(state, lambda db: ws.explain_category(
            db, services_of(state), user, public_id, category, request_meta(request, who)))
        context = {"user": user, "lines": lines, "public_id": public_id.upper(),
                   "category": category}
        if request.htmx:
            return Template("workspace/_why.html", context=context)
        return Template("workspace/why.html", context=context)

    @post("/participants/{public_id:str}/records", sync_to_thread=True)
    def add_record(self, public_id: FromPath[str], request: Request[Any, Any, Any],
                   state: State, principal: NamedDependency[Principal | None],
                   data: URLEncodedBody[dict[str, str]]) -> Response[Any]:
        return _write(request, state, principal, public_id, data, "saved",
                      lambda db, services, user, meta: ws.add_record(
                          db, services, user, public_id, data.get("category", ""),
                          data.get("title", ""), data.get("body", ""),
                          data.get("effective", ""), meta))

    @post("/participants/{public_id:str}/goals", sync_to_thread=True)
    def add_goal(self, public_id: FromPath[str], request: Request[Any, Any, Any],
                 state: State, principal: NamedDependency[Principal | None],
                 data: URLEncodedBody[dict[str, str]]) -> Response[Any]:
        return _write(request, state, principal, public_id, data, "plan-heading",
                      lambda db, services, user, meta: ws.add_goal(
                          db, services, user, public_id, data.get("domain", ""),
                          data.get("summary", ""), data.get("detail", ""),
                          data.get("urgent") == "1", meta))

    @post("/participants/{public_id:str}/goals/{goal_id:str}", sync_to_thread=True)
    def update_goal(self, public_id: FromPath[str], goal_id: FromPath[str],
                    request: Request[Any, Any, Any], state: State,
                    principal: NamedDependency[Principal | None],
                    data: URLEncodedBody[dict[str, str]]) -> Response[Any]:
        return _write(request, state, principal, public_id, data, f"goal-{goal_id}",
                      lambda db, services, user, meta: ws.update_goal(
                          db, services, user, public_id, goal_id, data.get("status", ""),
                          data.get("note", ""), meta))

    @get("/break-glass", sync_to_thread=True)
    def break_glass_search(self, request: Request[Any, Any, Any], state: State,
                           principal: NamedDependency[Principal | None]) -> Template:
        who, user = staff_of(principal)
        services = services_of(state)
        if not ws.may_break_glass(services, user):
            raise PermissionDeniedException("Your role cannot use emergency access.")
        query = request.query_params.get("q", "")[:200]
        found: list[ws.EmergencyMatch] = []
        if query.strip():
            with db_of(state).begin() as db:
                found = ws.emergency_search(db, services, user, query,
                                            request_meta(request, who))
        return Template("workspace/break_glass_search.html", context={
            "user": user, "query": query, "found": found})

    @get("/break-glass/{public_id:str}", sync_to_thread=False)
    def break_glass_form(self, public_id: FromPath[str], state: State,
                         principal: NamedDependency[Principal | None]) -> Template:
        _, user = staff_of(principal)
        if not ws.may_break_glass(services_of(state), user):
            raise PermissionDeniedException("Your role cannot use emergency access.")
        return Template("workspace/break_glass_form.html", context={
            "user": user, "public_id": public_id.upper(), "form": {},
            "minutes": services_of(state).settings.break_glass_minutes})

    @post("/break-glass/{public_id:str}", sync_to_thread=True)
    def break_glass(self, public_id: FromPath[str], request: Request[Any, Any, Any],
                    state: State, principal: NamedDependency[Principal | None],
                    data: URLEncodedBody[dict[str, str]]) -> Response[Any]:
        who, user = staff_of(principal)
        services = services_of(state)
        error = None
        try:
            minutes = int(data.get("minutes") or services.settings.break_glass_minutes)
        except ValueError:
            minutes = 0
        with db_of(state).begin() as db:
            participant = people.by_public_id(db, public_id)
            if participant is None:
                raise NotFoundException()
            try:
                services.access.grant_break_glass(
                    db, user, participant, reason=data.get("reason", ""),
                    emergency_nature=data.get("emergency_nature", ""),
                    facility=data.get("facility", ""), minutes=minutes,
                    meta=request_meta(request, who))
            except ValueError as exc:
                error = str(exc)
            except Refused as exc:
                error = str(exc)
        if error is not None:
            return Template("workspace/break_glass_form.html", status_code=400, context={
                "user": user, "public_id": public_id.upper(), "form": data,
                "minutes": minutes, "error": error})
        # The summary: who this is, the emergency banner with its local end time, then the
        # sections emergency access opens (the page puts them first).
        return Redirect(f"/participants/{public_id.upper()}#summary")


def _write(request: Request[Any, Any, Any], state: State, principal: Principal | None,
           public_id: str, form: dict[str, str], anchor: str,
           write: Callable[[Session, Services, m.StaffUser, RequestMeta], object],
           ) -> Response[Any]:
    """One write from a participant-page form in one transaction: back to the page on
    success; on bad input, the page again with the message and what was typed (400)."""
    who, user = staff_of(principal)
    services = services_of(state)
    meta = request_meta(request, who)
    try:  # bad input rolls back; a refused attempt commits its audit event, then 404
        found_or(state, lambda db: write(db, services, user, meta))
        error = None
    except InvalidInput as exc:
        error = str(exc)
    if error is None:
        return Redirect(f"/participants/{public_id.upper()}#{anchor}")
    with db_of(state).begin() as db:
        page = ws.participant_page(db, services, user, public_id, meta)
    return Template("workspace/participant.html", status_code=400, context={
        "user": user, "page": page, "error": error, "form": form,
        "local_time": _local(state)})
