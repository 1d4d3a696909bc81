"""Sign-in pages: staff through their agency's OpenID provider, participants with a passphrase."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.di import NamedDependency
from litestar.params import FromPath, URLEncodedBody
from litestar.response import Redirect, Template
from sqlalchemy import delete

from portal.auth import kept_forms
from portal.auth import service as auth_service
from portal.auth.guards import (
    SESSION_ENDED,
    components_of,
    database_of,
    request_meta,
    require_participant,
    require_staff,
)
from portal.auth.oidc import LoginError, PendingLogin, RelyingParty
from portal.auth.sessions import Principal, SessionEnded, client_address
from portal.config import Settings
from portal.db import models as m
from portal.db.types import utcnow
from portal.domain.audit import AuditAction, NewAuditEvent
from portal.domain.text import N_
from portal.web.i18n import language, me_context, refusal_text, with_language

LOGIN_STATE_MINUTES = 10


def _failure_page(title: str, message: str, status: int, *, retry: str) -> Template:
    """The page translates the title and message when they are marked (N_)."""
    return Template("auth/failure.html", status_code=status,
                    context={"title": title, "message": message, "retry": retry})


class StaffAuthController(Controller):
    path = "/auth"

    @get("/login", sync_to_thread=False)
    def login_page(self, request: Request[Any, Any, Any], state: State) -> Template:
        providers = [(rp.provider.id, rp.provider.name)
                     for rp in components_of(state).providers.values()]
        # Why the sign-in page is shown (set by login_redirect): the session ended, or a page
        # needs a sign-in; and whether a posted form was kept.
        why = request.query_params.get("why")
        settings: Settings = state.settings
        return Template("auth/login.html", context={
            "providers": providers, "why": why if why in SIGN_IN_REASONS else None,
            "kept": request.query_params.get("kept") == "1",
            "idle_minutes": settings.session_idle_minutes,
            "absolute_hours": settings.session_absolute_hours})

    @get("/kept-form", sync_to_thread=True)
    def kept_form(self, request: Request[Any, Any, Any], state: State,
                  principal: NamedDependency[Principal | None]) -> Response[Any]:
        """The form this browser kept for the signed-in person, once (the page's script fills
        the form in with it; nothing is submitted)."""
        who = require_staff(principal)
        assert who.staff is not None
        settings: Settings = state.settings
        with database_of(state).begin() as db:
            kept = kept_forms.take(db, components_of(state).vault, request, who.staff.id)
        response: Response[Any] = Response(
            kept if kept is not None else {"status_code": 404, "message": "no kept form"},
            status_code=200 if kept is not None else 404)
        kept_forms.clear_cookie(response, settings)
        return response

    @post("/session/extend", sync_to_thread=False, status_code=200)
    def extend(self, principal: NamedDependency[Principal | None]) -> Response[Any]:
        """"Stay signed in": any signed-in request counts as activity (resolving the session
        moved its idle clock on); this one says so."""
        require_staff(principal)
        return Response({"status": "extended"})

    @get("/login/{provider_id:str}", sync_to_thread=True)
    def start(self, provider_id: FromPath[str], request: Request[Any, Any, Any],
              state: State) -> Response[Any]:
        rp = components_of(state).providers.get(provider_id)
        if rp is None:
            return _failure_page(N_("Unknown sign-in service"),
                                 N_("That sign-in service is not configured here."), 404,
                                 retry="/auth/login")
        try:
            url, pending = rp.begin()
        except LoginError as exc:
            return _failure_page(N_("Sign-in is unavailable"), exc.message, 503,
                                 retry="/auth/login")
        # The browser's sign-in cookie (RFC 9700 section 4.7): one random value a browser,
        # kept while sign-ins are in flight, so a second tab's sign-in does not break the
        # first one's.
        browser = _login_cookie_value(request)
        if browser is None:
            browser = secrets.token_urlsafe(32)
        now = utcnow()
        with database_of(state).begin() as db:
            db.execute(delete(m.OidcLoginState).where(m.OidcLoginState.expires_at < now))
            db.add(m.OidcLoginState(
                state_hash=auth_service.token_hash(pending.state), provider_id=provider_id,
                nonce=pending.nonce, code_verifier=pending.code_verifier,
                browser_hash=auth_service.token_hash(browser), created_at=now,
                expires_at=now + timedelta(minutes=LOGIN_STATE_MINUTES)))
        response = Redirect(url)
        response.set_cookie(Cookie(
            key=login_cookie_name(state), value=browser, path="/", httponly=True,
            secure=_secure(state), samesite="lax", max_age=LOGIN_STATE_MINUTES * 60))
        return response

    @get("/callback/{provider_id:str}", sync_to_thread=True)
    def callback(self, provider_id: FromPath[str], request: Request[Any, Any, Any],
                 state: State) -> Response[Any]:
        components = components_of(state)
        rp = components.providers.get(provider_id)
        meta = request_meta(request)
        params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
        try:
            if rp is None:
                raise LoginError("unknown_provider", "That sign-in service is not configured.")
            pending = self._consume_state(state, provider_id, params.get("state", ""),
                                          _login_cookie_value(request))
            identity = rp.complete(pending, params)
            with database_of(state).begin() as db:
                user = auth_service.sign_in_staff(
                    db, components.audit, auth_service.StaffIdentity(
                        issuer=identity.issuer, subject=identity.subject, email=identity.email,
                        name=identity.name, groups=identity.groups,
                        organization=identity.organization),
                    components.role_mapping, meta, provider_id)
                token = components.sessions.start(
                    db, staff_user_id=user.id, provider_id=provider_id,
                    id_token=identity.id_token, client_address=meta.client_address,
                    previous_token=components.sessions.token(request))
        except (LoginError, auth_service.SignInRefused) as exc:
            with database_of(state).begin() as db:
                auth_service.record_failure(db, components.audit, meta, exc.code,
                                            provider=provider_id)
            failure: Response[Any]
            if isinstance(exc, auth_service.SignInRefused):
                failure = _failure_page(
                    N_("No access to the portal"),
                    f"{exc.message} Contact your agency's portal administrator to get "
                    "access.", 403, retry="/auth/login")
            else:
                failure = _failure_page(N_("Sign-in did not work"), f"{exc.message}. Nothing "
                                        "was saved. Please start again.", 400,
                                        retry="/auth/login")
            # Any session this browser already has is left as it was.
            _clear_login_cookie(failure, state)
            return failure
        from portal.web.nav import home_for  # nav reads the services; imported when used

        with database_of(state).begin() as db:
            landing = kept_forms.resume_target(db, request, user.id) \
                or home_for(state.services, db.merge(user, load=True))
        response = Redirect(landing)
        components.sessions.set_cookie(response, token)
        _clear_login_cookie(response, state)
        return response

    def _consume_state(self, state: State, provider_id: str, value: str,
                       browser: str | None) -> PendingLogin:
        """A state is used once: it is deleted as it is read, so a replayed callback fails. It
        is accepted only from the browser that started the sign-in (its sign-in cookie): a
        sign-in started elsewhere and opened here (login CSRF) signs nobody in."""
        if not value:
            raise LoginError("missing_state", "the sign-in link is incomplete")
        with database_of(state).begin() as db:
            row = db.execute(delete(m.OidcLoginState).where(
                m.OidcLoginState.state_hash == auth_service.token_hash(value),
                m.OidcLoginState.provider_id == provider_id,
            ).returning(m.OidcLoginState.nonce, m.OidcLoginState.code_verifier,
                        m.OidcLoginState.browser_hash, m.OidcLoginState.expires_at)).first()
        if row is None:
            raise LoginError("unknown_state", "this sign-in link was already used or is not "
                                              "ours")
        if browser is None:
            raise LoginError("browser_not_bound", "this sign-in was not started in this "
                                                  "browser (or it took too long)")
        if not hmac.compare_digest(row.browser_hash, auth_service.token_hash(browser)):
            raise LoginError("browser_mismatch", "this sign-in was started in another "
                                                 "browser")
        if row.expires_at < utcnow():
            raise LoginError("expired_state", "this sign-in took too long")
        return PendingLogin(state=value, nonce=row.nonce, code_verifier=row.code_verifier)

    @post("/logout", sync_to_thread=True)
    def logout(self, request: Request[Any, Any, Any], state: State) -> Response[Any]:
        components = components_of(state)
        token = components.sessions.token(request)
        end_session = None
        with database_of(state).begin() as db:
            row = components.sessions.end(db, token)
            if row is not None:
                user = db.get(m.StaffUser, row.staff_user_id) if row.staff_user_id else None
                components.audit.append(db, NewAuditEvent(
                    action=AuditAction.AUTH_LOGOUT, actor=user.email if user else "participant",
                    actor_user_id=row.staff_user_id, participant_id=row.participant_id,
                    session_id=row.id[:16], client_address=client_address(request)))
                rp = components.providers.get(row.provider_id or "")
                if rp is not None and row.id_token_hint:
                    # Back to the configured address, never one built from the Host header.
                    settings: Settings = state.settings
                    end_session = _end_session_url(rp, row.id_token_hint,
                                                   settings.base_url.rstrip("/") + "/")
        response: Response[Any] = Redirect(end_session or "/?signed_out=1")
        components.sessions.clear_cookie(response)
        return response


def _secure(state: State) -> bool:
    settings: Settings = state.settings
    return settings.https


def login_cookie_name(state: State) -> str:
    """The browser's sign-in cookie (a __Host- cookie over https)."""
    return "__Host-portal_login" if _secure(state) else "portal_login"


def _login_cookie_value(request: Request[Any, Any, Any]) -> str | None:
    value = request.cookies.get(login_cookie_name(request.app.state))
    # A value this portal made: 43 URL-safe characters. Anything else counts as none.
    if value is None or not (20 <= len(value) <= 64) or not value.isascii() \
            or not value.replace("-", "").replace("_", "").isalnum():
        return None
    return value


def _clear_login_cookie(response: Response[Any], state: State) -> None:
    response.delete_cookie(login_cookie_name(state), path="/")


def _end_session_url(rp: RelyingParty, id_token: str, return_to: str) -> str | None:
    try:
        endpoint = rp.metadata().get("end_session_endpoint")
    except LoginError:
        return None
    if not endpoint:
        return None
    query = urlencode({"id_token_hint": id_token, "post_logout_redirect_uri": return_to,
                       "client_id": rp.provider.client_id})
    return f"{endpoint}?{query}"


# --- participants ----------------------------------------------------------------------------


def _refusal(request: Request[Any, Any, Any], refused: auth_service.SignInRefused) -> str:
    return refusal_text(refused.code, refused.problems, refused.params, language(request))


class ParticipantAuthController(Controller):
    path = "/me"

    @get("/login", sync_to_thread=False)
    def login_page(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return with_language(request, Template("selfservice/login.html",
                                                 context=me_context(request)))

    @post("/login", sync_to_thread=True)
    def login(self, request: Request[Any, Any, Any], state: State,
              data: URLEncodedBody[dict[str, str]],
              ) -> Response[Any]:
        components = components_of(state)
        # The service names the attempt by a keyed hash of the username, never the name.
        meta = request_meta(request, actor="participant")
        refused = None
        with database_of(state).begin() as db:
            try:
                participant = auth_service.authenticate_participant(
                    db, components.audit, components.vault, data.get("username", ""),
                    data.get("passphrase", ""), data.get("totp") or None, meta)
                token = components.sessions.start(
                    db, participant_id=participant.id, client_address=meta.client_address,
                    previous_token=components.sessions.token(request))
            except auth_service.SignInRefused as exc:
                refused = exc  # the failure count and its audit event are still committed
        if refused is not None:
            return Template("selfservice/login.html", status_code=401, context=me_context(
                request, error=_refusal(request, refused), username=data.get("username", "")))
        response = Redirect("/me")
        components.sessions.set_cookie(response, token)
        return response

    @get("/enrol", sync_to_thread=False)
    def enrol_page(self, request: Request[Any, Any, Any]) -> Response[Any]:
        return with_language(request, Template("selfservice/enrol.html",
                                                 context=me_context(request, form={})))

    @post("/enrol", sync_to_thread=True)
    def enrol(self, request: Request[Any, Any, Any], state: State,
              data: URLEncodedBody[dict[str, str]],
              ) -> Response[Any]:
        components = components_of(state)
        # The service names the attempt by the participant ID, or a keyed hash of what was typed.
        meta = request_meta(request, actor="participant")
        refused = None
        with database_of(state).begin() as db:
            try:
                participant = auth_service.enrol(
                    db, components.audit, components.vault, data.get("participant_id", ""),
                    data.get("code", ""), data.get("username", ""),
                    data.get("passphrase", ""), meta)
                token = components.sessions.start(
                    db, participant_id=participant.id, client_address=meta.client_address,
                    previous_token=components.sessions.token(request))
            except auth_service.SignInRefused as exc:
                refused = exc
        if refused is not None:
            form = {k: data.get(k, "") for k in ("participant_id", "username")}
            return Template("selfservice/enrol.html", status_code=400, context=me_context(
                request, error=_refusal(request, refused), form=form))
        response = Redirect("/me")
        components.sessions.set_cookie(response, token)
        return response


class ParticipantSecurityController(Controller):
    """The second step at sign-in: an authenticator app (TOTP). The portal makes the key and
    keeps it until confirmed; turning the app on or off needs the passphrase again."""

    path = "/me/security"

    @get("/", sync_to_thread=True)
    def page(self, request: Request[Any, Any, Any], state: State,
             principal: NamedDependency[Principal | None]) -> Response[Any]:
        who = require_participant(principal)
        done = request.query_params.get("done")
        return with_language(request, self._render(
            request, state, who, None, 200, removed=done == "removed"))

    def _render(self, request: Request[Any, Any, Any], state: State, who: Principal,
                refused: auth_service.SignInRefused | None, status: int, *,
                removed: bool = False) -> Template:
        participant = who.participant
        assert participant is not None
        components = components_of(state)
        with database_of(state).begin() as db:
            step = auth_service.second_step(db, components.vault, db.merge(participant))
        return Template("selfservice/security.html", status_code=status, context=me_context(
            request, on=step.on, secret=step.pending, removed=removed,
            error=_refusal(request, refused) if refused else None,
            uri=auth_service.totp_uri(step.pending, participant.public_id)
            if step.pending else None))

    def _change(self, request: Request[Any, Any, Any], state: State, who: Principal,
                data: dict[str, str], change: Any, done: str) -> Response[Any]:
        assert who.participant is not None
        components = components_of(state)
        refused = None
        with database_of(state).begin() as db:
            try:
                # Whatever else is posted (a "secret", say) is not read.
                change(db, components.audit, components.vault, db.merge(who.participant),
                       data.get("passphrase", ""), data.get("code", ""),
                       request_meta(request, who))
            except auth_service.SignInRefused as exc:
                refused = exc  # a wrong passphrase is counted, and that count is kept
        if refused is not None:
            return self._render(request, state, who, refused,
                                429 if refused.code == "locked" else 400)
        return Redirect(done)

    @post("/", sync_to_thread=True)
    def add(self, request: Request[Any, Any, Any], state: State,
            principal: NamedDependency[Principal | None],
            data: URLEncodedBody[dict[str, str]]) -> Response[Any]:
        return self._change(request, state, require_participant(principal), data,
                            auth_service.add_totp, "/me?totp=added")

    @post("/remove", sync_to_thread=True)
    def remove(self, request: Request[Any, Any, Any], state: State,
               principal: NamedDependency[Principal | None],
               data: URLEncodedBody[dict[str, str]]) -> Response[Any]:
        return self._change(request, state, require_participant(principal), data,
                            auth_service.remove_totp, "/me/security/?done=removed")


SIGN_IN_REASONS = ("idle_timeout", "absolute_timeout", "ended", "needed")


def login_redirect(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Unauthenticated: pages go to the right sign-in page; the API answers 401 JSON.

    Staff are told why (their session ended, and how, or the page needs a sign-in). A form a
    staff member posted after their session timed out is kept for them in this browser
    (portal.auth.kept_forms) and filled in again after they sign in."""
    if request.url.path.startswith("/api/"):
        return Response({"status_code": 401, "message": "sign in or send a bearer token"},
                        status_code=401)
    if request.url.path.startswith("/me"):
        return Redirect("/me/login")
    state = request.app.state
    ended: SessionEnded | None = request.state.get(SESSION_ENDED)
    had_session = components_of(state).sessions.token(request) is not None
    why = "needed" if not had_session else "ended" if ended is None \
        or ended.reason not in ("idle_timeout", "absolute_timeout") else ended.reason
    query = {"why": why}
    kept = None
    if request.method == "POST" and ended is not None and ended.staff_user_id is not None \
            and why in ("idle_timeout", "absolute_timeout"):
        fields = kept_forms.posted_fields(request)
        if fields:
            with database_of(state).begin() as db:
                kept = kept_forms.keep(db, components_of(state).vault,
                                       staff_user_id=ended.staff_user_id,
                                       action=request.url.path, fields=fields)
            if kept is not None:
                query["kept"] = "1"
    target = f"/auth/login?{urlencode(query)}"
    response: Response[Any]
    if request.headers.get("hx-request") == "true":
        # htmx goes to the sign-in page itself, instead of swapping it into this one.
        response = Response(None, status_code=204, headers={"hx-redirect": target})
    else:
        response = Redirect(target)
    if kept is not None:
        response.set_cookie(kept_forms.cookie(state.settings, kept))
    return response
