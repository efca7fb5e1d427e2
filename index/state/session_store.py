"""Editors' sessions, kept in the curation database (`DATA_DIR/curation.sqlite3`, or the shared
PostgreSQL database) so that every worker and host sharing it agrees on which are open.

A session is refused once revoked (logout), once expired, or when it was opened under other
editor credentials than the caller's: each row keeps a fingerprint of the password and session
secret it was opened under, so changing either ends every session.
"""

from __future__ import annotations

import time
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

    def __init__(self, database: StateDatabase) -> None:
        self._db = database

    @classmethod
    def in_directory(cls, data_dir: Path) -> SessionStore:
        """The SQLite store of one data directory."""
        return cls(SqliteStateDatabase(data_dir / CURATION_DB, SCHEMA, data_dir / _GENERATION_FILE))

    def close(self) -> None:
        self._db.close()

    def open(self, session_id: str, actor: str, expires: float, credentials: str) -> None:
        """Record a new session (and forget the expired ones)."""
        now = time.time()
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
            (session_id, time.time(), credentials),
        )
        return bool(rows)

    def revoke(self, session_id: str) -> None:
        with self._db.transaction():
            self._db.execute(
                "UPDATE editor_sessions SET revoked = ? WHERE id = ? AND revoked IS NULL",
                (time.time(), session_id),
            )
