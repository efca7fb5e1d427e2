"""Editors' overrides as the JSON API and the editor pages both apply them: validation against
the served catalog, the durable store, and the public JSON shapes."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from api.serving.index_holder import IndexHolder
from index.state.curation_store import AuditRecord
from recommender.errors import InvalidQuery
from recommender.overrides import Block, Pin


def iso(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC).isoformat()


def pin_json(pin: Pin, now: float | None = None) -> dict[str, Any]:
    return {
        "source": pin.source,
        "target": pin.target,
        "slot": pin.slot,
        "until": iso(pin.until),
        "reason": pin.reason,
        "actor": pin.actor,
        "created_at": iso(pin.created_at),
        "active": pin.active(time.time() if now is None else now),
    }


def block_json(block: Block) -> dict[str, Any]:
    return {
        "source": block.source,
        "target": block.target,
        "reason": block.reason,
        "actor": block.actor,
        "created_at": iso(block.created_at),
    }


def audit_json(record: AuditRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "at": iso(record.at),
        "actor": record.actor,
        "action": record.action,
        "source": record.source,
        "target": record.target,
        "reason": record.reason,
        "undone_by": record.undone_by,
    }


def _require_pair(holder: IndexHolder, source: str | None, target: str) -> None:
    """404 for an article the served catalog does not hold; 422 for an article and itself."""
    recommender = holder.require()
    if source is not None:
        recommender.row_of(source)
    recommender.row_of(target)
    if source == target:
        raise InvalidQuery(f"an article cannot be pinned or blocked in its own list ({source!r})")


async def add_pin(
    holder: IndexHolder,
    source: str,
    target: str,
    slot: int,
    until: datetime | None,
    reason: str | None,
    actor: str,
) -> tuple[Pin, AuditRecord]:
    """Pin `target` in `source`'s list; the public API shows it at once."""
    _require_pair(holder, source, target)
    if until is not None and until.tzinfo is None:
        raise InvalidQuery("`until` needs a time zone, e.g. 2026-12-01T18:00:00Z")
    expiry = None if until is None else until.timestamp()
    if expiry is not None and expiry <= time.time():
        raise InvalidQuery(f"`until` ({until.isoformat() if until else ''}) is in the past")
    return await holder.call_store(
        lambda: holder.curation.pin(source, target, slot, expiry, reason or None, actor)
    )


async def add_block(
    holder: IndexHolder, source: str | None, target: str, reason: str | None, actor: str
) -> tuple[Block, AuditRecord]:
    """Block `target` from `source`'s list, or from every list when `source` is None."""
    _require_pair(holder, source, target)
    return await holder.call_store(
        lambda: holder.curation.block(source, target, reason or None, actor)
    )
