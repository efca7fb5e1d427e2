"""A Redis that dies, freezes, pauses or never was: the cache stays fast and quiet, then heals.

Each test owns a redis-server (`redis_process`) and breaks it for real. Every cache call
must return and never raise; the errors the cache counted show that its timeout cut the calls.
`BOUND` only catches "unbounded" (a call to a frozen Redis without a timeout never returns), so
a busy machine cannot fail it; absolute latency lives in `make soak` and `make bench`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

import pytest
import redis

from api.stores.memory_result_cache import MemoryCache
from api.stores.redis_result_cache import RedisCache
from api.stores.result_cache_factory import build_cache
from api.stores.tiered_result_cache import TieredCache
from recommender.settings import Settings
from tests.support.hanging_server import HangingServer
from tests.support.redis_server import RedisProcess, free_port

if TYPE_CHECKING:
    from tests.conftest import FakeClock

pytestmark = [pytest.mark.redis, pytest.mark.timing]

TIMEOUT_MS = 50
#: Seconds no cache call may reach: 40 times its timeout.
BOUND = 2.0
T = TypeVar("T")


async def bounded(call: Awaitable[T]) -> T:
    start = time.perf_counter()
    result = await call
    elapsed = time.perf_counter() - start
    assert elapsed < BOUND, f"a cache call took {elapsed:.3f} s"
    return result


async def exercise(cache: RedisCache | TieredCache, rounds: int = 10) -> None:
    """Every operation, several times, each within the bound and without raising."""
    for i in range(rounds):
        assert await bounded(cache.get(f"k{i}")) is None
        await bounded(cache.set(f"k{i}", b"v", 60))
        await bounded(cache.delete([f"k{i}"]))
        await bounded(cache.clear())
        await asyncio.sleep(0.01)  # let some backoff periods run out, so probes happen too


async def wait_until_cached(cache: RedisCache, timeout: float = 20.0) -> None:
    """Poll until a write can be read back: the cache healed without help."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await bounded(cache.set("probe", b"ok", 60))
        if await bounded(cache.get("probe")) == b"ok":
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"the cache did not recover within {timeout} s (stats: {cache.stats()})")


def fast_retrying_cache(url: str) -> RedisCache:
    return RedisCache(url, TIMEOUT_MS, backoff_initial=0.05, backoff_max=0.2)


def test_killed_redis_is_bypassed_and_used_again_after_a_restart(
    redis_process: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="api.stores.redis_result_cache")

    async def main() -> None:
        cache = fast_retrying_cache(redis_process.url)
        try:
            await wait_until_cached(cache)  # warm: a first call on a busy box may take > 50 ms
            redis_process.kill()
            await exercise(cache)
            assert cache.status() == "degraded"
            errors = cache.stats().errors
            assert errors >= 1
            redis_process.start()
            await wait_until_cached(cache)
            assert cache.status() == "ok"
            assert cache.stats().errors >= errors
        finally:
            await cache.close()

    asyncio.run(main())
    # One warning for the outage however many calls failed, then one line for the recovery.
    levels = [record.levelno for record in caplog.records]
    assert levels == [logging.WARNING, logging.INFO]


def test_a_frozen_redis_holds_no_call_for_long(redis_process: RedisProcess) -> None:
    async def main() -> None:
        cache = fast_retrying_cache(redis_process.url)
        try:
            await wait_until_cached(cache)  # warm: a first call on a busy box may take > 50 ms
            redis_process.pause()  # SIGSTOP: connections are accepted, nothing answers
            try:
                await exercise(cache)
                assert cache.status() == "degraded"
                assert cache.stats().errors >= 1
            finally:
                redis_process.resume()
            await wait_until_cached(cache)
            assert cache.status() == "ok"
        finally:
            await cache.close()

    asyncio.run(main())


def test_a_client_pause_holds_no_call_for_long(redis_process: RedisProcess) -> None:
    async def main() -> None:
        cache = fast_retrying_cache(redis_process.url)
        try:
            await wait_until_cached(cache)  # warm: a first call on a busy box may take > 50 ms
            admin = redis.Redis.from_url(redis_process.url)
            try:
                admin.client_pause(2000, all=True)  # CLIENT PAUSE 2000 ALL
            finally:
                admin.close()
            await exercise(cache)
            assert cache.status() == "degraded"
            assert cache.stats().errors >= 1
            await wait_until_cached(cache)  # the pause ends after 2 s
            assert cache.status() == "ok"
        finally:
            await cache.close()

    asyncio.run(main())


def test_refused_connections_from_the_start_degrade_without_raising() -> None:
    async def main() -> None:
        cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", TIMEOUT_MS)
        try:
            assert cache.status() == "ok"  # nothing is known before the first call
            await exercise(cache, rounds=3)
            assert cache.status() == "degraded"
            assert cache.stats().errors >= 1
        finally:
            await cache.close()

    asyncio.run(main())


def test_tiered_cache_serves_process_memory_while_redis_is_down() -> None:
    async def main() -> None:
        settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
        cache = build_cache(settings.cache, settings.redis)
        assert isinstance(cache, TieredCache)
        try:
            await bounded(cache.set("k", b"v", 60))
            assert await bounded(cache.get("k")) == b"v"
            assert await bounded(cache.get("other")) is None
            assert cache.status() == "degraded"
            assert cache.stats().hits == 1
            assert cache.stats().errors >= 1
        finally:
            await cache.close()

    asyncio.run(main())


def test_backoff_doubles_up_to_the_cap_and_sends_one_probe_at_a_time(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="api.stores.redis_result_cache")
    url = f"redis://127.0.0.1:{free_port()}/0"

    async def main() -> None:
        cache = RedisCache(url, TIMEOUT_MS, backoff_initial=0.5, backoff_max=4, clock=fake_clock)

        async def attempts_after(seconds: float) -> int:
            """Advance the clock, make a call, return how many calls or probes reached the
            network (a probe runs in the background: its end is awaited)."""
            fake_clock.advance(seconds)
            before = cache.stats().errors
            await bounded(cache.get("k"))
            await bounded(cache.probe_finished())
            return cache.stats().errors - before

        try:
            assert await attempts_after(0) == 1
            assert [await attempts_after(0) for _ in range(5)] == [0] * 5  # backing off
            # Retry times are jittered within [delay / 2, delay]: 0.5, then 1, 2, 4, 4 s.
            for delay in [0.5, 1, 2, 4, 4]:
                assert await attempts_after(delay / 2 - 0.01) == 0
                assert await attempts_after(delay / 2 + 0.01) == 1
            fake_clock.advance(4)
            before = cache.stats().errors
            await asyncio.gather(*(bounded(cache.get("k")) for _ in range(20)))
            await bounded(cache.probe_finished())
            assert cache.stats().errors == before + 1
            assert cache.stats().misses == 36  # every bypassed or failed get
        finally:
            await cache.close()

    asyncio.run(main())
    assert len(caplog.records) == 1  # log_interval (60 s) has not passed on the fake clock


def test_no_call_waits_for_a_probe(fake_clock: FakeClock) -> None:
    """The call that starts a probe returns a miss at once; the probe, against a server that
    accepts and never answers, ends later, by its own bound, and leaves Redis bypassed."""

    async def main() -> None:
        with HangingServer() as server:
            url = f"redis://127.0.0.1:{server.port}/0"
            cache = RedisCache(
                url, TIMEOUT_MS, backoff_initial=0.5, backoff_max=4, clock=fake_clock
            )
            try:
                assert await bounded(cache.get("k")) is None  # times out: degraded
                assert cache.stats().errors == 1
                fake_clock.advance(0.5)  # the retry time
                assert await bounded(cache.get("k")) is None
                assert cache.stats().errors == 1  # the probe has not even been scheduled yet
                await bounded(cache.probe_finished())
                assert cache.stats().errors == 2
                assert cache.status() == "degraded"
            finally:
                await cache.close()

    asyncio.run(main())


def test_closed_cache_does_nothing() -> None:
    async def main() -> None:
        memory = MemoryCache(10)
        cache = TieredCache(memory, RedisCache(f"redis://127.0.0.1:{free_port()}/0", TIMEOUT_MS))
        await cache.close()
        await cache.close()
        await cache.set("k", b"v", 60)
        assert await cache.shared.get("k") is None
        assert cache.stats().errors == 0

    asyncio.run(main())
