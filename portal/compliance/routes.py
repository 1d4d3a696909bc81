"""The compliance console: audit search and event detail, integrity verification with progress,
the break-glass review queue, the accounting of disclosures (page, CSV, PDF) and oversight.

Only users whose role policy allows viewing the audit log for healthcare operations get in
(everyone else: 403). Thin: parse, call one service in one transaction, render. One URL serves
the full page and, for an htmx request, only the fragment it swaps. Every page works without
JavaScript: forms post and redirect, the verification page offers a refresh link.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from litestar import Controller, Request, Response, Router, get, post
from litestar.datastructures import CacheControlHeader, ResponseHeader, State
from litestar.di import NamedDependency
from litestar.exceptions import (
    ClientException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.params import FromPath, URLEncodedBody
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_409_CONFLICT
from sqlalchemy.orm import Session, sessionmaker

from portal.auth.guards import request_meta, require_staff
from portal.auth.sessions import Principal
from portal.compliance import (
    console,
    disclosures,
    event,
    integrity,
    oversight,
    reports,
    review,
    search,
)
from portal.db import models as m
from portal.kernel.errors import Conflict, InvalidInput, NotFound
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services
from portal.web.deps import RowNumber

T = TypeVar("T")

REVIEW_FILTERS: dict[str, review.ReviewFilter] = {
    "pending": "pending", "reviewed": "reviewed", "all": "all"}


def _services(state: State) -> Services:
    services: Services = state.services
    return services


def _db(state: State) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = state.sessions
    return factory


def _officer(state: State, request: Request[Any, Any, Any],
             principal: Principal | None) -> tuple[m.StaffUser, RequestMeta]:
    """The signed-in staff user, when the role policy lets them read the audit log."""
    who = require_staff(principal)
    assert who.staff is not None
    if not console.may_review(_services(state), who.staff):
        raise PermissionDeniedException(
            "Only compliance officers can use the compliance console.")
    return who.staff, request_meta(request, who)


def _exporter(state: State, request: Request[Any, Any, Any],
              principal: Principal | None) -> tuple[m.StaffUser, RequestMeta]:
    user, meta = _officer(state, request, principal)
    if not console.may_export(_services(state), user):
        raise PermissionDeniedException("Your role cannot export from the audit log.")
    return user, meta


def _call(fn: Callable[[], T]) -> T:
    """Service errors as HTTP errors with a message (nothing was changed)."""
    try:
        return fn()
    except NotFound:
        raise NotFoundException("Not found.") from None
    except Conflict as exc:
        raise ClientException(str(exc), status_code=HTTP_409_CONFLICT) from None
    except InvalidInput as exc:
        raise ClientException(str(exc)) from None


def _fragment(request: HTMXRequest, target: str) -> bool:
    """An htmx request swapping ``target`` (a history restore needs the whole page)."""
    htmx = request.htmx
    return bool(htmx) and not htmx.history_restore_request and htmx.target == target


class ComplianceController(Controller):
    @get("/", sync_to_thread=False, name="compliance")
    def home(self, request: Request[Any, Any, Any], state: State,
             principal: NamedDependency[Principal | None]) -> Redirect:
        _officer(state, request, principal)
        return Redirect("/compliance/audit")

    # --- audit search ---------------------------------------------------------------------

    @get("/audit", sync_to_thread=True, name="compliance_audit")
    def audit_search(self, request: HTMXRequest, state: State,
                     principal: NamedDependency[Principal | None]) -> Template:
        user, meta = _officer(state, request, principal)
        filters = search.AuditFilters.from_query(request.query_params)
        raw_before = request.query_params.get("before") or ""
        error = None
        page = None
        with _db(state).begin() as db:
            organizations = search.organizations(db)
        try:
            before = int(raw_before) if raw_before else None
            if before is not None and before < 1:
                raise ValueError
        except ValueError:
            before, error = None, "That page of results does not exist; start again."
        if error is None:
            try:
                with _db(state).begin() as db:
                    page = search.search(db, _services(state), user, meta, filters, before=before)
            except InvalidInput as exc:
                error = str(exc)
        context = {"user": user, "page": page, "filters": filters, "error": error,
                   "actions": search.ACTIONS, "organizations": organizations}
        status = 400 if error else 200
        if _fragment(request, "audit-results"):
            return Template("compliance/_audit_rows.html", context=context, status_code=status)
        return Template("compliance/audit.html", context=context, status_code=status)

    @get("/audit/{chain:str}/{seq:int}", sync_to_thread=True)
    def audit_event(self, chain: FromPath[str], seq: RowNumber,
                    request: Request[Any, Any, Any], state: State,
                    principal: NamedDependency[Principal | None]) -> Template:
        user, meta = _officer(state, request, principal)
        with _db(state).begin() as db:
            detail = _call(lambda: event.event_detail(db, _services(state), user, meta, chain, seq))
        return Template("compliance/event.html", context={"user": user, "event": detail})

    # --- integrity --------------------------------------------------------------------------

    def _integrity_page(self, state: State, user: m.StaffUser, run: integrity.RunView | None,
                        status_code: int = 200) -> Template:
        with _db(state).begin() as db:
            info = integrity.integrity(db, _services(state))
        return Template("compliance/integrity.html", status_code=status_code, context={
            "user": user, "info": info, "run": run,
            "may_export": console.may_export(_services(state), user)})

    def _progress(self, state: State, view: integrity.RunView) -> Template:
        """The progress fragment; once the run has finished, with the "Last verification"
        section again (swapped out of band), so the page shows this run's result."""
        context: dict[str, Any] = {"run": view}
        if view.status != "running":
            with _db(state).begin() as db:
                context["info"] = integrity.integrity(db, _services(state))
        return Template("compliance/_verify_progress.html", context=context)

    @get("/integrity", sync_to_thread=True)
    def integrity(self, request: Request[Any, Any, Any], state: State,
                  principal: NamedDependency[Principal | None]) -> Template:
        user, _ = _officer(state, request, principal)
        return self._integrity_page(state, user, None)

    @post("/integrity/verify", sync_to_thread=True, status_code=200)
    def verify(self, request: HTMXRequest, state: State,
               principal: NamedDependency[Principal | None]) -> Response[Any]:
        user, meta = _officer(state, request, principal)
        run = integrity.start_verification(_db(state), _services(state), user, meta)
        view = integrity.run_view(_db(state), run.id)
        if request.htmx:
            return self._progress(state, view)
        return Redirect(f"/compliance/integrity/runs/{run.id}", status_code=303)

    @get("/integrity/runs/{run_id:uuid}", sync_to_thread=True)
    def verification_run(self, run_id: FromPath[uuid.UUID], request: HTMXRequest,
                         state: State, principal: NamedDependency[Principal | None]
                         ) -> Template:
        user, _ = _officer(state, request, principal)
        view = _call(lambda: integrity.run_view(_db(state), run_id))
        if request.htmx and not request.htmx.history_restore_request:
            return self._progress(state, view)
        return self._integrity_page(state, user, view)

    @get("/integrity/checkpoints.jsonl", sync_to_thread=True)
    def checkpoints(self, request: Request[Any, Any, Any], state: State,
                    principal: NamedDependency[Principal | None]) -> Response[bytes]:
        user, meta = _exporter(state, request, principal)
        body = integrity.export_checkpoints(_db(state), _services(state), user, meta)
        return Response(body, media_type="application/x-ndjson", headers={
            "content-disposition": 'attachment; filename="audit-checkpoints.jsonl"'})

    # --- break-glass review -------------------------------------------------------------------

    def _review_page(self, state: State, user: m.StaffUser, meta: RequestMeta, status: str, *,
                     error: str | None = None, error_grant: str | None = None,
                     form: dict[str, str] | None = None, done: str | None = None,
                     status_code: int = 200) -> Template:
        chosen = REVIEW_FILTERS.get(status, "pending")
        with _db(state).begin() as db:
            grants = review.review_queue(db, _services(state), user, meta, chosen)
        return Template("compliance/break_glass.html", status_code=status_code, context={
            "user": user, "grants": grants, "status": chosen, "error": error,
            "error_grant": error_grant, "form": form or {}, "done": done})

    @get("/break-glass", sync_to_thread=True)
    def break_glass(self, request: Request[Any, Any, Any], state: State,
                    principal: NamedDependency[Principal | None]) -> Template:
        user, meta = _officer(state, request, principal)
        done = request.query_params.get("done") or None
        return self._review_page(state, user, meta,
                                 request.query_params.get("status") or "pending",
                                 done=done if done and len(done) <= 36 else None)

    @post("/break-glass/{grant_id:uuid}", sync_to_thread=True)
    def review(self, grant_id: FromPath[uuid.UUID], request: Request[Any, Any, Any],
               state: State, principal: NamedDependency[Principal | None],
               data: URLEncodedBody[dict[str, str]]) -> Response[Any]:
        user, meta = _officer(state, request, principal)
        error: str | None = None
        code = 400
        try:
            with _db(state).begin() as db:
                review.review_grant(db, _services(state), user, meta, grant_id,
                                data.get("finding", ""), data.get("notes", ""))
        except NotFound:
            raise NotFoundException("No such emergency access.") from None
        except Conflict as exc:
            error, code = str(exc), HTTP_409_CONFLICT
        except InvalidInput as exc:
            error = str(exc)
        if error is not None:
            return self._review_page(state, user, meta, "all", error=error,
                                     error_grant=str(grant_id), form=data, status_code=code)
        return Redirect(f"/compliance/break-glass?status=all&done={grant_id}#grant-{grant_id}",
                        status_code=303)

    # --- accounting of disclosures -------------------------------------------------------------

    def _report(self, request: Request[Any, Any, Any], state: State, user: m.StaffUser,
                meta: RequestMeta, output: str) -> disclosures.DisclosureReport:
        params = request.query_params
        participant = (params.get("participant") or "").strip()[:32]
        if not participant:
            raise ClientException("Give the participant's id, like LP-1001.")
        with _db(state).begin() as db:
            return _call(lambda: disclosures.disclosure_report(
                db, _services(state), user, meta, participant,
                (params.get("since") or "")[:32], (params.get("until") or "")[:32],
                output=output))

    @get("/disclosures", sync_to_thread=True)
    def disclosures(self, request: Request[Any, Any, Any], state: State,
                    principal: NamedDependency[Principal | None]) -> Template:
        user, meta = _officer(state, request, principal)
        params = request.query_params
        form = {k: (params.get(k) or "")[:32] for k in ("participant", "since", "until")}
        report, error, status = None, None, 200
        if form["participant"].strip():
            try:
                report = self._report(request, state, user, meta, "html")
            except NotFoundException:
                error, status = f"There is no participant {form['participant'].upper()}.", 404
            except ClientException as exc:
                error, status = str(exc.detail), 400
        return Template("compliance/disclosures.html", status_code=status, context={
            "user": user, "report": report, "form": form, "error": error,
            "columns": disclosures.DISCLOSURE_COLUMNS,
            "may_export": console.may_export(_services(state), user),
            "download_query": _download_query(form)})

    @get("/disclosures.csv", sync_to_thread=True)
    def disclosures_csv(self, request: Request[Any, Any, Any], state: State,
                        principal: NamedDependency[Principal | None]) -> Response[str]:
        user, meta = _exporter(state, request, principal)
        report = self._report(request, state, user, meta, "csv")
        return Response(reports.disclosures_csv(report),
                        media_type="text/csv; charset=utf-8", headers={
            "content-disposition":
                f'attachment; filename="disclosures-{report.public_id}.csv"'})

    @get("/disclosures.pdf", sync_to_thread=True)
    def disclosures_pdf(self, request: Request[Any, Any, Any], state: State,
                        principal: NamedDependency[Principal | None]) -> Response[bytes]:
        user, meta = _exporter(state, request, principal)
        report = self._report(request, state, user, meta, "pdf")
        return Response(reports.render_disclosures_pdf(report, _services(state).settings.zone),
                        media_type="application/pdf", headers={
            "content-disposition":
                f'attachment; filename="disclosures-{report.public_id}.pdf"'})

    # --- oversight --------------------------------------------------------------------------

    @get("/oversight", sync_to_thread=True)
    def oversight(self, request: Request[Any, Any, Any], state: State,
                  principal: NamedDependency[Principal | None]) -> Template:
        user, meta = _officer(state, request, principal)
        raw = request.query_params.get("threshold") or ""
        try:
            threshold = int(raw) if raw else console.MANY_PARTICIPANTS
            if not 1 <= threshold <= 100_000:
                raise ValueError
        except ValueError:
            raise ClientException("The threshold is a whole number of participants, "
                                  "from 1 to 100,000.") from None
        with _db(state).begin() as db:
            report = oversight.oversight(db, _services(state), user, meta, threshold=threshold)
        return Template("compliance/oversight.html", context={"user": user, "report": report})


def _download_query(form: dict[str, str]) -> str:
    return urlencode({k: v.strip() for k, v in form.items() if v.strip()})


compliance_router = Router(
    path="/compliance", route_handlers=[ComplianceController],
    # Audit metadata is sensitive: never kept by a browser or proxy cache; the same URL serves
    # a page or an htmx fragment.
    cache_control=CacheControlHeader(no_store=True),
    response_headers=[ResponseHeader(name="vary", value="HX-Request")])
