"""Per-client rate limits on costly or guessable POST routes, as a plain ASGI middleware.

Each limited route has a token bucket per client address: `burst` requests at once, refilled
at `rate` per second. With `REDIS_URL` the buckets live in Redis (one atomic Lua script per
request), so every worker and host shares them; without Redis, and while Redis fails, each
process keeps its own buckets: an outage loosens the limit to one per worker, never fails a
request. The client is the connection's address as the server reports it: behind a reverse
proxy, `recommender serve` takes it from `X-Forwarded-For` only when the proxy is listed in
`RECOMMENDER_TRUSTED_PROXIES`.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.error_handlers import document_errors, error_response, problem
from api.stores.redis_client import RedisClient, make_redis
from api.stores.redis_guard import RedisGuard
from recommender.settings import Settings

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

TOO_MANY_REQUESTS = error_response(
    "Too many requests from this client: retry after `Retry-After` seconds.",
    headers={
        "Retry-After": {
            "description": "Seconds to wait before the next request.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
)


@dataclass(frozen=True, slots=True)
class Rule:
    """`burst` requests at once, then `rate` per second, per client."""

    name: str
    rate: float
    burst: int


def _rules_from(settings: Settings) -> dict[str, Rule]:
    """The limited POST paths and their rules; a rate of 0 leaves a route unlimited."""
    rules = {
        "/v1/related": Rule("drafts", settings.draft_rate_per_second, settings.draft_burst),
        "/v1/events": Rule("events", settings.event_rate_per_second, settings.event_burst),
        "/editor/login": Rule("logins", settings.login_rate_per_second, settings.login_burst),
    }
    return {path: rule for path, rule in rules.items() if rule.rate > 0}


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

    async def close(self) -> None:
        await self._client.aclose()


class RateLimiter:
    """The rate limits of one app: its rules, its buckets and the middleware enforcing them."""

    def __init__(self, settings: Settings, *, clock: Clock = time.time) -> None:
        self._settings = settings
        self._clock = clock
        self.rules = _rules_from(settings)
        self._local = MemoryBuckets(clock=clock)
        self._redis: RedisBuckets | None = None

    def start(self) -> None:
        """Share the buckets through Redis when it is configured (from the lifespan: the
        client belongs to the event loop that serves)."""
        settings = self._settings
        if settings.redis_url is not None and self.rules:
            self._redis = RedisBuckets(
                make_redis(settings),
                namespace=f"{settings.cache_namespace}ratelimit:",
                timeout_ms=settings.redis_timeout_ms,
                fallback=self._local,
                clock=self._clock,
            )

    async def stop(self) -> None:
        redis, self._redis = self._redis, None
        if redis is not None:
            await redis.close()

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """`app` behind the limits: other requests pay one method comparison."""
        rules = self.rules

        async def limited(scope: Scope, receive: Receive, send: Send) -> None:
            rule = None
            if scope["type"] == "http" and scope["method"] == "POST":
                rule = rules.get(scope["path"])
            if rule is None:
                await app(scope, receive, send)
                return
            client = scope.get("client")
            buckets: Buckets = self._redis or self._local
            wait = await buckets.take(f"{rule.name}:{client[0] if client else ''}", rule)
            if wait > 0:
                await _refusal(scope["path"], wait)(scope, receive, send)
            else:
                await app(scope, receive, send)

        return limited

    def document(self, app: FastAPI) -> None:
        """Declare the 429 answer in `app`'s OpenAPI document on every limited route it has."""
        document_errors(
            app,
            {"429": TOO_MANY_REQUESTS},
            lambda path, method, _: method == "post" and path in self.rules,
        )


def _refusal(path: str, wait: float) -> Response:
    seconds = max(1, math.ceil(wait))
    detail = f"too many requests to {path}; retry in {seconds} s"
    return problem(429, "rate_limited", detail, {"Retry-After": str(seconds)})
