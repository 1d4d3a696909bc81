"""schemathesis over the HTML pages and form routes (the API has its own run in test_api.py):
every operation in the served OpenAPI document, fuzzed in process with a signed-in session and a
valid CSRF token so that the requests reach the handlers. Bad input must get a 4xx with a
message, never a 500 or a trace."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy.orm import Session, sessionmaker

from portal.auth.sessions import SessionManager
from portal.config import Settings
from portal.db import repositories as repo
from portal.kernel.wiring import Services
from portal.web.app import create_app
from tests.e2e.conftest import BASE
from tests.e2e.fuzzing import case_strategies

MARIA = "maria.lopez@harbor-lead.example"  # case manager
OLIVIA = "olivia.chen@harbor-lead.example"  # organization administrator
RENEE = "renee.walsh@harbor-lead.example"  # compliance officer

# Who asks, by path: each area fuzzed by someone it is meant for, so the handlers run.
AREAS: list[tuple[str, str]] = [
    ("^/me", "participant"),
    ("^/compliance", RENEE),
    ("^/admin", OLIVIA),
    # Sign-out ends the session the rest of the run needs: it is fuzzed last, on its own.
    ("^/(?!me|compliance|admin|api/|auth/logout|schema|dev-idp|static)", MARIA),
    ("^/auth/logout", MARIA),
]


@pytest.fixture
def sessions(app_settings: Settings, demo: sessionmaker[Session],
             services: Services) -> Iterator[Callable[[str], dict[str, str]]]:
    """Headers for a signed-in user (a staff e-mail address, or "participant" for Marcus):
    their session cookie and a CSRF token the portal issued, as cookie and header."""
    client = TestClient(create_app(app_settings), base_url=BASE)
    client.__enter__()

    def headers(who: str) -> dict[str, str]:
        with demo.begin() as s:
            if who == "participant":
                p = repo.participant_by_public_id(s, "LP-1001")
                assert p is not None
                token = SessionManager(app_settings, services.audit).start(
                    s, participant_id=p.id)
            else:
                user = repo.staff_by_email(s, who)
                assert user is not None
                token = SessionManager(app_settings, services.audit).start(
                    s, staff_user_id=user.id)
        client.cookies.clear()
        client.cookies.set("portal_session", token)
        page = client.get("/me" if who == "participant" else "/")
        assert page.status_code == 200, page.text
        cookie = client.cookies.get("csrftoken")
        issued = re.search(r'"x-csrftoken": "([0-9a-f]+)"', page.text)
        assert cookie and issued
        return {"Cookie": f"portal_session={token}; csrftoken={cookie}",
                "x-csrftoken": issued.group(1)}

    yield headers
    client.__exit__(None, None, None)


def test_every_page_and_form_answers_bad_input_with_a_4xx(
        app_settings: Settings, sessions: Callable[[str], dict[str, str]]) -> None:
    app = create_app(app_settings)
    statuses: Counter[int] = Counter()
    fuzzed: set[str] = set()
    try:
        schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
        for pattern, who in AREAS:
            headers = sessions(who)
            for result in schema.include(path_regex=pattern).get_all_operations():
                operation = result.ok()
                _fuzz(operation, headers, statuses)
                fuzzed.add(f"{operation.method.upper()} {operation.path}")
        assert isinstance(app, Litestar)
        paths = app.openapi_schema.to_schema()["paths"]
    finally:
        app.state.engine.dispose()
    expected = {f"{method.upper()} {path}" for path, item in paths.items()
                for method in item
                if not path.startswith(("/api/", "/dev-idp", "/schema", "/static"))}
    assert fuzzed == expected
    # The fuzzing reached the handlers: pages, refusals and bad input all happened.
    assert statuses[200] and statuses[404] and statuses[400], statuses


def _fuzz(operation: Any, headers: dict[str, str], statuses: Counter[int]) -> None:
    @settings(max_examples=20, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(drawn=case_strategies(operation))
    def fuzz(drawn: tuple[Any, Any]) -> None:
        _, case = drawn
        response = case.call(headers=headers, allow_redirects=False)
        statuses[response.status_code] += 1
        what = (case.method, case.formatted_path, response.status_code, response.text[:400])
        assert response.status_code < 500, what
        assert "Traceback" not in response.text and 'File "' not in response.text, what
        if 400 <= response.status_code < 500 and response.status_code != 405:
            # A message for the person: an error page with words, or a form shown again.
            text = re.sub(r"<[^>]+>", " ", response.text)
            assert len(text.split()) >= 3, what

    fuzz()
