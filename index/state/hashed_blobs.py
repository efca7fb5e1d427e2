"""Blobs keyed by (scope, hash of a text) in one table of a SQLite file: the store under the
embedding and term-count caches.

SQLite in WAL mode, one transaction per `put_many`: a batch is stored whole or not at all, so a
run killed mid-write leaves only the batches it committed, and concurrent runs never read a
half-written entry.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from index.index_errors import StorageError
from index.state.sqlite_database import open_database, write_transaction

_LOOKUP_CHUNK = 500


class HashedBlobs:
    """Blobs by (scope, text hash) in `table`, whose scope and blob columns are named by the
    caller (a cache keeps its file's layout); `name` says what it is in errors. Not shared
    across threads."""

    def __init__(self, path: Path, name: str, table: str, scope: str, blob: str) -> None:
        self._path = path
        self._name = name
        self._select = f"SELECT text_hash, {blob} FROM {table} WHERE {scope} = ? AND text_hash IN "
        self._select_known = f"SELECT text_hash FROM {table} WHERE {scope} = ? AND text_hash IN "
        self._insert = f"INSERT OR REPLACE INTO {table} ({scope}, text_hash, {blob}) VALUES (?,?,?)"
        self._db = open_database(
            path,
            f"CREATE TABLE IF NOT EXISTS {table} ({scope} TEXT NOT NULL, text_hash TEXT NOT NULL, "
            f"{blob} BLOB NOT NULL, PRIMARY KEY ({scope}, text_hash)) WITHOUT ROWID",
        )
        # A lost write costs one recomputation: no need to sync every commit.
        self._db.execute("PRAGMA synchronous=NORMAL")

    def get_many(self, scope: str, hashes: Sequence[str]) -> dict[str, bytes]:
        """The stored blobs among `hashes` (missing ones are absent from the result)."""
        return dict(self._lookup(self._select, scope, hashes))

    def known(self, scope: str, hashes: Sequence[str]) -> set[str]:
        """Those of `hashes` that have a blob, without reading the blobs."""
        return {text_hash for (text_hash,) in self._lookup(self._select_known, scope, hashes)}

    def _lookup(self, select: str, scope: str, hashes: Sequence[str]) -> list[Any]:
        found: list[Any] = []
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), _LOOKUP_CHUNK):
            chunk = unique[start : start + _LOOKUP_CHUNK]
            found += self._db.execute(f"{select}({','.join('?' * len(chunk))})", (scope, *chunk))
        return found

    def put_many(self, scope: str, items: Iterable[tuple[str, bytes]]) -> None:
        """Store blobs in one committed transaction: all of them, or none if anything fails.

        Raises StorageError when the write fails (a full disk); earlier batches stay stored.
        """
        try:
            with write_transaction(self._db):
                self._db.executemany(
                    self._insert, ((scope, text_hash, blob) for text_hash, blob in items)
                )
        except sqlite3.OperationalError as exc:
            raise StorageError(
                f"cannot write {self._name} {self._path} ({exc}): is the disk full?"
            ) from exc

    def close(self) -> None:
        self._db.close()
