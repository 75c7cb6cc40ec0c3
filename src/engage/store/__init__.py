"""Storage: the SQLAlchemy models, the database connection and the migrations."""

from engage.store.database import Database, utcnow
from engage.store.migrate import current_revision, head_revision, upgrade

__all__ = ["Database", "utcnow", "upgrade", "current_revision", "head_revision"]
