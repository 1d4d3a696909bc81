"""Programmatic Alembic: `portal db upgrade|downgrade|current`, and helpers for tests."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from portal.config import PROJECT_ROOT, Settings
from portal.db.engine import make_engine


def alembic_config(engine: Engine) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head", settings: Settings | None = None) -> None:
    """Settings give data migrations their keys (see the encryption migration)."""
    _run(engine, command.upgrade, revision, settings)


def downgrade(engine: Engine, revision: str, settings: Settings | None = None) -> None:
    _run(engine, command.downgrade, revision, settings)


def _run(engine: Engine, step: Callable[[Config, str], None], revision: str,
         settings: Settings | None) -> None:
    migrating = engine
    if engine.dialect.name == "sqlite":
        url = engine.url.render_as_string(hide_password=False)
        migrating = make_engine(Settings(database_url=url), foreign_keys=False)
    try:
        with migrating.begin() as connection:
            config = alembic_config(migrating)
            config.attributes["connection"] = connection
            config.attributes["settings"] = settings
            step(config, revision)
            if connection.dialect.name == "sqlite":
                problems = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if problems:
                    raise RuntimeError(f"migration left broken references: {problems[:5]}")
    finally:
        if migrating is not engine:
            migrating.dispose()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
