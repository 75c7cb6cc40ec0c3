"""Connecting to the database: SQLite (embedded default, WAL) or PostgreSQL.

Writers take their lock up front. On SQLite a transaction that reads and then writes fails at once
with "database is locked" when another writer committed in between, whatever the busy timeout, so every
write transaction starts with BEGIN IMMEDIATE; readers use plain deferred transactions and, under WAL,
never block writers.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

__all__ = ["Database", "utcnow"]


log = logging.getLogger(__name__)


def _json_dumps(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


@functools.lru_cache(maxsize=64)
def _pyformat(sql: str) -> str:
    """`:name` parameters as psycopg's `%(name)s` (a literal % doubled)."""
    return re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", sql.replace("%", "%%"))


def utcnow() -> datetime:
    return datetime.now(UTC)


class _WriterLock:
    """SQLite has one writer. Writers queue here, threads on a mutex and processes on a file lock, and
    are woken the moment the lock is free; left to SQLite's busy handler they would poll with sleeps
    of up to 100 ms and leave the database idle in between."""

    def __init__(self, database: str | None):
        self._mutex = threading.Lock()
        self._path = f"{database}.write-lock" if database and database != ":memory:" else None
        self._file: int | None = None

    def __enter__(self) -> None:
        self._mutex.acquire()
        if self._path is not None:
            try:
                if self._file is None:
                    self._file = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(self._file, fcntl.LOCK_EX)
            except BaseException:
                self._mutex.release()
                raise

    def __exit__(self, *_exc: object) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
        self._mutex.release()


class _Checkpointer:
    """SQLite: copies the write-ahead log into the database file from a background thread, once a second,
    in a process that writes. Writers keep committing meanwhile; with SQLite's own auto-checkpoint the
    commit that crosses the threshold pays for it (100-200 ms for a large WAL) while every other writer
    queues behind it (bench/segments.py's latency tail)."""

    INTERVAL_SECONDS = 1.0

    def __init__(self, engine: Engine):
        self._engine = engine
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.INTERVAL_SECONDS):
            try:
                connection = self._engine.raw_connection()
                try:  # outside any transaction: the connection is in autocommit mode (see _on_connect)
                    connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
                finally:
                    connection.close()
            except Exception:  # noqa: BLE001 - a missed checkpoint is retried; the WAL just grows meanwhile
                log.debug("WAL checkpoint failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class Database:
    """One engine and the two kinds of transaction engage uses."""

    def __init__(self, url: str, pool_size: int = 5, echo: bool = False):
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self._write_lock: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        self._checkpointer: _Checkpointer | None = None
        if self.is_sqlite:
            self._write_lock = _WriterLock(self.url.database)
            self.engine = self._sqlite_engine(echo)
            self._checkpointer = _Checkpointer(self.engine)
        else:
            self.engine = create_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                json_serializer=_json_dumps,
                json_deserializer=orjson.loads,
                echo=echo,
            )

    def _sqlite_engine(self, echo: bool) -> Engine:
        database = self.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            self.url,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            connect_args={"check_same_thread": False, "timeout": 30},
            echo=echo,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # Take transaction control from the sqlite3 module so BEGIN can be IMMEDIATE.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # NORMAL under WAL survives any process crash; only an OS crash can lose the last commits.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB of pages: index updates stay in memory
            # Checkpoints run in the background (_Checkpointer); this is only a bound on the WAL if that
            # thread falls behind, as an auto-checkpoint runs inside a commit while every writer waits.
            cursor.execute("PRAGMA wal_autocheckpoint=262144")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            mode = "IMMEDIATE" if connection.get_execution_options().get("engage_write") else "DEFERRED"
            connection.exec_driver_sql(f"BEGIN {mode}")

        return engine

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that will write: committed on success, rolled back on error."""
        if self._checkpointer is not None:
            self._checkpointer.start()
        with (
            self._write_lock,
            self.engine.connect().execution_options(engage_write=True) as connection,
            connection.begin(),
        ):
            yield connection

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as connection, connection.begin():
            yield connection

    def fetch(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of one read, `:name` parameters bound, through the driver's cursor: on a path run at
        every request, SQLAlchemy's statement and result objects cost more than the query. One statement
        needs no transaction of its own (on SQLite, a BEGIN costs as much as the query)."""
        with self.engine.connect() as connection:
            cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(sql if self.is_sqlite else _pyformat(sql), params)
                return cursor.fetchall()
            finally:
                cursor.close()

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"
