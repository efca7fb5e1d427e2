"""A durable cache of embeddings keyed by (model id, hash of the embedded text).

SQLite in WAL mode: every committed batch survives a crash, so an interrupted reindex resumes
where it stopped and an unchanged article is never embedded twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from index.index_errors import StorageError
from index.state.sqlite_database import open_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    model_id TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model_id, text_hash)
) WITHOUT ROWID
"""
_LOOKUP_CHUNK = 500


class EmbeddingCache:
    """Vectors by (model id, text hash). Not shared across threads."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db = open_database(path, _SCHEMA)
        # A lost write costs one re-embedding: no need to sync every commit.
        self._db.execute("PRAGMA synchronous=NORMAL")

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, NDArray[np.float32]]:
        """The cached vectors among `hashes` (missing ones are absent from the result)."""
        found: dict[str, NDArray[np.float32]] = {}
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), _LOOKUP_CHUNK):
            chunk = unique[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT text_hash, vector FROM embeddings"
                f" WHERE model_id = ? AND text_hash IN ({marks})",
                (model_id, *chunk),
            )
            for text_hash, blob in rows:
                found[text_hash] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, model_id: str, items: Iterable[tuple[str, NDArray[np.float32]]]) -> None:
        """Store vectors and commit, so they survive an interruption right after.

        Raises StorageError when the write fails (a full disk); earlier batches stay stored.
        """
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings (model_id, text_hash, vector) VALUES (?, ?, ?)",
                (
                    (model_id, text_hash, np.asarray(vector, dtype=np.float32).tobytes())
                    for text_hash, vector in items
                ),
            )
            self._db.commit()
        except sqlite3.OperationalError as exc:
            self._db.rollback()
            raise StorageError(
                f"cannot write the embedding cache {self._path} ({exc}): is the disk full?"
            ) from exc

    def close(self) -> None:
        self._db.close()
