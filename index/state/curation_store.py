"""Editors' pins and blocks with their audit trail, durable beside the live catalog.

The store (`DATA_DIR/curation.sqlite3`, or the shared PostgreSQL database) holds the pins and
blocks in force and an append-only audit trail (who, when, what, why; each record carries what
is needed to undo it). Overrides refer to slugs, not rows, so they survive reindexes and
restarts. Its generation moves with every change, so serving processes notice cheaply.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from index.state.database_store import DatabaseStore
from index.state.state_database import upsert_sql
from recommender.errors import OverrideNotFound, UndoConflict
from recommender.overrides import Block, Overrides, Pin

CURATION_DB = "curation.sqlite3"
GENERATION_FILE = "curation.generation"
#: The `source` column of a global block (SQLite primary keys treat NULLs as distinct).
GLOBAL = ""

SCHEMA = """
CREATE TABLE IF NOT EXISTS pins (
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    slot INTEGER NOT NULL,
    until REAL,
    reason TEXT,
    actor TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (source, target)
);
CREATE TABLE IF NOT EXISTS blocks (
    source TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT,
    actor TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (source, target)
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    source TEXT,
    target TEXT NOT NULL,
    reason TEXT,
    detail BLOB NOT NULL,
    undone_by INTEGER
);
CREATE INDEX IF NOT EXISTS audit_source ON audit (source);
CREATE INDEX IF NOT EXISTS audit_target ON audit (target);
"""

_PUT_PIN = upsert_sql(
    "pins",
    ("source", "target", "slot", "until", "reason", "actor", "created_at"),
    ("source", "target"),
)
_PUT_BLOCK = upsert_sql(
    "blocks", ("source", "target", "reason", "actor", "created_at"), ("source", "target")
)

#: Each action and the action that undoes it.
INVERSE = {
    "pin": "unpin",
    "unpin": "pin",
    "block": "unblock",
    "unblock": "block",
}


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: float
    actor: str
    action: str
    """pin, unpin, block or unblock (a block without source is global)."""
    source: str | None
    target: str
    reason: str | None
    detail: dict[str, Any]
    """What the change replaced or removed: enough to undo it."""
    undone_by: int | None

    def public(self) -> dict[str, Any]:
        return asdict(self)


class CurationStore(DatabaseStore):
    """Pins, blocks and the audit trail, shared by every process using the same database."""

    SQLITE_FILE = CURATION_DB
    GENERATION_FILE = GENERATION_FILE
    SCHEMA = SCHEMA

    def snapshot(self) -> Overrides:
        """Everything in force now, tagged with the generation it was read at."""
        generation = self.generation()
        return Overrides(generation=generation, pins=self.pins(), blocks=self.blocks())

    # Reading

    def pins(self, source: str | None = None) -> list[Pin]:
        """Pins (expired ones included), of one source or of all, by source and slot."""
        sql = "SELECT source, target, slot, until, reason, actor, created_at FROM pins"
        rows = (
            self._db.execute(sql + " WHERE source = ? ORDER BY slot, created_at", (source,))
            if source is not None
            else self._db.execute(sql + " ORDER BY source, slot, created_at")
        )
        return [Pin(*row) for row in rows]

    def blocks(self, source: str | None = None, *, global_only: bool = False) -> list[Block]:
        """Blocks of one source, global blocks only, or (by default) all of them."""
        sql = "SELECT source, target, reason, actor, created_at FROM blocks"
        if global_only:
            rows = self._db.execute(sql + " WHERE source = ? ORDER BY created_at", (GLOBAL,))
        elif source is not None:
            rows = self._db.execute(sql + " WHERE source = ? ORDER BY created_at", (source,))
        else:
            rows = self._db.execute(sql + " ORDER BY source, created_at")
        return [Block(_source(s), t, r, a, c) for s, t, r, a, c in rows]

    def audit(
        self,
        slug: str | None = None,
        limit: int = 500,
        *,
        everywhere: bool = False,
        action: str | None = None,
        actor: str | None = None,
        before: int | None = None,
    ) -> list[AuditRecord]:
        """The audit trail, newest first; with `slug`, the records naming it as source or target,
        and with `everywhere` also the global blocks' records (they change every list).
        `action` and `actor` keep only those records; `before` (an audit id) pages back."""
        where: list[str] = []
        params: list[Any] = []
        if slug is not None:
            global_ones = " OR source IS NULL" if everywhere else ""
            where.append(f"(source = ? OR target = ?{global_ones})")
            params += [slug, slug]
        for column, value in (("action", action), ("actor", actor)):
            if value is not None:
                where.append(f"{column} = ?")  # column: one of two names
                params.append(value)
        if before is not None:
            where.append("id < ?")
            params.append(before)
        sql = "SELECT id, at, actor, action, source, target, reason, detail, undone_by FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._db.execute(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
        return [_record(row) for row in rows]

    def record(self, audit_id: int) -> AuditRecord:
        # Both databases' integers are 64-bit: a larger id is no record (binding it would raise).
        rows = (
            self._db.execute(
                "SELECT id, at, actor, action, source, target, reason, detail, undone_by "
                "FROM audit WHERE id = ?",
                (audit_id,),
            )
            if -(2**63) <= audit_id < 2**63
            else []
        )
        if not rows:
            raise OverrideNotFound(f"no audit record {audit_id}")
        return _record(rows[0])

    # Changing

    def pin(
        self,
        source: str,
        target: str,
        slot: int,
        until: float | None,
        reason: str | None,
        actor: str,
    ) -> tuple[Pin, AuditRecord]:
        """Pin `target` into `source`'s list (replacing an earlier pin of the same pair)."""
        pin = Pin(source, target, slot, until, reason, actor, time.time())
        with self._db.transaction():
            replaced = self._pin_row(source, target)
            self._write_pin(pin)
            record = self._audit(
                "pin", actor, source, target, reason, {"pin": asdict(pin), "replaced": replaced}
            )
        return pin, record

    def unpin(self, source: str, target: str, actor: str, reason: str | None = None) -> AuditRecord:
        with self._db.transaction():
            removed = self._pin_row(source, target)
            if removed is None:
                raise OverrideNotFound(f"{target!r} is not pinned in the list of {source!r}")
            self._db.execute("DELETE FROM pins WHERE source = ? AND target = ?", (source, target))
            record = self._audit("unpin", actor, source, target, reason, {"pin": removed})
        return record

    def block(
        self, source: str | None, target: str, reason: str | None, actor: str
    ) -> tuple[Block, AuditRecord]:
        """Block `target` from `source`'s list, or from every list when `source` is None."""
        block = Block(source, target, reason, actor, time.time())
        with self._db.transaction():
            replaced = self._block_row(source, target)
            self._write_block(block)
            record = self._audit(
                "block",
                actor,
                source,
                target,
                reason,
                {"block": asdict(block), "replaced": replaced},
            )
        return block, record

    def unblock(
        self, source: str | None, target: str, actor: str, reason: str | None = None
    ) -> AuditRecord:
        with self._db.transaction():
            removed = self._block_row(source, target)
            if removed is None:
                where = "everywhere" if source is None else f"for {source!r}"
                raise OverrideNotFound(f"{target!r} is not blocked {where}")
            self._db.execute(
                "DELETE FROM blocks WHERE source = ? AND target = ?", (source or GLOBAL, target)
            )
            record = self._audit("unblock", actor, source, target, reason, {"block": removed})
        return record

    def undo(self, audit_id: int, actor: str) -> AuditRecord:
        """Reverse one recorded change; the reversal is itself recorded (and can be undone)."""
        with self._db.transaction():
            original = self.record(audit_id)
            if original.undone_by is not None:
                raise UndoConflict(
                    f"audit record {audit_id} was already undone by record {original.undone_by}"
                )
            self._reverse(original)
            record = self._audit(
                INVERSE[original.action],
                actor,
                original.source,
                original.target,
                f"undo of #{original.id}",
                {**original.detail, "undoes": original.id},
            )
            self._db.execute("UPDATE audit SET undone_by = ? WHERE id = ?", (record.id, audit_id))
        return record

    def _reverse(self, record: AuditRecord) -> None:
        source, target, detail = record.source, record.target, record.detail
        if record.action in ("pin", "block"):
            table = "pins" if record.action == "pin" else "blocks"
            self._db.execute(
                f"DELETE FROM {table} WHERE source = ? AND target = ?",  # table: one of two names
                (source or GLOBAL, target),
            )
            replaced = detail.get("replaced")
            if replaced is not None and record.action == "pin":
                self._write_pin(Pin(**replaced))
            elif replaced is not None:
                self._write_block(Block(**replaced))
        elif record.action == "unpin":
            self._write_pin(Pin(**detail["pin"]))
        else:
            self._write_block(Block(**detail["block"]))

    def _pin_row(self, source: str, target: str) -> dict[str, Any] | None:
        found = self.pins(source)
        return next((asdict(p) for p in found if p.target == target), None)

    def _block_row(self, source: str | None, target: str) -> dict[str, Any] | None:
        found = self.blocks(source, global_only=source is None)
        return next((asdict(b) for b in found if b.target == target), None)

    def _write_pin(self, pin: Pin) -> None:
        self._db.execute(
            _PUT_PIN,
            (pin.source, pin.target, pin.slot, pin.until, pin.reason, pin.actor, pin.created_at),
        )

    def _write_block(self, block: Block) -> None:
        self._db.execute(
            _PUT_BLOCK,
            (block.source or GLOBAL, block.target, block.reason, block.actor, block.created_at),
        )

    def _audit(
        self,
        action: str,
        actor: str,
        source: str | None,
        target: str,
        reason: str | None,
        detail: dict[str, Any],
    ) -> AuditRecord:
        at = time.time()
        ((audit_id,),) = self._db.execute(
            "INSERT INTO audit (at, actor, action, source, target, reason, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (at, actor, action, source, target, reason, orjson.dumps(detail)),
        )
        return AuditRecord(int(audit_id), at, actor, action, source, target, reason, detail, None)


def _source(stored: str) -> str | None:
    return None if stored == GLOBAL else stored


def _record(row: tuple[Any, ...]) -> AuditRecord:
    audit_id, at, actor, action, source, target, reason, detail, undone_by = row
    return AuditRecord(
        audit_id, at, actor, action, source, target, reason, orjson.loads(detail), undone_by
    )
