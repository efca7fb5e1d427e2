"""The page limit (RECOMMENDER_FETCH_MAX_PAGES) is one rule for every paged listing: a WordPress
API, a feed's rel="next" pages and a sitemap index. A longer listing fails its source, or, with
partial listings allowed, is read up to the limit and recorded as cut; never cut silently."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from bench.news_site import (
    ENDLESS_FEED,
    ENDLESS_PAGES,
    ENDLESS_UNCOUNTED_WORDPRESS,
    ENDLESS_WORDPRESS,
    FeedSite,
    bbc_articles,
    endless_listing,
    news_sitemap,
    rss,
    sitemap_index,
    wordpress_posts,
)
from recommender.errors import ListingTooLong
from recommender.ingest.feeds import FeedReport, load_articles
from recommender.ingest.formats.wordpress import posts_url
from recommender.ingest.listings import Listing
from recommender.ingest.options import FetchPolicy, ReadOptions

MAX_PAGES = 3
ARTICLES = bbc_articles(10)


@pytest.fixture
def site() -> Iterator[FeedSite]:
    served = FeedSite().start()
    served.generate = partial(endless_listing, served)
    yield served
    served.stop()


def read(
    source: str, *, allow_partial: bool = False, cache_dir: Path | None = None
) -> tuple[int, FeedReport]:
    policy = FetchPolicy(timeout_seconds=5, retries=0, max_pages=MAX_PAGES, cache_dir=cache_dir)
    report = FeedReport()
    options = ReadOptions(fetch=policy, allow_partial=allow_partial)
    return len(load_articles([source], report, options)), report


def test_endless_wordpress_fails_at_once_from_its_own_count(site: FeedSite) -> None:
    source = f"wordpress+{site.url(ENDLESS_WORDPRESS)}"
    with pytest.raises(ListingTooLong) as refused:
        read(source)
    assert str(refused.value) == (
        f"{source}: lists 10,000,000 pages, 1,000,000,000 posts, more than the limit of 3 "
        "(RECOMMENDER_FETCH_MAX_PAGES); raise the limit, or pass --allow-partial to index the "
        "first 3 pages and record the cut"
    )
    assert len(site.statuses(ENDLESS_WORDPRESS)) == 1, "decided from the first page's headers"


def test_the_api_count_is_kept_with_a_page_answered_304(site: FeedSite, tmp_path: Path) -> None:
    source = f"wordpress+{site.url(ENDLESS_WORDPRESS)}"
    for _ in range(2):
        with pytest.raises(ListingTooLong, match=r"lists 10,000,000 pages"):
            read(source, cache_dir=tmp_path / "fetch-cache")
    assert site.statuses(ENDLESS_WORDPRESS) == [200, 304]


def test_endless_wordpress_read_partially_says_how_much_of_how_much(site: FeedSite) -> None:
    source = f"wordpress+{site.url(ENDLESS_WORDPRESS)}"
    count, report = read(source, allow_partial=True)
    assert count == 300
    cut = Listing(source, "wordpress", 3, ENDLESS_PAGES, 300, ENDLESS_PAGES * 100, False)
    assert report.listings == [cut]
    assert f"  {source}: 3 of 10,000,000 pages, 300 of 1,000,000,000 posts; cut at the page " in (
        "\n".join(report.summary_lines())
    )
    assert "listings cut at the page limit (1):" in report.summary_lines()


def test_wordpress_without_counts_is_cut_when_its_last_page_is_full(site: FeedSite) -> None:
    source = f"wordpress+{site.url(ENDLESS_UNCOUNTED_WORDPRESS)}"
    with pytest.raises(ListingTooLong, match=r"goes on past 3 pages, more than the limit of 3"):
        read(source)
    _, report = read(source, allow_partial=True)
    assert report.listings == [Listing(source, "wordpress", 3, None, 300, None, False)]


def test_endless_feed_fails_or_is_cut_like_wordpress(site: FeedSite) -> None:
    source = site.url(ENDLESS_FEED)
    with pytest.raises(ListingTooLong, match=r"^http.*/endless.xml: goes on past 3 pages"):
        read(source)
    count, report = read(source, allow_partial=True)
    assert count == 300
    assert report.listings == [Listing(source, "feed", 3, None, 300, None, False)]


def test_sitemap_index_over_the_limit_fails_or_is_cut_like_the_others(site: FeedSite) -> None:
    children = [f"/sitemap-{n}.xml" for n in range(5)]
    site.put("/sitemap.xml", sitemap_index(site, children))
    for n, path in enumerate(children):
        site.put(path, news_sitemap(site, ARTICLES[2 * n : 2 * n + 2]))
    with pytest.raises(ListingTooLong, match=r"sitemap.xml: lists 5 sitemaps, more than the limit"):
        read(site.url("/sitemap.xml"))
    count, report = read(site.url("/sitemap.xml"), allow_partial=True)
    assert count == 6
    assert report.listings == [Listing(site.url("/sitemap.xml"), "sitemap", 3, 5, 6, None, False)]
    assert site.statuses("/sitemap-3.xml") == [] and site.statuses("/sitemap-4.xml") == []


def test_listings_within_the_limit_are_recorded_complete(site: FeedSite, tmp_path: Path) -> None:
    site.put("/feed.xml", rss(site, ARTICLES[:6], next_path="/feed.xml?page=2"))
    site.put("/feed.xml?page=2", rss(site, ARTICLES[6:]))
    posts = wordpress_posts(site, ARTICLES)
    site.put(posts_url("/wp", 1), json.dumps(posts[:4]), "application/json")
    site.routes[posts_url("/wp", 1)].headers.update({"X-WP-Total": "10", "X-WP-TotalPages": "3"})
    site.put(posts_url("/wp", 2), json.dumps(posts[4:8]), "application/json")
    site.put(posts_url("/wp", 3), json.dumps(posts[8:]), "application/json")
    _, feed = read(site.url("/feed.xml"))
    _, wordpress = read(f"wordpress+{site.url('/wp')}")
    assert feed.listings == [Listing(site.url("/feed.xml"), "feed", 2, 2, 10, 10, True)]
    assert wordpress.listings == [
        Listing(f"wordpress+{site.url('/wp')}", "wordpress", 3, 3, 10, 10, True)
    ]
    assert site.statuses(posts_url("/wp", 4)) == [], "the API's count says page 3 is the last"
