"""The result cache: ready-to-send response bytes under keys that carry the index version.

The cache is an optimisation, never a dependency. `MemoryCache` is an in-process LRU,
`RedisCache` a shared tier that bypasses itself while Redis is down or slow, and
`TieredCache` puts the first in front of the second, so hot entries are served from process
memory (a Redis round trip per request halves throughput). `build_cache` picks one from
the cache and Redis settings.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Literal, Protocol, TypeVar

from api.stores.redis_client import (
    RedisEndpoint,
    ScanNode,
    connect,
    scan_nodes,
    scan_page,
)
from api.stores.redis_guard import RedisGuard
from recommender.settings import CacheSettings, RedisSettings

__all__ = [
    "LOCAL_TTL_SECONDS",
    "CacheStats",
    "CacheStatus",
    "Clock",
    "MemoryCache",
    "RedisCache",
    "ResultCache",
    "TieredCache",
    "build_cache",
]

log = logging.getLogger(__name__)

CacheStatus = Literal["ok", "degraded"]
#: A monotonic clock in seconds; tests pass a fake one.
Clock = Callable[[], float]
_T = TypeVar("_T")

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


def _check_ttl(ttl: int) -> None:
    if ttl < 1:
        raise ValueError(f"cache ttl must be at least 1 second, got {ttl}")


class MemoryCache:
    """In-process LRU of at most `max_entries` holding at most `max_bytes` (keys and values;
    None: no bound), each entry with its own expiry time. An entry larger than `max_bytes` is
    not kept."""

    def __init__(
        self,
        max_entries: int,
        *,
        max_bytes: int | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
        self._max_entries = max_entries
        self._max_bytes = max_bytes if max_bytes is not None else sys.maxsize
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._hits = 0
        self._misses = 0

    @property
    def size_bytes(self) -> int:
        """Bytes of the keys and values held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is not None:
            expires_at, value = entry
            if self._clock() < expires_at:
                self._entries.move_to_end(key)
                self._hits += 1
                return value
            self._remove(key)
        self._misses += 1
        return None

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        _check_ttl(ttl)
        self._remove(key)
        size = _entry_bytes(key, value)
        if size > self._max_bytes:
            return
        now = self._clock()
        self._entries[key] = (now + ttl, value)
        self._bytes += size
        # Expired entries go from the old end, two per insert, so that entries no request can
        # reach any more (an older index version's, say) do not hold memory until the cap.
        for _ in range(2):
            oldest, (expires_at, _value) = next(iter(self._entries.items()))
            if expires_at > now:
                break
            self._remove(oldest)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            self._remove(next(iter(self._entries)))

    async def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._remove(key)

    async def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= _entry_bytes(key, entry[1])

    def status(self) -> CacheStatus:
        return "ok"

    def stats(self) -> CacheStats:
        return CacheStats(hits=self._hits, misses=self._misses)

    async def close(self) -> None:
        await self.clear()


def _entry_bytes(key: str, value: bytes) -> int:
    """What an entry costs, counted as its key's and value's bytes."""
    return len(key.encode()) + len(value)


class RedisCache:
    """Redis as a shared cache tier that gets out of the way when Redis misbehaves.

    Every call goes through a `RedisGuard`: bounded by `timeout_ms`; while Redis fails the
    cache is `degraded` and calls return at once (a miss, a no-op) until the guard's backoff
    lets one probe through.

    Writes, deletes and clears made while degraded are lost: entries stay until their TTL.
    Use an instance from one event loop only (redis-py connections belong to a loop).
    `endpoint` is a URL or a `RedisEndpoint` (TLS options, Redis Cluster).
    """

    def __init__(
        self,
        endpoint: str | RedisEndpoint,
        timeout_ms: int,
        *,
        namespace: str = "rec:",
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        log_interval: float = 60.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._client = connect(endpoint, timeout_ms)
        self._guard = RedisGuard(
            self._client,
            timeout_ms,
            log=log,
            down_message="Redis cache unavailable",
            up_message="Redis cache available again",
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
            log_interval=log_interval,
            clock=clock,
        )
        self._namespace = namespace
        self._closed = False
        self._hits = 0
        self._misses = 0

    async def get(self, key: str) -> bytes | None:
        name = self._namespace + key

        async def op() -> bytes | str | None:
            return await self._client.get(name)

        value = await self._call(op)
        # A str can only come from a client built with decode_responses, which we never do.
        if isinstance(value, bytes):
            self._hits += 1
            return value
        self._misses += 1
        return None

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        _check_ttl(ttl)
        name = self._namespace + key

        async def op() -> None:
            await self._client.set(name, value, ex=ttl)

        await self._call(op)

    async def delete(self, keys: Iterable[str]) -> None:
        names = [self._namespace + key for key in keys]
        if not names:
            return

        async def op() -> None:
            await self._client.unlink(*names)

        await self._call(op)

    async def clear(self) -> None:
        """Delete this namespace's keys, one bounded SCAN + UNLINK batch per round and node."""
        pattern = _glob_escape(self._namespace) + "*"
        nodes = await self._call(partial(scan_nodes, self._client))
        for node in nodes or []:
            cursor = 0
            while True:
                # 0 means the node's scan is complete, None that Redis failed or is bypassed.
                next_cursor = await self._call(partial(self._clear_batch, pattern, node, cursor))
                if next_cursor is None:
                    return
                if next_cursor == 0:
                    break
                cursor = next_cursor

    async def _clear_batch(self, pattern: str, node: ScanNode, cursor: int) -> int:
        next_cursor, names = await scan_page(self._client, node, cursor, match=pattern, count=500)
        if names:
            await self._client.unlink(*names)
        return next_cursor

    def status(self) -> CacheStatus:
        return self._guard.status

    def stats(self) -> CacheStats:
        return CacheStats(hits=self._hits, misses=self._misses, errors=self._guard.errors)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.aclose()

    async def _call(self, op: Callable[[], Awaitable[_T]]) -> _T | None:
        """Run `op` through the guard; None when closed, bypassed or failed."""
        return None if self._closed else await self._guard.call(op)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class TieredCache:
    """`local` in front of `shared`: reads try local first, writes go to both.

    Local entries live at most `local_ttl` seconds, which bounds how long a process can
    serve an entry that was deleted or replaced elsewhere (cross-process invalidation is
    added later); the shared tier keeps the full TTL.
    """

    def __init__(
        self, local: MemoryCache, shared: RedisCache, *, local_ttl: int = LOCAL_TTL_SECONDS
    ) -> None:
        _check_ttl(local_ttl)
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
        _check_ttl(ttl)
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


def build_cache(cache: CacheSettings, redis: RedisSettings) -> ResultCache:
    """A `TieredCache` when REDIS_URL is set, else a `MemoryCache`."""
    local = MemoryCache(cache.memory_entries, max_bytes=cache.memory_bytes)
    if redis.url is None:
        return local
    shared = RedisCache(
        RedisEndpoint.from_settings(redis),
        redis.timeout_ms,
        namespace=redis.cache_namespace,
    )
    local_ttl = min(cache.local_ttl_seconds, cache.ttl_seconds)
    return TieredCache(local, shared, local_ttl=local_ttl)
