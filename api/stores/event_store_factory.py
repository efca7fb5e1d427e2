"""Which event store a service gets: Redis when REDIS_URL is set, else process memory."""

from __future__ import annotations

from api.stores.event_store import EventStore
from api.stores.memory_event_store import MemoryEventStore
from api.stores.redis_client import RedisEndpoint
from api.stores.redis_event_store import RedisEventStore
from recommender.settings import RedisSettings


def build_event_store(settings: RedisSettings) -> EventStore:
    """A `RedisEventStore` when REDIS_URL is set, else a `MemoryEventStore`."""
    if settings.url is None:
        return MemoryEventStore()
    return RedisEventStore(
        RedisEndpoint.from_settings(settings),
        settings.events_timeout_ms,
        namespace=settings.events_namespace,
    )
