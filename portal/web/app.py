"""The Litestar application factory: every plugin, route and dependency is wired here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from litestar.template.config import TemplateConfig
from litestar.types import Message, Scope
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from portal.config import PROJECT_ROOT, Settings
from portal.db import migrate
from portal.db.engine import make_engine, make_session_factory

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
TEMPLATE_DIR = PROJECT_ROOT / "templates"

SECURITY_HEADERS = {
    # No inline scripts or styles anywhere: htmx and CSS are served from /static.
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
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
def healthz(state: State) -> Response[dict[str, str]]:
    """200 when the database answers and its schema is current, else 503 with the reason."""
    engine: Engine = state.engine
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = migrate.current_revision(engine)
    except SQLAlchemyError as exc:
        reason = f"database unreachable ({type(getattr(exc, 'orig', None) or exc).__name__})"
        return Response({"status": "unavailable", "reason": reason},
                        status_code=HTTP_503_SERVICE_UNAVAILABLE)
    head = state.schema_head
    if current != head:
        return Response(
            {"status": "unavailable",
             "reason": f"database schema at {current or 'nothing'}, expected {head}; "
                       "run `portal db upgrade`"},
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
        )
    return Response({"status": "ok", "database": "ok", "schema": str(current)},
                    status_code=HTTP_200_OK)


_ENCODED_HEADERS = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]


async def _security_headers(message: Message, scope: Scope) -> None:
    """Added at the ASGI level, so that error pages and static files carry them too."""
    if message["type"] == "http.response.start":
        present = {name.lower() for name, _ in message.get("headers", [])}
        message["headers"] = [*message.get("headers", []),
                              *(h for h in _ENCODED_HEADERS if h[0] not in present)]


def _error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Never a stack trace: a plain page (or JSON for the API) saying what to do next."""
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "") if status < 500 else ""
    if request.url.path.startswith("/api/") or request.url.path == "/healthz":
        message = detail or _STATUS_TEXT.get(status, "error")
        return Response({"status_code": status, "message": message}, status_code=status)
    return Template("error.html", context={"status": status, "detail": detail},
                    status_code=status)


_STATUS_TEXT = {
    400: "bad request", 403: "forbidden", 404: "not found", 405: "method not allowed",
    500: "internal error", 503: "service unavailable",
}


def create_app(settings: Settings, engine: Engine | None = None) -> Litestar:
    engine = engine or make_engine(settings)
    state = State({
        "settings": settings,
        "engine": engine,
        "sessions": make_session_factory(engine),
        "schema_head": migrate.head_revision(engine),
    })
    return Litestar(
        route_handlers=[
            landing,
            healthz,
            create_static_files_router(path="/static", directories=[STATIC_DIR], name="static"),
        ],
        state=state,
        plugins=[HTMXPlugin()],
        template_config=TemplateConfig(directory=TEMPLATE_DIR, engine=JinjaTemplateEngine),
        before_send=[_security_headers],
        exception_handlers={Exception: _error_page},
        on_shutdown=[lambda: engine.dispose()],
        debug=False,
    )
