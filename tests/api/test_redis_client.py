"""The shared Redis client factory: TLS and Cluster from `Settings`, and failures that degrade.

Real servers only: a TLS-only redis-server that checks client certificates, and Redis
Clusters of three primaries on loopback ports.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis, RedisCluster

from api.stores.redis_client import RedisEndpoint, make_redis
from api.stores.redis_result_cache import RedisCache
from recommender.settings import Settings
from tests.support.redis_cluster import RedisClusterProcesses
from tests.support.redis_server import RedisProcess
from tests.support.tls_files import TlsFiles, make_tls_files

pytestmark = [pytest.mark.redis, pytest.mark.timing]

TIMEOUT_MS = 500


def tls_settings(server: RedisProcess, tls: TlsFiles, **overrides: Any) -> Settings:
    options: dict[str, Any] = {
        "redis_url": server.url,
        "redis_timeout_ms": TIMEOUT_MS,
        "redis_tls_ca_file": tls.ca_cert,
        "redis_tls_cert_file": tls.client_cert,
        "redis_tls_key_file": tls.client_key,
    }
    return Settings(**{**options, **overrides})


async def round_trip(settings: Settings) -> bytes | None:
    client = make_redis(settings.redis)
    key = f"test:{uuid.uuid4().hex}"
    try:
        await client.set(key, b"over tls", ex=60)
        value = await client.get(key)
        assert value is None or isinstance(value, bytes)
        return value
    finally:
        await client.aclose()


def test_settings_from_the_environment_reach_the_client(
    monkeypatch: pytest.MonkeyPatch, tls_redis: RedisProcess, tls_files: TlsFiles
) -> None:
    monkeypatch.setenv("REDIS_URL", tls_redis.url)
    monkeypatch.setenv("RECOMMENDER_REDIS_TIMEOUT_MS", str(TIMEOUT_MS))
    monkeypatch.setenv("RECOMMENDER_REDIS_TLS_CA_FILE", str(tls_files.ca_cert))
    monkeypatch.setenv("RECOMMENDER_REDIS_TLS_CERT_FILE", str(tls_files.client_cert))
    monkeypatch.setenv("RECOMMENDER_REDIS_TLS_KEY_FILE", str(tls_files.client_key))
    settings = Settings()
    assert RedisEndpoint.from_settings(settings.redis).uses_tls
    assert asyncio.run(round_trip(settings)) == b"over tls"


def test_tls_without_checking_the_server_still_presents_the_client_certificate(
    tls_redis: RedisProcess, tls_files: TlsFiles
) -> None:
    settings = tls_settings(tls_redis, tls_files, redis_tls_ca_file=None, redis_tls_verify="none")
    assert asyncio.run(round_trip(settings)) == b"over tls"


@pytest.mark.parametrize("problem", ["no client certificate", "server signed by another CA"])
def test_a_refused_tls_handshake_degrades_the_cache(
    problem: str, tls_redis: RedisProcess, tls_files: TlsFiles, tmp_path: Path
) -> None:
    if problem == "no client certificate":
        settings = tls_settings(
            tls_redis, tls_files, redis_tls_cert_file=None, redis_tls_key_file=None
        )
    else:
        stranger = make_tls_files(tmp_path)
        settings = tls_settings(tls_redis, tls_files, redis_tls_ca_file=stranger.ca_cert)

    async def main() -> None:
        cache = RedisCache(RedisEndpoint.from_settings(settings.redis), TIMEOUT_MS)
        try:
            await cache.set("k", b"v", 60)
            assert await cache.get("k") is None
            assert cache.status() == "degraded"
            assert cache.stats().errors >= 1
        finally:
            await cache.close()

    asyncio.run(main())


def test_tls_settings_without_a_rediss_url_are_refused(tls_files: TlsFiles) -> None:
    settings = Settings(redis_url="redis://127.0.0.1:6379/0", redis_tls_ca_file=tls_files.ca_cert)
    with pytest.raises(ValueError, match="rediss://"):
        make_redis(settings.redis)


def test_the_cluster_setting_gives_a_cluster_client_that_spreads_keys_over_the_nodes(
    redis_cluster: RedisClusterProcesses,
) -> None:
    namespace = f"test:{uuid.uuid4().hex}:"

    async def main() -> list[int]:
        settings = Settings(
            redis_url=redis_cluster.url, redis_cluster=True, redis_timeout_ms=TIMEOUT_MS
        )
        client = make_redis(settings.redis)
        try:
            assert isinstance(client, RedisCluster)
            for i in range(30):
                await client.set(f"{namespace}{i}", b"x", ex=60)
            counts = []
            for node in redis_cluster.nodes:
                direct = Redis(port=node.port)
                try:
                    counts.append(len([k async for k in direct.scan_iter(match=namespace + "*")]))
                finally:
                    await direct.aclose()
            return counts
        finally:
            await client.aclose()

    counts = asyncio.run(main())
    assert sum(counts) == 30
    assert all(count > 0 for count in counts)


def test_cluster_clear_empties_the_namespace_on_every_node_and_nothing_else(
    redis_cluster: RedisClusterProcesses,
) -> None:
    endpoint = RedisEndpoint(redis_cluster.url, cluster=True)
    prefix = f"test:{uuid.uuid4().hex}:"

    async def main() -> None:
        ours = RedisCache(endpoint, TIMEOUT_MS, namespace=prefix + "ours:")
        theirs = RedisCache(endpoint, TIMEOUT_MS, namespace=prefix + "theirs:")
        try:
            for i in range(50):
                await ours.set(f"k{i}", b"ours", 60)
                await theirs.set(f"k{i}", b"theirs", 60)
            await ours.clear()
            assert [await ours.get(f"k{i}") for i in range(50)] == [None] * 50
            assert [await theirs.get(f"k{i}") for i in range(50)] == [b"theirs"] * 50
            assert ours.stats().errors == theirs.stats().errors == 0
        finally:
            await ours.close()
            await theirs.close()

    asyncio.run(main())


def test_a_cluster_that_goes_down_is_bypassed_and_used_again_after_it_returns() -> None:
    with RedisClusterProcesses() as cluster:

        async def main() -> None:
            cache = RedisCache(
                RedisEndpoint(cluster.url, cluster=True),
                TIMEOUT_MS,
                backoff_initial=0.05,
                backoff_max=0.2,
            )

            async def written_and_read() -> None:
                """Write "k" until it reads back (a cluster's first call, slot discovery on a
                loaded box, may outlast the timeout; the guard then bypasses it briefly)."""
                deadline = time.monotonic() + 20
                while await cache.get("k") != b"v":
                    assert time.monotonic() < deadline, f"cluster not used: {cache.stats()}"
                    await cache.set("k", b"v", 60)
                    await asyncio.sleep(0.05)
                assert cache.status() == "ok"

            try:
                await written_and_read()
                cluster.stop()
                assert await cache.get("k") is None
                await cache.set("k2", b"v", 60)
                assert cache.status() == "degraded"
                cluster.start()
                await written_and_read()  # no persistence: "k" is written again
            finally:
                await cache.close()

        asyncio.run(main())
