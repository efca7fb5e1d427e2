"""`recommender db import --from-sqlite DATA_DIR`: one host's SQLite stores moved into the shared
PostgreSQL database, in one transaction, idempotently.

- Live changes: each slug's change in force comes in with a new sequence number, unless the
  database holds a change of that slug made later (by `changed_at`).
- Pins and blocks: each comes in unless the database has one for the same pair.
- The audit trail: every record comes in once, renumbered; `undone_by` and undo records follow.

Each imported live change and audit record is remembered in `imported` by a key of its content,
so running the import again changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from index.state.curation_store import CURATION_DB
from index.state.curation_store import SCHEMA as CURATION_SCHEMA
from index.state.live_store import LIVE_DB
from index.state.live_store import SCHEMA as LIVE_SCHEMA
from index.state.postgres_database import PostgresState
from index.state.sqlite_database import open_database


@dataclass(frozen=True, slots=True)
class ImportSummary:
    live: int
    pins: int
    blocks: int
    audit: int

    def public(self) -> dict[str, int]:
        return {"live": self.live, "pins": self.pins, "blocks": self.blocks, "audit": self.audit}


def _key(kind: str, row: tuple[Any, ...]) -> str:
    return kind + ":" + hashlib.sha256(orjson.dumps(row, default=bytes.hex)).hexdigest()


def import_sqlite(data_dir: Path, postgres: PostgresState) -> ImportSummary:
    """Bring `data_dir`'s live changes, overrides and audit trail into `postgres`."""
    live_db = open_database(data_dir / LIVE_DB, LIVE_SCHEMA)
    curation_db = open_database(data_dir / CURATION_DB, CURATION_SCHEMA)
    try:
        live_rows = live_db.execute(
            "SELECT slug, seq, retracted, record, model_id, vector, changed_at FROM live "
            "ORDER BY seq"
        ).fetchall()
        pins = curation_db.execute("SELECT * FROM pins").fetchall()
        blocks = curation_db.execute("SELECT * FROM blocks").fetchall()
        audit = curation_db.execute(
            "SELECT id, at, actor, action, source, target, reason, detail, undone_by FROM audit "
            "ORDER BY id"
        ).fetchall()
    finally:
        live_db.close()
        curation_db.close()
    with postgres.transaction("live"):
        postgres.execute("UPDATE generations SET value = value + 1 WHERE name = 'curation'", ())
        return ImportSummary(
            live=_import_live(postgres, live_rows),
            pins=_insert_new(postgres, "pins", pins),
            blocks=_insert_new(postgres, "blocks", blocks),
            audit=_import_audit(postgres, audit),
        )


def _remembered(postgres: PostgresState, key: str) -> int | None:
    rows = postgres.execute("SELECT new_id FROM imported WHERE key = ?", (key,))
    return None if not rows else int(rows[0][0] or 0)


def _remember(postgres: PostgresState, key: str, new_id: int | None = None) -> None:
    postgres.execute("INSERT INTO imported (key, new_id) VALUES (?, ?)", (key, new_id))


def _import_live(postgres: PostgresState, rows: list[tuple[Any, ...]]) -> int:
    count = 0
    for slug, _seq, retracted, record, model_id, vector, changed_at in rows:
        key = _key("live", (slug, retracted, record, model_id, vector, changed_at))
        if _remembered(postgres, key) is not None:
            continue
        _remember(postgres, key)
        newer = postgres.execute(
            "SELECT 1 FROM live WHERE slug = ? AND changed_at >= ?", (slug, changed_at)
        )
        if newer:
            continue
        ((seq,),) = postgres.execute(
            "UPDATE counter SET seq = seq + 1 WHERE id = 1 RETURNING seq", ()
        )
        postgres.execute("DELETE FROM live WHERE slug = ?", (slug,))
        postgres.execute(
            "INSERT INTO live (slug, seq, retracted, record, model_id, vector, changed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (slug, seq, retracted, record, model_id, vector, changed_at),
        )
        count += 1
    return count


def _insert_new(postgres: PostgresState, table: str, rows: list[tuple[Any, ...]]) -> int:
    """Rows of `table` (pins or blocks, keyed by source and target) the database lacks."""
    count = 0
    for row in rows:
        marks = ", ".join("?" for _ in row)
        inserted = postgres.execute(
            f"INSERT INTO {table} VALUES ({marks}) ON CONFLICT DO NOTHING RETURNING 1", row
        )
        count += len(inserted)
    return count


def _import_audit(postgres: PostgresState, rows: list[tuple[Any, ...]]) -> int:
    new_ids: dict[int, int] = {}
    count = 0
    for old_id, at, actor, action, source, target, reason, detail, _undone_by in rows:
        key = _key("audit", (at, actor, action, source, target, reason, detail))
        known = _remembered(postgres, key)
        if known is not None:
            new_ids[old_id] = known
            continue
        fields = orjson.loads(detail)
        if "undoes" in fields:
            fields["undoes"] = new_ids.get(fields["undoes"], fields["undoes"])
        if reason is not None and reason.startswith("undo of #") and "undoes" in fields:
            reason = f"undo of #{fields['undoes']}"
        ((new_id,),) = postgres.execute(
            "INSERT INTO audit (at, actor, action, source, target, reason, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (at, actor, action, source, target, reason, orjson.dumps(fields)),
        )
        new_ids[old_id] = int(new_id)
        _remember(postgres, key, int(new_id))
        count += 1
    for old_id, *_rest, undone_by in rows:
        if undone_by is not None and undone_by in new_ids:
            postgres.execute(
                "UPDATE audit SET undone_by = ? WHERE id = ?", (new_ids[undone_by], new_ids[old_id])
            )
    return count
