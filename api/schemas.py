"""Request and response shapes, as published in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from recommender.articles import FIELD_LIMITS


class ErrorBody(BaseModel):
    error: str = Field(description="Stable machine-readable code, e.g. article_not_found.")
    detail: Any = Field(description="Human-readable explanation.")


class RelatedItem(BaseModel):
    slug: str
    title: str
    url: str | None
    summary: str
    section: str | None
    published_at: str | None
    score: float = Field(description="Similarity to the source article (higher is closer).")


class RelatedResponse(BaseModel):
    slug: str | None = Field(description="The source article; null for a draft.")
    index_version: str
    items: list[RelatedItem]


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
    detail: str | None = None


class LiveChange(BaseModel):
    slug: str
    status: str = Field(description="upserted")
    sequence: int = Field(description="Order of this change among all live changes.")
    index_version: str
    articles: int = Field(description="Articles served now, live changes included.")
