"""The click-through report of the widget's boxes, read from the event store: the answer of
`GET /v1/stats/ctr` and the desk's CTR table."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from api.stores.event_schemas import REFUSALS, CtrReport
from api.stores.event_store import EventStore


def _rows(
    label: str, impressions: Counter[Any], clicks: Counter[Any], *, by_key: bool = False
) -> list[dict[str, Any]]:
    """One row per key of either counter: in key order, or most clicked (then shown) first."""
    keys = impressions.keys() | clicks.keys()
    order = sorted(keys) if by_key else sorted(keys, key=lambda k: (-clicks[k], -impressions[k], k))
    return [{label: key, **_row(impressions[key], clicks[key])} for key in order]


def _row(impressions: int, clicks: int) -> dict[str, Any]:
    ctr = round(clicks / impressions, 4) if impressions else None
    return {"impressions": impressions, "clicks": clicks, "ctr": ctr}


async def ctr_report(store: EventStore, slug: str | None) -> dict[str, Any]:
    """Impressions, clicks and CTR of `slug`'s box (of every box when None): in total, by slot
    (in slot order), by target and by source (most clicked first); and the service's refused
    events by reason.

    The shape of `GET /v1/stats/ctr` (`CtrReport`) and the context of `_ctr_table.html`.
    """
    counts = await store.counts(slug)
    refusals = await store.refusals() or {}
    # (event type, dimension) -> key -> count; dimension is slot, target or source.
    tallies: dict[tuple[str, str], Counter[Any]] = defaultdict(Counter)
    for source, fields in (counts or {}).items():
        for field, count in fields.items():
            kind, dimension, key = field.split(":", 2)
            if dimension == "slot":
                tallies[kind, "slot"][int(key)] += count
                tallies[kind, "source"][source] += count
            else:
                tallies[kind, dimension][key] += count
    shown, clicked = tallies["impression", "slot"], tallies["click", "slot"]
    report = {
        "source": slug,
        "available": counts is not None,
        "totals": _row(shown.total(), clicked.total()),
        "by_slot": _rows("slot", shown, clicked, by_key=True),
        "by_target": _rows("target", tallies["impression", "target"], tallies["click", "target"]),
        "by_source": _rows("source", tallies["impression", "source"], tallies["click", "source"]),
        "refused": {reason: refusals.get(reason, 0) for reason in REFUSALS},
    }
    return CtrReport.model_validate(report).model_dump()
