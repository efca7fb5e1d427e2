"""The one place that picks a result cache from the settings."""

from __future__ import annotations

from api.stores.memory_result_cache import MemoryCache
from api.stores.redis_client import RedisEndpoint
from api.stores.redis_result_cache import RedisCache
from api.stores.result_cache import ResultCache
from api.stores.tiered_result_cache import TieredCache
from recommender.settings import CacheSettings, RedisSettings


def build_cache(cache: CacheSettings, redis: RedisSettings) -> ResultCache:
    """A `TieredCache` when REDIS_URL is set, else a `MemoryCache`."""
    local = MemoryCache(cache.memory_entries, max_bytes=cache.memory_bytes)
    if redis.url is None:
        return local
    shared = RedisCache(
        RedisEndpoint.from_settings(redis),
        redis.timeout_ms,
        namespace=redis.cache_namespace,
    )
    local_ttl = min(cache.local_ttl_seconds, cache.ttl_seconds)
    return TieredCache(local, shared, local_ttl=local_ttl)
