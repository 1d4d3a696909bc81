"""The Litestar application factory: every plugin, route and dependency is wired here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from litestar import Litestar, Request, Response, get
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import NotAuthorizedException, ServiceUnavailableException
from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi import OpenAPIConfig
from litestar.params import FromQuery
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from litestar.template.config import TemplateConfig
from litestar.types import ControllerRouterHandler, HTTPScope, Message, Scope, Send
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from portal.admin.routes import admin_router
from portal.auth import service as auth_service
from portal.auth.guards import AuthComponents, provide_principal
from portal.auth.oidc import RelyingParty, load_providers, tls_context
from portal.auth.routes import (
    ParticipantAuthController,
    ParticipantSecurityController,
    StaffAuthController,
    login_redirect,
)
from portal.auth.sessions import SessionManager
from portal.compliance.routes import compliance_router
from portal.config import PROJECT_ROOT, Settings
from portal.consents.routes import ConsentController
from portal.db import migrate
from portal.db.audit_chain import AuditBusy, AuditWriteError
from portal.db.engine import make_engine, make_session_factory
from portal.kernel.wiring import Services
from portal.policy.casbin_policy import load_role_mapping
from portal.referrals.routes import CareTeamController, ReferralController
from portal.selfservice.routes import MeController
from portal.web import i18n
from portal.web.access import declared
from portal.web.api import api_router
from portal.web.csrf import PortalCSRFMiddleware
from portal.web.nav import staff_nav
from portal.workspace.lifecycle_routes import LifecycleController
from portal.workspace.routes import WorkspaceController

log = logging.getLogger("portal.web")
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
TEMPLATE_DIR = PROJECT_ROOT / "templates"

def content_security_policy(form_targets: list[str]) -> str:
    """No inline scripts or styles anywhere: htmx and CSS are served from /static. Forms may
    post only here, and (sign-out redirects) to the configured identity providers."""
    form_action = " ".join(["'self'", *sorted(set(form_targets))])
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"object-src 'none'; base-uri 'none'; form-action {form_action}; "
            "frame-ancestors 'none'")


SECURITY_HEADERS = {
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cross-origin-opener-policy": "same-origin",
}


@get("/", name="landing", sync_to_thread=False)
def landing(state: State) -> Template:
    settings: Settings = state.settings
    return Template("landing.html", context={"dev_idp": settings.dev_idp})


@get("/healthz", name="healthz", sync_to_thread=True)
def healthz(state: State, schema: FromQuery[bool] = False) -> Response[dict[str, str]]:
    """200 when the database answers and its schema is current, else 503 with the reason.

    Every call pings the database. The schema (an Alembic migration context) is checked only
    until it is first found current, and again on demand (``?schema=true``): a schema does
    not fall behind a running portal except by a deliberate downgrade."""
    engine: Engine = state.engine
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = state.schema_head if state.schema_current and not schema \
            else migrate.current_revision(engine)
    except SQLAlchemyError as exc:
        reason = f"database unreachable ({type(getattr(exc, 'orig', None) or exc).__name__})"
        return Response({"status": "unavailable", "reason": reason},
                        status_code=HTTP_503_SERVICE_UNAVAILABLE)
    head = state.schema_head
    state.schema_current = current == head
    if current != head:
        return Response(
            {"status": "unavailable",
             "reason": f"database schema at {current or 'nothing'}, expected {head}; "
                       "run `portal db upgrade`"},
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
        )
    return Response({"status": "ok", "database": "ok", "schema": str(current)},
                    status_code=HTTP_200_OK)


def _security_headers(csp: str, *, https: bool) -> Callable[[Message, Scope], Awaitable[None]]:
    hsts = {"strict-transport-security": "max-age=31536000; includeSubDomains"} if https else {}
    headers = [(k.encode(), v.encode())
               for k, v in {**SECURITY_HEADERS, "content-security-policy": csp, **hsts}.items()]

    no_store = (b"cache-control", b"no-store")

    async def add(message: Message, scope: Scope) -> None:
        """Added at the ASGI level, so that error pages and static files carry them too. Only
        the static files may be kept by a browser: every other answer may carry participant
        information or come from a signed-in session, and Back after sign-out must not show
        it again."""
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            cache = [] if scope["path"].startswith("/static/") else [no_store]
            message["headers"] = [*message.get("headers", []),
                                  *(h for h in [*headers, *cache] if h[0] not in present)]

    return add


# The pages that carry no participant information (and the static files) answer HEAD. Every
# other page is a view of someone's information that would be audited (and listed in their
# accounting of disclosures) while nothing was sent, so there HEAD stays 405.
HEAD_PATHS = frozenset({"/", "/healthz", "/auth/login", "/me/login", "/me/enrol"})


class PortalApp(Litestar):
    """The portal's Litestar application: the public pages (``HEAD_PATHS``) also answer HEAD
    (RFC 9110 9.3.2), with the GET answer's status and headers and no body. Litestar routes
    HEAD only to handlers declared for it, so `HEAD /` would be 405."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or not (
                scope["path"] in HEAD_PATHS or scope["path"].startswith("/static/")):
            await super().__call__(scope, receive, send)
            return
        # A copy: the server keeps its own scope's HEAD and so sends no body either.
        as_get = cast("HTTPScope", {**scope, "method": "GET"})
        await super().__call__(as_get, receive, _without_body(send))


def _without_body(send: Send) -> Send:
    async def head_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {"type": "http.response.body", "body": b"",
                       "more_body": message.get("more_body", False)}
        await send(message)

    return head_send


def openapi_config() -> OpenAPIConfig:
    """The API document names the portal (not Litestar's "Litestar API" default)."""
    return OpenAPIConfig(
        title="LEAD Partner Portal API", version=_portal_version(),
        description=("The JSON API of the LEAD partner portal for partner systems. Every "
                     "answer goes through the same access decision and audit log as the "
                     "pages: what a user may see follows their role, the care team and the "
                     "participant's consents. Authenticate with the session cookie (reads "
                     "only) or an OAuth2 bearer access token from a configured identity "
                     "provider. \"Not permitted\" is the same 404 as \"no such participant\"."))


def _portal_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lead-portal")
    except PackageNotFoundError:
        return "unknown"


def _error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Never a stack trace: a plain page (or JSON for the API) saying what to do next."""
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "") if status < 500 or status == 503 else ""
    if status >= 500:
        # The operator's log gets the traceback; the user never does.
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    if request.url.path.startswith("/api/") or request.url.path == "/healthz":
        message = detail or _STATUS_TEXT.get(status, "error")
        return Response({"status_code": status, "message": message}, status_code=status)
    context: dict[str, Any] = {"status": status, "detail": detail}
    if i18n.is_participant_page(request):
        # Participants read it in their language, without staff-facing detail.
        context = {"status": status, "detail": "", "participant_page": True}
    return Template("error.html", context=context, status_code=status)


def _audit_unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Fail closed: when the access cannot be recorded, nothing is shown (DESIGN section 5)."""
    log.error("audit log unavailable; %s %s refused", request.method, request.url.path,
              exc_info=exc)
    busy = " The audit log is busy." if isinstance(exc, AuditBusy) else ""
    return _error_page(request, ServiceUnavailableException(
        f"The access could not be recorded, so nothing was shown.{busy} Please try again "
        "shortly."))


def _database_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The database did not answer (down, unreachable, out of connections): 503, not 500.
    A dropped connection can also surface as another driver error raised while the pool
    pings it (psycopg's "can't change 'autocommit' now" after "connection socket closed"),
    so the error's causes are looked at too; any other database error stays a 500."""
    cause: BaseException | None = exc
    seen: set[int] = set()
    # DB-API's names (PEP 249): SQLAlchemy's wrappers and every driver's own classes.
    while cause is not None and id(cause) not in seen and type(cause).__name__ not in (
            "OperationalError", "InterfaceError"):
        seen.add(id(cause))
        cause = cause.__cause__ or getattr(cause, "orig", None) or cause.__context__
    if cause is not None and id(cause) in seen:
        cause = None
    if cause is None:
        return _error_page(request, exc)
    log.error("database unavailable; %s %s refused", request.method, request.url.path,
              exc_info=exc)
    return _error_page(request, ServiceUnavailableException(
        "The database is not answering, so nothing was shown or changed. Please try again "
        "shortly."))


_STATUS_TEXT = {
    400: "bad request", 403: "forbidden", 404: "not found", 405: "method not allowed",
    500: "internal error", 503: "service unavailable",
}


SIGN_IN_PATHS = ("/auth/login", "/auth/callback", "/me/login", "/me/enrol", "/dev-idp/authorize")


def _is_sign_in(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith(SIGN_IN_PATHS)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _template_setup(engine: JinjaTemplateEngine) -> None:
    engine.register_template_callable("staff_nav", staff_nav)
    i18n.install(engine.engine)


def create_app(settings: Settings, engine: Engine | None = None) -> Litestar:
    i18n.load_catalogs()
    engine = engine or make_engine(settings)
    session_factory = make_session_factory(engine)
    state = State({
        "settings": settings,
        "engine": engine,
        "sessions": session_factory,
        "schema_head": migrate.head_revision(engine),
        "schema_current": False,  # found current by /healthz (then checked on demand only)
    })
    handlers: list[ControllerRouterHandler] = [
        landing,
        healthz,
        create_static_files_router(path="/static", directories=[STATIC_DIR], name="static"),
    ]
    if settings.dev_idp:
        from portal.devtools.devidp import dev_idp_router

        handlers.append(dev_idp_router(settings, session_factory))
    services = Services.build(settings, session_factory)
    state.services = services
    # The first unknown username must cost no more than any other sign-in.
    auth_service.dummy_hash(auth_service.HASHER)
    providers = load_providers(settings)
    tls = tls_context(settings)
    state.auth = AuthComponents(
        providers={p.id: RelyingParty(p, f"{settings.base_url.rstrip('/')}/auth/callback/{p.id}",
                                      tls=tls, require_https=settings.is_production)
                   for p in providers},
        sessions=SessionManager(settings, services.audit), audit=services.audit,
        vault=services.vault,
        role_mapping=load_role_mapping(settings.policies_dir / "role_mapping.csv"))
    handlers += [StaffAuthController, ParticipantAuthController,
                 ParticipantSecurityController, MeController, WorkspaceController,
                 ConsentController,
                 ReferralController, CareTeamController, LifecycleController, admin_router,
                 api_router,
                 compliance_router]
    secure = settings.https
    return PortalApp(
        route_handlers=handlers,
        openapi_config=openapi_config(),
        # Every portal route declares what it needs (portal/web/access.py), or does not answer.
        guards=[declared],
        state=state,
        plugins=[HTMXPlugin()],
        template_config=TemplateConfig(
            directory=TEMPLATE_DIR, engine=JinjaTemplateEngine, engine_callback=_template_setup),
        before_send=[_security_headers(content_security_policy(
            [_origin(p.issuer) for p in providers]), https=secure)],
        dependencies={"principal": Provide(provide_principal, sync_to_thread=True)},
        middleware=[RateLimitConfig(
            rate_limit=("minute", settings.login_rate_limit),
            # Only the sign-in endpoints are limited (per client address).
            check_throttle_handler=_is_sign_in,
        ).middleware, DefineMiddleware(PortalCSRFMiddleware, config=CSRFConfig(
            secret=settings.secret_key,
            cookie_name="__Host-csrftoken" if secure else "csrftoken",
            cookie_secure=secure, cookie_httponly=True, cookie_samesite="lax",
            header_name="x-csrftoken",
            # Server-to-server endpoints authenticate otherwise (client secret, bearer token).
            exclude=["/dev-idp/token", "/api/"],
        ), session_cookie=state.auth.sessions.cookie_name)],
        exception_handlers={NotAuthorizedException: login_redirect,
                            AuditWriteError: _audit_unavailable,
                            DBAPIError: _database_error, Exception: _error_page},
        on_shutdown=[lambda: engine.dispose()],
        debug=False,
    )
