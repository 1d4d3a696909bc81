"""Web hardening (README, "Security"): what a browser may keep, and what reaches it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from portal.config import Settings
from portal.db import models as m
from portal.web.app import create_app
from tests.e2e.pages import csrf
from tests.e2e.test_route_access import _routes, dev_app  # noqa: F401  (fixture)

MARIA = "maria.lopez@harbor-lead.example"
RENEE = "renee.walsh@harbor-lead.example"


def _get_paths(app: Litestar, consent_id: str) -> list[str]:
    paths = []
    for method, template, _ in _routes(app):
        path = (template.replace("{public_id:str}", "LP-1001")
                .replace("{consent_id:str}", consent_id).replace("{category:str}", "housing"))
        if method == "GET" and "{" not in path and not path.startswith("/static"):
            paths.append(path)
    return sorted(set(paths))


def _participant(settings: Settings) -> TestClient[Any]:
    client = TestClient(create_app(settings), base_url="http://127.0.0.1:8000")
    client.__enter__()
    token = csrf(client.get("/me/login").text)
    response = client.post("/me/login", data={"username": "marcus",
                                              "passphrase": "river stone morning",
                                              "_csrf_token": token}, follow_redirects=False)
    assert response.status_code in (302, 303)
    return client


def test_no_answer_but_static_files_may_be_kept_by_the_browser(
        dev_app: Litestar, as_user: Callable[[str], TestClient[Any]],  # noqa: F811
        app_settings: Settings, demo: sessionmaker[Session]) -> None:
    with demo() as s:
        consent = str(s.scalar(select(m.Consent.id).join(m.Participant).where(
            m.Participant.public_id == "LP-1001")))
    paths = _get_paths(dev_app, consent)
    assert len(paths) >= 30
    marcus = _participant(app_settings)
    try:
        walked = 0
        for client in (as_user(MARIA), as_user(RENEE), marcus):
            for path in paths:
                response = client.get(path, follow_redirects=False)
                assert response.headers.get("cache-control") == "no-store", (
                    path, response.status_code, response.headers.get("cache-control"))
                walked += 1
        # Signed out, the same: a sign-in page must not come back from the cache either.
        signed_out = marcus.post("/auth/logout", data={"_csrf_token": csrf(
            marcus.get("/me").text)}, follow_redirects=False)
        assert signed_out.status_code in (302, 303)
        assert signed_out.headers["cache-control"] == "no-store"
        after = marcus.get("/me", follow_redirects=False)
        assert after.status_code in (302, 303)
        assert after.headers["cache-control"] == "no-store"
        assert walked == 3 * len(paths)
        static = marcus.get("/static/vendor/htmx.min.js")
        assert static.status_code == 200 and "no-store" not in static.headers.get(
            "cache-control", "")
    finally:
        marcus.__exit__(None, None, None)


def test_a_malformed_csrf_token_is_refused_on_every_form(
        dev_app: Litestar, as_user: Callable[[str], TestClient[Any]],  # noqa: F811
        demo: sessionmaker[Session]) -> None:
    """A valid token with one non-ASCII character appended answered 500 inside Litestar's
    middleware (issue 20, item 9); now it is refused like any other wrong token, and changes
    nothing."""
    with demo() as s:
        consent = str(s.scalar(select(m.Consent.id).join(m.Participant).where(
            m.Participant.public_id == "LP-1001")))
    def fill(template: str) -> str:
        path = template.replace("{public_id:str}", "LP-1001").replace("{consent_id:str}", consent)
        path = re.sub(r"\{\w+:uuid\}", str(uuid.uuid4()), path)
        return re.sub(r"\{\w+:int\}", "1", re.sub(r"\{\w+:str\}", "x", path))

    forms = sorted({fill(template) for method, template, _ in _routes(dev_app)
                    if method == "POST" and not template.startswith(("/api/", "/dev-idp"))})
    assert len(forms) >= 20
    maria = as_user(MARIA)
    token = csrf(maria.get("/staff").text)
    with demo() as s:
        before = s.scalar(select(func.count()).select_from(m.AuditEvent))
    for path in forms:
        response = maria.post(path, data={"_csrf_token": token + "é"},
                              follow_redirects=False)
        assert response.status_code == 403, (path, response.status_code)
        header = maria.post(path, headers={"x-csrftoken": (token + "é").encode()},
                            follow_redirects=False)
        assert header.status_code == 403, (path, header.status_code)
    with demo() as s:
        assert s.scalar(select(func.count()).select_from(m.AuditEvent)) == before
    assert maria.get("/staff").status_code == 200  # still signed in


def _csrf_pair(client: TestClient[Any], path: str = "/staff") -> tuple[str, str]:
    """The CSRF cookie a page sets and the token it embeds (the same value)."""
    page = client.get(path).text
    cookie = client.cookies.get("csrftoken")
    assert cookie is not None
    return cookie, csrf(page)


def test_a_csrf_token_works_only_in_the_session_it_was_issued_to(
        app_settings: Settings, as_user: Callable[[str], TestClient[Any]]) -> None:
    """Issue 20, item 8: a pair planted from another session (or from before sign-in) is
    refused, and signing in replaces the CSRF cookie."""
    attacker, victim = as_user(RENEE), as_user(MARIA)
    planted_cookie, planted_token = _csrf_pair(attacker)
    own_cookie, _ = _csrf_pair(victim)
    assert own_cookie != planted_cookie
    victim.cookies.delete("csrftoken")
    victim.cookies.set("csrftoken", planted_cookie)
    refused = victim.post("/auth/logout", data={"_csrf_token": planted_token},
                          follow_redirects=False)
    assert refused.status_code == 403
    # Still signed in; the planted cookie is not valid for this session, so the page
    # replaces it.
    page = victim.get("/staff")
    assert page.status_code == 200
    replaced = page.headers.get("set-cookie", "")
    assert replaced.startswith("csrftoken=") and planted_cookie not in replaced

    # Before sign-in: a token from the sign-in page does not survive the session starting.
    client = TestClient(create_app(app_settings), base_url="http://127.0.0.1:8000")
    with client:
        before_cookie, before_token = _csrf_pair(client, "/me/login")
        assert before_token == before_cookie
        client.cookies.set("portal_session", victim.cookies["portal_session"])
        client.cookies.delete("csrftoken")
        client.cookies.set("csrftoken", before_cookie)
        stale = client.post("/auth/logout", data={"_csrf_token": before_token},
                            follow_redirects=False)
        assert stale.status_code == 403
        client.cookies.delete("csrftoken")
        client.cookies.set("csrftoken", before_cookie)
        page = client.get("/staff")
        assert page.headers.get("set-cookie", "").startswith("csrftoken=")
        after_token = csrf(page.text)
        assert after_token != before_cookie
        assert page.headers["set-cookie"].startswith(f"csrftoken={after_token};")
        client.cookies.delete("csrftoken")
        client.cookies.set("csrftoken", after_token)
        done = client.post("/auth/logout", data={"_csrf_token": after_token},
                           follow_redirects=False)
        assert done.status_code in (302, 303)
    assert victim.get("/staff", follow_redirects=False).status_code in (302, 303, 401)


def test_over_https_browsers_are_told_to_stay_there(app_settings: Settings,
                                                     demo: sessionmaker[Session]) -> None:
    https = replace(app_settings, base_url="https://portal.example.org")
    with TestClient(create_app(https), base_url="https://portal.example.org") as client:
        response = client.get("/me/login?lang=es")
        assert response.headers["strict-transport-security"].startswith("max-age=31536000")
        language = next(c for c in response.headers.get_list("set-cookie")
                        if c.startswith("lang="))
        assert "Secure" in language
    with TestClient(create_app(app_settings), base_url="http://127.0.0.1:8000") as client:
        response = client.get("/me/login?lang=es")
        assert "strict-transport-security" not in response.headers
