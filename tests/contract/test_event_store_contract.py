"""One behaviour for every `EventStore`: the same calls on the memory and the Redis counters.

Every case also checks that no event was dropped, so a broken Redis cannot pass as a store
that counted nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from api.stores.event_schemas import Event
from api.stores.event_store import EventStore
from api.stores.memory_event_store import MemoryEventStore
from api.stores.redis_event_store import RedisEventStore

#: Generous: these cases test behaviour, not time bounds, and a CI machine may be busy (2 s was
#: not: forty concurrent claims, each on a new connection, timed out once in a fresh-clone run
#: while the other test worker loaded the machine and Redis).
TIMEOUT_MS = 10_000

Body = Callable[[EventStore], Awaitable[None]]
Runner = Callable[[Body], None]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def run(request: pytest.FixtureRequest) -> Runner:
    """Runs an async test body against a fresh store of the parametrised kind, then closes it."""

    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        namespace: str = request.getfixturevalue("redis_namespace") + "events:"

    def build() -> EventStore:
        if request.param == "memory":
            return MemoryEventStore()
        return RedisEventStore(url, TIMEOUT_MS, namespace=namespace)

    async def main(body: Body) -> None:
        store = build()
        try:
            await body(store)
            assert store.dropped() == 0
        finally:
            await store.close()

    return lambda body: asyncio.run(main(body))


def impressions(source: str, targets: str) -> list[Event]:
    """The impressions of one box of `source` that shows `targets` (one letter a slug)."""
    return [
        Event(type="impression", source=source, target=target, slot=slot)
        for slot, target in enumerate(targets, start=1)
    ]


def test_a_new_store_counts_nothing(run: Runner) -> None:
    async def body(store: EventStore) -> None:
        assert await store.counts("a") == {}
        assert await store.counts(None) == {}

    run(body)


def test_record_counts_each_event_by_slot_and_by_target(run: Runner) -> None:
    async def body(store: EventStore) -> None:
        await store.record(impressions("a", "bcd"))
        await store.record([Event(type="click", source="a", target="c", slot=2)])
        assert await store.counts("a") == {
            "a": {
                "impression:slot:1": 1,
                "impression:slot:2": 1,
                "impression:slot:3": 1,
                "impression:target:b": 1,
                "impression:target:c": 1,
                "impression:target:d": 1,
                "click:slot:2": 1,
                "click:target:c": 1,
            }
        }

    run(body)


def test_counts_of_one_source_leave_out_the_others(run: Runner) -> None:
    async def body(store: EventStore) -> None:
        await store.record([*impressions("a", "b"), *impressions("e", "a")])
        await store.record(impressions("e", "a"))
        assert await store.counts("e") == {"e": {"impression:slot:1": 2, "impression:target:a": 2}}
        assert await store.counts("zz") == {}

    run(body)


def test_counts_of_all_sources_hold_every_source_that_was_shown(run: Runner) -> None:
    async def body(store: EventStore) -> None:
        await store.record([*impressions("a", "b"), *impressions("e", "a")])
        await store.record([])  # an empty batch changes nothing
        assert await store.counts(None) == {
            "a": {"impression:slot:1": 1, "impression:target:b": 1},
            "e": {"impression:slot:1": 1, "impression:target:a": 1},
        }

    run(body)


def test_concurrent_records_lose_no_count(run: Runner) -> None:
    async def body(store: EventStore) -> None:
        await asyncio.gather(*(store.record(impressions("a", "bc")) for _ in range(40)))
        assert await store.counts("a") == {
            "a": {field: 40 for field in ("impression:slot:1", "impression:slot:2",
                                          "impression:target:b", "impression:target:c")}
        }  # fmt: skip

    run(body)


def test_a_healthy_store_drops_nothing_and_closes_twice(run: Runner) -> None:
    async def body(store: EventStore) -> None:
        await store.record(impressions("a", "b" * 50))
        assert store.dropped() == 0
        await store.close()
        await store.close()

    run(body)


def test_a_claim_is_new_once_within_its_ttl(run: Runner) -> None:
    async def body(store: EventStore) -> None:
        assert await store.claim([], 60) == []
        assert await store.claim(["x", "y"], 60) == [True, True]
        assert await store.claim(["y", "z", "x"], 60) == [False, True, False]
        assert await store.claim(["z", "z"], 60) == [False, False]

    run(body)


def test_a_claim_is_forgotten_after_its_ttl(run: Runner) -> None:
    async def body(store: EventStore) -> None:
        assert await store.claim(["short"], 1) == [True]
        assert await store.claim(["long"], 60) == [True]
        deadline = time.monotonic() + 10
        while await store.claim(["short"], 1) == [False]:  # Redis expires keys on its clock
            assert time.monotonic() < deadline, "a claim outlived its TTL"
            await asyncio.sleep(0.1)
        assert await store.claim(["long"], 60) == [False]

    run(body)


def test_concurrent_claims_of_one_key_win_once(run: Runner) -> None:
    async def body(store: EventStore) -> None:
        answers = await asyncio.gather(*(store.claim(["k", f"own-{n}"], 60) for n in range(40)))
        assert sum(answer[0] for answer in answers if answer) == 1
        assert all(answer and answer[1] for answer in answers)

    run(body)


def test_refusals_add_up_by_reason_apart_from_the_counters(run: Runner) -> None:
    async def body(store: EventStore) -> None:
        assert await store.refusals() == {}
        await store.record([], {"missing_token": 2, "duplicate": 0})
        await store.record(impressions("a", "b"), {"missing_token": 1, "invalid_token": 3})
        assert await store.refusals() == {"missing_token": 3, "invalid_token": 3}
        assert await store.counts(None) == {"a": {"impression:slot:1": 1, "impression:target:b": 1}}

    run(body)
