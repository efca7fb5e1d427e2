"""The stores in one shared PostgreSQL database (`RECOMMENDER_DATABASE_URL`).

One `PostgresState` per process holds a connection pool; each store gets a
`PostgresStateDatabase` view of it. Every wait of a call is bounded by `timeout_seconds`
(taking a connection from the pool, a statement, a lock), and every driver failure becomes
`StoreUnavailable`, whose message never carries the URL or its credentials. Opening is the one
longer wait (`open_timeout_seconds`): the first connection to a database just created or busy,
and migrations, which may wait for another host's or rewrite a large table. The pool connects in
its own threads, each attempt bounded by the open timeout too, so no call waits on a connect.

Migrations are the numbered SQL files in `index/state/migrations/`, applied in order, each in
its own transaction recorded in `schema_version`, under an advisory lock so that hosts starting
together apply each once. Plain SQL files rather than Alembic: the schema is a handful of tables
written in SQL already (no ORM to autogenerate from), and the files are what a DBA reads.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import Any

import psycopg
import psycopg_pool

from index.index_errors import StoreUnavailable
from index.state.state_database import Row
from recommender.settings import DatabaseSettings

log = logging.getLogger(__name__)

#: Held while migrating (any constant shared by every host; "rec-migr").
MIGRATION_LOCK = 0x7265632D6D696772
#: Held by the reindex that publishes ("rec-rein").
REINDEX_LOCK = 0x7265632D7265696E
UNAVAILABLE = "the shared database is unavailable; try again shortly"


def migrations() -> list[tuple[int, str]]:
    """The schema's migrations as (version, SQL), oldest first."""
    folder = resources.files("index.state") / "migrations"
    found = [
        (int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)


class PostgresState:
    """The connection pool of one process, and the migrations."""

    def __init__(self, settings: DatabaseSettings, *, upgrade: bool = True) -> None:
        assert settings.url is not None
        self._timeout = settings.timeout_seconds
        self._open_timeout = max(settings.open_timeout_seconds, settings.timeout_seconds)
        milliseconds = int(settings.timeout_seconds * 1000)
        self._pool = psycopg_pool.ConnectionPool(
            settings.url.get_secret_value(),
            min_size=1,
            max_size=8,
            timeout=settings.timeout_seconds,
            open=False,
            kwargs={
                "connect_timeout": max(1, math.ceil(self._open_timeout)),
                "options": f"-c statement_timeout={milliseconds} -c lock_timeout={milliseconds}",
            },
        )
        self._pool.open(wait=False)
        self._local = threading.local()
        if upgrade:
            self.upgrade()

    def close(self) -> None:
        self._pool.close()

    def view(self, store: str) -> PostgresStateDatabase:
        return PostgresStateDatabase(self, store)

    def upgrade(self) -> list[int]:
        """Apply the migrations this database lacks; returns the versions applied. Every wait
        in it is bounded by the open timeout, then the session's own bounds are restored."""
        applied: list[int] = []
        with self.connection(timeout=self._open_timeout) as conn:
            opening = f"{int(self._open_timeout * 1000)}ms"
            conn.execute(
                "SELECT set_config('statement_timeout', %s, false), "
                "set_config('lock_timeout', %s, false)",
                (opening, opening),
            )
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version "
                    "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                )
                conn.commit()
                done = {v for (v,) in conn.execute("SELECT version FROM schema_version")}
                # Ended here, so that each migration below is a transaction of its own,
                # committed before the lock goes (not a savepoint of this one).
                conn.commit()
                for version, sql in migrations():
                    if version in done:
                        continue
                    with conn.transaction():
                        conn.execute(sql.encode())
                        conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
                    applied.append(version)
                    log.info("database schema migrated to version %d", version)
            finally:
                conn.rollback()  # a migration that failed: nothing of it stays
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
                conn.execute("RESET statement_timeout")
                conn.execute("RESET lock_timeout")
                conn.commit()
        return applied

    @contextmanager
    def exclusive(self, key: int) -> Iterator[bool]:
        """Hold the session advisory lock `key` for the block if it is free: yields whether it
        was taken (never waits). The lock goes with the connection if the process dies."""
        with self.connection() as conn:
            conn.autocommit = True
            try:
                (taken,) = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() or (
                    False,
                )
                try:
                    yield bool(taken)
                finally:
                    if taken:
                        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            finally:
                conn.autocommit = False

    def schema_version(self) -> int:
        rows = self.execute("SELECT coalesce(max(version), 0) FROM schema_version", ())
        return int(rows[0][0])

    @contextmanager
    def connection(self, *, timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (committed when the block ends), waited for up to `timeout`
        (default: the per-call timeout); failures → StoreUnavailable."""
        try:
            with self._pool.connection(timeout=timeout or self._timeout) as conn:
                yield conn
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            log.warning("database unavailable: %s", type(exc).__name__)
            raise StoreUnavailable(UNAVAILABLE) from None

    def execute(self, sql: str, params: Sequence[Any]) -> list[Row]:
        current: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if current is not None:
            return _rows(current.execute(_postgres(sql), params))
        with self.connection() as conn:
            return _rows(conn.execute(_postgres(sql), params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        current: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if current is None:
            with self.connection() as conn:
                conn.cursor().executemany(_postgres(sql), rows)
        else:
            current.cursor().executemany(_postgres(sql), rows)

    @contextmanager
    def transaction(self, store: str) -> Iterator[int]:
        """A write transaction of `store`: its generation row is bumped (and so locked) first."""
        with self.connection() as conn, conn.transaction():
            (generation,) = conn.execute(
                "UPDATE generations SET value = value + 1 WHERE name = %s RETURNING value",
                (store,),
            ).fetchone() or (0,)
            self._local.conn = conn
            try:
                yield int(generation)
            finally:
                self._local.conn = None


class PostgresStateDatabase:
    """One store's view of the shared database; its generation is a row."""

    def __init__(self, state: PostgresState, store: str) -> None:
        self._state = state
        self._store = store
        self._known = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._state.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._state.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._state.transaction(self._store) as generation:
            yield
        self._known = max(self._known, generation)

    def generation(self) -> str:
        return str(self._known)

    def refresh(self) -> None:
        rows = self._state.execute("SELECT value FROM generations WHERE name = ?", (self._store,))
        if rows:
            self._known = max(self._known, int(rows[0][0]))

    def close(self) -> None:
        """The pool is the `PostgresState`'s: closed with it."""


def _postgres(sql: str) -> str:
    # The stores' SQL has no literal `?` or `%`: parameters are the only ones.
    return sql.replace("?", "%s")


def _rows(cursor: psycopg.Cursor[Any]) -> list[Row]:
    return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
