"""The migrations and the models agree, and the schema goes down to nothing and back up."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from portal.config import Settings
from portal.db import migrate
from portal.db.engine import make_engine
from portal.db.models import Base


def test_models_match_migrations(new_database_url: str) -> None:
    engine = make_engine(Settings(database_url=new_database_url))
    migrate.upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations differ; write a migration: {diff}"


def test_downgrade_to_base_and_upgrade_again(new_database_url: str) -> None:
    engine = make_engine(Settings(database_url=new_database_url))
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision(engine)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())

    migrate.downgrade(engine, "base")
    assert migrate.current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision(engine)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_migration_files_have_dated_names() -> None:
    from portal.config import PROJECT_ROOT

    names = sorted(p.name for p in (PROJECT_ROOT / "migrations" / "versions").glob("*.py"))
    assert names
    for name in names:
        assert name[:10].replace("_", "").isdigit() and name[4] == "_", name
