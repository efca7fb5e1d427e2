"""Widget event counters in process memory, when no Redis is configured."""

from __future__ import annotations

import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Mapping, Sequence

from api.stores.event_schemas import Event
from api.stores.event_store import Counts, increments, tally

#: What `/readyz` and the desk's status page say while counters live in process memory.
MEMORY_ONLY_RISK = (
    "REDIS_URL is not set: impression/click counters are kept in this process's memory only, "
    "each worker its own, and a restart loses them; set REDIS_URL to keep them"
)


class MemoryEventStore:
    """Counters in this process's memory (each worker keeps its own; lost on restart)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._counts: dict[str, Counter[str]] = defaultdict(Counter)
        self._refused: Counter[str] = Counter()
        # key -> when it is forgotten; in claim order, which is expiry order for one TTL.
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._clock = clock

    async def record(
        self, events: Sequence[Event], refused: Mapping[str, int] | None = None
    ) -> None:
        for source, fields in tally(events).items():
            self._counts[source].update(fields)
        self._refused.update(increments(refused))

    async def claim(self, keys: Sequence[str], ttl_seconds: int) -> list[bool] | None:
        now = self._clock()
        while self._seen and next(iter(self._seen.values())) <= now:
            self._seen.popitem(last=False)
        fresh = []
        for key in keys:
            new = self._seen.get(key, now) <= now
            if new:
                self._seen[key] = now + ttl_seconds
                self._seen.move_to_end(key)
            fresh.append(new)
        return fresh

    async def refusals(self) -> dict[str, int] | None:
        return dict(self._refused)

    async def counts(self, source: str | None) -> dict[str, Counts] | None:
        sources = list(self._counts) if source is None else [source]
        return {name: dict(self._counts[name]) for name in sources if name in self._counts}

    def dropped(self) -> int:
        return 0

    async def eviction_risk(self) -> str | None:
        return MEMORY_ONLY_RISK

    async def close(self) -> None:
        self._counts.clear()
        self._refused.clear()
        self._seen.clear()
