"""The server side of `recommender bench api`: the service plus a bare ceiling route.

Kept apart from the benchmark driver so that the CLI does not import FastAPI to start.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.responses import JSON
from bench.api_bench import CEILING_PATH
from recommender.settings import Settings


def ceiling_body(service: FastAPI) -> bytes:
    """The bytes of `GET /v1/articles/{slug}/related` for the index's first article.

    Built by the same calls the related route makes on a cache miss; the driver checks that
    they equal the route's own answer before measuring.
    """
    from api.serving.related_answers import placement_fallbacks, related_body
    from recommender.articles import DEFAULT_PLACEMENT
    from recommender.ranking import RelatedQuery

    services = service.state.services
    recommender = services.holder.require()
    slug = recommender.version.cards[0]["slug"]
    feedback = services.feedback
    fallbacks = placement_fallbacks(services, DEFAULT_PLACEMENT)
    body = related_body(
        feedback, recommender, slug, RelatedQuery(), feedback.hour(), fallbacks=fallbacks
    )
    return orjson.dumps(body)


def create_ceiling_app(service: FastAPI) -> FastAPI:
    """A bare FastAPI app with one route returning a cached related response's bytes."""
    ceiling = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    body: list[bytes] = []

    @ceiling.get(CEILING_PATH)
    async def bare() -> Response:
        if not body:
            body.append(ceiling_body(service))
        return Response(body[0], media_type=JSON)

    return ceiling


def create_bench_app(settings: Settings) -> ASGIApp:
    """The service for `settings`, with the ceiling app answering `CEILING_PATH`."""
    from api.app import create_app

    service = create_app(settings)
    ceiling = create_ceiling_app(service)

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == CEILING_PATH:
            await ceiling(scope, receive, send)
        else:
            await service(scope, receive, send)

    return dispatch


def create_bench_app_from_environment() -> ASGIApp:
    """Factory for `uvicorn --factory` in benchmark mode: settings from the environment."""
    return create_bench_app(Settings())
