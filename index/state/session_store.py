"""Editors' sessions, kept in the curation database (`DATA_DIR/curation.sqlite3`, or the shared
PostgreSQL database) so that every worker and host sharing it agrees on which are open.

A session is refused once revoked (logout), once expired, or when it was opened under other
editor credentials than the caller's: each row keeps a fingerprint of the password and session
secret it was opened under, so changing either ends every session.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from index.state.curation_store import CURATION_DB
from index.state.sqlite_database import SqliteStateDatabase
from index.state.state_database import StateDatabase

#: Sessions change no served answer: their generation file is never read.
_GENERATION_FILE = "sessions.generation"
SCHEMA = """
CREATE TABLE IF NOT EXISTS editor_sessions (
    id TEXT PRIMARY KEY,
    actor TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    credentials TEXT NOT NULL,
    revoked REAL
);
"""


class SessionStore:
    """Open, check and revoke editors' sessions, shared by every process using the data dir."""

    def __init__(self, database: StateDatabase, clock: Callable[[], float] = time.time) -> None:
        self._db = database
        self.clock = clock
        """The wall clock in seconds that sessions open, expire and end by (tests pass a fake)."""

    @classmethod
    def in_directory(cls, data_dir: Path, clock: Callable[[], float] = time.time) -> SessionStore:
        """The SQLite store of one data directory."""
        return cls(
            SqliteStateDatabase(data_dir / CURATION_DB, SCHEMA, data_dir / _GENERATION_FILE), clock
        )

    def close(self) -> None:
        self._db.close()

    def open(self, session_id: str, actor: str, expires: float, credentials: str) -> None:
        """Record a new session (and forget the expired ones)."""
        now = self.clock()
        with self._db.transaction():
            self._db.execute("DELETE FROM editor_sessions WHERE expires <= ?", (now,))
            self._db.execute(
                "INSERT INTO editor_sessions VALUES (?, ?, ?, ?, ?, NULL)",
                (session_id, actor, now, expires, credentials),
            )

    def is_open(self, session_id: str, credentials: str) -> bool:
        """Whether the session exists, is neither revoked nor expired, and was opened under
        `credentials`."""
        rows = self._db.execute(
            "SELECT 1 FROM editor_sessions WHERE id = ? AND revoked IS NULL AND expires > ? "
            "AND credentials = ?",
            (session_id, self.clock(), credentials),
        )
        return bool(rows)

    def revoke(self, session_id: str) -> None:
        with self._db.transaction():
            self._db.execute(
                "UPDATE editor_sessions SET revoked = ? WHERE id = ? AND revoked IS NULL",
                (self.clock(), session_id),
            )
