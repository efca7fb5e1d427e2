"""The admin API: live upserts and retractions between nightly rebuilds."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Body
from starlette.responses import Response

from api.access.admin_token import AdminDep
from api.deps import Services, ServicesDep
from api.responses import json_response
from api.routes.parameters import ERRORS, SlugPath
from api.schemas import ErrorBody, LiveChange
from index.index_errors import StorageError
from index.state.embedding_cache import EmbeddingCache
from recommender import fault_points
from recommender.articles import Article, embedding_text, text_hash, validate_record
from recommender.errors import InvalidRecord

log = logging.getLogger(__name__)
router = APIRouter(tags=["admin"])
ADMIN_ERRORS = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    **ERRORS,
}


def _remember_embedding(services: Services, model_id: str, text: str, vector: Any) -> None:
    """Keep the vector for the next reindex, if the disk has room: a cache, never a reason
    to refuse the change (which the live store then accepts or refuses whole)."""
    try:
        cache = EmbeddingCache(services.settings.index.embedding_cache_path)
        try:
            cache.put_many(model_id, [(text_hash(text), vector)])
        finally:
            cache.close()
    except StorageError as exc:
        log.warning("the embedding of a live upsert was not cached: %s", exc)


@router.put("/v1/articles/{slug}", response_model=LiveChange, responses=ADMIN_ERRORS)
async def upsert_article(
    slug: SlugPath,
    _: AdminDep,
    services: ServicesDep,
    article: dict[str, Any] = Body(description="The article: title, summary, body, url, ..."),  # noqa: B008
) -> Response:
    """Publish or correct an article now: it is embedded and recommendable at once."""
    if article.get("slug", slug) != slug:
        raise InvalidRecord(f"the body's slug {article['slug']!r} differs from the URL's {slug!r}")
    record = {**article, "slug": slug}
    parsed: Article = validate_record(record).article
    holder = services.holder
    version = holder.require().version
    encoder = await services.drafts.get(version.manifest.model_id, version.manifest.backend)
    text = embedding_text(parsed)
    vector = (await asyncio.to_thread(encoder.encode, [text]))[0]
    await asyncio.to_thread(_remember_embedding, services, encoder.model_id, text, vector)
    seq = await holder.call_store(
        lambda: holder.live.upsert(slug, record, encoder.model_id, vector)
    )
    fault_points.reached("live-committed")
    # Not `version`: a new one may have been swapped in while this request was encoding.
    recommender = await holder.call_store(holder.require)
    version = recommender.version
    return json_response(
        {
            "slug": slug,
            "status": "upserted",
            "sequence": seq,
            "index_version": version.id,
            "articles": version.size - len(recommender.overlay.hidden) + recommender.overlay.size,
        }
    )


@router.delete("/v1/articles/{slug}", status_code=204, responses=ADMIN_ERRORS)
async def retract_article(slug: SlugPath, _: AdminDep, services: ServicesDep) -> Response:
    """Retract an article: it leaves every suggestion list at once, cached ones included."""
    holder = services.holder
    recommender = holder.require()
    if slug not in recommender.overlay.retracted:
        recommender.row_of(slug)  # 404 for a slug that was never published

        def retract() -> None:
            holder.live.retract(slug)
            holder.apply_live_changes()

        await holder.call_store(retract)
        fault_points.reached("live-committed")
    return Response(status_code=204)
