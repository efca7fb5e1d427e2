"""Feeds, sitemaps, pages and WordPress read from a local site built from real BBC articles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.news_site import (
    BBC,
    FeedSite,
    NewsArticle,
    Route,
    atom,
    bbc_articles,
    news_sitemap,
    page,
    rss,
    sitemap_index,
    wordpress_posts,
)
from index.versions.reindex_pipeline import reindex
from recommender.articles import Article
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.ingest.feeds import FeedReport, load_articles
from recommender.ingest.formats.wordpress import posts_url
from recommender.ingest.options import FetchPolicy, ReadOptions, SourceChoices
from tests.support.helpers import fake_settings, require_shared

ARTICLES = bbc_articles(30, require_shared(BBC))


@pytest.fixture
def site() -> Iterator[FeedSite]:
    served = FeedSite().start()
    yield served
    served.stop()


def options(tmp_path: Path, *, fetch_pages: bool = False) -> ReadOptions:
    policy = FetchPolicy(cache_dir=tmp_path / "fetch-cache", timeout_seconds=5, retries=1)
    return ReadOptions(fetch=policy, fetch_pages=fetch_pages)


def read(sources: list[Path | str], read_options: ReadOptions) -> tuple[list[Article], FeedReport]:
    report = FeedReport()
    return list(load_articles(sources, report, read_options).values()), report


def words(text: str | None) -> str:
    return " ".join((text or "").split())


def assert_round_trip(
    site: FeedSite, got: list[Article], *, slug_prefix: str = "news-", section: bool = True
) -> None:
    assert [article.slug for article in got] == [f"{slug_prefix}{a.slug}" for a in ARTICLES]
    for article, expected in zip(got, ARTICLES, strict=True):
        assert article.title == expected.title
        assert article.url == site.url(expected.path)
        assert article.image == site.url(expected.image_path)
        assert article.author == expected.author
        assert article.published_at == expected.published
        assert words(article.body) == words(expected.body)
        assert words(article.summary) == words(expected.summary) or not article.summary
        if section:
            assert article.section == expected.section


def publish_site(site: FeedSite, articles: list[NewsArticle]) -> None:
    """A news sitemap index (two sitemaps) pointing to the articles' HTML pages."""
    half = len(articles) // 2
    site.put("/sitemap.xml", sitemap_index(site, ["/sitemap-1.xml", "/sitemap-2.xml"]))
    site.put("/sitemap-1.xml", news_sitemap(site, articles[:half]))
    site.put("/sitemap-2.xml", news_sitemap(site, articles[half:]))
    for article in articles:
        site.put(article.path, page(site, article), "text/html; charset=utf-8")


def test_paged_rss_feed_round_trips_every_field(site: FeedSite, tmp_path: Path) -> None:
    site.put("/feed.xml", rss(site, ARTICLES[:20], next_path="/feed.xml?page=2"))
    site.put("/feed.xml?page=2", rss(site, ARTICLES[20:]))
    got, report = read([site.url("/feed.xml")], options(tmp_path))
    assert report.bad == [] and report.read == 30
    assert_round_trip(site, got)


def test_atom_feed_round_trips_every_field(site: FeedSite, tmp_path: Path) -> None:
    site.put("/atom.xml", atom(site, ARTICLES))
    got, report = read([site.url("/atom.xml")], options(tmp_path))
    assert report.bad == []
    assert_round_trip(site, got)


def test_local_rss_file_is_read_like_a_url(site: FeedSite, tmp_path: Path) -> None:
    feed = tmp_path / "feed.rss"
    feed.write_text(rss(site, ARTICLES))
    got, _ = read([feed], options(tmp_path))
    assert_round_trip(site, got)


def test_news_sitemap_index_with_pages_round_trips(site: FeedSite, tmp_path: Path) -> None:
    publish_site(site, ARTICLES)
    got, report = read([site.url("/sitemap.xml")], options(tmp_path, fetch_pages=True))
    assert report.bad == []
    assert_round_trip(site, got, section=False)
    assert {article.language for article in got} == {"en"}


def test_sitemap_without_titles_asks_for_fetch_pages(site: FeedSite, tmp_path: Path) -> None:
    site.put("/sitemap.xml", news_sitemap(site, ARTICLES[:3], with_news=False))
    got, report = read([site.url("/sitemap.xml")], options(tmp_path))
    assert got == []
    assert [str(problem) for problem in report.bad] == [
        f"{site.url('/sitemap.xml')}:{n}: no news:title in the sitemap; add --fetch-pages to "
        "read the page"
        for n in (1, 2, 3)
    ]


def test_paged_wordpress_api_round_trips(site: FeedSite, tmp_path: Path) -> None:
    posts = wordpress_posts(site, ARTICLES)
    for page_number, start in enumerate(range(0, len(posts), 12), start=1):
        path = posts_url("", page_number)
        site.put(path, json.dumps(posts[start : start + 12]), "application/json")
    past_the_end = posts_url("", 4)
    site.routes[past_the_end] = Route(b'{"code":"rest_post_invalid_page_number"}', status=400)
    got, report = read([f"wordpress+{site.base}"], options(tmp_path))
    assert report.bad == []
    assert_round_trip(site, got, slug_prefix="")
    assert got[0].tags == (ARTICLES[0].section, "bbc")


def test_nightly_rerun_refetches_nothing_unchanged_and_embeds_only_changes(
    site: FeedSite, tmp_path: Path
) -> None:
    publish_site(site, ARTICLES)
    settings = fake_settings(tmp_path / "data", fetch_timeout_seconds=5, fetch_retries=1)
    choices = SourceChoices(fetch_pages=True)
    sources: list[Path | str] = [site.url("/sitemap.xml")]
    first = reindex(settings.index, sources, HashingEncoder(), choices=choices)
    assert first.embedded == 30 and first.published
    assert set(site.statuses()) == {200}

    site.log.clear()
    changed = ARTICLES[4]
    edited = NewsArticle(**{**changed.__dict__, "paragraphs": ["An update.", *changed.paragraphs]})
    site.put(changed.path, page(site, edited), "text/html; charset=utf-8")
    second = reindex(settings.index, sources, HashingEncoder(), choices=choices)
    answered = {path: status for path, status in site.log if path != "/robots.txt"}
    assert answered.pop(changed.path) == 200
    assert set(answered.values()) == {304}, "every unchanged feed and page answered 304"
    assert len(answered) == 3 + 29
    assert second.embedded == 1 and second.reused == 29 and second.published
