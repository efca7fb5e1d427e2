"""Prometheus metrics of one app instance (its own registry, so several apps can coexist)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.event_log.event_log_writer import EventLogWriter
from api.serving.click_counts import ClickCounts
from api.serving.index_holder import IndexHolder
from api.serving.popular_articles import PopularArticles
from api.stores.event_store import EventStore
from api.stores.result_cache import ResultCache

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _StateCollector(Collector):
    """Reads cache counters and the served version at scrape time."""

    def __init__(
        self, cache: Callable[[], ResultCache | None], holder: Callable[[], IndexHolder | None]
    ) -> None:
        self._cache = cache
        self._holder = holder

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | InfoMetricFamily]:
        # Each worker of a host counts on its own and one of them answers a scrape: the pid
        # says whose counters these are.
        worker = InfoMetricFamily("recommender_worker", "The worker process that answered.")
        worker.add_metric([], {"pid": str(os.getpid())})
        yield worker
        cache = self._cache()
        if cache is not None:
            stats = cache.stats()
            for name, value in (
                ("hits", stats.hits),
                ("misses", stats.misses),
                ("errors", stats.errors),
            ):
                family = CounterMetricFamily(f"recommender_cache_{name}", f"Result-cache {name}.")
                family.add_metric([], value)
                yield family
            degraded = GaugeMetricFamily(
                "recommender_cache_degraded", "1 while the cache is bypassed."
            )
            degraded.add_metric([], 1.0 if cache.status() == "degraded" else 0.0)
            yield degraded
        holder = self._holder()
        if holder is not None:
            polls = CounterMetricFamily(
                "recommender_index_polls", "Looks at the published version by the watcher."
            )
            polls.add_metric([], holder.polls)
            yield polls
        if holder is not None and holder.current is not None:
            version = holder.current.version
            info = InfoMetricFamily("recommender_index", "The index version being served.")
            info.add_metric([], {"version": version.id, "model": version.manifest.model})
            yield info
            size = GaugeMetricFamily("recommender_index_articles", "Articles in the served index.")
            size.add_metric([], float(version.size))
            yield size


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


class EventLogMetrics(Collector):
    """The impression log's writer: events written, dropped and queued, and failed writes."""

    def __init__(self, writer: Callable[[], EventLogWriter | None]) -> None:
        self._writer = writer

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        writer = self._writer()
        if writer is None:
            return
        for name, help_text, value in (
            ("written", "Events the impression log stored (repeats not counted).", writer.written),
            (
                "dropped",
                "Accepted events left out of the impression log: its queue was full, or "
                "shutdown could not write them.",
                writer.dropped,
            ),
            ("failed", "Impression log writes that failed (each retried).", writer.failed),
        ):
            family = CounterMetricFamily(f"recommender_event_log_{name}", help_text)
            family.add_metric([], value)
            yield family
        queued = GaugeMetricFamily(
            "recommender_event_log_pending", "Events waiting for the impression log's writer."
        )
        queued.add_metric([], writer.pending())
        yield queued


class ClickMetrics(Collector):
    """The worker's click counts for the click signal: refreshes, failed ones, events counted."""

    def __init__(self, clicks: Callable[[], ClickCounts | None]) -> None:
        self._clicks = clicks

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        clicks = self._clicks()
        if clicks is None:
            return
        for name, help_text, value in (
            (
                "refreshes",
                "Refreshes of the click counts from the impression log.",
                clicks.refreshes,
            ),
            (
                "refresh_failures",
                "Refreshes of the click counts that failed (the last counts kept serving).",
                clicks.failures,
            ),
        ):
            family = CounterMetricFamily(f"recommender_click_{name}", help_text)
            family.add_metric([], value)
            yield family
        counted = GaugeMetricFamily(
            "recommender_click_events",
            "Impression items and clicks of the log in the click counts the worker serves.",
        )
        counted.add_metric([], clicks.events)
        yield counted


class PopularMetrics(Collector):
    """The popular articles' table of the worker: recounts, failed recounts, articles held."""

    def __init__(self, popular: Callable[[], PopularArticles | None]) -> None:
        self._popular = popular

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        popular = self._popular()
        if popular is None:
            return
        for name, help_text, value in (
            (
                "recounts",
                "Recounts of the popular articles from the impression log.",
                popular.recounts,
            ),
            (
                "recount_failures",
                "Recounts of the popular articles that failed (the last count kept serving).",
                popular.failures,
            ),
        ):
            family = CounterMetricFamily(f"recommender_popular_{name}", help_text)
            family.add_metric([], value)
            yield family
        held = GaugeMetricFamily(
            "recommender_popular_articles",
            "Articles in the worker's table of popular articles, all sections together.",
        )
        held.add_metric([], sum(len(slugs) for slugs in popular.by_section.values()))
        yield held


class Metrics:
    """The registry behind GET /metrics, and an ASGI middleware timing each route."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "recommender_request_seconds",
            "Request latency by route.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def watch(
        self, cache: Callable[[], ResultCache | None], holder: Callable[[], IndexHolder | None]
    ) -> None:
        self.registry.register(_StateCollector(cache, holder))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        latency = self.latency
        # The histogram child of each label set, looked up once: `labels()` takes a lock and
        # builds a key on every call, a noticeable share of a cached answer's few dozen µs.
        children: dict[tuple[str, str, int], Any] = {}

        async def timed(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500

            async def record_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, record_status)
            finally:
                route = scope.get("route")
                path = getattr(route, "path", None) or "unmatched"
                key = (path, scope["method"], status)
                child = children.get(key)
                if child is None:
                    child = children[key] = latency.labels(path, scope["method"], str(status))
                child.observe(time.perf_counter() - started)

        return timed
