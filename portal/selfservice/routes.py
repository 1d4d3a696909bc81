"""The participant's own pages (mobile first, English and Spanish): who can see what, taking a
consent back, asking for a change, who has looked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template

from portal.auth.guards import request_meta
from portal.auth.sessions import Principal
from portal.domain.consent_text import CATEGORY_WORDS, ROLE_WORDS, spoken_date
from portal.kernel.errors import InvalidInput, NotFound
from portal.selfservice import service as ss
from portal.web.deps import db_of, participant_of, services_of
from portal.web.i18n import language, me_context, participant_text, with_language
from portal.workspace import people


def _local_time(zone: ZoneInfo, lang: str) -> Callable[[datetime], str]:
    """A moment as the participant reads it: the program's local date in words, and time."""
    def say(at: datetime) -> str:
        local = at.astimezone(zone)
        return f"{spoken_date(local.date(), lang)}, {local:%H:%M}"
    return say


class MeController(Controller):
    path = "/me"

    @get("/", sync_to_thread=True)
    def home(self, request: Request[Any, Any, Any], state: State,
             principal: NamedDependency[Principal | None]) -> Response[Any]:
        who, participant = participant_of(principal)
        services = services_of(state)
        lang = language(request)
        with db_of(state).begin() as db:
            meta = request_meta(request, who)
            name = people.name_or_none(db, services.vault, services.audit, participant, meta)
            sharing = ss.my_sharing(db, services, participant, lang, meta)
        return with_language(request, Template("selfservice/home.html", context=me_context(
            request, participant=participant, name=name, sharing=sharing,
            totp_added=request.query_params.get("totp") == "added",
            revoked=request.query_params.get("revoked") == "1",
            sent=request.query_params.get("sent") == "1")))

    @get("/consents/{consent_id:str}/revoke", sync_to_thread=True)
    def confirm_revoke(self, consent_id: FromPath[str], request: Request[Any, Any, Any],
                       state: State,
                       principal: NamedDependency[Principal | None]) -> Response[Any]:
        _, participant = participant_of(principal)
        with db_of(state).begin() as db:
            try:
                consent = ss.consent_for_revocation(db, participant, consent_id,
                                                    language(request))
            except NotFound:
                raise NotFoundException() from None
        return with_language(request, Template("selfservice/revoke.html",
                                               context=me_context(request, consent=consent)))

    @post("/consents/{consent_id:str}/revoke", sync_to_thread=True)
    def revoke(self, consent_id: FromPath[str], request: Request[Any, Any, Any],
               state: State, principal: NamedDependency[Principal | None]) -> Response[Any]:
        who, participant = participant_of(principal)
        error = None
        with db_of(state).begin() as db:
            try:
                ss.revoke_mine(db, services_of(state), participant, consent_id,
                               request_meta(request, who))
            except NotFound:
                raise NotFoundException() from None
            except InvalidInput:
                error = participant_text("me.revoke.refused", language(request))
        if error is not None:
            with db_of(state).begin() as db:
                consent = ss.consent_for_revocation(db, participant, consent_id,
                                                    language(request))
            return Template("selfservice/revoke.html", status_code=400,
                            context=me_context(request, consent=consent, error=error))
        return Redirect("/me?revoked=1")

    @get("/change", sync_to_thread=False)
    def change_page(self, request: Request[Any, Any, Any],
                    principal: NamedDependency[Principal | None]) -> Response[Any]:
        participant_of(principal)
        return with_language(request, Template("selfservice/change.html",
                                                 context=me_context(request, form={})))

    @post("/change", sync_to_thread=True)
    def change(self, request: Request[Any, Any, Any], state: State,
               principal: NamedDependency[Principal | None],
               data: URLEncodedBody[dict[str, str]]) -> Response[Any]:
        who, participant = participant_of(principal)
        problem = False
        with db_of(state).begin() as db:
            try:
                ss.ask_for_change(db, services_of(state), participant, data.get("wish", ""),
                                  data.get("text", ""), request_meta(request, who))
            except InvalidInput:
                problem = True
        if problem:
            return Template("selfservice/change.html", status_code=400,
                            context=me_context(request, form=data, problem=True))
        return Redirect("/me?sent=1")

    @get("/who-looked", sync_to_thread=True)
    def who_looked(self, request: Request[Any, Any, Any], state: State,
                   principal: NamedDependency[Principal | None]) -> Response[Any]:
        who, participant = participant_of(principal)
        lang = language(request)
        with db_of(state).begin() as db:
            looks = ss.who_looked(db, services_of(state), participant, request_meta(request, who))
        return with_language(request, Template("selfservice/who_looked.html", context=me_context(
            request, accounting=ss.group_looks(looks), words=CATEGORY_WORDS[lang],
            roles=ROLE_WORDS[lang],
            local_time=_local_time(services_of(state).settings.zone, lang))))
