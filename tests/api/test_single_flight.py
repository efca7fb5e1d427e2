"""Concurrent cache misses for one key compute once per process."""

from __future__ import annotations

import asyncio

import pytest

from api.serving.single_flight import SingleFlight


def test_concurrent_callers_share_one_computation() -> None:
    calls = 0

    async def compute() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return b"answer"

    async def scenario() -> list[bytes]:
        flights = SingleFlight()
        same = [flights.run("key", compute) for _ in range(20)]
        return list(await asyncio.gather(*same, flights.run("other", compute)))

    results = asyncio.run(scenario())
    assert results == [b"answer"] * 21
    assert calls == 2  # one per key


def test_a_failure_reaches_every_waiter_and_the_next_call_retries() -> None:
    attempts = 0

    async def flaky() -> bytes:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0.01)
        if attempts == 1:
            raise RuntimeError("boom")
        return b"ok"

    async def scenario() -> tuple[list[bytes | BaseException], bytes]:
        flights = SingleFlight()
        first = await asyncio.gather(
            *(flights.run("k", flaky) for _ in range(5)), return_exceptions=True
        )
        return first, await flights.run("k", flaky)

    first, second = asyncio.run(scenario())
    assert all(isinstance(result, RuntimeError) for result in first)
    assert second == b"ok" and attempts == 2


def test_a_cancelled_leader_does_not_strand_its_followers() -> None:
    async def slow() -> bytes:
        await asyncio.sleep(10)
        return b"never"

    async def scenario() -> None:
        flights = SingleFlight()
        leader = asyncio.create_task(flights.run("k", slow))
        await asyncio.sleep(0)
        follower = asyncio.create_task(flights.run("k", slow))
        await asyncio.sleep(0.01)
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(follower, timeout=1)

    asyncio.run(scenario())
