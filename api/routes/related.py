"""The readers' endpoints that widgets call on every article page view.

`GET /v1/articles/{slug}/related` is answered by the FastAPI route below, and, for its plain
form (a valid slug, at most `limit=`), by `RelatedFastRoute`, a bare Starlette route placed in
front of it: FastAPI's per-request parameter handling costs several times more than answering
from the result cache. Both build the response with `related_response`.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request
from starlette.datastructures import URLPath
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from api.deps import Services, ServicesDep
from api.responses import json_response
from api.routes.parameters import (
    ERRORS,
    ExploreQuery,
    PlacementQuery,
    SectionValue,
    SlugPath,
    SlugValue,
)
from api.schemas import DraftRequest, ErrorBody, RelatedResponse
from api.serving.related_answers import related_response
from recommender.articles import (
    DEFAULT_PLACEMENT,
    MAX_SLUG_LENGTH,
    Article,
    embedding_text,
    lexical_text,
)
from recommender.ranking import RelatedQuery

router = APIRouter(tags=["related"])


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
        list[SectionValue], Query(max_length=50, description="Only these sections (repeatable).")
    ] = [],  # noqa: B006 - FastAPI copies defaults per request
    exclude: Annotated[
        list[SlugValue], Query(max_length=200, description="Slugs to leave out (repeatable).")
    ] = [],  # noqa: B006
    max_age_days: Annotated[
        float | None, Query(gt=0, le=36_500, description="Only articles this recent.")
    ] = None,
    language: Annotated[str | None, Query(max_length=35, description="Only this language.")] = None,
    placement: PlacementQuery = DEFAULT_PLACEMENT,
    explore: ExploreQuery = False,
) -> Response:
    """Suggestions for an indexed article, best first; never the article itself."""
    query = RelatedQuery(
        limit=limit,
        sections=frozenset(section),
        exclude=frozenset(exclude),
        max_age_days=max_age_days,
        language=language.lower() if language else None,
    )
    return await related_response(
        services,
        slug,
        query,
        request.headers.get("if-none-match"),
        placement=placement,
        explore=explore,
    )


# CDNs and uptime checks ask with HEAD: answered as GET (uvicorn sends no body). Not in the
# OpenAPI document, which would give both methods one operation id.
router.add_api_route(
    "/v1/articles/{slug}/related", related, methods=["HEAD"], include_in_schema=False
)


@router.post(
    "/v1/related",
    response_model=RelatedResponse,
    responses={413: {"model": ErrorBody}, **ERRORS},
    summary="Related articles for an unsaved draft",
)
async def related_to_draft(draft: DraftRequest, services: ServicesDep) -> Response:
    """Suggestions for text that is not in the index (e.g. a story being written)."""
    recommender = services.holder.require()
    encoder = await services.drafts.get(
        recommender.version.manifest.model_id, recommender.version.manifest.backend
    )
    article = Article(slug="draft", title=draft.title, summary=draft.summary, body=draft.body)
    vector = (await asyncio.to_thread(encoder.encode, [embedding_text(article)]))[0]
    body = recommender.answer_draft(vector, lexical_text(article), RelatedQuery(limit=draft.limit))
    return json_response(body)


RELATED_PATH = "/v1/articles/{slug}/related"
_RELATED_PREFIX, _RELATED_SUFFIX = RELATED_PATH.split("{slug}")
#: Stricter than `SlugPath` (no `$`-before-newline leniency): what passes here passes there.
_PLAIN_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")
_PLAIN_LIMIT = re.compile(r"[1-9][0-9]?")
#: The route's query parameters; others are ignored by both routes.
_QUERY_PARAMETERS = frozenset(
    {"limit", "section", "exclude", "max_age_days", "language", "placement", "explore"}
)
_PLAIN_QUERIES = {limit: RelatedQuery(limit=limit) for limit in range(1, 51)}
_DEFAULT_QUERY = RelatedQuery()
_METHODS = frozenset({"GET", "HEAD"})
#: Where `RelatedFastRoute.matches` leaves the parsed query for `handle`.
_QUERY_SCOPE_KEY = "recommender.related_query"


def plain_related_request(scope: Scope) -> tuple[str, RelatedQuery] | None:
    """(slug, query) when `scope` is a related request the fast route fully validates.

    That is a GET (or HEAD) of `RELATED_PATH` with a valid slug and no query parameter of the route
    other than one `limit` written as a plain number in range; parameters the route does not
    know are ignored, as FastAPI ignores them. Anything else is None: the FastAPI route
    answers it (422s and their error bodies included).
    """
    if scope["type"] != "http" or scope["method"] not in _METHODS or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if not (path.startswith(_RELATED_PREFIX) and path.endswith(_RELATED_SUFFIX)):
        return None
    slug = path[len(_RELATED_PREFIX) : len(path) - len(_RELATED_SUFFIX)]
    if len(slug) > MAX_SLUG_LENGTH or not _PLAIN_SLUG.fullmatch(slug):
        return None
    raw_query: bytes = scope["query_string"]
    if not raw_query:
        return slug, _DEFAULT_QUERY
    query = _DEFAULT_QUERY
    seen_limit = False
    # Parsed as Starlette parses it for FastAPI.
    for name, value in parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True):
        if name not in _QUERY_PARAMETERS:
            continue
        if name != "limit" or seen_limit or not _PLAIN_LIMIT.fullmatch(value):
            return None
        seen_limit = True
        plain = _PLAIN_QUERIES.get(int(value))
        if plain is None:
            return None
        query = plain
    return slug, query


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header, as Starlette's `Headers.get` returns it."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RelatedFastRoute(BaseRoute):
    """`RELATED_PATH` for plain requests, as a bare ASGI route in front of the FastAPI one.

    It matches only requests `plain_related_request` accepts; every other request goes on to
    the FastAPI route. Everything around routes (CORS, metrics, body limit, the error
    handlers) applies to it unchanged, and it answers with `related_response`, as the route
    does. It is not in the OpenAPI document: the route it stands in for is.
    """

    path = RELATED_PATH
    path_format = RELATED_PATH
    name = "related_fast"
    include_in_schema = False

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        plain = plain_related_request(scope)
        if plain is None:
            return Match.NONE, {}
        slug, query = plain
        return Match.FULL, {
            "endpoint": self.handle,
            "path_params": {"slug": slug},
            "route": self,
            _QUERY_SCOPE_KEY: query,
        }

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)  # URLs are built from the FastAPI route

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Services = scope["app"].state.services
        response = await related_response(
            services,
            scope["path_params"]["slug"],
            scope[_QUERY_SCOPE_KEY],
            _header(scope, b"if-none-match"),
        )
        await response(scope, receive, send)
