"""Blobs keyed by (scope, hash of a text) in one table of a SQLite file: the store under the
embedding and term-count caches.

SQLite in WAL mode, one transaction per `put_many`: a batch is stored whole or not at all, so a
run killed mid-write leaves only the batches it committed, and concurrent runs never read a
half-written entry. `prune` drops what no one can use any more and gives the pages back to the
filesystem (incremental auto-vacuum; a file made before it was set is vacuumed once, when
there is room for the copy), so the file shrinks on disk, not only inside.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from index.index_errors import StorageError
from index.state.disk_space import free_bytes
from index.state.sqlite_database import open_database, write_transaction

_LOOKUP_CHUNK = 500
#: Entries deleted per transaction: a writer waiting on the cache (a live PUT) waits little.
_DELETE_CHUNK = 5_000
_INCREMENTAL = 2


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
        self._present = f"SELECT text_hash FROM {table} WHERE {scope} = ? AND text_hash IN "
        self._insert = f"INSERT OR REPLACE INTO {table} ({scope}, text_hash, {blob}) VALUES (?,?,?)"
        self._scan = f"SELECT {scope}, text_hash, length({blob}) FROM {table}"
        self._delete = f"DELETE FROM {table} WHERE {scope} = ? AND text_hash = ?"
        try:
            self._db = open_database(
                path,
                # Before the table: it takes effect only in a file that has none yet.
                f"PRAGMA auto_vacuum=INCREMENTAL; CREATE TABLE IF NOT EXISTS {table} ("
                f"{scope} TEXT NOT NULL, text_hash TEXT NOT NULL, {blob} BLOB NOT NULL, "
                f"PRIMARY KEY ({scope}, text_hash)) WITHOUT ROWID",
            )
        except sqlite3.OperationalError as exc:
            raise StorageError(f"cannot open {name} {path} ({exc}): is the disk full?") from exc
        # A lost write costs one recomputation: no need to sync every commit.
        self._db.execute("PRAGMA synchronous=NORMAL")

    def get_many(self, scope: str, hashes: Sequence[str]) -> dict[str, bytes]:
        """The stored blobs among `hashes` (missing ones are absent from the result)."""
        found: dict[str, bytes] = {}
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), _LOOKUP_CHUNK):
            chunk = unique[start : start + _LOOKUP_CHUNK]
            found.update(
                self._db.execute(f"{self._select}({','.join('?' * len(chunk))})", (scope, *chunk))
            )
        return found

    def present(self, scope: str, hashes: Sequence[str]) -> set[str]:
        """Which of `hashes` are stored (their blobs are not read into memory)."""
        found: set[str] = set()
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), _LOOKUP_CHUNK):
            chunk = unique[start : start + _LOOKUP_CHUNK]
            rows = self._db.execute(
                f"{self._present}({','.join('?' * len(chunk))})", (scope, *chunk)
            )
            found.update(text_hash for (text_hash,) in rows)
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
        doomed_bytes = kept = 0
        for scope, text_hash, size in self._db.execute(self._scan):
            if text_hash in keep.get(scope, ()):
                kept += 1
            else:
                doomed.append((scope, text_hash))
                doomed_bytes += size
        if dry_run:
            return PruneResult(len(doomed), kept, doomed_bytes)
        before = self.file_bytes()
        try:
            for start in range(0, len(doomed), _DELETE_CHUNK):
                with write_transaction(self._db):
                    self._db.executemany(self._delete, doomed[start : start + _DELETE_CHUNK])
            note = self._give_back_pages()
        except sqlite3.OperationalError as exc:
            raise StorageError(f"cannot prune {self._name} {self._path} ({exc})") from exc
        return PruneResult(len(doomed), kept, max(0, before - self.file_bytes()), note)

    def _give_back_pages(self) -> str | None:
        """Return the file's free pages to the filesystem; a note when they stay (no room)."""
        ((mode,),) = self._db.execute("PRAGMA auto_vacuum").fetchall()
        if mode == _INCREMENTAL:
            # executescript steps it to the end: `execute` would free a single page.
            self._db.executescript("PRAGMA incremental_vacuum")
        elif free_bytes(self._path) > 2 * self.file_bytes():
            # Made before incremental auto-vacuum was set: one VACUUM (a full copy, through
            # the WAL) switches it; readers keep reading meanwhile, writers wait.
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._db.execute("VACUUM")
        else:
            return (
                f"{self._name} was not shrunk: a one-time VACUUM needs twice its size free; "
                "its free pages are reused by new entries"
            )
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return None

    def file_bytes(self) -> int:
        """The size of its file and its write-ahead log on disk."""
        return sum(
            path.stat().st_size
            for path in (self._path, self._path.with_name(self._path.name + "-wal"))
            if path.exists()
        )

    def close(self) -> None:
        self._db.close()
