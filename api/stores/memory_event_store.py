"""Widget event counters in process memory, when no Redis is configured."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from api.stores.event_schemas import Event
from api.stores.event_store import Counts, tally

#: What `/readyz` and the desk's status page say while counters live in process memory.
MEMORY_ONLY_RISK = (
    "REDIS_URL is not set: impression/click counters are kept in this process's memory only, "
    "each worker its own, and a restart loses them; set REDIS_URL to keep them"
)


class MemoryEventStore:
    """Counters in this process's memory (each worker keeps its own; lost on restart)."""

    def __init__(self) -> None:
        self._counts: dict[str, Counter[str]] = defaultdict(Counter)

    async def record(self, events: Sequence[Event]) -> None:
        for source, fields in tally(events).items():
            self._counts[source].update(fields)

    async def counts(self, source: str | None) -> dict[str, Counts] | None:
        sources = list(self._counts) if source is None else [source]
        return {name: dict(self._counts[name]) for name in sources if name in self._counts}

    def dropped(self) -> int:
        return 0

    async def eviction_risk(self) -> str | None:
        return MEMORY_ONLY_RISK

    async def close(self) -> None:
        self._counts.clear()
