"""The catalog as indexed: one article's card, and the index itself."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from api.deps import ServicesDep
from api.responses import json_response
from api.routes.parameters import ERRORS, SlugPath
from api.schemas import ArticleCard, IndexInfo

router = APIRouter(tags=["catalog"])


@router.get("/v1/articles/{slug}", response_model=ArticleCard, responses=ERRORS)
async def article(slug: SlugPath, services: ServicesDep) -> Response:
    """The article's card as indexed (everything but the body)."""
    recommender = services.holder.require()
    card = recommender.card(recommender.row_of(slug))
    return json_response({**card, "index_version": recommender.version.id})


@router.get("/v1/index", response_model=IndexInfo, responses={503: ERRORS[503]})
async def index_info(services: ServicesDep) -> Response:
    """The version being served: id, article count, model, build time."""
    return json_response(services.holder.require().version.manifest.describe())
