"""What readers saw and clicked in the widget: the event model, counter stores, the CTR report.

Counters are kept per source article, in one hash of fields `impression:slot:<n>`,
`click:slot:<n>`, `impression:target:<slug>` and `click:target:<slug>`. `RedisEventStore`
keeps them in Redis (shared by every worker, kept across restarts); `MemoryEventStore` in
process memory when no Redis is configured. Like the result cache, the Redis store is never
a reason for an error: a failed call is logged and counted, its events are dropped, and a
failed read gives a report marked unavailable.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Annotated, Any, Literal, Protocol

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field

from api.stores.redis_client import RedisEndpoint, connect
from api.stores.redis_guard import RedisGuard
from recommender.articles import MAX_SLUG_LENGTH, SLUG_PATTERN
from recommender.settings import RedisSettings

log = logging.getLogger(__name__)

#: How long a Redis memory policy read by `RedisEventStore.eviction_risk` is trusted.
POLICY_CHECK_SECONDS = 60.0
#: Largest `POST /v1/events` body and batch: a box shows at most 50 suggestions.
MAX_EVENT_BYTES = 16 * 1024
MAX_EVENTS = 50
MAX_SLOT = 50

#: What `/readyz` and the desk's status page say while counters live in process memory.
MEMORY_ONLY_RISK = (
    "REDIS_URL is not set: impression/click counters are kept in this process's memory only, "
    "each worker its own, and a restart loses them; set REDIS_URL to keep them"
)

Slug = Annotated[str, Field(pattern=SLUG_PATTERN.pattern, max_length=MAX_SLUG_LENGTH)]
#: Counters of one source article: field name -> count.
Counts = dict[str, int]


class Event(BaseModel):
    """One suggestion shown (`impression`) or followed (`click`) in a box on `source`'s page."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["impression", "click"]
    source: Slug = Field(description="The article whose page shows the box.")
    target: Slug = Field(description="The suggested article.")
    slot: int = Field(ge=1, le=MAX_SLOT, description="Its position in the box, from 1.")


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    events: list[Event] = Field(min_length=1, max_length=MAX_EVENTS)


class EventReceipt(BaseModel):
    accepted: int = Field(description="Events counted.")
    ignored: int = Field(description="Events about articles the index does not hold.")


class CtrRow(BaseModel):
    impressions: int
    clicks: int
    ctr: float | None = Field(description="clicks / impressions; null without impressions.")


class SlotRow(CtrRow):
    slot: int


class TargetRow(CtrRow):
    target: str


class SourceRow(CtrRow):
    source: str


class CtrReport(BaseModel):
    source: str | None = Field(description="The source article asked for; null: all of them.")
    available: bool = Field(description="False when the counters could not be read (Redis down).")
    totals: CtrRow
    by_slot: list[SlotRow]
    by_target: list[TargetRow]
    by_source: list[SourceRow]


def tally(events: Iterable[Event]) -> dict[str, Counter[str]]:
    """Counter increments by source article, in the hash-field layout of the stores."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for event in events:
        fields = counts[event.source]
        fields[f"{event.type}:slot:{event.slot}"] += 1
        fields[f"{event.type}:target:{event.target}"] += 1
    return counts


class EventStore(Protocol):
    """Where counters live. No method raises for a backend failure."""

    async def record(self, events: Sequence[Event]) -> None: ...

    async def counts(self, source: str | None) -> dict[str, Counts] | None:
        """Counters of `source` (of every source when None); None when unreadable."""

    def dropped(self) -> int:
        """Events lost to backend failures since the store was built."""

    async def eviction_risk(self) -> str | None:
        """Why the backend may lose counters (evict or refuse them as memory fills, or forget
        them on restart); None: it keeps them."""

    async def close(self) -> None: ...


class MemoryEventStore:
    """Counters in this process's memory (each worker keeps its own; lost on restart)."""

    def __init__(self) -> None:
        self._counts: dict[str, Counter[str]] = defaultdict(Counter)

    async def record(self, events: Sequence[Event]) -> None:
        for source, fields in tally(events).items():
            self._counts[source].update(fields)

    async def counts(self, source: str | None) -> dict[str, Counts] | None:
        sources = list(self._counts) if source is None else [source]
        return {name: dict(self._counts[name]) for name in sources if name in self._counts}

    def dropped(self) -> int:
        return 0

    async def eviction_risk(self) -> str | None:
        return MEMORY_ONLY_RISK

    async def close(self) -> None:
        self._counts.clear()


class RedisEventStore:
    """Counters in Redis hashes `<namespace>ctr:<source>`, sources listed in `<namespace>sources`.

    Every call goes through a `RedisGuard` (bounded by `timeout_ms`, bypassed while Redis
    fails). A failed or bypassed write drops its events (counted in `dropped`); a failed read
    answers None.
    """

    def __init__(
        self,
        endpoint: str | RedisEndpoint,
        timeout_ms: int,
        *,
        namespace: str,
        log_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = connect(endpoint, timeout_ms)
        self._guard = RedisGuard(
            self._client,
            timeout_ms,
            log=log,
            down_message="Redis event counters unavailable; events are dropped",
            up_message="Redis event counters available again",
            log_interval=log_interval,
            clock=clock,
        )
        self._namespace = namespace
        self._clock = clock
        self._dropped = 0
        self._policy_checked_at = float("-inf")
        self._policy_risk: str | None = None

    def _key(self, source: str) -> str:
        return f"{self._namespace}ctr:{source}"

    @property
    def _sources_key(self) -> str:
        return f"{self._namespace}sources"

    async def record(self, events: Sequence[Event]) -> None:
        counts = tally(events)
        if not counts:
            return

        async def op() -> bool:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.sadd(self._sources_key, *counts)
                for source, fields in counts.items():
                    for field, increment in fields.items():
                        pipe.hincrby(self._key(source), field, increment)
                await pipe.execute()
            return True

        if await self._guard.call(op) is None:
            self._dropped += len(events)

    async def counts(self, source: str | None) -> dict[str, Counts] | None:
        async def op() -> dict[str, Counts]:
            if source is None:
                members = await self._client.smembers(self._sources_key)
                sources = sorted(_text(member) for member in members)
            else:
                sources = [source]
            async with self._client.pipeline(transaction=False) as pipe:
                for name in sources:
                    pipe.hgetall(self._key(name))
                hashes: list[dict[bytes, bytes]] = await pipe.execute()
            return {
                name: {_text(field): int(value) for field, value in fields.items()}
                for name, fields in zip(sources, hashes, strict=True)
                if fields
            }

        return await self._guard.call(op)

    def dropped(self) -> int:
        return self._dropped

    async def eviction_risk(self) -> str | None:
        """`memory_policy_risk` of this Redis, read at most once per `POLICY_CHECK_SECONDS`."""
        now = self._clock()
        if now < self._policy_checked_at + POLICY_CHECK_SECONDS:
            return self._policy_risk

        async def op() -> dict[str, Any]:
            info: dict[str, Any] = await self._client.info("memory")
            return info

        # Checked again a period later even when unreadable now (the last answer stands), so
        # that an outage costs /readyz one bounded wait per period, not one per probe.
        self._policy_checked_at = now
        info = await self._guard.call(op)
        if info is None:
            return self._policy_risk
        self._policy_risk = memory_policy_risk(
            str(info.get("maxmemory_policy", "")), int(info.get("maxmemory", 0))
        )
        return self._policy_risk

    async def close(self) -> None:
        await self._client.aclose()


def memory_policy_risk(policy: str, maxmemory: int) -> str | None:
    """What a Redis `maxmemory-policy` does to counters once the cache fills `maxmemory`.

    Cache entries always carry a TTL and counters never do, so a `volatile-*` policy evicts
    only cache entries; `allkeys-*` evicts counters too, and `noeviction` refuses new events.
    """
    if maxmemory == 0 or policy.startswith("volatile-"):
        return None
    if policy.startswith("allkeys-"):
        return (
            f"Redis maxmemory-policy is {policy}: when the result cache fills memory, Redis "
            "evicts impression/click counters; use volatile-lru"
        )
    return (
        f"Redis maxmemory-policy is {policy}: when the result cache fills memory, Redis "
        "refuses new impression/click counts (events are dropped); use volatile-lru"
    )


def _text(value: bytes | str) -> str:
    # Clients here are never built with decode_responses: Redis answers bytes.
    return value.decode() if isinstance(value, bytes) else value


def build_event_store(settings: RedisSettings) -> EventStore:
    """A `RedisEventStore` when REDIS_URL is set, else a `MemoryEventStore`."""
    if settings.url is None:
        return MemoryEventStore()
    return RedisEventStore(
        RedisEndpoint.from_settings(settings),
        settings.events_timeout_ms,
        namespace=settings.events_namespace,
    )


def _rows(
    label: str, impressions: Counter[Any], clicks: Counter[Any], *, by_key: bool = False
) -> list[dict[str, Any]]:
    """One row per key of either counter: in key order, or most clicked (then shown) first."""
    keys = impressions.keys() | clicks.keys()
    order = sorted(keys) if by_key else sorted(keys, key=lambda k: (-clicks[k], -impressions[k], k))
    return [{label: key, **_row(impressions[key], clicks[key])} for key in order]


def _row(impressions: int, clicks: int) -> dict[str, Any]:
    ctr = round(clicks / impressions, 4) if impressions else None
    return {"impressions": impressions, "clicks": clicks, "ctr": ctr}


async def ctr_report(store: EventStore, slug: str | None) -> dict[str, Any]:
    """Impressions, clicks and CTR of `slug`'s box (of every box when None): in total, by slot
    (in slot order), by target and by source (most clicked first).

    The shape of `GET /v1/stats/ctr` (`CtrReport`) and the context of `_ctr_table.html`.
    """
    counts = await store.counts(slug)
    # (event type, dimension) -> key -> count; dimension is slot, target or source.
    tallies: dict[tuple[str, str], Counter[Any]] = defaultdict(Counter)
    for source, fields in (counts or {}).items():
        for field, count in fields.items():
            kind, dimension, key = field.split(":", 2)
            if dimension == "slot":
                tallies[kind, "slot"][int(key)] += count
                tallies[kind, "source"][source] += count
            else:
                tallies[kind, dimension][key] += count
    shown, clicked = tallies["impression", "slot"], tallies["click", "slot"]
    report = {
        "source": slug,
        "available": counts is not None,
        "totals": _row(shown.total(), clicked.total()),
        "by_slot": _rows("slot", shown, clicked, by_key=True),
        "by_target": _rows("target", tallies["impression", "target"], tallies["click", "target"]),
        "by_source": _rows("source", tallies["impression", "source"], tallies["click", "source"]),
    }
    return CtrReport.model_validate(report).model_dump()


class EventMetrics(Collector):
    """`recommender_events_dropped_total`, read from the store at scrape time."""

    def __init__(self, store: Callable[[], EventStore | None]) -> None:
        self._store = store

    def collect(self) -> Iterator[CounterMetricFamily]:
        store = self._store()
        if store is not None:
            family = CounterMetricFamily(
                "recommender_events_dropped", "Widget events lost because Redis failed."
            )
            family.add_metric([], store.dropped())
            yield family
