"""INSERT … ON CONFLICT DO UPDATE, the same SQL on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, TextClause, text

__all__ = ["upsert"]


@lru_cache(maxsize=64)
def _statement(
    table: str, columns: tuple[str, ...], key: tuple[str, ...], update: tuple[str, ...]
) -> TextClause:
    return text(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in update)}"
    )


def upsert(
    connection: Connection,
    table: str,
    rows: Sequence[dict[str, Any]],
    key: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert `rows` (values ready for the driver), replacing the `update` columns where `key` exists."""
    if not rows:
        return
    columns = tuple(rows[0])
    connection.execute(_statement(table, columns, tuple(key), tuple(update)), list(rows))
