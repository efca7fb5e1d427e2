"""A newsroom's web site on 127.0.0.1 for tests and the ingest benchmark: feeds, sitemaps,
pages and a WordPress API.

`FeedSite` serves whatever routes a test puts in it from a threaded http.server: conditional
requests (ETag / If-Modified-Since answer 304), redirects, error statuses, slow answers and
declared lengths, and it logs every request so tests can count what was fetched. The builders
turn a few dozen real BBC articles (../shared/data/bbc-news) into RSS, Atom, a news sitemap
index with HTML pages, and a paged WordPress API.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: The read-only shared datasets beside the repository (never copied into it).
SHARED = Path(__file__).resolve().parents[2] / "shared"

BBC = SHARED / "data" / "bbc-news" / "articles.jsonl"
LAST_MODIFIED = "Sat, 01 Jan 2005 00:00:00 GMT"
START = datetime(2005, 1, 3, 9, 0, tzinfo=UTC)


class _QuietServer(ThreadingHTTPServer):
    """Says nothing when a client hangs up mid-request: fetchers that time out or refuse an
    answer do that on purpose (the hostile-source tests), and it is not the site's error."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exception(), ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


@dataclass
class Route:
    """What one path answers."""

    body: bytes = b""
    content_type: str = "application/xml"
    status: int = 200
    location: str | None = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    #: Send no Content-Length: the body ends when the connection closes (a client cannot know
    #: its size before reading it).
    close_delimited: bool = False


class FeedSite:
    """Routes by path (with query), a request log, and the server's base URL."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        #: Answers paths that `routes` lacks, made on request (an endless listing); None = 404.
        self.generate: Callable[[str], Route | None] = lambda path: None
        self.log: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FeedSite:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def put(self, path: str, body: bytes | str, content_type: str = "application/xml") -> None:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = Route(data, content_type)

    def statuses(self, prefix: str = "") -> list[int]:
        """Statuses answered so far for paths starting with `prefix` (robots.txt left out)."""
        with self._lock:
            return [s for path, s in self.log if path.startswith(prefix) and path != "/robots.txt"]

    def record(self, path: str, status: int) -> None:
        with self._lock:
            self.log.append((path, status))


def _handler(site: FeedSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            route = site.routes.get(self.path) or site.generate(self.path)
            if route is None:
                self._answer(404, b"not found", {"Content-Type": "text/plain"})
                return
            if route.delay:
                time.sleep(route.delay)
            if route.location is not None:
                self._answer(route.status, b"", {"Location": route.location})
                return
            etag = '"' + hashlib.sha256(route.body).hexdigest()[:16] + '"'
            if route.status == 200 and self.headers.get("If-None-Match") == etag:
                self._answer(304, b"", {"ETag": etag})
                return
            headers = {
                "Content-Type": route.content_type,
                "ETag": etag,
                "Last-Modified": LAST_MODIFIED,
                **route.headers,
            }
            if route.close_delimited:
                self.close_connection = True
                headers["Connection"] = "close"
            else:
                headers.setdefault("Content-Length", str(len(route.body)))
            self._answer(route.status, route.body, headers)

        def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            site.record(self.path, status)
            self.send_response(status)
            if headers.get("Connection") != "close":
                headers.setdefault("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    return Handler


# --- fixtures built from BBC articles -----------------------------------------------------------


@dataclass(frozen=True)
class NewsArticle:
    """One BBC article as the test site publishes it."""

    slug: str
    title: str
    paragraphs: list[str]
    section: str
    author: str
    published: datetime

    @property
    def path(self) -> str:
        return f"/news/{self.slug}.html"

    @property
    def image_path(self) -> str:
        return f"/images/{self.slug}.jpg"

    @property
    def summary(self) -> str:
        return self.paragraphs[0]

    @property
    def body(self) -> str:
        return "\n".join(self.paragraphs)


def bbc_articles(count: int, source: Path = BBC) -> list[NewsArticle]:
    """The first `count` articles of the BBC corpus (`source`), taken evenly from its five
    sections."""
    by_section: dict[str, list[dict[str, Any]]] = {}
    with source.open() as lines:
        for line in lines:
            record = json.loads(line)
            by_section.setdefault(record["category"], []).append(record)
    picked = list(islice(_round_robin(list(by_section.values())), count))
    return [
        NewsArticle(
            slug=record["slug"],
            title=record["title"],
            paragraphs=[p for p in record["body"].split("\n") if p.strip()],
            section=record["category"].title(),
            author=f"Reporter {index % 7}",
            published=START + timedelta(hours=index),
        )
        for index, record in enumerate(picked)
    ]


def _round_robin(groups: list[list[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    for row in range(max(len(group) for group in groups)):
        for group in groups:
            if row < len(group):
                yield group[row]


def _html_paragraphs(article: NewsArticle) -> str:
    return "".join(f"<p>{escape(p)}</p>" for p in article.paragraphs)


def rss(site: FeedSite, articles: list[NewsArticle], next_path: str | None = None) -> str:
    """RSS 2.0 with content:encoded, dc:creator, media:content and an atom:link to the next page."""
    items = "".join(
        f"""<item><title>{escape(a.title)}</title><link>{site.url(a.path)}</link>
<guid isPermaLink="true">{site.url(a.path)}</guid>
<description>{escape(a.summary)}</description>
<content:encoded>{escape(_html_paragraphs(a))}</content:encoded>
<category>{a.section}</category><dc:creator>{a.author}</dc:creator>
<pubDate>{format_datetime(a.published, usegmt=True)}</pubDate>
<media:content url="{site.url(a.image_path)}" medium="image" type="image/jpeg"/></item>"""
        for a in articles
    )
    paging = f'<atom:link rel="next" href="{site.url(next_path)}"/>' if next_path else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/"
 xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>BBC News</title>
<link>{site.base}</link><description>Test feed</description>{paging}{items}</channel></rss>"""


def atom(site: FeedSite, articles: list[NewsArticle]) -> str:
    """Atom 1.0 with HTML content, an author, a category and an image enclosure."""
    entries = "".join(
        f"""<entry><title>{escape(a.title)}</title><link rel="alternate" href="{site.url(a.path)}"/>
<link rel="enclosure" type="image/jpeg" href="{site.url(a.image_path)}"/>
<id>urn:bbc:{a.slug}</id><published>{a.published.isoformat()}</published>
<updated>{a.published.isoformat()}</updated><author><name>{a.author}</name></author>
<category term="{a.section}"/><summary>{escape(a.summary)}</summary>
<content type="html">{escape(_html_paragraphs(a))}</content></entry>"""
        for a in articles
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>BBC News</title><id>urn:bbc</id>
<updated>{START.isoformat()}</updated>{entries}</feed>"""


def news_sitemap(site: FeedSite, articles: list[NewsArticle], *, with_news: bool = True) -> str:
    """A (Google News) sitemap of the articles' pages with image:loc."""
    urls = "".join(
        f"<url><loc>{site.url(a.path)}</loc><lastmod>{a.published.isoformat()}</lastmod>"
        + (
            f"<news:news><news:publication><news:name>BBC</news:name>"
            f"<news:language>en</news:language></news:publication>"
            f"<news:publication_date>{a.published.isoformat()}</news:publication_date>"
            f"<news:title>{escape(a.title)}</news:title></news:news>"
            if with_news
            else ""
        )
        + f"<image:image><image:loc>{site.url(a.image_path)}</image:loc></image:image></url>"
        for a in articles
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
 xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"
 xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">{urls}</urlset>"""


def sitemap_index(site: FeedSite, paths: list[str]) -> str:
    children = "".join(f"<sitemap><loc>{site.url(path)}</loc></sitemap>" for path in paths)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{children}</sitemapindex>"""


def page(site: FeedSite, article: NewsArticle) -> str:
    """The article's HTML page: metadata in the head, furniture around an <article>."""
    paragraphs = "".join(f"<p>{escape(p)}</p>" for p in article.paragraphs)
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>{escape(article.title)} - BBC News</title>
<meta property="og:title" content="{escape(article.title)}">
<meta property="og:image" content="{site.url(article.image_path)}">
<meta name="author" content="{article.author}">
<meta property="article:published_time" content="{article.published.isoformat()}">
<meta property="article:section" content="{article.section}">
</head><body><header><nav><a href="/">Home</a> <a href="/news">News</a></nav></header>
<main><article><h1>{escape(article.title)}</h1>{paragraphs}</article></main>
<footer><p>Copyright BBC. All rights reserved.</p></footer></body></html>"""


def wordpress_posts(site: FeedSite, articles: list[NewsArticle]) -> list[dict[str, Any]]:
    """The articles as `/wp-json/wp/v2/posts?_embed` returns them."""
    return [
        {
            "id": index + 1,
            "slug": a.slug,
            "link": site.url(a.path),
            "date": a.published.replace(tzinfo=None).isoformat(),
            "date_gmt": a.published.replace(tzinfo=None).isoformat(),
            "title": {"rendered": escape(a.title)},
            "excerpt": {"rendered": f"<p>{escape(a.summary)}</p>\n"},
            "content": {"rendered": "".join(f"<p>{escape(p)}</p>\n" for p in a.paragraphs)},
            "_embedded": {
                "author": [{"id": 1, "name": a.author}],
                "wp:featuredmedia": [{"id": 9, "source_url": site.url(a.image_path)}],
                "wp:term": [
                    [{"id": 2, "name": a.section, "taxonomy": "category"}],
                    [{"id": 3, "name": "bbc", "taxonomy": "post_tag"}],
                ],
            },
        }
        for index, a in enumerate(articles)
    ]


#: Listings that never end (`endless_listing`): WordPress sites (with and without the API's
#: counts) and a feed.
ENDLESS_WORDPRESS = "/endless"
ENDLESS_UNCOUNTED_WORDPRESS = "/endless-uncounted"
ENDLESS_FEED = "/endless.xml"
ENDLESS_PAGES = 10_000_000


def endless_listing(site: FeedSite, path: str) -> Route | None:
    """A page of a listing that never ends, for `FeedSite.generate`: under `ENDLESS_WORDPRESS`
    a WordPress API that counts `ENDLESS_PAGES` pages (X-WP-TotalPages) and answers every page
    with 100 posts, under `ENDLESS_UNCOUNTED_WORDPRESS` the same without the counts, and at
    `ENDLESS_FEED` an RSS feed whose every page links a next one."""
    parts = urlsplit(path)
    page_number = int(parse_qs(parts.query).get("page", ["1"])[0])
    stories = [
        NewsArticle(
            slug=f"endless-{page_number}-{n}",
            title=f"Story {n} of page {page_number}",
            paragraphs=[f"The text of story {n} of page {page_number}."],
            section="News",
            author="Reporter",
            published=START,
        )
        for n in range(100)
    ]
    if parts.path == ENDLESS_FEED:
        return Route(
            rss(site, stories, next_path=f"{ENDLESS_FEED}?page={page_number + 1}").encode()
        )
    for prefix, counted in ((ENDLESS_WORDPRESS, True), (ENDLESS_UNCOUNTED_WORDPRESS, False)):
        if parts.path == f"{prefix}/wp-json/wp/v2/posts":
            counts = {"X-WP-Total": str(ENDLESS_PAGES * 100), "X-WP-TotalPages": str(ENDLESS_PAGES)}
            body = json.dumps(wordpress_posts(site, stories)).encode()
            return Route(body, "application/json", headers=counts if counted else {})
    return None
