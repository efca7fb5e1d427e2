"""One behaviour for every `ResultCache`: the same calls on memory, Redis and both tiers.

Redis runs as a plain server, as a TLS-only server that checks client certificates, and as a
three-node Redis Cluster (private servers started for the session).

Memory entries expire on a fake clock; Redis entries on Redis's own clock, so the Redis
kinds wait real (short) time. Every case also checks that no backend error happened, so a
broken Redis cannot pass as a string of cache misses.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
import redis

from api.stores.memory_result_cache import MemoryCache
from api.stores.redis_client import RedisEndpoint
from api.stores.redis_result_cache import RedisCache
from api.stores.result_cache import ResultCache
from api.stores.result_cache_factory import build_cache
from api.stores.tiered_result_cache import TieredCache
from recommender.settings import Settings
from tests.support.redis_server import RedisProcess

if TYPE_CHECKING:
    from tests.conftest import FakeClock

#: Generous: these cases test behaviour, test_cache_faults.py the time bounds (a cluster
#: client's first call also discovers the cluster, and a CI machine may be busy).
TIMEOUT_MS = 10_000  # 2 s timed out once under load (test_event_store_contract.py)


@dataclass
class Harness:
    cache: ResultCache
    clock: FakeClock
    real_time: bool

    async def advance(self, seconds: float) -> None:
        """Let `seconds` pass for every tier of the cache."""
        self.clock.advance(seconds)
        if self.real_time:
            await asyncio.sleep(seconds)


Body = Callable[[Harness], Awaitable[None]]
Runner = Callable[[Body], None]


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("tiered", marks=pytest.mark.redis),
        pytest.param("redis-tls", marks=pytest.mark.redis),
        pytest.param("redis-cluster", marks=pytest.mark.redis),
    ]
)
def kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def run(kind: str, request: pytest.FixtureRequest, fake_clock: FakeClock) -> Runner:
    """Runs an async test body against a fresh cache of `kind`, then closes it."""
    if kind in ("redis", "tiered"):
        endpoint = RedisEndpoint(request.getfixturevalue("redis_url"))
        namespace: str = request.getfixturevalue("redis_namespace") + "cache:"
    elif kind != "memory":
        endpoint = private_endpoint(kind, request)
        namespace = f"test:{uuid.uuid4().hex}:cache:"  # the server is the session's own

    def build() -> ResultCache:
        memory = MemoryCache(100, clock=fake_clock)
        if kind == "memory":
            return memory
        shared = RedisCache(endpoint, TIMEOUT_MS, namespace=namespace)
        return TieredCache(memory, shared) if kind == "tiered" else shared

    async def main(body: Body) -> None:
        cache = build()
        try:
            await body(Harness(cache, fake_clock, real_time=kind != "memory"))
            assert cache.stats().errors == 0
            assert cache.status() == "ok"
        finally:
            await cache.close()

    return lambda body: asyncio.run(main(body))


def private_endpoint(kind: str, request: pytest.FixtureRequest) -> RedisEndpoint:
    """The TLS server (with the client certificate) or the cluster of the session."""
    if kind == "redis-cluster":
        return RedisEndpoint(request.getfixturevalue("redis_cluster").url, cluster=True)
    assert kind == "redis-tls", kind
    tls = request.getfixturevalue("tls_files")
    return RedisEndpoint(
        request.getfixturevalue("tls_redis").url,
        tls_ca_file=tls.ca_cert,
        tls_cert_file=tls.client_cert,
        tls_key_file=tls.client_key,
    )


@pytest.fixture
def raw_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_get_of_unknown_key_is_a_miss(run: Runner) -> None:
    async def body(h: Harness) -> None:
        assert await h.cache.get("nothing-here") is None
        stats = h.cache.stats()
        assert (stats.hits, stats.misses) == (0, 1)

    run(body)


def test_set_then_get_returns_the_bytes_and_counts_a_hit(run: Runner) -> None:
    async def body(h: Harness) -> None:
        await h.cache.set("v1:q=climate", b'{"items": []}', 60)
        assert await h.cache.get("v1:q=climate") == b'{"items": []}'
        await h.cache.set("v1:q=climate", b"replaced", 60)
        assert await h.cache.get("v1:q=climate") == b"replaced"
        assert await h.cache.get("v2:q=climate") is None
        stats = h.cache.stats()
        assert (stats.hits, stats.misses) == (2, 1)

    run(body)


def test_delete_removes_only_the_given_keys(run: Runner) -> None:
    async def body(h: Harness) -> None:
        for key in "abc":
            await h.cache.set(key, key.encode(), 60)
        await h.cache.delete(key for key in ["a", "b", "never-set"])  # any iterable, once
        await h.cache.delete([])
        assert await h.cache.get("a") is None
        assert await h.cache.get("b") is None
        assert await h.cache.get("c") == b"c"

    run(body)


def test_clear_removes_everything_and_the_cache_stays_usable(run: Runner) -> None:
    async def body(h: Harness) -> None:
        for i in range(1200):  # more than one SCAN batch
            await h.cache.set(f"k{i}", b"x", 60)
        await h.cache.clear()
        assert [await h.cache.get(f"k{i}") for i in range(0, 1200, 100)] == [None] * 12
        await h.cache.set("after", b"y", 60)
        assert await h.cache.get("after") == b"y"

    run(body)


def test_entries_expire_after_their_ttl(run: Runner) -> None:
    async def body(h: Harness) -> None:
        await h.cache.set("long", b"2", 60)
        await h.cache.set("short", b"1", 1)
        assert await h.cache.get("short") == b"1"
        waited = 0.0
        while await h.cache.get("short") is not None:  # polled: a busy machine may be late
            assert waited < 10, "an entry outlived its ttl"
            await h.advance(0.1)
            waited += 0.1
        # Real time runs faster than the sleeps counted here; the fake clock runs exactly.
        assert h.real_time or waited >= 0.9, f"an entry of ttl 1 s expired after {waited:.1f} s"
        assert await h.cache.get("long") == b"2"

    run(body)


def test_ttl_below_one_second_is_refused(run: Runner) -> None:
    async def body(h: Harness) -> None:
        with pytest.raises(ValueError, match="ttl"):
            await h.cache.set("k", b"v", 0)

    run(body)


def test_large_values_round_trip(run: Runner) -> None:
    value = os.urandom(4 * 1024 * 1024)

    async def body(h: Harness) -> None:
        await h.cache.set("big", value, 60)
        assert await h.cache.get("big") == value

    run(body)


@pytest.mark.parametrize(
    "value",
    [b"", b"\x00", bytes(range(256)), b"\xff\xfe not utf-8 \xc3\x28", "é 中文 🙂".encode()],
    ids=["empty", "nul", "all-bytes", "invalid-utf8", "utf8"],
)
def test_binary_values_round_trip(run: Runner, value: bytes) -> None:
    async def body(h: Harness) -> None:
        await h.cache.set("bin", value, 60)
        assert await h.cache.get("bin") == value

    run(body)


def test_keys_are_opaque_strings(run: Runner) -> None:
    keys = ["v1:q=café au lait", "v1:*", "v1:[a-z]?", "v1:back\\slash", "v1:" + "k" * 1000]

    async def body(h: Harness) -> None:
        for i, key in enumerate(keys):
            await h.cache.set(key, str(i).encode(), 60)
        assert [await h.cache.get(key) for key in keys] == [str(i).encode() for i in range(5)]
        await h.cache.delete(["v1:*"])
        assert await h.cache.get("v1:[a-z]?") == b"2"

    run(body)


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["redis", "tiered"])
def test_clear_leaves_keys_outside_the_namespace(
    run: Runner, raw_redis: redis.Redis, redis_namespace: str
) -> None:
    # The cache's namespace is `redis_namespace + "cache:"`; these keys are its neighbours.
    foreign = [redis_namespace + "other:k", redis_namespace + "cache", redis_namespace + "xcache:k"]

    async def body(h: Harness) -> None:
        for key in foreign:
            raw_redis.set(key, b"foreign")
        await h.cache.set("k", b"ours", 60)
        assert raw_redis.get(redis_namespace + "cache:k") == b"ours"
        await h.cache.clear()
        assert raw_redis.get(redis_namespace + "cache:k") is None
        assert [raw_redis.get(key) for key in foreign] == [b"foreign"] * 3

    run(body)


@pytest.mark.redis
def test_redis_namespaces_are_independent(redis_url: str, redis_namespace: str) -> None:
    async def main() -> None:
        first = RedisCache(redis_url, TIMEOUT_MS, namespace=redis_namespace + "a*:")
        second = RedisCache(redis_url, TIMEOUT_MS, namespace=redis_namespace + "ab:")
        try:
            await first.set("k", b"first", 60)
            await second.set("k", b"second", 60)
            await first.clear()
            assert await first.get("k") is None
            assert await second.get("k") == b"second"
        finally:
            await first.close()
            await second.close()

    asyncio.run(main())


@pytest.mark.redis
def test_redis_cache_connects_over_a_unix_socket() -> None:
    with RedisProcess(unix_socket=True) as server:

        async def main() -> None:
            cache = RedisCache(server.unix_url, TIMEOUT_MS)
            try:
                await cache.set("k", b"v", 60)
                assert await cache.get("k") == b"v"
                assert cache.stats().errors == 0
            finally:
                await cache.close()

        asyncio.run(main())


def test_memory_cache_evicts_the_least_recently_used_entry(fake_clock: FakeClock) -> None:
    async def main() -> None:
        cache = MemoryCache(2, clock=fake_clock)
        await cache.set("a", b"a", 60)
        await cache.set("b", b"b", 60)
        assert await cache.get("a") == b"a"  # now "b" is the least recently used
        await cache.set("c", b"c", 60)
        assert len(cache) == 2
        assert await cache.get("b") is None
        assert await cache.get("a") == b"a"
        assert await cache.get("c") == b"c"

    asyncio.run(main())


def test_memory_cache_holds_at_most_max_bytes(fake_clock: FakeClock) -> None:
    """Few large answers cannot grow a worker past its byte bound (the entry cap alone did)."""

    async def main() -> None:
        cache = MemoryCache(1_000, max_bytes=10_000, clock=fake_clock)
        for n in range(100):
            await cache.set(f"k{n}", bytes(3_000), 60)
            assert cache.size_bytes <= 10_000
        assert len(cache) == 3
        assert await cache.get("k99") == bytes(3_000)  # the newest stay
        assert await cache.get("k0") is None
        await cache.set("huge", bytes(20_000), 60)  # larger than the bound: not kept
        assert await cache.get("huge") is None
        assert await cache.get("k99") == bytes(3_000)
        await cache.set("k99", b"small", 60)  # a replaced entry gives its bytes back
        await cache.delete(["k98", "k97"])
        assert cache.size_bytes == len(b"k99") + len(b"small")

    asyncio.run(main())


def test_memory_cache_lets_go_of_expired_entries_as_new_ones_arrive(
    fake_clock: FakeClock,
) -> None:
    """Entries nobody asks for again (an old index version's) do not stay until the cap."""

    async def main() -> None:
        cache = MemoryCache(1_000, clock=fake_clock)
        for n in range(100):
            await cache.set(f"old:{n}", b"x", 5)
        fake_clock.advance(6)
        for n in range(100):
            await cache.set(f"new:{n}", b"y", 5)
        assert len(cache) == 100
        assert await cache.get("new:0") == b"y"

    asyncio.run(main())


@pytest.mark.redis
def test_tiered_cache_keeps_local_entries_briefly_and_refills_them_from_redis(
    redis_url: str, redis_namespace: str, fake_clock: FakeClock
) -> None:
    async def main() -> None:
        local = MemoryCache(10, clock=fake_clock)
        shared = RedisCache(redis_url, TIMEOUT_MS, namespace=redis_namespace)
        cache = TieredCache(local, shared, local_ttl=5)
        try:
            await cache.set("k", b"v", 600)
            fake_clock.advance(5)
            assert await local.get("k") is None  # the local copy lived 5 s, not 600
            assert await cache.get("k") == b"v"  # from Redis ...
            assert await local.get("k") == b"v"  # ... and back in process memory
            assert shared.stats().hits == 1
            assert await cache.get("k") == b"v"
            assert shared.stats().hits == 1  # the second read never left the process
        finally:
            await cache.close()

    asyncio.run(main())


@pytest.mark.redis
def test_build_cache_follows_the_settings(redis_url: str) -> None:
    async def main() -> None:
        alone, shared = Settings(redis_url=None), Settings(redis_url=redis_url, cache_ttl_seconds=3)
        memory = build_cache(alone.cache, alone.redis)
        tiered = build_cache(shared.cache, shared.redis)
        try:
            assert isinstance(memory, MemoryCache)
            assert isinstance(tiered, TieredCache)
        finally:
            await memory.close()
            await tiered.close()

    asyncio.run(main())
