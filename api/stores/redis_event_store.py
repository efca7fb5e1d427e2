"""Widget event counters in Redis (`RedisEventStore`), shared by every worker and kept across
restarts.

Counters are kept per source article, in one hash of fields `impression:slot:<n>`,
`click:slot:<n>`, `impression:target:<slug>` and `click:target:<slug>` (`event_store.tally`);
refusals in one hash `<namespace>refused` (reason -> count); events seen as keys
`<namespace>seen:<Event.seen_key>` set with NX and an expiry, so that of two workers claiming
one event at once exactly one wins.
Like the result cache, the Redis store is never a reason for an error: a failed call is logged
and counted, its events are dropped, and a failed read gives a report marked unavailable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from api.stores.event_schemas import Event
from api.stores.event_store import Counts, increments, tally
from api.stores.redis_client import RedisEndpoint, connect
from api.stores.redis_guard import RedisGuard

log = logging.getLogger(__name__)

#: How long a Redis memory policy read by `RedisEventStore.eviction_risk` is trusted.
POLICY_CHECK_SECONDS = 60.0


class RedisEventStore:
    """Counters in Redis hashes `<namespace>ctr:<source>`, sources listed in `<namespace>sources`.

    Every call goes through a `RedisGuard` (bounded by `timeout_ms`, bypassed while Redis
    fails). A failed or bypassed write drops its events (counted in `dropped`); a failed read
    answers None.
    """

    def __init__(
        self,
        endpoint: str | RedisEndpoint,
        timeout_ms: int,
        *,
        namespace: str,
        log_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = connect(endpoint, timeout_ms)
        self._guard = RedisGuard(
            self._client,
            timeout_ms,
            log=log,
            down_message="Redis event counters unavailable; events are dropped",
            up_message="Redis event counters available again",
            log_interval=log_interval,
            clock=clock,
        )
        self._namespace = namespace
        self._clock = clock
        self._dropped = 0
        self._policy_checked_at = float("-inf")
        self._policy_risk: str | None = None

    def _key(self, source: str) -> str:
        return f"{self._namespace}ctr:{source}"

    @property
    def _sources_key(self) -> str:
        return f"{self._namespace}sources"

    @property
    def _refused_key(self) -> str:
        return f"{self._namespace}refused"

    async def record(
        self, events: Sequence[Event], refused: Mapping[str, int] | None = None
    ) -> None:
        counts = tally(events)
        refusals = increments(refused)
        if not counts and not refusals:
            return

        async def op() -> bool:
            async with self._client.pipeline(transaction=False) as pipe:
                if counts:
                    pipe.sadd(self._sources_key, *counts)
                for source, fields in counts.items():
                    for field, increment in fields.items():
                        pipe.hincrby(self._key(source), field, increment)
                for reason, increment in refusals.items():
                    pipe.hincrby(self._refused_key, reason, increment)
                await pipe.execute()
            return True

        if await self._guard.call(op) is None:
            self._dropped += len(events)

    async def claim(self, keys: Sequence[str], ttl_seconds: int) -> list[bool] | None:
        if not keys:
            return []

        async def op() -> list[bool]:
            async with self._client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.set(f"{self._namespace}seen:{key}", b"1", nx=True, ex=ttl_seconds)
                answers: list[bool | None] = await pipe.execute()
            return [bool(answer) for answer in answers]

        fresh = await self._guard.call(op)
        if fresh is None:
            self._dropped += len(keys)
        return fresh

    async def refusals(self) -> dict[str, int] | None:
        async def op() -> dict[str, int]:
            fields: dict[bytes | str, bytes | str] = await self._client.hgetall(self._refused_key)
            return {_text(reason): int(count) for reason, count in fields.items()}

        return await self._guard.call(op)

    async def counts(self, source: str | None) -> dict[str, Counts] | None:
        async def op() -> dict[str, Counts]:
            if source is None:
                members = await self._client.smembers(self._sources_key)
                sources = sorted(_text(member) for member in members)
            else:
                sources = [source]
            async with self._client.pipeline(transaction=False) as pipe:
                for name in sources:
                    pipe.hgetall(self._key(name))
                hashes: list[dict[bytes, bytes]] = await pipe.execute()
            return {
                name: {_text(field): int(value) for field, value in fields.items()}
                for name, fields in zip(sources, hashes, strict=True)
                if fields
            }

        return await self._guard.call(op)

    def dropped(self) -> int:
        return self._dropped

    async def eviction_risk(self) -> str | None:
        """`memory_policy_risk` of this Redis, read at most once per `POLICY_CHECK_SECONDS`."""
        now = self._clock()
        if now < self._policy_checked_at + POLICY_CHECK_SECONDS:
            return self._policy_risk

        async def op() -> dict[str, Any]:
            info: dict[str, Any] = await self._client.info("memory")
            return info

        # Checked again a period later even when unreadable now (the last answer stands), so
        # that an outage costs /readyz one bounded wait per period, not one per probe.
        self._policy_checked_at = now
        info = await self._guard.call(op)
        if info is None:
            return self._policy_risk
        self._policy_risk = memory_policy_risk(
            str(info.get("maxmemory_policy", "")), int(info.get("maxmemory", 0))
        )
        return self._policy_risk

    async def close(self) -> None:
        await self._guard.close()
        await self._client.aclose()


def memory_policy_risk(policy: str, maxmemory: int) -> str | None:
    """What a Redis `maxmemory-policy` does to counters once the cache fills `maxmemory`.

    Cache entries always carry a TTL and counters never do, so a `volatile-*` policy evicts
    only cache entries; `allkeys-*` evicts counters too, and `noeviction` refuses new events.
    """
    if maxmemory == 0 or policy.startswith("volatile-"):
        return None
    if policy.startswith("allkeys-"):
        return (
            f"Redis maxmemory-policy is {policy}: when the result cache fills memory, Redis "
            "evicts impression/click counters; use volatile-lru"
        )
    return (
        f"Redis maxmemory-policy is {policy}: when the result cache fills memory, Redis "
        "refuses new impression/click counts (events are dropped); use volatile-lru"
    )


def _text(value: bytes | str) -> str:
    # Clients here are never built with decode_responses: Redis answers bytes.
    return value.decode() if isinstance(value, bytes) else value
