"""The readers' endpoints that widgets call on every article page view."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from api.deps import Services, ServicesDep
from api.responses import JSON, json_response
from api.schemas import DraftRequest, ErrorBody, RelatedResponse
from index.related import Recommender
from recommender.articles import (
    MAX_SLUG_LENGTH,
    SLUG_PATTERN,
    Article,
    embedding_text,
    lexical_text,
)
from recommender.ranking import RelatedQuery

router = APIRouter(tags=["related"])

SlugPath = Annotated[
    str,
    Path(
        pattern=SLUG_PATTERN.pattern,
        max_length=MAX_SLUG_LENGTH,
        description="The article's slug: lowercase letters, digits and '-'.",
    ),
]
ERRORS = {404: {"model": ErrorBody}, 422: {"model": ErrorBody}, 503: {"model": ErrorBody}}


def related_cache_key(version: str, slug: str, query: RelatedQuery) -> str:
    return f"related:{version}:{slug}:{query.cache_key()}"


def etag_for(key: str) -> str:
    return '"' + hashlib.blake2b(key.encode(), digest_size=12).hexdigest() + '"'


def _not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    return header.strip() == "*" or etag in {tag.strip().removeprefix("W/") for tag in header.split(",")}


async def _related_bytes(
    services: Services, recommender: Recommender, slug: str, query: RelatedQuery, key: str
) -> bytes:
    cached = await services.cache.get(key)
    if cached is not None:
        return cached

    async def compute() -> bytes:
        body = orjson.dumps(recommender.body(slug, recommender.related(slug, query)))
        await services.cache.set(key, body, services.settings.cache_ttl_seconds)
        return body

    return await services.flights.run(key, compute)


@router.get(
    "/v1/articles/{slug}/related",
    response_model=RelatedResponse,
    responses=ERRORS,
    summary="Related articles for an article",
)
async def related(
    slug: SlugPath,
    request: Request,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=50, description="How many suggestions.")] = 5,
    section: Annotated[
        list[str], Query(max_length=50, description="Only these sections (repeatable).")
    ] = [],  # noqa: B006 - FastAPI copies defaults per request
    exclude: Annotated[
        list[str], Query(max_length=200, description="Slugs to leave out (repeatable).")
    ] = [],  # noqa: B006
    max_age_days: Annotated[
        float | None, Query(gt=0, le=36_500, description="Only articles this recent.")
    ] = None,
    language: Annotated[str | None, Query(max_length=35, description="Only this language.")] = None,
) -> Response:
    """Suggestions for an indexed article, best first; never the article itself."""
    recommender = services.holder.require()
    query = RelatedQuery(
        limit=limit,
        sections=frozenset(section),
        exclude=frozenset(exclude),
        max_age_days=max_age_days,
        language=language.lower() if language else None,
    )
    key = related_cache_key(recommender.version.id, slug, query)
    etag = etag_for(key)
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={services.settings.http_max_age}",
    }
    if _not_modified(request, etag):
        recommender.row_of(slug)  # an unknown slug is a 404 even with a matching tag
        return Response(status_code=304, headers=headers)
    body = await _related_bytes(services, recommender, slug, query, key)
    return Response(body, media_type=JSON, headers=headers)


@router.post(
    "/v1/related",
    response_model=RelatedResponse,
    responses={413: {"model": ErrorBody}, **ERRORS},
    summary="Related articles for an unsaved draft",
)
async def related_to_draft(draft: DraftRequest, services: ServicesDep) -> Response:
    """Suggestions for text that is not in the index (e.g. a story being written)."""
    recommender = services.holder.require()
    encoder = await services.drafts.get(recommender.version.manifest.model_id)
    article = Article(slug="draft", title=draft.title, summary=draft.summary, body=draft.body)
    vector = (await asyncio.to_thread(encoder.encode, [embedding_text(article)]))[0]
    suggestions = recommender.related_to_draft(
        vector, lexical_text(article), RelatedQuery(limit=draft.limit)
    )
    return json_response(recommender.body(None, suggestions))
