"""Alembic migrations build exactly the schema the models declare, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from fusioncell.db import Base, Database, load_models


def test_migrations_match_the_models(db_url):
    db = Database(db_url)
    db.migrate()
    load_models()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    db.dispose()
    assert diff == []


def test_migrating_twice_is_harmless(db_url):
    db = Database(db_url)
    db.migrate()
    db.migrate()
    db.dispose()
