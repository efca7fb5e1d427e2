"""One behaviour for every `Buckets`: the same token buckets in memory and in Redis.

Both run on a fake clock. The Redis buckets' fallback fails the test if it is ever asked, so
a broken Redis cannot pass as buckets kept locally.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import pytest

from api.stores.rate_buckets import Buckets, MemoryBuckets, RedisBuckets, Rule
from api.stores.redis_client import connect

if TYPE_CHECKING:
    from tests.conftest import FakeClock

#: Generous: these cases test behaviour, not time bounds, and a CI machine may be busy.
TIMEOUT_MS = 10_000  # 2 s timed out once under load (test_event_store_contract.py)
RULE = Rule("drafts", rate=2.0, burst=3)  # a token every 0.5 s, at most 3 at once

Body = Callable[[Buckets], Awaitable[None]]
Runner = Callable[[Body], None]


def redis_failed() -> float:
    raise AssertionError("Redis failed: the local fallback answered")


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def run(request: pytest.FixtureRequest, fake_clock: FakeClock) -> Runner:
    """Runs an async test body against fresh buckets of the parametrised kind on `fake_clock`."""
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        namespace: str = request.getfixturevalue("redis_namespace") + "buckets:"

    async def main(body: Body) -> None:
        if request.param == "memory":
            await body(MemoryBuckets(clock=fake_clock))
            return
        buckets = RedisBuckets(
            connect(url, TIMEOUT_MS),
            namespace=namespace,
            timeout_ms=TIMEOUT_MS,
            fallback=MemoryBuckets(clock=redis_failed),
            clock=fake_clock,
        )
        try:
            await body(buckets)
        finally:
            await buckets.close()

    return lambda body: asyncio.run(main(body))


async def takes(buckets: Buckets, key: str, count: int) -> list[float]:
    return [await buckets.take(key, RULE) for _ in range(count)]


def test_a_full_bucket_allows_its_burst_then_says_how_long_to_wait(run: Runner) -> None:
    async def body(buckets: Buckets) -> None:
        assert await takes(buckets, "a", 4) == [0, 0, 0, pytest.approx(0.5)]

    run(body)


def test_a_bucket_refills_at_its_rate_on_the_clock(run: Runner, fake_clock: FakeClock) -> None:
    async def body(buckets: Buckets) -> None:
        await takes(buckets, "a", 3)
        fake_clock.advance(0.25)
        assert await buckets.take("a", RULE) == pytest.approx(0.25)  # half a token now
        fake_clock.advance(0.25)
        assert await buckets.take("a", RULE) == 0
        fake_clock.advance(3600)  # a long pause refills the burst, not more
        assert await takes(buckets, "a", 4) == [0, 0, 0, pytest.approx(0.5)]

    run(body)


def test_each_key_has_its_own_bucket(run: Runner) -> None:
    async def body(buckets: Buckets) -> None:
        await takes(buckets, "a", 4)
        assert await takes(buckets, "b", 3) == [0, 0, 0]

    run(body)


def test_concurrent_takes_share_the_burst_exactly(run: Runner) -> None:
    async def body(buckets: Buckets) -> None:
        waits = await asyncio.gather(*(buckets.take("a", RULE) for _ in range(12)))
        assert sorted(waits)[:4] == [0, 0, 0, pytest.approx(0.5)]

    run(body)
