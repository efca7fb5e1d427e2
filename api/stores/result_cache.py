"""The result cache: ready-to-send response bytes under keys that carry the index version.

The cache is an optimisation, never a dependency. This module is what every backend shares:
the `ResultCache` Protocol, its counters and statuses. The backends: `memory_result_cache`
(an in-process LRU), `redis_result_cache` (a shared tier that bypasses itself while Redis is
down or slow) and `tiered_result_cache` (the first in front of the second, so hot entries are
served from process memory: a Redis round trip per request halves throughput);
`result_cache_factory.build_cache` picks one from the settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

CacheStatus = Literal["ok", "degraded"]
#: A monotonic clock in seconds; tests pass a fake one.
Clock = Callable[[], float]

#: Default lifetime of an entry in the local tier of a `TieredCache`.
LOCAL_TTL_SECONDS = 5


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since the cache was built: a failed `get` counts as a miss and an error."""

    hits: int = 0
    misses: int = 0
    errors: int = 0


class ResultCache(Protocol):
    """What the app needs from a result cache. No method raises for a backend failure."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        """Store `value` for `ttl` seconds (at least 1)."""

    async def delete(self, keys: Iterable[str]) -> None: ...

    async def clear(self) -> None:
        """Remove every entry of this cache's namespace, and nothing else."""

    def status(self) -> CacheStatus: ...

    def stats(self) -> CacheStats: ...

    async def close(self) -> None: ...


def check_ttl(ttl: int) -> None:
    """ValueError unless `ttl` is at least one second."""
    if ttl < 1:
        raise ValueError(f"cache ttl must be at least 1 second, got {ttl}")
