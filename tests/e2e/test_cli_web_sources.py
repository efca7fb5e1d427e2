"""`recommender reindex` against a newsroom's site on 127.0.0.1: a feed URL, a sitemap with
--fetch-pages, a WordPress API, --map, the one-line errors of bad web sources, and the guard
that keeps a bad nightly feed from replacing the served catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from bench.news_site import (
    BBC,
    ENDLESS_FEED,
    ENDLESS_WORDPRESS,
    FeedSite,
    Route,
    bbc_articles,
    endless_listing,
    news_sitemap,
    page,
    rss,
    sitemap_index,
    wordpress_posts,
)
from index.versions.version_store import VersionStore
from recommender.encoding.encoder_protocol import FAKE_MODEL
from recommender.ingest.formats.wordpress import posts_url
from recommender.settings import Settings
from tests.api.test_editor_pages import PASSWORD, log_in
from tests.support.helpers import REPO, require_shared

ARTICLES = bbc_articles(30, require_shared(BBC))


@pytest.fixture(scope="module")
def site() -> Iterator[FeedSite]:
    served = FeedSite().start()
    served.put("/feed.xml", rss(served, ARTICLES))
    served.put("/sitemap.xml", sitemap_index(served, ["/news-sitemap.xml"]))
    served.put("/news-sitemap.xml", news_sitemap(served, ARTICLES, with_news=False))
    for article in ARTICLES:
        served.put(article.path, page(served, article), "text/html; charset=utf-8")
    posts = wordpress_posts(served, ARTICLES)
    served.put(posts_url("", 1), json.dumps(posts[:20]), "application/json")
    served.put(posts_url("", 2), json.dumps(posts[20:]), "application/json")
    served.put(posts_url("", 3), "[]", "application/json")
    served.routes["/broken.xml"] = Route(b"down", status=503)
    # The site's home page: what an operator gives by mistake instead of the feed.
    served.put("/", page(served, ARTICLES[0]), "text/html; charset=utf-8")
    served.generate = partial(endless_listing, served)
    yield served
    served.stop()


def reindex(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "RECOMMENDER_DATA_DIR": str(data_dir)}
    environment.update(RECOMMENDER_MODEL=FAKE_MODEL, RECOMMENDER_FETCH_RETRIES="0")
    environment.update(RECOMMENDER_FETCH_TIMEOUT_SECONDS="5", **(env or {}))
    environment.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "console", "reindex", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("source", "extra"),
    [("/feed.xml", []), ("/sitemap.xml", ["--fetch-pages"]), ("wordpress", [])],
    ids=["rss", "sitemap-pages", "wordpress"],
)
def test_reindex_a_site_and_serve_its_images(
    site: FeedSite, tmp_path: Path, source: str, extra: list[str]
) -> None:
    url = f"wordpress+{site.base}" if source == "wordpress" else site.url(source)
    result = reindex(tmp_path / "data", "--source", url, *extra)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["indexed"] == 30 and summary["bad"] == 0
    settings = Settings(data_dir=tmp_path / "data", model=FAKE_MODEL)
    with TestClient(create_app(settings)) as client:
        slug = ARTICLES[0].slug if source == "wordpress" else f"news-{ARTICLES[0].slug}"
        card = client.get(f"/v1/articles/{slug}").json()
        assert card["image"] == site.url(ARTICLES[0].image_path)
        items = client.get(f"/v1/articles/{slug}/related").json()["items"]
        assert items and all(item["image"].startswith(site.base) for item in items)


def test_csv_with_other_column_names_needs_map(tmp_path: Path) -> None:
    feed = tmp_path / "export.csv"
    rows = [f"{a.slug},{a.title.replace(',', ' ')},https://x.example{a.path}" for a in ARTICLES]
    feed.write_text("id,headline,link\n" + "\n".join(rows) + "\n")
    refused = reindex(tmp_path / "data", "--source", str(feed))
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 + 1  # the one error line and the counts line
    assert f"{feed}: no slug and no title column; found 'id', 'headline', 'link'" in refused.stderr
    mapped = reindex(
        tmp_path / "data", "--source", str(feed), "--map", "id=slug", "--map", "headline=title"
    )
    assert mapped.returncode == 0, mapped.stderr
    assert json.loads(mapped.stdout)["indexed"] == 30


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("/broken.xml", "/broken.xml: HTTP 503"),
        ("/missing.xml", "/missing.xml: HTTP 404"),
        ("file:///etc/passwd", "file:///etc/passwd: only absolute http(s) URLs are fetched"),
    ],
)
def test_unreachable_source_exits_2_naming_the_url(
    site: FeedSite, tmp_path: Path, source: str, message: str
) -> None:
    url = site.url(source) if source.startswith("/") else source
    result = reindex(tmp_path / "data", "--source", url)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "CURRENT").exists()


def served_catalog(data_dir: Path) -> tuple[str, int]:
    store = VersionStore(data_dir)
    current = store.current_id()
    return current, next(info.count for info in store.list_versions() if info.id == current)


def test_home_page_instead_of_the_feed_is_refused_over_a_served_catalog(
    site: FeedSite, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    assert reindex(data, "--source", site.url("/feed.xml")).returncode == 0
    served = served_catalog(data)
    assert served[1] == 30

    refused = reindex(data, "--source", site.url("/"))
    assert refused.returncode == 65 and refused.stdout == ""
    assert (
        "recommender: error: the sources now give 1 article(s), 29 fewer than the 30 served: "
        "96.7% of the catalog would be lost, more than the 10.0% allowed "
        "(RECOMMENDER_MAX_SHRINK); nothing was published"
    ) in refused.stderr
    assert "--allow-shrink" in refused.stderr and "Traceback" not in refused.stderr
    assert served_catalog(data) == served

    allowed = reindex(data, "--source", site.url("/"), "--allow-shrink")
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["indexed"] == 1 and served_catalog(data)[1] == 1


def test_first_run_from_a_single_page_is_not_refused(site: FeedSite, tmp_path: Path) -> None:
    result = reindex(tmp_path / "data", "--source", site.url("/"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["published"] is True


def test_mostly_bad_jsonl_is_refused_and_the_served_version_kept(tmp_path: Path) -> None:
    feed = tmp_path / "feed.jsonl"
    good = [{"slug": a.slug, "title": a.title, "body": a.body} for a in ARTICLES[:7]]
    feed.write_text("".join(json.dumps(record) + "\n" for record in good))
    data = tmp_path / "data"
    assert reindex(data, "--source", str(feed)).returncode == 0
    served = served_catalog(data)

    broken = [good[0]] + [{"slug": "Not A Slug!", "title": r["title"]} for r in good[1:]]
    feed.write_text("".join(json.dumps(record) + "\n" for record in broken))
    refused = reindex(data, "--source", str(feed))
    assert refused.returncode == 65
    assert "1 article(s), 6 fewer than the 7 served: 85.7% of the catalog" in refused.stderr
    assert "read 7 records: 1 accepted, 6 bad" in refused.stderr
    assert f"{feed}:2: slug 'Not A Slug!' is not URL-safe" in refused.stderr
    assert served_catalog(data) == served

    # A loss within RECOMMENDER_MAX_SHRINK is an ordinary night.
    feed.write_text("".join(json.dumps(record) + "\n" for record in good[:6]))
    shrunk = reindex(data, "--source", str(feed), env={"RECOMMENDER_MAX_SHRINK": "0.2"})
    assert shrunk.returncode == 0, shrunk.stderr
    assert json.loads(shrunk.stdout)["indexed"] == 6


@pytest.mark.parametrize(
    ("path", "told", "read"),
    [
        (
            f"wordpress+{ENDLESS_WORDPRESS}",
            "lists 10,000,000 pages, 1,000,000,000 posts",
            "3 of 10,000,000 pages, 300 of 1,000,000,000 posts",
        ),
        (ENDLESS_FEED, "goes on past 3 pages", "3 pages, 300 entries"),
    ],
    ids=["wordpress", "feed"],
)
def test_endless_listing_is_refused_or_read_partially_and_said_so(
    site: FeedSite, tmp_path: Path, path: str, told: str, read: str
) -> None:
    wordpress = path.startswith("wordpress+")
    url = f"wordpress+{site.url(ENDLESS_WORDPRESS)}" if wordpress else site.url(path)
    data = tmp_path / "data"
    limit = {"RECOMMENDER_FETCH_MAX_PAGES": "3"}
    refused = reindex(data, "--source", url, env=limit)
    assert refused.returncode == 2 and refused.stdout == ""
    assert (
        f"recommender: error: {url}: {told}, more than the limit of 3 "
        "(RECOMMENDER_FETCH_MAX_PAGES); raise the limit, or pass --allow-partial"
    ) in refused.stderr
    assert not (data / "CURRENT").exists()

    partial_run = reindex(data, "--source", url, "--allow-partial", env=limit)
    assert partial_run.returncode == 0, partial_run.stderr
    summary = json.loads(partial_run.stdout)
    assert summary["indexed"] == 300 and summary["published"] and summary["complete"] is False
    assert summary["listings"] == [
        {
            "source": url,
            "kind": "wordpress" if wordpress else "feed",
            "pages_read": 3,
            "pages_total": 10_000_000 if wordpress else None,
            "items_read": 300,
            "items_total": 1_000_000_000 if wordpress else None,
            "complete": False,
        }
    ]
    said = f"{url}: {read}; cut at the page limit (RECOMMENDER_FETCH_MAX_PAGES), the rest not read"
    assert f"listings cut at the page limit (1):\n  {said}" in partial_run.stderr
    settings = Settings(data_dir=data, model=FAKE_MODEL, editor_password=PASSWORD, redis_url=None)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        log_in(client)
        assert f'<dd data-testid="listings">{said}</dd>' in client.get("/editor/status").text
