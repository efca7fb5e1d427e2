"""How a related request becomes a response: its cache key (carrying everything that can change
the answer), its ETag, conditional requests, the result cache and single-flight computation.

The JSON route, its fast route and the HTML fragment all answer through `related_response`;
each form of the list is a `Representation` with its own media type and cache-key suffix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson
from starlette.responses import Response

from api.responses import JSON
from api.serving.experiment_arms import Arm, Experiment, ExperimentArms
from api.serving.exploration_draw import RESERVES, SHARE_STEPS, exploration_plan
from api.serving.feedback_tokens import DEFAULT_ARM, FeedbackSigner
from api.serving.index_holder import IndexHolder
from api.serving.popular_articles import PopularArticles
from api.serving.single_flight import SingleFlight
from api.stores.result_cache import ResultCache
from index.serving.recommender_engine import Recommender, Suggestion
from recommender.articles import DEFAULT_PLACEMENT
from recommender.fallbacks import Fallbacks, FallbackStep
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
    @property
    def popular(self) -> PopularArticles: ...
    @property
    def experiments(self) -> ExperimentArms: ...


def related_cache_key(
    tag: str,
    slug: str,
    query: RelatedQuery,
    variant: str = "",
    placement: str = DEFAULT_PLACEMENT,
    share: int = 0,
    fallbacks: tuple[FallbackStep, ...] | None = None,
    experiment: str | None = None,
) -> str:
    """Carries the version and the live-change generation: a change never serves old lists.

    The query (and the representation's `variant`, a placement other than the default, whose
    token differs, an exploration `share` other than 0, whose list carries reserves, a
    fallback chain, whose items carry reasons, and the tag of the `experiment` whose arms
    the list carries) enter as a fixed-size digest of their
    normalised form, so a request's key is bounded however long its values are. The popular
    articles do not: a list filled from them is as old as its cache entry.
    """
    normalised = f"{len(variant)}:{variant}:{query.cache_key()}"
    if placement != DEFAULT_PLACEMENT:
        normalised += f":placement={placement}"
    if share:
        normalised += f":explore={share}"
    if fallbacks is not None:
        normalised += f":fallbacks={','.join(fallbacks)}"
    if experiment is not None:
        normalised += f":experiment={experiment}"
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


def placement_fallbacks(services: AnswerServices, placement: str) -> Fallbacks | None:
    """The fallback chain of `placement` over the worker's popular articles (None: off)."""
    steps = services.settings.fallbacks.steps(placement)
    return None if steps is None else Fallbacks(steps, services.popular.by_section)


def related_body(
    feedback: FeedbackSigner,
    recommender: Recommender,
    slug: str,
    query: RelatedQuery,
    hour: int,
    placement: str = DEFAULT_PLACEMENT,
    share: int = 0,
    fallbacks: Fallbacks | None = None,
    arm: Arm | None = None,
) -> dict[str, Any]:
    """The related list of `slug` in `placement` with its feedback token issued in `hour`: what
    every representation encodes on a cache miss. `feedback.placement` is there only for a
    placement other than the default. With `fallbacks`, the list (and its reserves) is filled
    by that chain and each item says why it is there (`reason`).

    With an exploration `share` (in steps of 1/`SHARE_STEPS`), the same ranking is asked for
    `RESERVES` more suggestions: those after the list, less any pinned article, are its
    `reserves`, signed into the token with the plan (`api.serving.exploration_draw`), which
    `feedback.exploration` (the share) and `feedback.pinned` (the slots never varied) repeat
    for the client that draws. A list that cannot vary (no reserve, every slot pinned) is the
    plain list. As an experiment's `arm`, its token carries the arm's name and draws, and
    `feedback.share` the arm's share."""
    shown: list[Suggestion] = []
    reserves: list[Suggestion] = []
    if share:
        wider = replace(query, limit=query.limit + RESERVES)
        ranked = recommender.related(slug, wider, fallbacks=fallbacks)
        shown = ranked[: query.limit]
        reserves = [suggestion for suggestion in ranked[query.limit :] if not suggestion.pinned]
        answer = recommender.body(slug, shown)
    else:
        answer = recommender.body(slug, recommender.related(slug, query, fallbacks=fallbacks))
    pinned = [slot for slot, suggestion in enumerate(shown, start=1) if suggestion.pinned]
    plan = exploration_plan(share, len(shown), len(reserves), pinned)
    reserve_items = [recommender.item(suggestion) for suggestion in reserves] if plan else []
    token = feedback.issue(
        slug,
        [item["slug"] for item in answer["items"]],
        version=recommender.version.id,
        arm=DEFAULT_ARM if arm is None else arm.name,
        hour=hour,
        placement=placement,
        reserves=[item["slug"] for item in reserve_items],
        exploration=plan,
        draws=None if arm is None else (arm.start, arm.end),
    )
    answer["feedback"] = {"token": token, "arm": DEFAULT_ARM if arm is None else arm.name}
    if arm is not None:
        answer["feedback"]["share"] = arm.share / SHARE_STEPS
    if placement != DEFAULT_PLACEMENT:
        answer["feedback"]["placement"] = placement
    if plan is not None:
        answer["reserves"] = reserve_items
        answer["feedback"]["exploration"] = plan.share / SHARE_STEPS
        answer["feedback"]["pinned"] = sorted(plan.pinned)
    return answer


def experiment_body(
    feedback: FeedbackSigner,
    arms: Sequence[tuple[Arm, Recommender]],
    slug: str,
    query: RelatedQuery,
    hour: int,
    placement: str,
    fallbacks: Fallbacks | None,
) -> dict[str, Any]:
    """The related list of `slug` while an experiment runs, for a client that draws: the
    holdout's list (the first arm's), and in `arms` every arm's, each with its own token and
    exploration (its setting), for the client to pick the one its impression id draws."""
    bodies = [
        related_body(
            feedback,
            recommender,
            slug,
            query,
            hour,
            placement,
            round(arm.settings.feedback.exploration * SHARE_STEPS),
            fallbacks,
            arm,
        )
        for arm, recommender in arms
    ]
    arms_of = [{key: value for key, value in body.items() if key != "slug"} for body in bodies]
    return {**bodies[0], "arms": arms_of}


async def _related_bytes(
    services: AnswerServices,
    recommender: Recommender,
    slug: str,
    query: RelatedQuery,
    key: str,
    hour: int,
    encode: Callable[[dict[str, Any]], bytes],
    placement: str,
    share: int,
    fallbacks: Fallbacks | None,
    experiment: Experiment | None,
) -> bytes:
    cached = await services.cache.get(key)
    if cached is not None:
        return cached

    def answer() -> dict[str, Any]:
        if experiment is None:
            return related_body(
                services.feedback, recommender, slug, query, hour, placement, share, fallbacks
            )
        rankers = services.experiments.rankers(recommender, experiment)
        arms = list(zip(experiment.arms, rankers, strict=True))
        return experiment_body(services.feedback, arms, slug, query, hour, placement, fallbacks)

    async def compute() -> bytes:
        body = encode(answer())
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
    explore: bool = False,
) -> Response:
    """The answer to `GET /v1/articles/{slug}/related` (or another `representation` of the
    same list) for a validated request, shown in `placement`, filled by that placement's
    fallback chain (`RECOMMENDER_FALLBACKS`); with `explore`, for a client that draws the
    exploration (`RECOMMENDER_EXPLORATION`; none when it is 0) and picks the arm of the
    experiment running, if any (`api.serving.experiment_arms`)."""
    recommender = services.holder.require()
    hour = services.feedback.hour()
    share = round(services.settings.feedback.exploration * SHARE_STEPS) if explore else 0
    experiment = services.experiments.current() if explore else None
    fallbacks = placement_fallbacks(services, placement)
    steps = None if fallbacks is None else fallbacks.steps
    tag = f"{recommender.cache_tag}.{hour}"
    if experiment is not None:  # an arm may weigh readers' clicks where the service does not
        rankers = services.experiments.rankers(recommender, experiment)
        tag += "".join(dict.fromkeys(r.clicks_tag for r in rankers if r is not recommender))
    key = related_cache_key(
        tag,
        slug,
        query,
        representation.key_variant,
        placement,
        share,
        steps,
        None if experiment is None else experiment.tag,
    )
    etag = etag_for(key)
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={services.settings.cache.http_max_age}",
    }
    if not_modified(if_none_match, etag):
        recommender.row_of(slug)  # an unknown slug is a 404 even with a matching tag
        return Response(status_code=304, headers=headers)
    body = await _related_bytes(
        services,
        recommender,
        slug,
        query,
        key,
        hour,
        representation.encode,
        placement,
        share,
        fallbacks,
        experiment,
    )
    return Response(body, media_type=representation.media_type, headers=headers)
