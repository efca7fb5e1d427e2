"""Token buckets by key, in process memory or shared through Redis (one atomic Lua script per
take). Redis buckets fall back to the memory ones while Redis fails: an outage loosens a limit to
one per process, never fails a request."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

from api.stores.redis_client import RedisClient
from api.stores.redis_guard import RedisGuard

log = logging.getLogger(__name__)

#: Wall-clock seconds: buckets in Redis are shared by processes, so no per-process clock.
Clock = Callable[[], float]

#: Clients whose buckets one process keeps; the least recently seen are forgotten first.
MAX_LOCAL_CLIENTS = 100_000
#: How long a failed Redis is left alone before it is tried again.
REDIS_RETRY_SECONDS = 1.0

# KEYS[1]: the bucket; ARGV: rate per second, burst, now (s). Returns the wait before the
# next token as a string ("0": this request may go), since Redis truncates Lua numbers.
_TAKE_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or burst
local at = tonumber(bucket[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
    tokens = tokens - 1
else
    wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return string.format('%.17g', wait)
"""


@dataclass(frozen=True, slots=True)
class Rule:
    """`burst` requests at once, then `rate` per second, per client."""

    name: str
    rate: float
    burst: int


def _take_token(tokens: float, at: float, now: float, rule: Rule) -> tuple[float, float]:
    """Refill a bucket holding `tokens` at time `at` up to `now` and take one token.

    Returns the tokens left and the seconds to wait for a token (0 when one was taken).
    """
    tokens = min(rule.burst, tokens + max(0.0, now - at) * rule.rate)
    if tokens >= 1:
        return tokens - 1, 0.0
    return tokens, (1 - tokens) / rule.rate


class Buckets(Protocol):
    """Token buckets by key. `take` never raises for a backend failure."""

    async def take(self, key: str, rule: Rule) -> float:
        """Take a token from the bucket `key`; the seconds to wait when there was none, or 0."""


class MemoryBuckets:
    """The buckets of this process, for at most `max_clients` keys (least recent forgotten)."""

    def __init__(self, *, clock: Clock = time.time, max_clients: int = MAX_LOCAL_CLIENTS) -> None:
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def take(self, key: str, rule: Rule) -> float:
        now = self._clock()
        tokens, at = self._buckets.pop(key, (float(rule.burst), now))
        tokens, wait = _take_token(tokens, at, now, rule)
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        return wait


class RedisBuckets:
    """Buckets shared through Redis; `fallback` answers while Redis fails or is slow."""

    def __init__(
        self,
        client: RedisClient,
        *,
        namespace: str,
        timeout_ms: int,
        fallback: MemoryBuckets,
        clock: Clock = time.time,
    ) -> None:
        self._client = client
        self._script = client.register_script(_TAKE_SCRIPT)
        self._namespace = namespace
        self._fallback = fallback
        self._clock = clock
        self._guard = RedisGuard(
            client,
            timeout_ms,
            log=log,
            down_message="rate limits counted per process: Redis failed",
            up_message="rate limits shared through Redis again",
            backoff_initial=REDIS_RETRY_SECONDS,
            backoff_max=REDIS_RETRY_SECONDS,
            clock=clock,
        )

    async def take(self, key: str, rule: Rule) -> float:
        now = self._clock()

        async def op() -> object:
            return await self._script(
                keys=[self._namespace + key], args=[rule.rate, rule.burst, now]
            )

        wait = await self._guard.call(op)
        if wait is None:  # Redis failed or is being bypassed: count locally meanwhile
            return await self._fallback.take(key, rule)
        return float(cast(str, wait))

    async def probe_finished(self) -> None:
        """Return once no probe of a failed Redis is running (see `RedisGuard`)."""
        await self._guard.probe_finished()

    async def close(self) -> None:
        await self._guard.close()
        await self._client.aclose()
