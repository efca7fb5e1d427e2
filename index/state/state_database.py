"""The database under the live, curation and session stores: one interface, two backends.

`SqliteStateDatabase` (one file per store in the data directory, a generation file beside it) and
`PostgresStateDatabase` (one shared PostgreSQL database, a generation row per store). The stores
are written once, in the SQL both understand (`?` parameters, `INSERT ... ON CONFLICT`,
`RETURNING`), so both backends run the same checks and writes.

A write is `with database.transaction(): ...`: it holds the store's write lock from its first
statement (SQLite `BEGIN IMMEDIATE`; PostgreSQL the store's generation row, bumped first), so a
check and the write it decides are one atomic step across processes and hosts, and the
generation moves exactly when a change commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

Row = tuple[Any, ...]


class StateDatabase(Protocol):
    """One store's tables and change generation."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement (inside the open transaction, if this thread has one)."""
        ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def transaction(self) -> AbstractContextManager[None]:
        """A write transaction: committed (and the generation moved) or rolled back whole."""
        ...

    def generation(self) -> str:
        """The store's generation as this process last knew it: cheap, never blocks."""
        ...

    def refresh(self) -> None:
        """Learn the shared generation now (a query for PostgreSQL; nothing for SQLite, whose
        generation file is always current). Raises StoreUnavailable."""
        ...

    def close(self) -> None: ...


def upsert_sql(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """`INSERT ... ON CONFLICT (key) DO UPDATE` of every other column: the replace both accept."""
    marks = ", ".join("?" for _ in columns)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )
