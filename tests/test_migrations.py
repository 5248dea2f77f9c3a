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


def test_the_entry_index_migration_keeps_a_live_log_both_ways(cell, il_liaison):
    """0007 rebuilds the entry table on SQLite: entries, bodies and the rows that refer to them survive it, down
    and up again, and the log verifies after each."""
    from alembic import command

    from fusioncell.migrations import alembic_config, upgrade
    from fusioncell.record.verify import DatabaseSource, verify_source

    for i in range(5):
        il_liaison.append({"text": f"before the migration {i}"})
    size = verify_source(DatabaseSource(cell.db.url), workers=1).size
    command.downgrade(alembic_config(cell.db.engine), "0006")
    assert verify_source(DatabaseSource(cell.db.url), workers=1).size == size
    upgrade(cell.db.engine)
    assert verify_source(DatabaseSource(cell.db.url), workers=1).size == size
    with cell.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    cell.log.forget()
    assert il_liaison.append({"text": "after"}).seq == size


def test_serve_brings_a_cell_of_an_older_version_up_to_date(cell, tmp_path):
    """`fusioncell serve` opens the cell with upgrade=True: a database left at an older revision is migrated."""
    from alembic import command

    from fusioncell.cell import open_cell
    from fusioncell.migrations import alembic_config

    command.downgrade(alembic_config(cell.db.engine), "0006")
    root = cell.paths.root
    url = None if cell.db.dialect == "sqlite" else cell.db.url
    reopened = open_cell(root, db_url=url, upgrade=True)
    with reopened.db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    reopened.db.dispose()
