"""`recommender reindex` against a newsroom's site on 127.0.0.1: a feed URL, a sitemap with
--fetch-pages, a WordPress API, --map, and the one-line errors of bad web sources."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from bench.news_site import (
    BBC,
    FeedSite,
    Route,
    bbc_articles,
    news_sitemap,
    page,
    rss,
    sitemap_index,
    wordpress_posts,
)
from recommender.embedding import FAKE_MODEL
from recommender.settings import Settings
from recommender.sources.wordpress import posts_url
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
    yield served
    served.stop()


def reindex(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RECOMMENDER_DATA_DIR": str(data_dir), "RECOMMENDER_MODEL": FAKE_MODEL}
    env.update(RECOMMENDER_FETCH_RETRIES="0", RECOMMENDER_FETCH_TIMEOUT_SECONDS="5")
    env.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "console", "reindex", *args],
        capture_output=True,
        text=True,
        env=env,
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
