"""Path parameters and error responses that several routes share."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import StringConstraints

from api.schemas import ErrorBody
from recommender.articles import (
    DEFAULT_PLACEMENT,
    FIELD_LIMITS,
    MAX_SLUG_LENGTH,
    PLACEMENT_PATTERN,
    SLUG_PATTERN,
)

SlugPath = Annotated[
    str,
    Path(
        pattern=SLUG_PATTERN.pattern,
        max_length=MAX_SLUG_LENGTH,
        description="The article's slug: lowercase letters, digits and '-'.",
    ),
]
#: A query value that names an article (e.g. `exclude=`): a slug, or the request is a 422.
SlugValue = Annotated[
    str, StringConstraints(pattern=SLUG_PATTERN.pattern, max_length=MAX_SLUG_LENGTH)
]
#: A `section=` value: no longer than a section an article may have.
SectionValue = Annotated[str, StringConstraints(max_length=FIELD_LIMITS["section"])]
#: `placement=`: where the box sits on the page; logged with its events, part of the cache key.
PlacementQuery = Annotated[
    str,
    Query(
        pattern=PLACEMENT_PATTERN,
        max_length=32,
        description="Where the box sits on the page (e.g. `article-end`): 1-32 characters of "
        f"a-z 0-9 _ -. Carried in the feedback token and the impression log; `{DEFAULT_PLACEMENT}` "
        "(or none) leaves the response as it was without placements.",
    ),
]
#: `explore=`: the client draws the exploration (widget.js does), so the list carries reserves.
ExploreQuery = Annotated[
    bool,
    Query(
        description="For a client that draws the exploration and the A/B arm as widget.js does "
        "(docs/learning.md): the list carries `reserves` and `feedback.exploration`, and while "
        "an experiment runs every arm's list in `arms`; its events count only as the draws for "
        "their impression id placed the items. Without it, or with RECOMMENDER_EXPLORATION=0 "
        "and no experiment, the list is the plain ranked one.",
    ),
]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody},
    422: {"model": ErrorBody},
    503: {"model": ErrorBody},
}
