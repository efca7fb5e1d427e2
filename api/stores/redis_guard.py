"""The one circuit breaker between the service and Redis, used by the result cache, the event
counters and the rate-limit buckets alike.

Redis is optional everywhere: every call is bounded by a timeout, and any error or timeout makes
the guard `degraded`. While degraded, calls return at once without touching the network until a
retry time, which backs off exponentially with jitter from `backoff_initial` to `backoff_max`
seconds. Then one call at a time probes Redis on fresh connections (a restarted Redis closed the
old ones); the first that succeeds makes the guard `ok` again. A warning is logged at most once
per `log_interval` seconds, and a recovery is logged after any warning.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from api.stores.redis_client import RedisClient, reset_connections

GuardStatus = Literal["ok", "degraded"]
#: A monotonic clock in seconds; tests pass a fake one.
Clock = Callable[[], float]
_T = TypeVar("_T")


class RedisGuard:
    """Bounds and breaks the calls of one Redis client. Use it from one event loop only."""

    def __init__(
        self,
        client: RedisClient,
        timeout_ms: int,
        *,
        log: logging.Logger,
        down_message: str,
        up_message: str,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        log_interval: float = 60.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._client = client
        self._timeout = timeout_ms / 1000
        self._log = log
        self._down_message = down_message
        self._up_message = up_message
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._log_interval = log_interval
        self._clock = clock
        self.status: GuardStatus = "ok"
        self.errors = 0
        """Calls that failed or timed out so far."""
        self._delay = backoff_initial
        self._retry_at = 0.0
        self._probe_until = 0.0
        """While a probe runs: when it counts as lost, so that a probe that never returns (a
        cancelled disconnect can swallow its timeout) cannot stop probing for good."""
        self._next_warning_at = float("-inf")
        self._warned = False

    async def call(self, op: Callable[[], Awaitable[_T]]) -> _T | None:
        """`op` within the bound; None when it failed or Redis is being bypassed."""
        probe = self.status == "degraded"
        if probe:
            now = self._clock()
            if now < self._probe_until or now < self._retry_at:
                return None
            self._probe_until = now + 2 * self._timeout + 1.0
        try:
            async with asyncio.timeout(self._timeout):
                if probe:
                    await reset_connections(self._client)
                result = await op()
        # Any failure of the optional store, redis-py's own bugs included, means "no Redis".
        except Exception as exc:
            self._on_error(exc, probe)
            return None
        finally:
            if probe:
                self._probe_until = 0.0
        if probe:
            self._on_recovery()
        return result

    def _on_error(self, exc: Exception, probe: bool) -> None:
        self.errors += 1
        if self.status == "ok":
            self.status = "degraded"
            self._delay = self._backoff_initial
        elif probe:
            self._delay = min(self._delay * 2, self._backoff_max)
        else:
            return  # a call that began before the outage; its retry time is already set
        now = self._clock()
        wait = self._delay * (0.5 + random.random() / 2)
        self._retry_at = now + wait
        if now >= self._next_warning_at:
            self._next_warning_at = now + self._log_interval
            self._warned = True
            self._log.warning(
                "%s (%s); bypassing Redis for %.1f s (%d errors so far)",
                self._down_message,
                describe(exc),
                wait,
                self.errors,
            )

    def _on_recovery(self) -> None:
        self.status = "ok"
        self._delay = self._backoff_initial
        if self._warned:
            self._warned = False
            self._log.info("%s (%d errors so far)", self._up_message, self.errors)


def describe(exc: Exception) -> str:
    """`Type: message`, or the type alone for exceptions without a message."""
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
