"""The SQLite stores in the data directory, opened alike: WAL, a generous lock wait, shared by
every thread of a process (each store serialises its own writes in transactions)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_database(path: Path, schema: str) -> sqlite3.Connection:
    """`path` opened (its directory made), with `schema` applied (it must be idempotent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    database = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
    database.execute("PRAGMA journal_mode=WAL")
    database.executescript(schema)
    database.commit()
    return database
