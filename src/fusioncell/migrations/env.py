"""Alembic environment: always given an engine by fusioncell.migrations.upgrade."""

from alembic import context

from fusioncell.db import Base, load_models

load_models()

MIGRATION_LOCK = 0x66757332  # PostgreSQL advisory lock of schema upgrades (the sequencer's is ...31)
engine = context.config.attributes["engine"]
with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    driver = connection.connection.driver_connection if sqlite else None
    if driver is not None:
        # On SQLite a batch operation rebuilds its table (copy, drop, rename), and the drop must neither cascade
        # to nor be refused by the tables that refer to it. Turned off outside any transaction (SQLite ignores it
        # inside one), on again after, and the references checked then.
        driver.execute("PRAGMA foreign_keys=OFF")
    try:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Workers that start together upgrade one after the other; the later ones find the schema done.
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            context.run_migrations()
            if driver is not None:
                # Before the commit, so that a migration that broke a reference is rolled back with it.
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"a migration left rows that refer to nothing: {broken[:5]}")
        connection.commit()
    finally:
        if driver is not None:
            driver.execute("PRAGMA foreign_keys=ON")
