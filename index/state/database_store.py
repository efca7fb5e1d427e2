"""What every store over a `StateDatabase` shares: its SQLite form in a data directory, closing,
and the change generation that workers compare to know when to re-read."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Self

from index.state.sqlite_database import SqliteStateDatabase
from index.state.state_database import StateDatabase


class DatabaseStore:
    """Base of the live and curation stores; subclasses name their SQLite file and schema."""

    SQLITE_FILE: ClassVar[str]
    GENERATION_FILE: ClassVar[str]
    SCHEMA: ClassVar[str]

    def __init__(self, database: StateDatabase) -> None:
        self._db = database

    @classmethod
    def in_directory(cls, data_dir: Path) -> Self:
        """The SQLite store of one data directory."""
        database = SqliteStateDatabase(
            data_dir / cls.SQLITE_FILE, cls.SCHEMA, data_dir / cls.GENERATION_FILE
        )
        return cls(database)

    def close(self) -> None:
        self._db.close()

    def generation(self) -> str:
        """Changes whenever the store's state changes (cheap: never queries)."""
        return self._db.generation()

    def refresh(self) -> None:
        """Learn the shared generation now (raises StoreUnavailable)."""
        self._db.refresh()
