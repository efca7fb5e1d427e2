"""The interface of the widget's impression and click counters (`EventStore`), and the counter
layout every backend keeps (`tally`). Backends: `memory_event_store`, `redis_event_store`;
`event_store_factory` picks one."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
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


class EventStore(Protocol):
    """Where counters live. No method raises for a backend failure."""

    async def record(self, events: Sequence[Event]) -> None: ...

    async def counts(self, source: str | None) -> dict[str, Counts] | None:
        """Counters of `source` (of every source when None); None when unreadable."""

    def dropped(self) -> int:
        """Events lost to backend failures since the store was built."""

    async def eviction_risk(self) -> str | None:
        """Why the backend may lose counters (evict or refuse them as memory fills, or forget
        them on restart); None: it keeps them."""

    async def close(self) -> None: ...
