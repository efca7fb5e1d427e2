"""The FastAPI application factory and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from api.deps import Services
from api.error_handlers import install_error_handlers
from api.event_log.event_log_factory import open_event_log
from api.event_log.event_log_writer import EventLogWriter
from api.middleware.body_limit import limit_body_size
from api.middleware.encoded_slash import refuse_encoded_slashes
from api.middleware.prometheus_metrics import (
    ClickMetrics,
    EventLogMetrics,
    EventMetrics,
    Metrics,
    PopularMetrics,
)
from api.middleware.rate_limit import RateLimiter
from api.middleware.security_headers import security_headers
from api.openapi_examples import add_examples
from api.routes import (
    catalog,
    curation,
    editor,
    events,
    experiment,
    health,
    home,
    live_changes,
    related,
    widget,
)
from api.serving.click_counts import ClickCounts
from api.serving.draft_encoder import DraftEncoder
from api.serving.experiment_arms import ExperimentArms
from api.serving.experiment_figures import ExperimentFigureCounts
from api.serving.feedback_tokens import build_signer
from api.serving.index_holder import IndexHolder
from api.serving.popular_articles import PopularArticles
from api.serving.single_flight import SingleFlight
from api.stores.event_store_factory import build_event_store
from api.stores.result_cache_factory import build_cache
from recommender import fault_points
from recommender.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, clock: Callable[[], float] = time.time) -> FastAPI:
    """Build the service for `settings`; everything stateful starts in the lifespan. `clock` is
    the wall clock of editors' sessions and feedback tokens (tests pass a fake one)."""
    fault_points.arm(settings.fault_point)
    metrics = Metrics()
    limiter = RateLimiter(settings.limits, settings.redis)
    services: Services | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal services
        feedback = build_signer(settings.feedback, settings.data_dir, clock)
        holder = IndexHolder(settings.index, clock=clock)
        await holder.refresh()
        if holder.current is None:
            log.warning("starting without an index: %s", holder.problem)
        cache = build_cache(settings.cache, settings.redis)
        event_store = build_event_store(settings.redis)
        event_log = EventLogWriter(
            open_event_log(settings.data_dir, holder.stores.postgres), settings.event_log, clock
        )
        event_log.start()
        popular = PopularArticles(
            event_log.backend, lambda: holder.current, settings.fallbacks, clock
        )
        clicks = ClickCounts(
            event_log.backend,
            holder.serve_clicks,
            settings.clicks,
            settings.data_dir,
            settings.event_log.retention_days,
            clock,
        )
        drafts = DraftEncoder(settings.encoder)
        drafts.preload()
        services = Services(
            settings=settings,
            holder=holder,
            cache=cache,
            drafts=drafts,
            flights=SingleFlight(),
            metrics=metrics,
            events=event_store,
            sessions=holder.stores.sessions,
            feedback=feedback,
            event_log=event_log,
            popular=popular,
            experiments=ExperimentArms(holder.stores.experiment, settings),
            experiment_figures=ExperimentFigureCounts(event_log.backend, feedback.memory_seconds),
            clicks=clicks,
        )
        app.state.services = services
        limiter.start()
        watchers = [asyncio.create_task(holder.watch(settings.server.reload_interval_seconds))]
        if holder.stores.shared:
            watchers.append(asyncio.create_task(holder.watch_database()))
        if settings.fallbacks.counts_popular:
            watchers.append(asyncio.create_task(popular.run()))
        # Lists ranked before the first count would stay cached so: wait for it where clicks
        # weigh; elsewhere they only explain (the editors' desk), and the count runs behind.
        if settings.index.ranking.click_weight > 0 or await asyncio.to_thread(
            services.experiments.weighs_clicks
        ):
            await clicks.first_count()
        watchers.append(asyncio.create_task(clicks.run()))
        # What start-up built (modules, routes, schemas, the index's objects) lives as long as
        # the process: out of the collector's sight, a full collection no longer walks it. It
        # walked ~200,000 objects for 100-300 ms at a time, stalling every request in flight.
        gc.freeze()
        try:
            yield
        finally:
            # Back in the collector's sight: an app stopped in a process that goes on (tests,
            # an embedding host) leaves no cycles that can never be collected.
            gc.unfreeze()
            for watcher in watchers:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await drafts.close()
            await cache.close()
            await limiter.stop()
            await event_store.close()
            await event_log.stop()
            holder.close()

    app = FastAPI(
        title="Related articles",
        summary="'You Might Also Like' suggestions for news articles.",
        version="0.1.0",
        lifespan=lifespan,
        # Served by `api.routes.home` from packaged assets, under the pages' CSP.
        docs_url=None,
        redoc_url=None,
        # First, so that plain related requests and beacons skip FastAPI's request handling.
        routes=[related.RelatedFastRoute(), events.EventsFastRoute()],
    )
    install_error_handlers(app)
    # The widget's routes first: a request tries each route in this order until one matches.
    for router in (
        related.router,
        events.router,
        catalog.router,
        live_changes.router,
        curation.router,
        experiment.router,
        editor.router,
        health.router,
        widget.router,
        home.router,
    ):
        app.include_router(router)
    metrics.watch(
        lambda: services.cache if services else None, lambda: services.holder if services else None
    )
    metrics.registry.register(EventMetrics(lambda: services.events if services else None))
    metrics.registry.register(EventLogMetrics(lambda: services.event_log if services else None))
    metrics.registry.register(PopularMetrics(lambda: services.popular if services else None))
    metrics.registry.register(ClickMetrics(lambda: services.clicks if services else None))
    limiter.document(app)
    add_examples(app)
    # Inside CORS, so that browsers can read a 429.
    app.add_middleware(_Wrap, wrap=limiter.middleware)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.server.cors_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type", "If-None-Match"],
        expose_headers=["ETag"],
        max_age=600,
    )
    app.add_middleware(
        _Wrap, wrap=lambda inner: limit_body_size(inner, settings.limits.max_request_bytes)
    )
    app.add_middleware(_Wrap, wrap=refuse_encoded_slashes)
    app.add_middleware(_Wrap, wrap=security_headers)
    app.add_middleware(_Wrap, wrap=metrics.middleware)
    return app


class _Wrap:
    """Adapts a function `ASGIApp -> ASGIApp` to Starlette's middleware-class interface.

    Starlette builds each middleware as `cls(app, **options)`; constructing this class returns
    the wrapped app itself, so the adapter adds no call layer to every request.
    """

    def __new__(cls, app: ASGIApp, wrap: Callable[[ASGIApp], ASGIApp]) -> Any:
        return wrap(app)
