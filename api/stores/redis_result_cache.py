"""The shared tier of the result cache: Redis, bypassed while it is down or slow."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import TypeVar

from api.stores.redis_client import RedisEndpoint, ScanNode, connect, scan_nodes, scan_page
from api.stores.redis_guard import RedisGuard
from api.stores.result_cache import CacheStats, CacheStatus, Clock, check_ttl

_T = TypeVar("_T")


log = logging.getLogger(__name__)


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
        check_ttl(ttl)
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

    async def probe_finished(self) -> None:
        """Return once no probe of a degraded Redis is running (see `RedisGuard`)."""
        await self._guard.probe_finished()

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._guard.close()
            await self._client.aclose()

    async def _call(self, op: Callable[[], Awaitable[_T]]) -> _T | None:
        """Run `op` through the guard; None when closed, bypassed or failed."""
        return None if self._closed else await self._guard.call(op)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
