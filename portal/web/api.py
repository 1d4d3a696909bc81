"""JSON API under /api/v1 for partner systems.

Thin, like the pages: authenticate, call the same workspace services in one transaction (so the
same decide() path and the same audit events apply), and shape the answer as JSON.

Authentication is either
- ``Authorization: Bearer <access token>`` from one of the configured identity providers
  (portal/auth/api_tokens.py), naming an existing, active staff account; or
- the portal's session cookie, for safe methods only: CSRF protection does not cover /api/, so a
  change made with only a cookie could be forged from another site. Changes need a bearer token.

A participant that does not exist and one the caller may not see get byte-identical 404s.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

from joserfc.jwk import KeySet
from litestar import Request, Response, Router, get, post
from litestar.datastructures import CacheControlHeader, State
from litestar.di import NamedDependency, Provide
from litestar.exceptions import (
    ClientException,
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    ServiceUnavailableException,
    ValidationException,
)
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import FromQuery, JSONBody, PathParameter, QueryParameter
from sqlalchemy.orm import Session, sessionmaker

from portal.auth import api_tokens
from portal.auth.guards import AuthComponents, request_meta
from portal.auth.oidc import ALLOWED_ALGORITHMS, LoginError, RelyingParty
from portal.auth.sessions import Principal
from portal.consents import service as cs
from portal.db import models as m
from portal.domain.vocabulary import DataCategory
from portal.kernel.errors import InvalidInput
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services
from portal.web.deps import found_or
from portal.workspace import service as ws

log = logging.getLogger("portal.web.api")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Public ids are short, upper-case letters, digits and dashes ("LP-1001"). Anything else cannot
# exist, so it is simply not found (and never reaches the database as odd bytes).
PUBLIC_ID = re.compile(r"[A-Z0-9][A-Z0-9-]{0,39}")
REQUEST_ID = re.compile(r"[\x21-\x7e]{1,64}")
NOT_FOUND = "not found"


# --- response bodies (the OpenAPI document is generated from these) -----------------------


@dataclass(frozen=True, slots=True)
class ErrorBody:
    status_code: int
    message: str


@dataclass(frozen=True, slots=True)
class CaseloadItem:
    id: str
    name: str | None  # None: the name could not be decrypted
    enrolled_on: date | None
    urgent_needs: int  # open immediate needs the caller may see


@dataclass(frozen=True, slots=True)
class Caseload:
    participants: list[CaseloadItem]
    next_after: str | None  # pass as ?after= for the next page; None on the last page


@dataclass(frozen=True, slots=True)
class RecordOut:
    id: str
    title: str | None  # None: could not be decrypted
    body: str | None
    author: str  # the authoring organization
    effective_date: date
    # Permitted, but it could not be decrypted: not shown, not counted as disclosed, and the
    # failure is audited (crypto:decrypt:failure).
    unavailable: bool = False


@dataclass(frozen=True, slots=True)
class CategoryOut:
    category: DataCategory
    label: str
    records: list[RecordOut]
    withheld: bool  # some information in this category is withheld from the caller
    withheld_reason: str | None  # the rule, never the withheld content
    notices: list[str]  # obligations that travel with the data (e.g. the 42 CFR 2.32 notice)
    may_add: bool


@dataclass(frozen=True, slots=True)
class GoalOut:
    summary: str | None  # None: stored sealed and cannot be decrypted here (unavailable)
    status: str
    status_note: str | None  # None: likewise
    owner: str
    urgent: bool
    detail: str | None  # None: withheld (only the status is shared)
    # None: only "engaged in services" may be told (what the goal is about is withheld)
    detail_category: DataCategory | None
    detail_unavailable: bool = False  # permitted, but it could not be decrypted


@dataclass(frozen=True, slots=True)
class ParticipantOut:
    id: str
    name: str | None
    enrolled_on: date | None
    categories: list[CategoryOut]
    goals: list[GoalOut]
    notices: list[str]
    emergency_access_until: datetime | None  # set when seen under break-glass access


@dataclass(frozen=True, slots=True)
class RecordsOut:
    participant_id: str
    category: CategoryOut
    notices: list[str]  # the participant's obligations, as on the whole participant answer


@dataclass(frozen=True, slots=True)
class RecordIn:
    category: DataCategory
    title: str
    body: str
    effective_date: date | None = None  # default: today


@dataclass(frozen=True, slots=True)
class RecordCreated:
    id: str
    participant_id: str
    category: DataCategory


@dataclass(frozen=True, slots=True)
class ProvisionOut:
    effect: str
    disclosers: list[str]
    recipients: list[str]
    categories: list[str]
    purposes: list[str]
    period: list[str | None]  # [start, end], ISO dates or null


@dataclass(frozen=True, slots=True)
class ConsentOut:
    id: str
    kind: str
    status: str
    version: int
    provisions: list[ProvisionOut]
    expires: str | None  # an ISO date or an expiry event
    revocable_after: str | None


@dataclass(frozen=True, slots=True)
class ConsentsOut:
    participant_id: str
    consents: list[ConsentOut]


@dataclass(frozen=True, slots=True)
class DecisionOut:
    participant_id: str
    category: str
    explanation: list[str]


# --- authentication --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiCaller:
    user: m.StaffUser
    meta: RequestMeta
    via: Literal["bearer", "session"]


def _services(state: State) -> Services:
    services: Services = state.services
    return services


def _db(state: State) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = state.sessions
    return factory


def _unauthorized(message: str, *, invalid_token: bool = False) -> NotAuthorizedException:
    challenge = 'Bearer realm="lead-portal"' + (', error="invalid_token"' if invalid_token
                                                else "")
    return NotAuthorizedException(message, headers={"WWW-Authenticate": challenge})


def _issuer(rp: RelyingParty) -> api_tokens.TrustedIssuer:
    def keys(refresh: bool) -> KeySet:
        try:
            return rp._key_set(refresh=refresh)
        except LoginError as exc:
            raise api_tokens.KeysUnavailable(rp.provider.id) from exc

    return api_tokens.TrustedIssuer(issuer=rp.provider.issuer, client_id=rp.provider.client_id,
                                    keys=keys)


def _meta(request: Request[Any, Any, Any], meta: RequestMeta) -> RequestMeta:
    """The request id is the caller's to choose: keep it only when it fits the audit log."""
    request_id = meta.request_id
    if request_id is not None and not REQUEST_ID.fullmatch(request_id):
        request_id = None
    return RequestMeta(actor=meta.actor, session_id=meta.session_id,
                       client_address=meta.client_address, request_id=request_id)


def provide_caller(request: Request[Any, Any, Any], state: State,
                   principal: NamedDependency[Principal | None]) -> ApiCaller:
    """Who is calling: a bearer token wins over a session cookie; a cookie alone may only read."""
    try:
        token = api_tokens.bearer_token(request.headers.get("authorization"))
        if token is not None:
            components: AuthComponents = state.auth
            verified = api_tokens.verify(
                token, [_issuer(rp) for rp in components.providers.values()],
                algorithms=ALLOWED_ALGORITHMS)
            with _db(state).begin() as db:
                user = api_tokens.staff_for(db, verified)
            meta = request_meta(request, actor=user.email)
            return ApiCaller(user, _meta(request, RequestMeta(
                actor=user.email, session_id=f"at:{verified.fingerprint}",
                client_address=meta.client_address, request_id=meta.request_id)), "bearer")
    except api_tokens.TokenRejected as exc:
        log.info("API bearer token refused (%s) from %s", exc.code,
                 request.client.host if request.client else "?")
        raise _unauthorized(exc.message, invalid_token=True) from None
    except api_tokens.KeysUnavailable:
        raise ServiceUnavailableException(
            "The identity provider's keys could not be fetched; try again shortly.") from None
    if principal is None or principal.staff is None:
        raise _unauthorized("sign in or send a bearer token")
    if request.method.upper() not in SAFE_METHODS:
        raise _unauthorized("changes through the API need a bearer token (Authorization: "
                            "Bearer <access token>); a session cookie may only read")
    return ApiCaller(principal.staff, _meta(request, request_meta(request, principal)),
                     "session")


# --- errors ----------------------------------------------------------------------------------


def _api_error(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorBody]:
    """Every client error as JSON with a message; never a stack trace."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    message = str(exc.detail or "error")
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        details = [f"{e['key']}: {e['message']}" if e.get("key") else str(e["message"])
                   for e in exc.extra if isinstance(e, dict) and e.get("message")]
        if details:
            message = f"{message}: {'; '.join(details)}"
    if status >= 500 and status != 503:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        message = "internal error"
    return Response(ErrorBody(status, message), status_code=status,
                    headers=dict(exc.headers or {}))


def _not_found() -> NotFoundException:
    return NotFoundException(NOT_FOUND)


def _public_id(value: str) -> str:
    public_id = value.strip().upper()
    if not PUBLIC_ID.fullmatch(public_id):
        raise _not_found()
    return public_id


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    text = {400: "Invalid input; nothing was changed", 401: "Missing or invalid credentials",
            403: "The caller's role may not do this",
            404: "No such participant for this caller (absent and not permitted look the same)",
            503: "The access could not be recorded in the audit log, so nothing was returned"}
    return {code: ResponseSpec(ErrorBody, description=text[code],
                               examples=[Example(value={"status_code": code,
                                                        "message": text[code]})])
            for code in (*codes, 401, 503)}


# --- shaping ---------------------------------------------------------------------------------


def _category(section: ws.CategorySection) -> CategoryOut:
    return CategoryOut(
        category=section.category, label=section.label,
        records=[RecordOut(r.id, r.title, r.body, r.author, r.effective_date,
                           unavailable=r.title is None)
                 for r in section.records],
        withheld=section.withheld, withheld_reason=section.withheld_reason or None,
        notices=list(section.notices), may_add=section.can_create)


def _participant(page: ws.ParticipantPage) -> ParticipantOut:
    return ParticipantOut(
        id=page.public_id, name=page.name.display if page.name else None,
        enrolled_on=page.enrolled_on, categories=[_category(s) for s in page.sections],
        goals=[GoalOut(g.summary, g.status, g.status_note, g.owner, g.urgent, g.detail,
                       g.detail_category, g.detail_unavailable) for g in page.goals],
        notices=list(page.notices), emergency_access_until=page.break_glass_until)


def _consent(summary: dict[str, Any]) -> ConsentOut:
    return ConsentOut(
        id=str(summary["id"]), kind=str(summary["kind"]), status=str(summary["status"]),
        version=int(summary["version"]),
        provisions=[ProvisionOut(effect=str(p["effect"]), disclosers=list(p["disclosers"]),
                                 recipients=list(p["recipients"]),
                                 categories=list(p["categories"]),
                                 purposes=list(p["purposes"]), period=list(p["period"]))
                    for p in summary["provisions"]],
        expires=summary["expires"], revocable_after=summary["revocable_after"])


def _page(state: State, caller: ApiCaller, public_id: str) -> ws.ParticipantPage:
    return found_or(state, lambda db: ws.participant_page(
        db, _services(state), caller.user, public_id, caller.meta), _not_found)


# --- handlers --------------------------------------------------------------------------------

ParticipantId = Annotated[str, PathParameter(
    description="The participant's public id, e.g. LP-1001", max_length=40,
    examples=[Example(value="LP-1001")])]
Search = Annotated[str, QueryParameter(
    description="Exact full name, family name, date of birth or public id", max_length=200)]
After = Annotated[str | None, QueryParameter(
    description="next_after from the previous page", pattern=PUBLIC_ID.pattern)]
UrgentOnly = Annotated[bool, QueryParameter(description="only participants with urgent needs")]
ChangesOnly = Annotated[bool, QueryParameter(
    description="only participants who lately took back a consent or asked for a change "
                "(none for roles that may not view consents)")]
CategoryName = Annotated[str, PathParameter(description="A data category",
                                            examples=[Example(value="housing")])]


@get("/participants", sync_to_thread=True, responses=_errors(400),
     summary="The caller's organization's caseload, searched and paged")
def list_participants(state: State, caller: NamedDependency[ApiCaller], q: Search = "",
                      after: After = None, urgent: UrgentOnly = False,
                      changes: ChangesOnly = False) -> Caseload:
    if after is not None and not PUBLIC_ID.fullmatch(after):
        raise ClientException("after must be a participant id such as LP-1001")
    with _db(state).begin() as db:
        page = ws.caseload(db, _services(state), caller.user, caller.meta, query=q,
                           after=after, urgent_only=urgent, consent_changes_only=changes)
    return Caseload(
        participants=[CaseloadItem(r.public_id, r.name.display if r.name else None,
                                   r.enrolled_on, len(r.urgent)) for r in page.rows],
        next_after=page.next_after)


@get("/participants/{public_id:str}", sync_to_thread=True, responses=_errors(404),
     summary="Everything the caller may see about one participant, category by category")
def read_participant(state: State, caller: NamedDependency[ApiCaller], public_id: ParticipantId
                     ) -> ParticipantOut:
    pid = _public_id(public_id)
    page = _page(state, caller, pid)
    return _participant(page)


@get("/participants/{public_id:str}/records", sync_to_thread=True, responses=_errors(400, 404),
     summary="The records of one category the caller may see (the page's decision, filtered)")
def list_records(state: State, caller: NamedDependency[ApiCaller], public_id: ParticipantId,
                 category: FromQuery[DataCategory]) -> RecordsOut:
    pid = _public_id(public_id)
    page = _page(state, caller, pid)
    section = next(s for s in page.sections if s.category is category)
    return RecordsOut(participant_id=page.public_id, category=_category(section),
                      notices=list(page.notices))


@post("/participants/{public_id:str}/records", sync_to_thread=True,
      responses=_errors(400, 404), summary="Add a record (needs a bearer token)")
def add_record(state: State, caller: NamedDependency[ApiCaller], public_id: ParticipantId,
               data: JSONBody[RecordIn]) -> Response[RecordCreated]:
    pid = _public_id(public_id)
    try:  # bad input rolls back; a refused attempt commits its audit event, then 404
        record_id = found_or(state, lambda db: str(ws.add_record(
            db, _services(state), caller.user, pid, data.category.value, data.title,
            data.body, data.effective_date.isoformat() if data.effective_date else "",
            caller.meta).id), _not_found)
    except InvalidInput as exc:
        raise ClientException(str(exc)) from None
    created = RecordCreated(id=record_id, participant_id=pid, category=data.category)
    return Response(created, status_code=201, headers={
        "Location": f"/api/v1/participants/{pid}/records?category={data.category.value}"})


@get("/participants/{public_id:str}/consents", sync_to_thread=True,
     responses=_errors(403, 404),
     summary="The participant's consents (roles that take consent, on the care team)")
def list_consents(state: State, caller: NamedDependency[ApiCaller],
                  public_id: ParticipantId) -> ConsentsOut:
    pid = _public_id(public_id)
    # The same use case as the consent list page, so both give the same answer.
    _, summaries = found_or(state, lambda db: cs.participant_consents(
        db, _services(state), caller.user, pid, caller.meta), _not_found)
    return ConsentsOut(participant_id=pid, consents=[_consent(s) for s in summaries])


@get("/participants/{public_id:str}/decisions/{category:str}", sync_to_thread=True,
     responses=_errors(404),
     summary="Why a category is (partly) withheld: the rule, never the withheld content")
def explain(state: State, caller: NamedDependency[ApiCaller], public_id: ParticipantId,
            category: CategoryName) -> DecisionOut:
    pid = _public_id(public_id)
    lines = found_or(state, lambda db: ws.explain_category(
        db, _services(state), caller.user, pid, category, caller.meta), _not_found)
    return DecisionOut(participant_id=pid, category=DataCategory(category).value,
                       explanation=lines)


api_router = Router(
    path="/api/v1",
    route_handlers=[list_participants, read_participant, list_records, add_record,
                    list_consents, explain],
    dependencies={"caller": Provide(provide_caller, sync_to_thread=True)},
    exception_handlers={HTTPException: _api_error, NotAuthorizedException: _api_error},
    # Participant information must not be kept by browsers or intermediaries.
    cache_control=CacheControlHeader(no_store=True),
    tags=["API v1"],
)
