"""The SQLite stores in the data directory, opened alike: WAL, a generous lock wait, shared by
every thread of a process; every change is a `write_transaction`, so a check and the write it
decides are one atomic step across processes. A write that finds the disk full is rolled back
whole and raised as StoreUnavailable (503 `store_unavailable`), like a database that is down."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from index.index_errors import StoreUnavailable
from index.state.disk_space import full_disk_message, is_disk_full
from index.state.generation_file import GenerationFile
from index.state.state_database import Row


def open_database(
    path: Path, schema: str, *, incremental_vacuum: bool = False
) -> sqlite3.Connection:
    """`path` opened (its directory made), with `schema` applied (it must be idempotent);
    `incremental_vacuum`: a new file can give its free pages back (`PRAGMA incremental_vacuum`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    database = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
    # Only a new file takes it, before WAL writes its first page (setting it on an existing
    # file would wait for the write lock, for nothing).
    if incremental_vacuum and new:
        database.execute("PRAGMA auto_vacuum=INCREMENTAL")
    database.execute("PRAGMA journal_mode=WAL")
    database.executescript(schema)
    database.commit()
    return database


@contextmanager
def write_transaction(database: sqlite3.Connection) -> Iterator[None]:
    """One transaction holding the write lock from its first read, committed or rolled back.

    `with connection:` alone begins only at the first write, so what it read before may have
    changed under it (two workers undoing one change both saw it not yet undone).
    """
    database.execute("BEGIN IMMEDIATE")
    try:
        yield
        database.commit()
    except BaseException:
        # Also when COMMIT itself failed (a full disk): SQLite then leaves the transaction open.
        database.rollback()
        raise


class SqliteStateDatabase:
    """A store's SQLite file in the data directory; its generation is a file's mtime.

    One connection serves every thread of the process, one thread at a time: a transaction
    holds it from `BEGIN` to `COMMIT`, so two requests of one worker never interleave their
    statements in one transaction.
    """

    def __init__(self, path: Path, schema: str, generation_file: Path) -> None:
        self._db = open_database(path, schema)
        self._generation = GenerationFile(generation_file)
        self._turn = threading.RLock()
        self._data_dir = path.parent

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._turn, self._full_disk_refused():
            return self._db.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._turn, self._full_disk_refused():
            self._db.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._turn, self._full_disk_refused(), write_transaction(self._db):
            yield
        self._generation.touch()

    @contextmanager
    def _full_disk_refused(self) -> Iterator[None]:
        """A write that found no room, as StoreUnavailable (its transaction rolled back)."""
        try:
            yield
        except (sqlite3.OperationalError, OSError) as exc:
            if not is_disk_full(exc):
                raise
            raise StoreUnavailable(full_disk_message(self._data_dir, exc)) from exc

    def generation(self) -> str:
        return self._generation.current()

    def refresh(self) -> None:
        """Nothing to do: the generation file is read on every `generation()`."""

    def close(self) -> None:
        self._db.close()
