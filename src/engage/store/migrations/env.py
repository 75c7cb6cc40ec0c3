"""Alembic environment: runs on the connection of the engage `Database` passed in the config."""

from __future__ import annotations

from alembic import context

from engage.store.models import Base

database = context.config.attributes["database"]

with database.engine.connect().execution_options(engage_write=True) as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=database.is_sqlite,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
