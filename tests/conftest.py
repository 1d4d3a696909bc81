"""Shared fixtures: every database test runs on the SQLite default and on PostgreSQL.

PostgreSQL comes from PORTAL_TEST_POSTGRES_URL (default: the local server). Each test session
creates its own throw-away database. When CI=true, an unreachable PostgreSQL fails the tests
that need it instead of skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from portal.auth import service as auth_service
from portal.config import Settings
from portal.crypto.keys import write_key_file
from portal.crypto.vault import Vault
from portal.db import migrate
from portal.db.engine import make_engine, make_session_factory
from portal.db.models import Base
from portal.kernel.wiring import Services

POSTGRES_ADMIN_URL = os.environ.get(
    "PORTAL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _postgres_unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"PostgreSQL not available: {reason}")


class PostgresDatabases:
    """Creates and drops throw-away databases on the test server."""

    def __init__(self, admin_url: str) -> None:
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def create(self) -> str:
        name = f"portal_test_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(
            hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as connection:
            for name in self.created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(POSTGRES_ADMIN_URL)
    try:
        with databases.admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        _postgres_unavailable(str(exc.orig).splitlines()[0])
    yield databases
    databases.drop_all()


@pytest.fixture
def new_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> str:
    """An empty database of the test's backend (a fresh one per test)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'portal.db'}"
    databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
    return databases.create()


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgresql",
                                                                marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def migrated_url(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """One migrated database per backend for the whole session."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'portal.db'}"
    else:
        url = request.getfixturevalue("postgres_databases").create()
    engine = make_engine(Settings(database_url=url))
    migrate.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def data_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One key-encryption key for the session: the shared databases keep their data keys."""
    path = tmp_path_factory.mktemp("keys") / "data-kek.key"
    write_key_file(path)
    return path


@pytest.fixture
def settings(migrated_url: str, tmp_path: Path, data_key_file: Path) -> Settings:
    return Settings(env="test", database_url=migrated_url, data_dir=tmp_path,
                    data_key_file=data_key_file)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings)
    yield engine
    # Leave the shared database empty for the next test.
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def services(settings: Settings, session_factory: sessionmaker[Session]) -> Services:
    """The real services (policy, audit log, vault) over the test database."""
    return Services.build(settings, session_factory)


@pytest.fixture
def vault(services: Services) -> Vault:
    return services.vault


# Argon2id at the production cost (64 MiB, 3 passes) takes about half a second a hash on a
# busy machine; the demo data hashes two passphrases for every test that seeds it, and every
# participant sign-in verifies one. The tests hash with the cheapest parameters instead;
# test_participant_sign_in.py checks the production ones.
TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(scope="session", autouse=True)
def production_hasher() -> Iterator[PasswordHasher]:
    """The passphrase hasher the portal uses in production, while the tests use TEST_HASHER."""
    production = auth_service.HASHER
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(auth_service, "HASHER", TEST_HASHER)
        yield production
