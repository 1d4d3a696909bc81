"""Organization administration pages: the staff of the administrator's organization, with
suspend and reinstate. Plain forms that post and redirect back (works without JavaScript).
Thin: parse, call one service in one transaction, render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Controller, Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session, sessionmaker

from portal.admin import service as admin_service
from portal.auth.guards import request_meta, require_staff
from portal.auth.sessions import Principal
from portal.db import models as m
from portal.kernel.errors import InvalidInput, NotFound, Refused
from portal.kernel.request import RequestMeta
from portal.kernel.wiring import Services

# Outcome codes carried by the redirect back to /admin; the message is written here, never
# taken from the URL.
DONE_MESSAGES = {
    "suspended": "{name} is suspended. All their sessions have ended and they cannot sign in.",
    "already_suspended": "{name} was already suspended.",
    "reinstated": "{name} is reinstated and can sign in again.",
    "already_active": "{name} was already active.",
}

NO_SUCH_STAFF = "There is no one with that number among your organization's staff."


def _services(state: State) -> Services:
    services: Services = state.services
    return services


def _db(state: State) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = state.sessions
    return factory


def _admin(state: State, principal: Principal | None) -> tuple[Principal, m.StaffUser]:
    who = require_staff(principal)
    assert who.staff is not None
    if not admin_service.is_org_admin(_services(state), who.staff):
        raise PermissionDeniedException(
            "Only your organization's administrators can manage staff.")
    return who, who.staff


def _page(state: State, user: m.StaffUser, *, done: str = "", done_user: str = "",
          error: str | None = None, status_code: int = 200) -> Template:
    with _db(state).begin() as db:
        staff = admin_service.staff_list(db, _services(state), user)
    message = None
    try:
        row = staff.row(int(done_user)) if done in DONE_MESSAGES else None
    except ValueError:
        row = None
    if row is not None:
        message = DONE_MESSAGES[done].format(name=row.name)
    return Template("admin/staff.html", status_code=status_code, context={
        "user": user, "staff": staff, "message": message, "error": error})


def _confirm(state: State, user: m.StaffUser, user_id: int) -> Template:
    try:
        with _db(state).begin() as db:
            row = admin_service.staff_member(db, _services(state), user, user_id)
    except NotFound:
        raise NotFoundException(NO_SUCH_STAFF) from None
    if row.is_self:
        return _page(state, user, status_code=400, error=(
            "You cannot suspend your own account. Ask another administrator of your "
            "organization if it needs to be suspended."))
    return Template("admin/confirm_suspend.html", context={"user": user, "row": row})


class AdminController(Controller):
    @get("/", sync_to_thread=True, name="admin")
    def staff(self, request: Request[Any, Any, Any], state: State,
              principal: NamedDependency[Principal | None]) -> Template:
        _, user = _admin(state, principal)
        return _page(state, user, done=request.query_params.get("done", ""),
                     done_user=request.query_params.get("user", ""))

    @get("/staff/{user_id:int}/suspend", sync_to_thread=True)
    def confirm_suspend(self, user_id: FromPath[int], state: State,
                        principal: NamedDependency[Principal | None]) -> Template:
        """Suspending is asked first: whom, and what it does."""
        _, user = _admin(state, principal)
        return _confirm(state, user, user_id)

    @post("/staff/{user_id:int}/suspend", sync_to_thread=True)
    def suspend(self, user_id: FromPath[int], request: Request[Any, Any, Any], state: State,
                principal: NamedDependency[Principal | None],
                data: URLEncodedBody[dict[str, str]]) -> Response[Any]:
        if data.get("confirm") != "suspend":
            # Not confirmed (an old form, a stray post): ask, change nothing.
            _, user = _admin(state, principal)
            return _confirm(state, user, user_id)
        return _change(admin_service.suspend, user_id, request, state, principal)

    @post("/staff/{user_id:int}/reinstate", sync_to_thread=True)
    def reinstate(self, user_id: FromPath[int], request: Request[Any, Any, Any], state: State,
                  principal: NamedDependency[Principal | None]) -> Response[Any]:
        return _change(admin_service.reinstate, user_id, request, state, principal)


Change = Callable[[Session, Services, m.StaffUser, int, RequestMeta],
                  admin_service.StatusChange]


def _change(change: Change, user_id: int, request: Request[Any, Any, Any], state: State,
            principal: Principal | None) -> Response[Any]:
    who = require_staff(principal)
    assert who.staff is not None
    user = who.staff
    failure: Exception | None = None
    result: admin_service.StatusChange | None = None
    with _db(state).begin() as db:
        try:
            # Refusals are audited by the service; catching them here commits that event.
            result = change(db, _services(state), user, user_id,
                            request_meta(request, who))
        except (Refused, NotFound, InvalidInput) as exc:
            failure = exc
    if isinstance(failure, Refused):
        raise PermissionDeniedException(str(failure))
    if isinstance(failure, NotFound):
        raise NotFoundException(NO_SUCH_STAFF)
    if failure is not None:
        return _page(state, user, error=str(failure), status_code=400)
    assert result is not None
    done = ({"suspended": "suspended", "active": "reinstated"}[result.status] if result.changed
            else f"already_{result.status}")
    return Redirect(f"/admin?done={done}&user={result.user_id}", status_code=303)


admin_router = Router(path="/admin", route_handlers=[AdminController])
