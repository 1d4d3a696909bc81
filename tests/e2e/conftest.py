"""Fixtures for the HTTP tests: the seeded demo, and clients signed in as demo staff through
the real session manager."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy.orm import Session, sessionmaker

from portal.auth.sessions import SessionManager
from portal.config import Settings
from portal.db import repositories as repo
from portal.devtools.seed import seed_demo
from portal.kernel.wiring import Services
from portal.web.app import create_app

BASE = "http://127.0.0.1:8000"


@pytest.fixture
def demo(session_factory: sessionmaker[Session], services: Services) -> sessionmaker[Session]:
    with session_factory.begin() as session:
        seed_demo(session, issuer=BASE + "/dev-idp", vault=services.vault)
    return session_factory


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    """The settings of the app under test: the test database and keys, no demo sign-in."""
    return Settings(env="test", database_url=settings.database_url,
                    data_dir=settings.data_dir, data_key_file=settings.data_key_file,
                    dev_idp=False)


@pytest.fixture
def as_user(app_settings: Settings, demo: sessionmaker[Session],
            services: Services) -> Iterator[Callable[[str], TestClient[Any]]]:
    """A client signed in with a real server-side session (a new session per call)."""
    clients: list[TestClient[Any]] = []

    def sign_in(email: str) -> TestClient[Any]:
        with demo.begin() as s:
            user = repo.staff_by_email(s, email)
            assert user is not None
            token = SessionManager(app_settings, services.audit).start(
                s, staff_user_id=user.id)
        client = TestClient(create_app(app_settings), base_url=BASE)
        client.__enter__()
        client.cookies.set("portal_session", token)
        clients.append(client)
        return client

    yield sign_in
    for client in clients:
        client.__exit__(None, None, None)
