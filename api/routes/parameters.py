"""Path parameters and error responses that several routes share."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

from api.schemas import ErrorBody
from recommender.articles import MAX_SLUG_LENGTH, SLUG_PATTERN

SlugPath = Annotated[
    str,
    Path(
        pattern=SLUG_PATTERN.pattern,
        max_length=MAX_SLUG_LENGTH,
        description="The article's slug: lowercase letters, digits and '-'.",
    ),
]
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody},
    422: {"model": ErrorBody},
    503: {"model": ErrorBody},
}
