"""How sources are read: limits, field renames, whether pages are fetched, the HTTP policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from recommender.settings import Settings
from recommender.sources import USER_AGENT
from recommender.sources.limits import ReadLimits


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Politeness and safety of every HTTP request a reindex makes."""

    user_agent: str = USER_AGENT
    timeout_seconds: float = 20.0
    retries: int = 2
    backoff_seconds: float = 1.0
    concurrency: int = 4
    max_bytes: int = 10 << 20
    max_redirects: int = 5
    max_pages: int = 100
    #: Where conditional-request validators and bodies are kept; None = no cache.
    cache_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """Everything a reader needs besides the source itself."""

    limits: ReadLimits = field(default_factory=ReadLimits)
    #: Raw field name -> Article field, for JSONL/CSV feeds (`--map headline=title`).
    field_map: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    fetch_pages: bool = False
    fetch: FetchPolicy = field(default_factory=FetchPolicy)
    show_progress: bool = False
    #: Read the first `fetch.max_pages` pages of a longer listing instead of failing
    #: (`--allow-partial`); the cut is recorded in the FeedReport.
    allow_partial: bool = False


def read_options(
    settings: Settings,
    *,
    field_map: Mapping[str, str] | None = None,
    fetch_pages: bool = False,
    show_progress: bool = False,
    allow_partial: bool = False,
) -> ReadOptions:
    """The options a reindex with these settings uses (the fetch cache lives in the data dir)."""
    return ReadOptions(
        limits=ReadLimits(settings.feed_max_record_bytes, settings.feed_max_source_bytes),
        field_map=MappingProxyType(dict(field_map or {})),
        fetch_pages=fetch_pages,
        fetch=FetchPolicy(
            user_agent=settings.fetch_user_agent,
            timeout_seconds=settings.fetch_timeout_seconds,
            retries=settings.fetch_retries,
            backoff_seconds=settings.fetch_backoff_seconds,
            concurrency=settings.fetch_concurrency,
            max_bytes=settings.fetch_max_bytes,
            max_redirects=settings.fetch_max_redirects,
            max_pages=settings.fetch_max_pages,
            cache_dir=settings.data_dir / "fetch-cache",
        ),
        show_progress=show_progress,
        allow_partial=allow_partial,
    )
