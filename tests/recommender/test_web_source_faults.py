"""WordPress and sitemap sources that break: a page that is not JSON or not a list of posts, a
failure in the middle of a run, an oversized page with and without Content-Length, sitemap
indexes nested too deep. Each fails its whole source with a message naming the URL and the
reason; a reindex then publishes nothing and the served version stays."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.news_site import (
    BBC,
    FeedSite,
    Route,
    bbc_articles,
    news_sitemap,
    sitemap_index,
    wordpress_posts,
)
from index.versions.reindex_pipeline import reindex
from index.versions.version_store import VersionStore
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.errors import FeedError, FetchError
from recommender.ingest.feeds import FeedReport, load_articles
from recommender.ingest.formats.web_sources import MAX_SITEMAP_DEPTH
from recommender.ingest.formats.wordpress import posts_url
from recommender.ingest.options import FetchPolicy, ReadOptions
from tests.support.helpers import fake_settings, require_shared

ARTICLES = bbc_articles(6, require_shared(BBC))
MAX_BYTES = 20_000


@pytest.fixture
def site() -> Iterator[FeedSite]:
    served = FeedSite().start()
    yield served
    served.stop()


def options() -> ReadOptions:
    return ReadOptions(fetch=FetchPolicy(timeout_seconds=5, retries=1, backoff_seconds=0.05,
                                         max_bytes=MAX_BYTES))  # fmt: skip


def read(source: str) -> int:
    return len(load_articles([source], FeedReport(), options()))


def wordpress_page(site: FeedSite, page: int, route: Route) -> None:
    site.routes[posts_url(site.base, page).removeprefix(site.base)] = route


def json_route(value: object) -> Route:
    return Route(json.dumps(value).encode(), "application/json")


def test_a_wordpress_page_that_is_not_json_fails_the_source(site: FeedSite) -> None:
    wordpress_page(site, 1, Route(b"<html><body>Maintenance</body></html>", "text/html"))
    with pytest.raises(FeedError, match=r"wp-json/wp/v2/posts\?per_page=100&page=1.*not JSON"):
        read(f"wordpress+{site.base}")


def test_a_wordpress_page_that_is_not_a_list_fails_the_source(site: FeedSite) -> None:
    wordpress_page(site, 1, json_route({"code": "rest_disabled", "message": "REST is off"}))
    page = re.escape(posts_url(site.base, 1))
    with pytest.raises(FeedError, match=rf"^{page}: expected a JSON list of posts, got dict$"):
        read(f"wordpress+{site.base}")


def test_a_failure_in_the_middle_of_a_wordpress_listing_publishes_nothing(
    site: FeedSite, tmp_path: Path
) -> None:
    posts = wordpress_posts(site, ARTICLES)
    counts = {"X-WP-Total": "6", "X-WP-TotalPages": "2"}  # as WordPress answers with per_page=3
    wordpress_page(site, 1, Route(json.dumps(posts[:3]).encode(), "application/json",
                                  headers={"X-WP-Total": "3", "X-WP-TotalPages": "1"}))  # fmt: skip
    settings = fake_settings(tmp_path / "data")
    first = reindex(settings.index, [f"wordpress+{site.base}"], HashingEncoder())
    assert first.indexed == 3
    edited = [{**posts[0], "title": {"rendered": "A corrected headline"}}, *posts[1:3]]
    wordpress_page(site, 1, Route(json.dumps(edited).encode(), "application/json",
                                  headers=counts))  # fmt: skip
    wordpress_page(site, 2, Route(b"upstream timed out", "text/plain", status=502))
    with pytest.raises(FetchError, match=r"page=2.*502"):
        reindex(settings.index, [f"wordpress+{site.base}"], HashingEncoder())
    assert VersionStore(settings.data_dir).current_id() == first.version
    attempts = site.statuses(posts_url("", 2))
    assert set(attempts) == {502} and len(attempts) > 1  # retried, then given up


@pytest.mark.parametrize("close_delimited", [False, True], ids=["content-length", "no-length"])
def test_an_oversized_wordpress_page_is_refused_with_or_without_its_length(
    site: FeedSite, close_delimited: bool
) -> None:
    padded = [{**post, "content": {"rendered": "<p>x</p>" * 5_000}} for post in
              wordpress_posts(site, ARTICLES)]  # fmt: skip
    body = json.dumps(padded).encode()
    assert len(body) > 10 * MAX_BYTES
    wordpress_page(site, 1, Route(body, "application/json", close_delimited=close_delimited))
    with pytest.raises(FetchError, match=rf"page=1.*(bytes; the limit is|more than) {MAX_BYTES:,}"):
        read(f"wordpress+{site.base}")


def test_sitemap_indexes_nested_too_deep_fail_the_source(site: FeedSite) -> None:
    site.put("/leaf.xml", news_sitemap(site, ARTICLES))
    child = "/leaf.xml"
    for level in range(MAX_SITEMAP_DEPTH + 1):
        site.put(f"/index-{level}.xml", sitemap_index(site, [child]))
        child = f"/index-{level}.xml"
    too_deep = re.escape(site.url("/leaf.xml"))
    with pytest.raises(
        FeedError, match=rf"^{too_deep}: sitemap .*nested deeper than {MAX_SITEMAP_DEPTH}$"
    ):
        read(site.url(child))
    # One level less is read whole.
    assert read(site.url(f"/index-{MAX_SITEMAP_DEPTH - 1}.xml")) == len(ARTICLES)
