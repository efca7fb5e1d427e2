"""Request and response shapes, as published in the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from recommender.articles import FIELD_LIMITS, MAX_SLUG_LENGTH, SLUG_PATTERN
from recommender.fallbacks import Reason
from recommender.overrides import MAX_SLOT


class ErrorBody(BaseModel):
    error: str = Field(description="Stable machine-readable code, e.g. article_not_found.")
    detail: Any = Field(description="Human-readable explanation.")


class RelatedItem(BaseModel):
    slug: str
    title: str
    url: str | None
    image: str | None = Field(description="Absolute http(s) URL of the article's picture.")
    summary: str
    section: str | None
    published_at: str | None
    score: float = Field(description="Similarity to the source article (higher is closer).")
    reason: Reason | None = Field(
        None,
        description="Why it is in the list: `related` (ranked by similarity, or pinned by an "
        "editor), `popular` (most clicked in the source's section over the last "
        "RECOMMENDER_POPULAR_HOURS) or `newest` (newest in the source's section, then "
        "anywhere), the fallbacks that fill a list once the related candidates run out; "
        "absent when fallbacks are off (RECOMMENDER_FALLBACKS=off).",
    )


class Feedback(BaseModel):
    """What the widget sends back with each impression and click of this list."""

    token: str = Field(
        description="Signed by the service over the source, the list shown (slot by slot, "
        "then any reserves and the exploration plan), the arm, the index version and an "
        "expiry; POST /v1/events counts only events carrying "
        "it. The same for every reader of the same list within the hour (cacheable)."
    )
    arm: str = Field(description="Which ranking produced the list (`default` for now).")
    placement: str | None = Field(
        None,
        description="The `placement=` asked for, which the token covers; absent for the "
        "default placement.",
    )
    exploration: float | None = Field(
        None,
        description="With `explore=true`: the share of boxes that show one of `reserves` in "
        "an unpinned slot, as drawn from the box's impression id (docs/learning.md); absent "
        "when the list does not explore.",
    )
    pinned: list[int] | None = Field(
        None, description="With `exploration`: the editors' pinned slots, never varied."
    )


class RelatedResponse(BaseModel):
    slug: str | None = Field(description="The source article; null for a draft.")
    index_version: str
    items: list[RelatedItem]
    feedback: Feedback | None = Field(
        None, description="For the widget's beacons; absent for a draft (POST /v1/related)."
    )
    reserves: list[RelatedItem] | None = Field(
        None,
        description="With `explore=true` and exploration on: the ranking's next candidates, "
        "which an exploring box shows in place of one unpinned item; signed into the token.",
    )


class DraftRequest(BaseModel):
    """An unsaved story to find related articles for."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=FIELD_LIMITS["title"])
    summary: str = Field(default="", max_length=FIELD_LIMITS["summary"])
    body: str = Field(default="", max_length=100_000)
    limit: int = Field(default=5, ge=1, le=50)


class ArticleCard(BaseModel):
    slug: str
    title: str
    summary: str
    url: str | None
    image: str | None
    section: str | None
    tags: list[str]
    author: str | None
    published_at: str | None
    language: str | None
    metadata: dict[str, Any]
    index_version: str


class IndexInfo(BaseModel):
    version: str
    articles: int
    model: str
    model_id: str
    dimension: int
    index: dict[str, Any]
    recall_at_10: float
    built_at: str


class Readiness(BaseModel):
    status: str = Field(description="ready or not_ready")
    index_version: str | None
    cache: str = Field(description="ok or degraded (Redis unreachable: answers are uncached)")
    database: str = Field(
        default="local",
        description="local (SQLite in the data directory), ok, or degraded (the shared database "
        "is unreachable: readers get the last state known, writes answer 503)",
    )
    detail: str | None = None
    warnings: list[str] = Field(
        default=[],
        description="Problems that do not stop serving (e.g. a Redis memory policy that would "
        "evict the widget's counters, counters kept in memory only, or less free disk space "
        "than RECOMMENDER_DISK_WARN_MB for the data directory).",
    )


class LiveChange(BaseModel):
    slug: str
    status: str = Field(description="upserted")
    sequence: int = Field(description="Order of this change among all live changes.")
    index_version: str
    articles: int = Field(description="Articles served now, live changes included.")


class PinRequest(BaseModel):
    """Pin `target` into a slot of the article's list."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(pattern=SLUG_PATTERN.pattern, max_length=MAX_SLUG_LENGTH)
    slot: int = Field(default=1, ge=1, le=MAX_SLOT, description="1 = first suggestion.")
    until: datetime | None = Field(
        default=None, description="When the pin stops applying (ISO 8601); null = until removed."
    )
    reason: str | None = Field(default=None, max_length=500)


class BlockRequest(BaseModel):
    """Never suggest `target` (in one article's list, or anywhere for a global block)."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(pattern=SLUG_PATTERN.pattern, max_length=MAX_SLUG_LENGTH)
    reason: str | None = Field(default=None, max_length=500)


class PinBody(BaseModel):
    source: str
    target: str
    slot: int
    until: str | None
    reason: str | None
    actor: str
    created_at: str
    active: bool = Field(description="False once `until` has passed.")


class BlockBody(BaseModel):
    source: str | None = Field(description="null for a global block.")
    target: str
    reason: str | None
    actor: str
    created_at: str


class AuditBody(BaseModel):
    id: int
    at: str
    actor: str
    action: str = Field(description="pin, unpin, block or unblock (source null: global).")
    source: str | None
    target: str
    reason: str | None
    undone_by: int | None = Field(description="The record that undid this change, if any.")


class PinCreated(PinBody):
    audit_id: int


class BlockCreated(BlockBody):
    audit_id: int
