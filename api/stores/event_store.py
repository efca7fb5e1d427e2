"""The interface of the widget's impression and click counters (`EventStore`), and the counter
layout every backend keeps (`tally`). Backends: `memory_event_store`, `redis_event_store`;
`event_store_factory` picks one.

Besides the counters, a store keeps the refusal counts (events not counted, by reason) and the
events it has seen (`claim`), so that a replayed impression or a second click counts once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from api.stores.event_schemas import Event

#: Counters of one source article: field name -> count.
Counts = dict[str, int]


def tally(events: Iterable[Event]) -> dict[str, Counter[str]]:
    """Counter increments by source article, in the hash-field layout of the stores."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for event in events:
        fields = counts[event.source]
        fields[f"{event.type}:slot:{event.slot}"] += 1
        fields[f"{event.type}:target:{event.target}"] += 1
    return counts


def increments(refused: Mapping[str, int] | None) -> dict[str, int]:
    """The refusal counts to add: reasons with at least one event."""
    return {reason: n for reason, n in (refused or {}).items() if n}


class EventStore(Protocol):
    """Where counters live. No method raises for a backend failure."""

    async def record(
        self, events: Sequence[Event], refused: Mapping[str, int] | None = None
    ) -> None:
        """Count `events`, and add `refused` (reason -> events) to the refusal counts."""

    async def claim(self, keys: Sequence[str], ttl_seconds: int) -> list[bool] | None:
        """Remember `keys` (`Event.seen_key`) for `ttl_seconds`: True for each key not
        remembered before, once however many callers claim it at the same time. None when the
        backend fails: the events are then dropped (counted in `dropped`)."""

    async def refusals(self) -> dict[str, int] | None:
        """Events refused since the counters began, by reason; None when unreadable."""

    async def counts(self, source: str | None) -> dict[str, Counts] | None:
        """Counters of `source` (of every source when None); None when unreadable."""

    def dropped(self) -> int:
        """Events lost to backend failures since the store was built."""

    async def eviction_risk(self) -> str | None:
        """Why the backend may lose counters (evict or refuse them as memory fills, or forget
        them on restart); None: it keeps them."""

    async def close(self) -> None: ...
