"""Reading feeds and fetching from the web: the ingest group of settings
(`RECOMMENDER_FEED_*`, `RECOMMENDER_FETCH_*`)."""

from __future__ import annotations

from typing import Any

from recommender.ingest.web import USER_AGENT
from recommender.setting_group import Group, setting


class IngestSettings(Group):
    """Reading feeds and fetching from the web (`RECOMMENDER_FEED_*`, `RECOMMENDER_FETCH_*`)."""

    max_record_bytes: int = setting(
        "feed_max_record_bytes",
        8 << 20,
        ge=1_024,
        description="Longest feed record (a JSONL line, a CSV row); longer ones are skipped.",
    )
    max_source_bytes: int = setting(
        "feed_max_source_bytes",
        1 << 30,
        ge=1_024,
        description="Most bytes one feed file may hold once decompressed (gzip bombs).",
    )
    user_agent: str = setting(
        "fetch_user_agent",
        USER_AGENT,
        min_length=1,
        description="User-Agent of every request, and the name robots.txt rules are matched to.",
    )
    timeout_seconds: float = setting(
        "fetch_timeout_seconds",
        20.0,
        gt=0,
        description="Longest one request (connect to last byte) may take.",
    )
    retries: int = setting(
        "fetch_retries",
        2,
        ge=0,
        description="Retries of a request that timed out or answered 429/5xx.",
    )
    backoff_seconds: float = setting(
        "fetch_backoff_seconds",
        1.0,
        ge=0,
        description="Wait before the first retry; doubled for each next one.",
    )
    concurrency: int = setting(
        "fetch_concurrency", 4, ge=1, le=64, description="Article pages fetched at once."
    )
    max_bytes: int = setting(
        "fetch_max_bytes",
        10 << 20,
        ge=1_024,
        description="Largest feed, sitemap or page body (decompressed); larger ones are refused.",
    )
    max_redirects: int = setting(
        "fetch_max_redirects",
        5,
        ge=0,
        description="Redirects followed per request (only to http/https).",
    )
    max_pages: int = setting(
        "fetch_max_pages",
        100,
        ge=1,
        description="Pages followed per paged feed or WordPress listing; sitemaps per index. "
        "A longer listing fails the run unless reindex is given --allow-partial.",
    )


def ingest_default(name: str) -> Any:
    """The default of the ingest setting `name`, for the reading code's own defaults
    (`FetchPolicy`, `ReadLimits`), so that each default is written once, here."""
    return IngestSettings.model_fields[name].default
