"""Hostile or broken web sources: clear messages, bounded memory and time, nothing half-read."""

from __future__ import annotations

import gzip
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.news_site import (
    BBC,
    FeedSite,
    Route,
    bbc_articles,
    news_sitemap,
    page,
    rss,
    sitemap_index,
)
from index.versions.reindex_pipeline import reindex
from index.versions.version_store import VersionStore
from recommender.encoding.hashing_encoder import HashingEncoder
from recommender.errors import FeedError, FetchError
from recommender.ingest.feeds import FeedReport, load_articles
from recommender.ingest.options import FetchPolicy, ReadOptions
from tests.support.helpers import fake_settings, require_shared

ARTICLES = bbc_articles(6, require_shared(BBC))
LIMIT = 1 << 20
BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">
<!ENTITY l1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY l2 "&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;">
<!ENTITY l3 "&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;">
<!ENTITY l4 "&l3;&l3;&l3;&l3;&l3;&l3;&l3;&l3;&l3;&l3;">
<!ENTITY l5 "&l4;&l4;&l4;&l4;&l4;&l4;&l4;&l4;&l4;&l4;">
<!ENTITY l6 "&l5;&l5;&l5;&l5;&l5;&l5;&l5;&l5;&l5;&l5;">
<!ENTITY l7 "&l6;&l6;&l6;&l6;&l6;&l6;&l6;&l6;&l6;&l6;">
<!ENTITY l8 "&l7;&l7;&l7;&l7;&l7;&l7;&l7;&l7;&l7;&l7;">
<!ENTITY l9 "&l8;&l8;&l8;&l8;&l8;&l8;&l8;&l8;&l8;&l8;">]>
"""


@pytest.fixture
def site() -> Iterator[FeedSite]:
    served = FeedSite().start()
    yield served
    served.stop()


def options(tmp_path: Path, *, fetch_pages: bool = False) -> ReadOptions:
    policy = FetchPolicy(
        cache_dir=tmp_path / "fetch-cache",
        timeout_seconds=0.5,
        retries=1,
        backoff_seconds=0.01,
        max_bytes=LIMIT,
        max_redirects=3,
    )
    return ReadOptions(fetch=policy, fetch_pages=fetch_pages)


def read(source: str | Path, read_options: ReadOptions) -> FeedReport:
    report = FeedReport()
    load_articles([source], report, read_options)
    return report


def traced(action: object) -> int:
    """Peak traced memory while `action()` runs (its FeedError is expected and swallowed)."""
    assert callable(action)
    tracemalloc.start()
    try:
        action()
    except FeedError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return int(peak)


@pytest.mark.parametrize(
    "document",
    [
        BILLION_LAUGHS
        + "<rss version='2.0'><channel><item><title>&l9;</title></item></channel></rss>",
        BILLION_LAUGHS
        + "<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>&l9;</urlset>",
        # Not well-formed as well: still refused, never handed to feedparser's lenient reader.
        BILLION_LAUGHS + "<rss><channel><item><title>&l9;</title></item></channel>",
    ],
    ids=["rss", "sitemap", "malformed"],
)
def test_billion_laughs_is_refused_quickly_and_small(
    site: FeedSite, tmp_path: Path, document: str
) -> None:
    site.put("/feed.xml", document)
    url = site.url("/feed.xml")
    started = time.monotonic()
    with pytest.raises(FeedError, match=rf"^{url}: refused: .*declares entities"):
        read(url, options(tmp_path))
    # The memory bound is the real guard; the time bound only catches an expansion that runs
    # for minutes, never a busy machine.
    assert time.monotonic() - started < 30
    assert traced(lambda: read(url, options(tmp_path))) < 20 << 20


def test_external_entity_is_refused(site: FeedSite, tmp_path: Path) -> None:
    site.put(
        "/feed.xml",
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<rss version='2.0'><channel><item><title>&x;</title></item></channel></rss>",
    )
    with pytest.raises(FeedError, match="refused"):
        read(site.url("/feed.xml"), options(tmp_path))


def test_oversized_page_is_one_bad_record_refused_before_reading(
    site: FeedSite, tmp_path: Path
) -> None:
    site.put("/sitemap.xml", news_sitemap(site, ARTICLES[:2]))
    site.put(ARTICLES[0].path, page(site, ARTICLES[0]), "text/html")
    huge = b"<html><body>" + b"x" * (3 * LIMIT) + b"</body></html>"
    site.put(ARTICLES[1].path, huge, "text/html")
    report = read(site.url("/sitemap.xml"), options(tmp_path, fetch_pages=True))
    assert report.accepted == 1
    assert [str(problem) for problem in report.bad] == [
        f"{site.url('/sitemap.xml')}:2: {site.url(ARTICLES[1].path)}: {len(huge):,} bytes; "
        f"the limit is {LIMIT:,}"
    ]


@pytest.mark.parametrize("encoding", ["file", "content-encoding"])
def test_gzip_bomb_is_refused_with_bounded_memory(
    site: FeedSite, tmp_path: Path, encoding: str
) -> None:
    bomb = gzip.compress(b"<" + b" " * (200 << 20), compresslevel=9)
    assert len(bomb) < LIMIT
    route = Route(bomb, "application/gzip")
    if encoding == "content-encoding":
        route = Route(bomb, "application/xml", headers={"Content-Encoding": "gzip"})
    site.routes["/sitemap.xml.gz"] = route
    url = site.url("/sitemap.xml.gz")
    with pytest.raises(FeedError, match=rf"^{url}: more than {LIMIT:,} bytes once decompressed"):
        read(url, options(tmp_path))
    assert traced(lambda: read(url, options(tmp_path))) < 8 * LIMIT


def test_redirect_loop_is_bounded(site: FeedSite, tmp_path: Path) -> None:
    site.routes["/loop"] = Route(status=302, location="/loop")
    with pytest.raises(FetchError, match=r"/loop: more than 3 redirects$"):
        read(site.url("/loop"), options(tmp_path))
    assert len(site.statuses("/loop")) == 4


def test_redirect_out_of_http_is_refused(site: FeedSite, tmp_path: Path) -> None:
    site.routes["/feed.xml"] = Route(status=301, location="file:///etc/passwd")
    with pytest.raises(FetchError, match="redirected to file:///etc/passwd, not http"):
        read(site.url("/feed.xml"), options(tmp_path))


def test_file_urls_are_never_fetched(site: FeedSite, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"^file:///etc/passwd: only absolute http"):
        read("file:///etc/passwd", options(tmp_path))
    feed = rss(site, ARTICLES[:1]).replace(site.url(ARTICLES[0].path), "file:///etc/passwd")
    site.put("/feed.xml", feed)
    report = FeedReport()
    got = load_articles([site.url("/feed.xml")], report, options(tmp_path, fetch_pages=True))
    [article] = got.values()
    assert article.url is None and report.bad == []
    assert all(not path.startswith("/etc") for path, _ in site.log)


def test_robots_txt_is_respected(site: FeedSite, tmp_path: Path) -> None:
    site.put("/robots.txt", "User-agent: *\nDisallow: /news/\n", "text/plain")
    site.put("/sitemap.xml", news_sitemap(site, ARTICLES[:1]))
    site.put(ARTICLES[0].path, page(site, ARTICLES[0]), "text/html")
    report = read(site.url("/sitemap.xml"), options(tmp_path, fetch_pages=True))
    assert report.bad[0].message.endswith(
        "disallowed by robots.txt for " + repr(FetchPolicy().user_agent)
    )
    assert site.statuses("/news/") == []


@pytest.mark.parametrize("failure", ["500", "timeout"])
def test_failure_in_the_middle_of_a_sitemap_index_publishes_nothing(
    site: FeedSite, tmp_path: Path, failure: str
) -> None:
    site.put("/sitemap.xml", sitemap_index(site, ["/sitemap-1.xml", "/sitemap-2.xml"]))
    site.put("/sitemap-1.xml", news_sitemap(site, ARTICLES[:3]))
    site.put("/sitemap-2.xml", news_sitemap(site, ARTICLES[3:]))
    settings = fake_settings(
        tmp_path / "data",
        fetch_timeout_seconds=0.5,
        fetch_retries=1,
        fetch_backoff_seconds=0.01,
        fetch_max_bytes=LIMIT,
        fetch_max_redirects=3,
    )
    sources: list[Path | str] = [site.url("/sitemap.xml")]
    first = reindex(settings.index, sources, HashingEncoder())
    assert first.indexed == 6

    broken = site.routes["/sitemap-2.xml"]
    if failure == "500":
        site.routes["/sitemap-2.xml"] = Route(b"oops", status=500)
        reason = r"HTTP 500 \(after 2 tries\)"
    else:
        site.routes["/sitemap-2.xml"] = Route(broken.body, delay=2.0)
        reason = r"timed out after 0.5 s \(after 2 tries\)"
    site.put("/sitemap-1.xml", news_sitemap(site, ARTICLES[:2]))  # a change it must not publish
    started = time.monotonic()
    with pytest.raises(FetchError, match=rf"^{site.url('/sitemap-2.xml')}: {reason}$"):
        reindex(settings.index, sources, HashingEncoder())
    assert time.monotonic() - started < 30  # "unbounded" only: the message says what was cut
    assert VersionStore(settings.data_dir).current_id() == first.version
