"""The in-process tier of the result cache: an LRU bounded in entries and bytes."""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Iterable

from api.stores.result_cache import CacheStats, CacheStatus, Clock, check_ttl


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
        check_ttl(ttl)
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
