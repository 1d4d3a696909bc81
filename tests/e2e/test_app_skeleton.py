"""The app skeleton over HTTP: landing page, health check, htmx served locally, headers."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from portal.config import Settings
from portal.db import migrate
from portal.db.engine import make_engine
from portal.web.app import create_app


def test_landing_page_tells_a_newcomer_what_this_is(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        page = client.get("/")
    assert page.status_code == 200
    assert "LEAD Partner Portal" in page.text
    assert "consent" in page.text
    assert 'href="/auth/login"' in page.text and 'href="/me/login"' in page.text
    assert '<script src="/static/vendor/htmx.min.js"' in page.text
    assert "<script>" not in page.text  # no inline scripts (Content-Security-Policy)


def test_htmx_2_is_served_locally(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        script = client.get("/static/vendor/htmx.min.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert 'version:"2.' in script.text


def test_healthz_ok_when_the_database_is_current(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_healthz_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
                        data_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert "database unreachable" in response.json()["reason"]


def test_healthz_503_when_the_schema_is_behind(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}", data_dir=tmp_path)
    engine = make_engine(settings)
    with TestClient(create_app(settings, engine)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert "portal db upgrade" in response.json()["reason"]
    migrate.upgrade(engine)
    with TestClient(create_app(settings, engine)) as client:
        assert client.get("/healthz").status_code == 200
        # Once current, the schema is checked again only on demand (issue 14); the
        # database is still pinged on every call.
        migrate.downgrade(engine, "-1")
        assert client.get("/healthz").status_code == 200
        behind = client.get("/healthz?schema=true")
        assert behind.status_code == 503 and "portal db upgrade" in behind.json()["reason"]
        assert client.get("/healthz").status_code == 503  # known behind: checked each call
        migrate.upgrade(engine)
        assert client.get("/healthz").status_code == 200


def test_security_headers_on_every_response(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        for path in ("/", "/healthz", "/static/css/portal.css", "/no-such-page"):
            headers = client.get(path).headers
            assert "frame-ancestors 'none'" in headers["content-security-policy"], path
            assert "'unsafe-inline'" not in headers["content-security-policy"], path
            assert headers["x-content-type-options"] == "nosniff", path
            assert headers["referrer-policy"] == "no-referrer", path


def test_unknown_page_is_a_plain_404_page(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        page = client.get("/participants/../../etc/passwd")
    assert page.status_code == 404
    assert "Traceback" not in page.text
    assert "Back to the start page" in page.text


def test_sign_in_requests_are_rate_limited_per_client_address(settings: Settings) -> None:
    """PORTAL_LOGIN_RATE_LIMIT sign-in requests a minute (the tests set it high elsewhere),
    shared by every sign-in page; the rest of the portal is not limited."""
    limited = replace(settings, login_rate_limit=3)
    with TestClient(create_app(limited)) as client:
        for path in ("/auth/login", "/me/login", "/auth/login"):
            assert client.get(path).status_code == 200, path
        for path in ("/auth/login", "/me/login", "/auth/callback/e2e"):
            refused = client.get(path)
            assert refused.status_code == 429, path
            assert "Traceback" not in refused.text
        assert client.get("/").status_code == 200
        assert client.get("/healthz").status_code == 200


# --- HEAD and the OpenAPI document ---------------------------------------------------------


def _asgi_messages(app: Any, method: str, path: str) -> list[dict[str, Any]]:
    """The messages the app sends for one request, straight at the ASGI level (the test
    client drops HEAD bodies itself, so it could not show that the portal sends none)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "root_path": "", "query_string": b"", "headers": [(b"host", b"127.0.0.1")],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
    # In a thread of its own: the browser tests' Playwright leaves an event loop running in
    # this one, where asyncio.run() refuses to start another.
    failed: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(app(scope, receive, send))
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return sent


def test_head_answers_like_get_without_a_body(settings: Settings) -> None:
    app = create_app(settings)
    with TestClient(app) as client:
        for path in ("/", "/healthz", "/static/css/portal.css", "/auth/login", "/me/login"):
            got, head = client.get(path), client.head(path)
            assert head.status_code == got.status_code == 200, path
            assert head.headers["content-type"] == got.headers["content-type"], path
            assert int(head.headers["content-length"]) == len(got.content) > 0, path
            assert head.headers.get("cache-control") == got.headers.get("cache-control"), path
            assert "frame-ancestors 'none'" in head.headers["content-security-policy"]
            assert head.content == b""
        # A page that is not there is not there for HEAD either; POST-only stays POST-only.
        assert client.head("/no-such-page").status_code == 404
        assert client.head("/auth/logout").status_code == 405
        # A view of someone's information is audited: it is never made for a bodiless HEAD.
        assert client.head("/participants/LP-1001").status_code == 405
        assert client.head("/api/v1/participants/LP-1001").status_code == 405
        for path in ("/", "/healthz"):
            messages = _asgi_messages(app, "HEAD", path)
            assert messages[0]["type"] == "http.response.start"
            assert messages[0]["status"] == 200, path
            assert [m["body"] for m in messages[1:]] == [b""], path


def test_the_openapi_document_names_the_portal(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        info = client.get("/schema/openapi.json").json()["info"]
    assert info["title"] == "LEAD Partner Portal API"
    assert "Litestar" not in info["title"]
    assert info["version"] == metadata.version("lead-portal")
    assert "access decision" in info["description"] and "bearer" in info["description"]
