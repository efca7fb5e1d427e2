"""How sources are read: limits, field renames, whether pages are fetched, the HTTP policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from recommender.ingest.ingest_settings import IngestSettings, ingest_default
from recommender.ingest.limits import ReadLimits


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Politeness and safety of every HTTP request a reindex makes."""

    user_agent: str = ingest_default("user_agent")
    timeout_seconds: float = ingest_default("timeout_seconds")
    retries: int = ingest_default("retries")
    backoff_seconds: float = ingest_default("backoff_seconds")
    concurrency: int = ingest_default("concurrency")
    max_bytes: int = ingest_default("max_bytes")
    max_redirects: int = ingest_default("max_redirects")
    max_pages: int = ingest_default("max_pages")
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


@dataclass(frozen=True, slots=True)
class SourceChoices:
    """What one run asks of its sources besides the settings (`reindex --map --fetch-pages
    --allow-partial`)."""

    #: Raw field name -> Article field, for JSONL/CSV feeds (`--map headline=title`).
    field_map: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    fetch_pages: bool = False
    allow_partial: bool = False


def fetch_cache_dir(data_dir: Path) -> Path:
    """Where a data directory keeps its fetch cache (`recommender.ingest.web.fetch_cache`)."""
    return data_dir / "fetch-cache"


def read_options(
    ingest: IngestSettings,
    data_dir: Path,
    choices: SourceChoices | None = None,
    *,
    show_progress: bool = False,
) -> ReadOptions:
    """How a reindex with these settings reads (the fetch cache lives in the data dir)."""
    choices = choices or SourceChoices()
    return ReadOptions(
        limits=ReadLimits(ingest.max_record_bytes, ingest.max_source_bytes),
        field_map=MappingProxyType(dict(choices.field_map)),
        fetch_pages=choices.fetch_pages,
        fetch=FetchPolicy(
            user_agent=ingest.user_agent,
            timeout_seconds=ingest.timeout_seconds,
            retries=ingest.retries,
            backoff_seconds=ingest.backoff_seconds,
            concurrency=ingest.concurrency,
            max_bytes=ingest.max_bytes,
            max_redirects=ingest.max_redirects,
            max_pages=ingest.max_pages,
            cache_dir=fetch_cache_dir(data_dir),
        ),
        show_progress=show_progress,
        allow_partial=choices.allow_partial,
    )
