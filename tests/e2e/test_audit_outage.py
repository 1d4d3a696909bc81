"""When the audit log or the database cannot answer, every page and the API refuse with 503 and
show nothing: a stuck transaction holding the audit chain's lock makes requests wait at most
the lock timeout (PostgreSQL), and a database outage is 503, never 500."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from portal.auth.sessions import SessionManager
from portal.config import Settings
from portal.db import migrate
from portal.db import models as m
from portal.db import repositories as repo
from portal.db.audit_chain import DEFAULT_CHAIN, _lock_key
from portal.db.engine import make_engine, make_session_factory
from portal.devtools.seed import seed_demo
from portal.kernel.wiring import Services
from portal.web.app import create_app
from tests.conftest import POSTGRES_ADMIN_URL, PostgresDatabases
from tests.e2e.conftest import BASE

pytestmark = pytest.mark.postgres

MARIA = "maria.lopez@harbor-lead.example"


@dataclass
class Portal:
    settings: Settings
    db: sessionmaker[Session]
    client: TestClient[Any]

    def events(self) -> int:
        with self.db() as s:
            return len(s.scalars(select(m.AuditEvent.seq)).all())


@pytest.fixture
def portal(postgres_databases: PostgresDatabases, tmp_path: Path) -> Iterator[Portal]:
    url = postgres_databases.create()
    settings = Settings(env="test", database_url=url, data_dir=tmp_path, dev_idp=False,
                        audit_lock_timeout_seconds=1)
    engine = make_engine(settings)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    services = Services.build(settings, factory)
    with factory.begin() as s:
        seed_demo(s, issuer=BASE + "/dev-idp", vault=services.vault)
        user = repo.staff_by_email(s, MARIA)
        assert user is not None
        token = SessionManager(settings, services.audit).start(s, staff_user_id=user.id)
    with TestClient(create_app(settings), base_url=BASE) as client:
        client.cookies.set("portal_session", token)
        yield Portal(settings, factory, client)
    engine.dispose()


def test_a_held_chain_lock_is_a_503_within_the_timeout_and_shows_nothing(
        portal: Portal) -> None:
    assert portal.client.get("/participants/LP-1001").status_code == 200
    before = portal.events()
    holder = create_engine(portal.settings.database_url)
    with holder.connect() as connection:  # a stuck transaction holding the chain's lock
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                           {"key": _lock_key(DEFAULT_CHAIN)})
        page = portal.client.get("/participants/LP-1001")
        assert page.status_code == 503
        assert "The audit log is busy" in page.text and "Marcus" not in page.text
        api = portal.client.get("/api/v1/participants/LP-1001")
        assert api.status_code == 503 and "Marcus" not in api.text
        assert api.json()["message"].startswith("The access could not be recorded")
        # Health does not wait on the chain.
        assert portal.client.get("/healthz").status_code == 200
        connection.rollback()
    holder.dispose()
    assert portal.events() == before  # the refused reads left nothing behind
    assert portal.client.get("/participants/LP-1001").status_code == 200


def test_a_database_outage_is_a_503_on_pages_and_the_api(portal: Portal) -> None:
    name = make_url(portal.settings.database_url).database
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = :name AND pid <> pg_backend_pid()"),
                           {"name": name})
    try:
        for path in ("/staff", "/participants/LP-1001", "/referrals"):
            page = portal.client.get(path)
            assert page.status_code == 503, (path, page.status_code)
            assert "Traceback" not in page.text
        api = portal.client.get("/api/v1/participants")
        assert api.status_code == 503
        assert "database is not answering" in api.json()["message"]
        assert portal.client.get("/healthz").status_code == 503
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
    assert portal.client.get("/staff").status_code == 200
