"""Alembic environment: always given an engine by fusioncell.migrations.upgrade."""

from alembic import context

from fusioncell.db import Base, load_models

load_models()

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
