"""Alembic migrations, applied on start and by `engage db upgrade`.

Several processes may start at once, so the upgrade runs under a lock: an advisory lock on PostgreSQL,
a file lock beside the database on SQLite.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from engage.store.database import Database

__all__ = ["upgrade", "current_revision", "head_revision"]

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_ID = 0x656E6761  # "enga"


def _config(database: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database"] = database
    return config


@contextlib.contextmanager
def _migration_lock(database: Database) -> Iterator[None]:
    if database.is_sqlite:
        path = Path(database.url.database or "engage.db").with_suffix(".migrate.lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
        return
    with database.engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _LOCK_ID})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _LOCK_ID})
            connection.commit()


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head() or ""


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema to `revision`; a no-op when it is already there."""
    if current_revision(database) == head_revision() and revision == "head":
        return
    with _migration_lock(database):
        command.upgrade(_config(database), revision)
