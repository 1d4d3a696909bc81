"""Recording a participant's exit from LEAD (case management) and the final disposition of
their case (court or prosecution). Thin: parse, call one service in one transaction, render."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from portal.auth.guards import request_meta
from portal.auth.sessions import Principal
from portal.domain.consent import ConsentEvent
from portal.domain.text import N_
from portal.kernel.errors import InvalidInput
from portal.web.deps import found_or, services_of, staff_of
from portal.workspace import lifecycle

PAGES = {
    "exit": (ConsentEvent.LEAD_EXIT, N_("Record exit from LEAD"),
             N_("From this date, consents that end when the participant leaves LEAD stop "
                "sharing, and old sign-in codes stop working. The participant can still sign in "
                "to see who looked at their information.")),
    "disposition": (ConsentEvent.FINAL_DISPOSITION, N_("Record final disposition"),
                    N_("The final disposition of the participant's case. A 42 CFR 2.35 consent "
                       "that could not be taken back until then can be taken back from this "
                       "date; the participant sees that on their page.")),
}


def _context(page: str, **extra: Any) -> dict[str, Any]:
    event, title, explanation = PAGES[page]
    return {"path": page, "title": title, "explanation": explanation, "form": {},
            "reasons": lifecycle.EXIT_REASONS if event is ConsentEvent.LEAD_EXIT else {},
            **extra}


class LifecycleController(Controller):
    path = "/participants/{public_id:str}"

    @get("/exit", sync_to_thread=True)
    def exit_page(self, public_id: FromPath[str], request: Request[Any, Any, Any],
                  state: State, principal: NamedDependency[Principal | None]) -> Template:
        return self._page("exit", public_id, request, state, principal)

    @get("/disposition", sync_to_thread=True)
    def disposition_page(self, public_id: FromPath[str], request: Request[Any, Any, Any],
                         state: State, principal: NamedDependency[Principal | None]) -> Template:
        return self._page("disposition", public_id, request, state, principal)

    @post("/exit", sync_to_thread=True)
    def exit(self, public_id: FromPath[str], request: Request[Any, Any, Any], state: State,
             principal: NamedDependency[Principal | None],
             data: URLEncodedBody[dict[str, str]]) -> Response[Any]:
        return self._record("exit", public_id, request, state, principal, data)

    @post("/disposition", sync_to_thread=True)
    def disposition(self, public_id: FromPath[str], request: Request[Any, Any, Any],
                    state: State, principal: NamedDependency[Principal | None],
                    data: URLEncodedBody[dict[str, str]]) -> Response[Any]:
        return self._record("disposition", public_id, request, state, principal, data)

    def _page(self, page: str, public_id: str, request: Request[Any, Any, Any], state: State,
              principal: Principal | None) -> Template:
        who, user = staff_of(principal)
        shown = found_or(state, lambda db: lifecycle.event_page(
            db, services_of(state), user, public_id, PAGES[page][0], request_meta(request, who)))
        return Template("workspace/lifecycle.html", context=_context(page, user=user, **shown))

    def _record(self, page: str, public_id: str, request: Request[Any, Any, Any], state: State,
                principal: Principal | None, data: dict[str, str]) -> Response[Any]:
        who, user = staff_of(principal)
        try:
            found_or(state, lambda db: lifecycle.record(
                db, services_of(state), user, public_id, PAGES[page][0], data.get("on", ""),
                data.get("reason", ""), request_meta(request, who)))
        except InvalidInput as exc:
            return Template("workspace/lifecycle.html", status_code=400, context=_context(
                page, user=user, public_id=public_id.upper(), done=None, error=str(exc),
                form=data))
        return Redirect(f"/participants/{public_id.upper()}/{page}")
