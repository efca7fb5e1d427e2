"""Process memory in front of Redis: the result cache of a service with `REDIS_URL`."""

from __future__ import annotations

from collections.abc import Iterable

from api.stores.memory_result_cache import MemoryCache
from api.stores.redis_result_cache import RedisCache
from api.stores.result_cache import LOCAL_TTL_SECONDS, CacheStats, CacheStatus, check_ttl


class TieredCache:
    """`local` in front of `shared`: reads try local first, writes go to both.

    Local entries live at most `local_ttl` seconds, which bounds how long a process can
    serve an entry that was deleted or replaced elsewhere (cross-process invalidation is
    added later); the shared tier keeps the full TTL.
    """

    def __init__(
        self, local: MemoryCache, shared: RedisCache, *, local_ttl: int = LOCAL_TTL_SECONDS
    ) -> None:
        check_ttl(local_ttl)
        self.local = local
        self.shared = shared
        self._local_ttl = local_ttl
        self._hits = 0
        self._misses = 0

    async def get(self, key: str) -> bytes | None:
        value = await self.local.get(key)
        if value is None:
            value = await self.shared.get(key)
            if value is not None:
                await self.local.set(key, value, self._local_ttl)
        if value is None:
            self._misses += 1
        else:
            self._hits += 1
        return value

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        check_ttl(ttl)
        await self.local.set(key, value, min(ttl, self._local_ttl))
        await self.shared.set(key, value, ttl)

    async def delete(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        await self.local.delete(keys)
        await self.shared.delete(keys)

    async def clear(self) -> None:
        await self.local.clear()
        await self.shared.clear()

    def status(self) -> CacheStatus:
        return self.shared.status()

    def stats(self) -> CacheStats:
        """Hits from either tier; errors are the shared tier's."""
        return CacheStats(hits=self._hits, misses=self._misses, errors=self.shared.stats().errors)

    async def close(self) -> None:
        await self.local.close()
        await self.shared.close()
