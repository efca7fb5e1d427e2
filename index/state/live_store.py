"""Live catalog changes between rebuilds: upserts and retractions, durable on disk.

The store (`DATA_DIR/live.sqlite3`, or the shared PostgreSQL database) holds the latest live state
of each changed slug (an upserted article with its embedding, or a retraction tombstone) with a
sequence number; its generation moves with every change, so a serving process notices cheaply.

Rule with rebuilds: a live upsert stays in force until a rebuild whose feed holds the same slug,
read after the change, is published (the feed, exported from the CMS after the change, is then
authoritative and the live upsert is retired); a rebuild from a feed that lacks it keeps it, and so
does a run that publishes nothing or a change made once the feed was being read (it is compared by
sequence number). A retraction stays in force until the slug is upserted again, whatever the feed
says.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from index.state.database_store import DatabaseStore
from index.state.state_database import upsert_sql

LIVE_DB = "live.sqlite3"
GENERATION_FILE = "live.generation"
#: Sequence numbers per query (SQLite binds at most 32,766 parameters).
_BATCH = 10_000
_PUT = upsert_sql(
    "live", ("slug", "seq", "retracted", "record", "model_id", "vector", "changed_at"), ("slug",)
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS live (
    slug TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    retracted INTEGER NOT NULL,
    record BLOB,
    model_id TEXT,
    vector BLOB,
    changed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
INSERT OR IGNORE INTO counter (id, seq) VALUES (1, 0);
"""


@dataclass(frozen=True, slots=True)
class LiveHead:
    """Which change is in force for one slug, without its content."""

    slug: str
    seq: int
    retracted: bool


@dataclass(frozen=True, slots=True)
class LiveEntry:
    """The live state of one slug."""

    slug: str
    seq: int
    retracted: bool
    record: dict[str, Any] | None
    """The article as it was put (all fields, body included); None for a retraction."""
    model_id: str | None
    vector: NDArray[np.float32] | None


class LiveStore(DatabaseStore):
    """Upserts and retractions made through the admin API, shared by every process using the
    same database (one host's data directory, or every host's PostgreSQL)."""

    SQLITE_FILE = LIVE_DB
    GENERATION_FILE = GENERATION_FILE
    SCHEMA = SCHEMA

    def _next_seq(self) -> int:
        (row,) = self._db.execute("UPDATE counter SET seq = seq + 1 WHERE id = 1 RETURNING seq")
        return int(row[0])

    def upsert(
        self, slug: str, record: dict[str, Any], model_id: str, vector: NDArray[np.float32]
    ) -> int:
        """Record an article published or corrected now; returns its sequence number."""
        with self._db.transaction():
            seq = self._next_seq()
            self._db.execute(
                _PUT,
                (
                    slug,
                    seq,
                    0,
                    orjson.dumps(record),
                    model_id,
                    np.asarray(vector, dtype=np.float32).tobytes(),
                    _now(),
                ),
            )
        return seq

    def retract(self, slug: str) -> int:
        """Record a retraction (a tombstone); returns its sequence number."""
        with self._db.transaction():
            seq = self._next_seq()
            self._db.execute(_PUT, (slug, seq, 1, None, None, None, _now()))
        return seq

    def retire_upserts(self, absorbed: Iterable[LiveEntry]) -> None:
        """Drop live upserts that a published version now carries (retractions stay).

        Only the very change that was absorbed is dropped: a later change to the same slug has
        another sequence number and stays in force.
        """
        keys = [(entry.slug, entry.seq) for entry in absorbed]
        if not keys:
            return
        with self._db.transaction():
            self._db.executemany(
                "DELETE FROM live WHERE slug = ? AND seq = ? AND retracted = 0", keys
            )

    def heads(self) -> list[LiveHead]:
        """Every live slug's change in force, oldest first (cheap: no content is read)."""
        rows = self._db.execute("SELECT slug, seq, retracted FROM live ORDER BY seq")
        return [LiveHead(slug, int(seq), bool(retracted)) for slug, seq, retracted in rows]

    def entries(self, seqs: Sequence[int] | None = None) -> list[LiveEntry]:
        """Every live entry (or those of the changes `seqs` still in force), oldest first."""
        sql = "SELECT slug, seq, retracted, record, model_id, vector FROM live"
        if seqs is None:
            rows = self._db.execute(sql + " ORDER BY seq")
        else:
            rows = []
            for start in range(0, len(seqs), _BATCH):
                batch = seqs[start : start + _BATCH]
                marks = ",".join("?" * len(batch))
                rows += self._db.execute(sql + f" WHERE seq IN ({marks})", batch)
            rows.sort(key=lambda row: int(row[1]))
        return [
            LiveEntry(
                slug=slug,
                seq=int(seq),
                retracted=bool(retracted),
                record=orjson.loads(record) if record else None,
                model_id=model_id,
                vector=np.frombuffer(vector, dtype=np.float32) if vector else None,
            )
            for slug, seq, retracted, record, model_id, vector in rows
        ]

    def retracted_slugs(self) -> set[str]:
        rows = self._db.execute("SELECT slug FROM live WHERE retracted = 1")
        return {slug for (slug,) in rows}

    def upserted(self) -> list[LiveEntry]:
        return [entry for entry in self.entries() if not entry.retracted]


def _now() -> str:
    return datetime.now(UTC).isoformat()
