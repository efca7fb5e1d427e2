"""The HTML fragment of a related list and the widget script, over a real index."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.routes.widget import accepts_gzip
from api.templating import STATIC, safe_href
from recommender.settings import Settings
from tests.support.helpers import build_fake_index, synthetic_records

RELATED = "/v1/articles/{}/related"
FRAGMENT = "/v1/articles/{}/related.html"
HOSTILE_TITLE = """<script>alert("t")</script>"'><img src=x onerror=alert(1)> & more"""
HOSTILE_SECTION = '"><b onmouseover=alert(1)>world</b>'
QUOTED_URL = 'https://news.example/a?q="><script>x</script>&b=1'
#: url given to the suggestions of volcano-0, and the href the fragment must give them. Feeds
#: refuse other schemes (`javascript:` ...); `test_safe_href` covers records stored before.
URLS = {
    "volcano-1": (None, None),
    "volcano-2": ("HTTPS://news.example/volcano-2", "HTTPS://news.example/volcano-2"),
    "wildfire-0": ("//news.example/wildfire-0", "//news.example/wildfire-0"),
    "wildfire-1": ("read/wildfire-1#top", "read/wildfire-1#top"),
    "wildfire-2": (QUOTED_URL, QUOTED_URL),
    "football-0": ("/read/football-0?a=1&b=2", "/read/football-0?a=1&b=2"),
}
#: The suggestions of volcano-0 that have a picture.
IMAGES = {
    "volcano-2": "https://img.news.example/volcano-2.jpg?w=320&h=180",
    "wildfire-0": "https://img.news.example/wildfire-0.webp",
}


class Fragment(HTMLParser):
    """The items of a fragment as a browser reads them: text unescaped, attributes decoded."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.items: list[dict[str, Any]] = []
        self.headings: list[str] = []
        self.tags: list[str] = []
        self.layout: str | None = None
        self._text: list[str] | None = None
        self._field = ""
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        found = dict(attrs)
        if tag == "li":
            self.items.append(
                {"slot": found["data-slot"], "slug": found["data-slug"], "href": None}
            )
        elif tag == "a":
            self.items[-1]["href"] = found["href"]
        elif tag == "time":
            self.items[-1]["datetime"] = found["datetime"]
        elif tag == "img":
            self.items[-1]["image"] = found
        elif tag == "section":
            self.layout = found["data-layout"]
        if "related-articles-thumb" in (found.get("class") or ""):
            self.items[-1]["thumb"] = True
        if tag in {"h2", "a", "span", "time"}:
            self._text = []
            self._field = {"h2": "heading", "a": "title", "time": "date"}.get(tag) or (
                "section" if found.get("class") == "related-articles-section" else "title"
            )

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._text is not None and tag in {"h2", "a", "span", "time"}:
            text = "".join(self._text)
            if self._field == "heading":
                self.headings.append(text)
            else:
                self.items[-1][self._field] = text
            self._text = None


def hostile_records() -> list[dict[str, Any]]:
    records = []
    for record in synthetic_records():
        url = URLS.get(record["slug"], (None,))[0]
        if record["slug"] == "volcano-1":
            record = {**record, "title": HOSTILE_TITLE, "section": HOSTILE_SECTION}
        records.append({**record, "url": url, "image": IMAGES.get(record["slug"])})
    return records


@pytest.fixture
def settings(tmp_path: Path, cache_backend: dict[str, Any]) -> Settings:
    built, _ = build_fake_index(tmp_path / "data", hostile_records(), **cache_backend)
    return built


def test_fragment_lists_what_the_json_endpoint_lists(client: TestClient) -> None:
    response = client.get(FRAGMENT.format("volcano-0"), params={"limit": 8})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    fragment = Fragment(response.text)
    items = client.get(RELATED.format("volcano-0"), params={"limit": 8}).json()["items"]
    assert [item["slug"] for item in fragment.items] == [item["slug"] for item in items]
    assert [item["title"] for item in fragment.items] == [item["title"] for item in items]
    assert [item["slot"] for item in fragment.items] == [str(n) for n in range(1, 9)]
    assert [item.get("section") for item in fragment.items] == [i["section"] for i in items]
    assert [item["datetime"] for item in fragment.items] == [i["published_at"] for i in items]
    assert fragment.items[0]["date"] == "12 Mar 2024"  # volcano-2, published 2024-03-12
    assert fragment.headings == ["You Might Also Like"]
    assert "script" not in fragment.tags and "style" not in fragment.tags


@pytest.mark.parametrize("layout", ["list", "cards"])
def test_items_with_an_image_show_it_lazily_at_a_fixed_aspect_ratio(
    client: TestClient, layout: str
) -> None:
    html = client.get(FRAGMENT.format("volcano-0"), params={"limit": 8, "layout": layout}).text
    fragment = Fragment(html)
    assert fragment.layout == layout
    pictured = {item["slug"]: item["image"] for item in fragment.items if "image" in item}
    assert {slug: image["src"] for slug, image in pictured.items()} == IMAGES
    for image in pictured.values():
        assert image["loading"] == "lazy" and image["decoding"] == "async"
        assert (image["width"], image["height"], image["alt"]) == ("320", "180", "")
    plain = [item for item in fragment.items if "image" not in item]
    # No picture, no picture area (no grey block), in either layout.
    assert plain and not [item for item in plain if "thumb" in item]
    assert [item["slug"] for item in fragment.items] == [
        item["slug"]
        for item in client.get(RELATED.format("volcano-0"), params={"limit": 8}).json()["items"]
    ]


def test_layouts_and_exclusions_are_cached_apart(client: TestClient) -> None:
    url = FRAGMENT.format("volcano-0")
    answers = [
        client.get(url, params=params)
        for params in ({}, {"layout": "cards"}, {"exclude": "volcano-1"})
    ]
    assert len({answer.headers["etag"] for answer in answers}) == 3
    assert len({answer.text for answer in answers}) == 3
    listed = [[item["slug"] for item in Fragment(answer.text).items] for answer in answers]
    assert "volcano-1" in listed[0] and "volcano-1" not in listed[2]
    assert listed[2] == [
        item["slug"]
        for item in client.get(RELATED.format("volcano-0"), params={"exclude": "volcano-1"}).json()[
            "items"
        ]
    ]


def test_hostile_titles_and_sections_are_escaped(client: TestClient) -> None:
    html = client.get(FRAGMENT.format("volcano-0"), params={"limit": 8}).text
    assert "<script" not in html and "<img src=x" not in html and "<b " not in html
    assert "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;&#34;&#39;&gt;&lt;img" in html
    hostile = next(i for i in Fragment(html).items if i["slug"] == "volcano-1")
    # Parsed as a browser parses it, the text is the title exactly: escaped once, not twice.
    assert hostile["title"] == HOSTILE_TITLE
    assert hostile["section"] == HOSTILE_SECTION


def test_only_http_and_relative_urls_become_links(client: TestClient) -> None:
    items = Fragment(client.get(FRAGMENT.format("volcano-0"), params={"limit": 20}).text).items
    hrefs = {item["slug"]: item["href"] for item in items if item["slug"] in URLS}
    assert hrefs == {slug: href for slug, (_, href) in URLS.items()}
    unlinked = next(i for i in items if i["slug"] == "volcano-1")
    assert unlinked["title"] == HOSTILE_TITLE  # still listed, as text


def test_the_heading_can_be_chosen_and_is_escaped(client: TestClient) -> None:
    heading = '</h2><script>alert("h")</script>'
    html = client.get(FRAGMENT.format("volcano-0"), params={"heading": heading}).text
    assert "<script" not in html
    assert Fragment(html).headings == [heading]


@pytest.mark.parametrize(
    ("url", "href"),
    [
        ("https://news.example/a", "https://news.example/a"),
        ("HTTP://news.example/a", "HTTP://news.example/a"),
        ("//news.example/a", "//news.example/a"),
        ("/read/a", "/read/a"),
        ("read/a?x=1#top", "read/a?x=1#top"),
        (None, None),
        ("", None),
        ("javascript:alert(1)", None),
        ("JAVASCRIPT:alert(1)", None),
        ("\x01javascript:alert(1)", None),
        ("java\nscript:alert(1)", None),
        ("vbscript:msgbox(1)", None),
        ("data:text/html,x", None),
        ("mailto:desk@news.example", None),
        ("https://[::1", None),
    ],
)
def test_safe_href(url: str | None, href: str | None) -> None:
    assert safe_href(url) == href


def test_fragment_has_the_json_endpoints_caching_headers(client: TestClient) -> None:
    url = FRAGMENT.format("volcano-0")
    first = client.get(url, params={"limit": 4})
    assert (
        first.headers["cache-control"]
        == client.get(RELATED.format("volcano-0")).headers["cache-control"]
    )
    etag = first.headers["etag"]
    again = client.get(url, params={"limit": 4}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == first.headers["cache-control"]
    json_etag = client.get(RELATED.format("volcano-0"), params={"limit": 4}).headers["etag"]
    other_heading = client.get(url, params={"limit": 4, "heading": "Read next"}).headers["etag"]
    assert len({etag, json_etag, other_heading}) == 3


def test_fragment_is_served_from_the_result_cache(client: TestClient) -> None:
    cache = client.app.state.services.cache  # type: ignore[attr-defined]
    first = client.get(FRAGMENT.format("bitcoin-0"), params={"limit": 3})
    hits = cache.stats().hits
    second = client.get(FRAGMENT.format("bitcoin-0"), params={"limit": 3})
    assert cache.stats().hits == hits + 1
    assert second.content == first.content
    # The JSON list of the same query is cached apart: it is not the HTML.
    assert client.get(RELATED.format("bitcoin-0"), params={"limit": 3}).json()["items"]


@pytest.mark.parametrize(
    ("path", "params", "status", "error"),
    [
        (FRAGMENT.format("no-such-article"), {}, 404, "article_not_found"),
        (FRAGMENT.format("volcano-0"), {"limit": 0}, 422, "invalid_request"),
        (FRAGMENT.format("volcano-0"), {"limit": 51}, 422, "invalid_request"),
        (FRAGMENT.format("volcano-0"), {"heading": "x" * 101}, 422, "invalid_request"),
        (FRAGMENT.format("Volcano_0"), {}, 422, "invalid_request"),
        (FRAGMENT.format("volcano-0"), {"layout": "grid"}, 422, "invalid_request"),
        (FRAGMENT.format("volcano-0"), {"exclude": "Not A Slug"}, 422, "invalid_request"),
    ],
)
def test_fragment_errors_are_json(
    client: TestClient, path: str, params: dict[str, Any], status: int, error: str
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == status
    assert response.json()["error"] == error and response.json()["detail"]


def test_fragment_is_readable_cross_origin(client: TestClient) -> None:
    response = client.get(FRAGMENT.format("volcano-0"), headers={"Origin": "https://news.example"})
    assert response.headers["access-control-allow-origin"] == "*"


def test_no_suggestions_render_nothing(tmp_path: Path) -> None:
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    records = synthetic_records()[:2]
    records[1] = {**records[1], "published_at": future}  # embargoed: never suggested
    settings, _ = build_fake_index(tmp_path / "data", records)
    with TestClient(create_app(settings)) as client:
        response = client.get(FRAGMENT.format("volcano-0"))
    assert response.status_code == 200 and response.text == ""


def test_widget_script_is_served_for_long_with_an_etag(client: TestClient) -> None:
    response = client.get("/widget.js", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.content == (STATIC / "widget.js").read_bytes()
    assert "content-encoding" not in response.headers
    assert "max-age=86400" in response.headers["cache-control"]
    assert "accept-encoding" in response.headers["vary"].lower()
    etag = response.headers["etag"]
    again = client.get(
        "/widget.js", headers={"Accept-Encoding": "identity", "If-None-Match": f"W/{etag}"}
    )
    assert again.status_code == 304 and again.headers["etag"] == etag


def test_widget_script_is_under_5_kb_gzipped(client: TestClient) -> None:
    # httpx would decompress the body: read the raw bytes as they were sent.
    with client.stream("GET", "/widget.js", headers={"Accept-Encoding": "gzip"}) as response:
        sent = b"".join(response.iter_raw())
        assert response.headers["content-encoding"] == "gzip"
        etag = response.headers["etag"]
    assert len(sent) < 5 * 1024
    assert gzip.decompress(sent) == (STATIC / "widget.js").read_bytes()
    plain = client.get("/widget.js", headers={"Accept-Encoding": "identity"}).headers["etag"]
    assert etag != plain  # each encoding has its own validator


@pytest.mark.parametrize(
    ("header", "gzipped"),
    [
        ("gzip, deflate, br, zstd", True),
        ("br;q=1.0, GZIP;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip;q=0.000", False),
        ("gzip;q=abc", False),
        ("identity", False),
        ("", False),
    ],
)
def test_accepts_gzip(header: str, gzipped: bool) -> None:
    assert accepts_gzip(header) is gzipped
