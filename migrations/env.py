"""Alembic environment: runs migrations against the URL chosen by `portal db` (or PORTAL_*)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from portal.config import Settings
from portal.db.engine import make_engine
from portal.db.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place: copy-and-move tables in a batch.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # One transaction per migration: a failed migration leaves the previous one intact.
        transaction_per_migration=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    settings = Settings.from_env() if not url else Settings(database_url=url)
    engine = make_engine(settings)
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            _run(connection)
    engine.dispose()


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Never queue behind a long lock in production: fail fast and retry instead.
        connection.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
        connection.exec_driver_sql("SET LOCAL statement_timeout = '15min'")
    context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `portal db upgrade`")
run_migrations_online()
