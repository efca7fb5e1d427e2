"""Ingest benchmark: pages fetched and extracted per second, and the nightly re-run's cost.

Serves N article pages (BBC articles, repeated as needed) and a sitemap from a local server,
reads them with `--fetch-pages` semantics (`load_articles`), then reads them again with 1 %
of the pages changed: the second run is conditional (ETag) and re-downloads only those.

    recommender bench ingest [--pages 2000] [--concurrency 4] [--json]
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated

import typer

from api.cli.cli_toolkit import JsonOption
from bench.news_site import FeedSite, NewsArticle, bbc_articles, news_sitemap, page
from recommender.ingest.feeds import FeedReport, load_articles
from recommender.ingest.options import FetchPolicy, ReadOptions


@dataclass(frozen=True)
class IngestResult:
    pages: int
    concurrency: int
    first_seconds: float
    pages_per_second: float
    rerun_seconds: float
    rerun_downloads: int
    rerun_not_modified: int


def _articles(count: int) -> list[NewsArticle]:
    base = bbc_articles(min(count, 2000))
    return [
        replace(base[i % len(base)], slug=f"{base[i % len(base)].slug}-{i}") for i in range(count)
    ]


def run(pages: int, concurrency: int) -> IngestResult:
    """Read `pages` pages twice (the second time with 1 % changed) and time both runs."""
    articles = _articles(pages)
    site = FeedSite().start()
    try:
        site.put("/sitemap.xml", news_sitemap(site, articles, with_news=False))
        for article in articles:
            site.put(article.path, page(site, article), "text/html; charset=utf-8")
        with tempfile.TemporaryDirectory() as folder:
            policy = FetchPolicy(cache_dir=Path(folder), concurrency=concurrency)
            options = ReadOptions(fetch=policy, fetch_pages=True)
            started = time.perf_counter()
            read = load_articles([site.url("/sitemap.xml")], FeedReport(), options)
            first = time.perf_counter() - started
            assert len(read) == pages, f"read {len(read)} of {pages}"
            for article in articles[::100]:  # 1 %
                changed = replace(article, paragraphs=["Updated.", *article.paragraphs])
                site.put(article.path, page(site, changed), "text/html; charset=utf-8")
            site.log.clear()
            started = time.perf_counter()
            load_articles([site.url("/sitemap.xml")], FeedReport(), options)
            rerun = time.perf_counter() - started
        statuses = [status for path, status in site.log if path.startswith("/news/")]
    finally:
        site.stop()
    return IngestResult(
        pages=pages,
        concurrency=concurrency,
        first_seconds=round(first, 2),
        pages_per_second=round(pages / first, 1),
        rerun_seconds=round(rerun, 2),
        rerun_downloads=statuses.count(200),
        rerun_not_modified=statuses.count(304),
    )


EXAMPLES = (
    "Examples:\n\n  recommender bench ingest\n\n"
    "  recommender bench ingest --pages 500 --concurrency 8 --json"
)


def bench_ingest(
    pages: Annotated[int, typer.Option(min=1, help="Article pages served.")] = 2000,
    concurrency: Annotated[int, typer.Option(min=1, help="Pages fetched at once.")] = 4,
    as_json: JsonOption = False,
) -> None:
    """Pages fetched and extracted per second from a local site, and the nightly re-run's cost."""
    result = run(pages, concurrency)
    if as_json:
        typer.echo(json.dumps(asdict(result)))
        return
    typer.echo(
        f"{result.pages:,} pages, concurrency {result.concurrency}: first run "
        f"{result.first_seconds} s ({result.pages_per_second} pages/s fetched and extracted); "
        f"re-run with 1 % changed {result.rerun_seconds} s "
        f"({result.rerun_downloads} downloaded, {result.rerun_not_modified} answered 304)"
    )
