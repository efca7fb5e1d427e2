"""How a related request becomes a response: its cache key (carrying everything that can change
the answer), its ETag, conditional requests, the result cache and single-flight computation.

The JSON route, its fast route and the HTML fragment all answer through `related_response`;
each form of the list is a `Representation` with its own media type and cache-key suffix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from starlette.responses import Response

from api.responses import JSON
from api.serving.feedback_tokens import DEFAULT_ARM, FeedbackSigner
from api.serving.index_holder import IndexHolder
from api.serving.single_flight import SingleFlight
from api.stores.event_schemas import DEFAULT_PLACEMENT
from api.stores.result_cache import ResultCache
from index.serving.recommender_engine import Recommender
from recommender.ranking import RelatedQuery
from recommender.settings import Settings


class AnswerServices(Protocol):
    """What answering takes of an app's `api.deps.Services` (which sits above this room)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def holder(self) -> IndexHolder: ...
    @property
    def cache(self) -> ResultCache: ...
    @property
    def flights(self) -> SingleFlight: ...
    @property
    def feedback(self) -> FeedbackSigner: ...


def related_cache_key(
    tag: str,
    slug: str,
    query: RelatedQuery,
    variant: str = "",
    placement: str = DEFAULT_PLACEMENT,
) -> str:
    """Carries the version and the live-change generation: a change never serves old lists.

    The query (and the representation's `variant`, and a placement other than the default,
    whose token differs) enter as a fixed-size digest of their normalised form, so a request's
    key is bounded however long its values are.
    """
    normalised = f"{len(variant)}:{variant}:{query.cache_key()}"
    if placement != DEFAULT_PLACEMENT:
        normalised += f":placement={placement}"
    digest = hashlib.blake2b(normalised.encode(), digest_size=16).hexdigest()
    return f"related:{tag}:{slug}:{digest}"


def etag_for(key: str) -> str:
    return '"' + hashlib.blake2b(key.encode(), digest_size=12).hexdigest() + '"'


def not_modified(header: str | None, etag: str) -> bool:
    """Whether an `If-None-Match` header value matches `etag`."""
    if not header:
        return False
    return header.strip() == "*" or etag in {
        tag.strip().removeprefix("W/") for tag in header.split(",")
    }


@dataclass(frozen=True, slots=True)
class Representation:
    """One form of a related list: its media type, its encoder, and a cache-key variant that
    keeps each form's bytes and ETag apart."""

    media_type: str
    encode: Callable[[dict[str, Any]], bytes]
    key_variant: str = ""


AS_JSON = Representation(JSON, orjson.dumps)


def related_body(
    feedback: FeedbackSigner,
    recommender: Recommender,
    slug: str,
    query: RelatedQuery,
    hour: int,
    placement: str = DEFAULT_PLACEMENT,
) -> dict[str, Any]:
    """The related list of `slug` in `placement` with its feedback token issued in `hour`: what
    every representation encodes on a cache miss. `feedback.placement` is there only for a
    placement other than the default."""
    answer = recommender.answer(slug, query)
    token = feedback.issue(
        slug,
        [item["slug"] for item in answer["items"]],
        version=recommender.version.id,
        arm=DEFAULT_ARM,
        hour=hour,
        placement=placement,
    )
    answer["feedback"] = {"token": token, "arm": DEFAULT_ARM}
    if placement != DEFAULT_PLACEMENT:
        answer["feedback"]["placement"] = placement
    return answer


async def _related_bytes(
    services: AnswerServices,
    recommender: Recommender,
    slug: str,
    query: RelatedQuery,
    key: str,
    hour: int,
    encode: Callable[[dict[str, Any]], bytes],
    placement: str,
) -> bytes:
    cached = await services.cache.get(key)
    if cached is not None:
        return cached

    async def compute() -> bytes:
        body = encode(related_body(services.feedback, recommender, slug, query, hour, placement))
        await services.cache.set(key, body, services.settings.cache.ttl_seconds)
        return body

    return await services.flights.run(key, compute)


async def related_response(
    services: AnswerServices,
    slug: str,
    query: RelatedQuery,
    if_none_match: str | None,
    representation: Representation = AS_JSON,
    placement: str = DEFAULT_PLACEMENT,
) -> Response:
    """The answer to `GET /v1/articles/{slug}/related` (or another `representation` of the
    same list) for a validated request, shown in `placement`."""
    recommender = services.holder.require()
    hour = services.feedback.hour()
    tag = f"{recommender.cache_tag}.{hour}"
    key = related_cache_key(tag, slug, query, representation.key_variant, placement)
    etag = etag_for(key)
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={services.settings.cache.http_max_age}",
    }
    if not_modified(if_none_match, etag):
        recommender.row_of(slug)  # an unknown slug is a 404 even with a matching tag
        return Response(status_code=304, headers=headers)
    body = await _related_bytes(
        services, recommender, slug, query, key, hour, representation.encode, placement
    )
    return Response(body, media_type=representation.media_type, headers=headers)
