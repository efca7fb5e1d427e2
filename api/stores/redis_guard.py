"""The one circuit breaker between the service and Redis, used by the result cache, the event
counters and the rate-limit buckets alike.

Redis is optional everywhere: every call is bounded by a timeout, and any error or timeout makes
the guard `degraded`. While degraded, calls return at once without touching the network. Once a
retry time has passed, which backs off exponentially with jitter from `backoff_initial` to
`backoff_max` seconds, a call starts one probe in the background and returns at once as well: no
reader ever waits for a probe. The probe opens fresh connections (a restarted Redis closed the old
ones; connecting and the handshake cost round trips of their own, so this step gets
`PROBE_CONNECT_ROUND_TRIPS` timeouts), then sends a PING on the open connection: only an answer
within the timeout makes the guard `ok` again, so a Redis that is up but slow stays bypassed. A
warning is logged at most once per `log_interval` seconds, and a recovery is logged after any
warning.
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

#: The probe's bound for opening a connection (TCP, then the client's handshake commands) and
#: its first PING, in timeouts: on a busy host a fresh connection needs several round trips
#: where a command on an open one needs one.
PROBE_CONNECT_ROUND_TRIPS = 4


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
        """Calls and probes that failed or timed out so far."""
        self._delay = backoff_initial
        self._retry_at = 0.0
        self._probe: asyncio.Task[None] | None = None
        self._probe_until = 0.0
        """When a running probe counts as lost, so that a probe that never returns (a cancelled
        disconnect can swallow its timeout) cannot stop probing for good."""
        self._next_warning_at = float("-inf")
        self._warned = False

    async def call(self, op: Callable[[], Awaitable[_T]]) -> _T | None:
        """`op` within the bound; None when it failed or Redis is being bypassed."""
        if self.status == "degraded":
            self._start_probe()
            return None
        try:
            async with asyncio.timeout(self._timeout):
                return await op()
        # Any failure of the optional store, redis-py's own bugs included, means "no Redis".
        except Exception as exc:
            self.errors += 1
            if self.status == "ok":  # else a call that began before the outage: nothing new
                self.status = "degraded"
                self._delay = self._backoff_initial
                self._schedule_retry(exc)
            return None

    async def probe_finished(self) -> None:
        """Return once no probe is running (for a caller that must know how one ended)."""
        if self._probe is not None:
            await asyncio.wait([self._probe])  # its outcome is in the guard, not raised here

    async def close(self) -> None:
        """Stop a running probe; call before closing the client."""
        if self._probe is not None:
            self._probe.cancel()
            await self.probe_finished()

    def _start_probe(self) -> None:
        now = self._clock()
        if now < self._retry_at:
            return
        if self._probe is not None and not self._probe.done():
            if now < self._probe_until:
                return
            self._probe.cancel()  # lost: its bound passed long ago
        connect_bound = PROBE_CONNECT_ROUND_TRIPS * self._timeout
        self._probe_until = now + connect_bound + self._timeout + 1.0
        self._probe = asyncio.get_running_loop().create_task(self._run_probe(connect_bound))

    async def _run_probe(self, connect_bound: float) -> None:
        try:
            async with asyncio.timeout(connect_bound):
                await reset_connections(self._client)
                await self._client.ping()
            async with asyncio.timeout(self._timeout):
                await self._client.ping()
        except Exception as exc:
            self.errors += 1
            self._delay = min(self._delay * 2, self._backoff_max)
            self._schedule_retry(exc)
            return
        self.status = "ok"
        self._delay = self._backoff_initial
        if self._warned:
            self._warned = False
            self._log.info("%s (%d errors so far)", self._up_message, self.errors)

    def _schedule_retry(self, exc: Exception) -> None:
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


def describe(exc: Exception) -> str:
    """`Type: message`, or the type alone for exceptions without a message."""
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
