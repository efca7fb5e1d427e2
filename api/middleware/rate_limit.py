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

from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.error_handlers import document_errors, error_response, problem
from api.stores.rate_buckets import Buckets, Clock, MemoryBuckets, RedisBuckets, Rule
from api.stores.redis_client import make_redis
from recommender.settings import LimitSettings, RedisSettings

log = logging.getLogger(__name__)

TOO_MANY_REQUESTS = error_response(
    "Too many requests from this client: retry after `Retry-After` seconds.",
    headers={
        "Retry-After": {
            "description": "Seconds to wait before the next request.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
)


def _rules_from(settings: LimitSettings) -> dict[str, Rule]:
    """The limited POST paths and their rules; a rate of 0 leaves a route unlimited."""
    rules = {
        "/v1/related": Rule("drafts", settings.draft_rate_per_second, settings.draft_burst),
        "/v1/events": Rule("events", settings.event_rate_per_second, settings.event_burst),
        "/editor/login": Rule("logins", settings.login_rate_per_second, settings.login_burst),
    }
    return {path: rule for path, rule in rules.items() if rule.rate > 0}


class RateLimiter:
    """The rate limits of one app: its rules, its buckets and the middleware enforcing them."""

    def __init__(
        self, limits: LimitSettings, redis: RedisSettings, *, clock: Clock = time.time
    ) -> None:
        self._redis_settings = redis
        self._clock = clock
        self.rules = _rules_from(limits)
        self._local = MemoryBuckets(clock=clock)
        self._redis: RedisBuckets | None = None

    def start(self) -> None:
        """Share the buckets through Redis when it is configured (from the lifespan: the
        client belongs to the event loop that serves)."""
        settings = self._redis_settings
        if settings.url is not None and self.rules:
            self._redis = RedisBuckets(
                make_redis(settings),
                namespace=f"{settings.cache_namespace}ratelimit:",
                timeout_ms=settings.timeout_ms,
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
