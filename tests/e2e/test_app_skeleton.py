"""The app skeleton over HTTP: landing page, health check, htmx served locally, headers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

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
