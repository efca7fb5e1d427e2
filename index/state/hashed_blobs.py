"""Blobs keyed by (scope, hash of a text) in one table of a SQLite file: the store under the
embedding and term-count caches.

SQLite in WAL mode, one transaction per `put_many`: a batch is stored whole or not at all, so a
run killed mid-write leaves only the batches it committed, and concurrent runs never read a
half-written entry. `prune` drops what no one can use any more and gives the pages back to the
filesystem (incremental auto-vacuum), so the file shrinks on disk, not only inside.

A rowid table: a 1.5 KB vector then stays on its page (2.2 KB an entry on disk), where the
first layout, WITHOUT ROWID, spilled each one to an overflow page (4.7 KB). A file of that
layout, or made before incremental auto-vacuum, is rebuilt once by its first `prune` that has
room for the copy.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.index_errors import StorageError
from index.state.disk_space import free_bytes
from index.state.sqlite_database import open_database, write_transaction

_LOOKUP_CHUNK = 500
#: Entries deleted per transaction: a writer waiting on the cache (a live PUT) waits little.
_DELETE_CHUNK = 5_000
_INCREMENTAL = 2
#: Free pages given back per transaction.
_VACUUM_PAGES = 2_000


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What pruning a cache removed (or would remove, in a dry run)."""

    removed: int
    kept: int
    bytes_freed: int
    """How much smaller its files got on disk (a dry run: the removed entries' own bytes)."""
    note: str | None = None


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
        # Keys only: read from the primary key's index, without touching the blobs' pages.
        self._scan = f"SELECT {scope}, text_hash FROM {table}"
        self._sizes = f"SELECT length({blob}) FROM {table} WHERE {scope} = ? AND text_hash IN "
        self._delete = f"DELETE FROM {table} WHERE {scope} = ? AND text_hash = ?"
        self._table = table
        self._columns = f"{scope} TEXT NOT NULL, text_hash TEXT NOT NULL, {blob} BLOB NOT NULL"
        self._key = f"PRIMARY KEY ({scope}, text_hash)"
        try:
            self._db = open_database(
                path,
                f"CREATE TABLE IF NOT EXISTS {table} ({self._columns}, {self._key})",
                incremental_vacuum=True,
            )
        except sqlite3.OperationalError as exc:
            raise StorageError(f"cannot open {name} {path} ({exc}): is the disk full?") from exc
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

    def prune(self, keep: Mapping[str, set[str]], *, dry_run: bool = False) -> PruneResult:
        """Delete every entry but those of `keep` (scope -> text hashes), then shrink the file.

        Raises StorageError when the deletions cannot be written (a disk full to the last
        byte: free space elsewhere first, e.g. by pruning versions).
        """
        doomed: list[tuple[str, str]] = []
        kept = 0
        for scope, text_hash in self._db.execute(self._scan):
            if text_hash in keep.get(scope, ()):
                kept += 1
            else:
                doomed.append((scope, text_hash))
        if dry_run:
            return PruneResult(len(doomed), kept, self._blob_bytes(doomed))
        before = self.file_bytes()
        try:
            for start in range(0, len(doomed), _DELETE_CHUNK):
                with write_transaction(self._db):
                    self._db.executemany(self._delete, doomed[start : start + _DELETE_CHUNK])
            note = self._give_back_pages()
        except sqlite3.OperationalError as exc:
            raise StorageError(f"cannot prune {self._name} {self._path} ({exc})") from exc
        return PruneResult(len(doomed), kept, max(0, before - self.file_bytes()), note)

    def _blob_bytes(self, keys: Sequence[tuple[str, str]]) -> int:
        """The bytes of the blobs stored under `keys`."""
        total = 0
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start : start + _LOOKUP_CHUNK]
            for scope in {scope for scope, _ in chunk}:
                hashes = [text_hash for each, text_hash in chunk if each == scope]
                marks = ",".join("?" * len(hashes))
                rows = self._db.execute(f"{self._sizes}({marks})", (scope, *hashes))
                total += sum(size for (size,) in rows)
        return total

    def _give_back_pages(self) -> str | None:
        """Return the file's free pages to the filesystem; a note when they stay (no room)."""
        ((mode,),) = self._db.execute("PRAGMA auto_vacuum").fetchall()
        ((layout,),) = self._db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (self._table,)
        ).fetchall()
        if mode == _INCREMENTAL and "WITHOUT ROWID" not in layout.upper():
            # A few thousand pages per transaction, so that a writer waits little; and
            # executescript, which steps the pragma to its end (`execute` frees one page).
            while self._db.execute("PRAGMA freelist_count").fetchall()[0][0] > 0:
                self._db.executescript(f"PRAGMA incremental_vacuum({_VACUUM_PAGES})")
        elif free_bytes(self._path) > 2 * self.file_bytes():
            self._rebuild()
        else:
            return (
                f"{self._name} was not shrunk: its one-time rebuild needs twice its size free; "
                "its free pages are reused by new entries meanwhile"
            )
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return None

    def _rebuild(self) -> None:
        """Copy a file of the first layout (or without incremental auto-vacuum) into the
        current one: a full copy through the WAL; readers keep reading, writers wait."""
        rebuilt = f"{self._table}_rebuilt"
        with write_transaction(self._db):
            self._db.execute(f"DROP TABLE IF EXISTS {rebuilt}")
            self._db.execute(f"CREATE TABLE {rebuilt} ({self._columns}, {self._key})")
            self._db.execute(f"INSERT INTO {rebuilt} SELECT * FROM {self._table}")
            self._db.execute(f"DROP TABLE {self._table}")
            self._db.execute(f"ALTER TABLE {rebuilt} RENAME TO {self._table}")
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self._db.execute("VACUUM")

    def file_bytes(self) -> int:
        """The size of its file and its write-ahead log on disk."""
        return sum(
            path.stat().st_size
            for path in (self._path, self._path.with_name(self._path.name + "-wal"))
            if path.exists()
        )

    def close(self) -> None:
        self._db.close()
