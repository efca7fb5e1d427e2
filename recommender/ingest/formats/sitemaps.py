"""Sitemaps, sitemap indexes and Google News sitemaps (parsed with defusedxml)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

from recommender.errors import FeedError
from recommender.ingest.formats.safe_xml import parse_xml
from recommender.ingest.formats.slugs import slug_from_url
from recommender.ingest.web.web_urls import web_url

_SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
_NEWS = "{http://www.google.com/schemas/sitemap-news/0.9}"
_IMAGE = "{http://www.google.com/schemas/sitemap-image/1.1}"


@dataclass(frozen=True, slots=True)
class Sitemap:
    """What one sitemap document lists: child sitemaps (an index) or article records."""

    children: list[str]
    records: list[dict[str, Any]]


def is_sitemap(root: Element) -> bool:
    """Whether a parsed XML root is a sitemap or a sitemap index."""
    return root.tag in (f"{_SITEMAP}urlset", f"{_SITEMAP}sitemapindex")


def parse_sitemap(body: bytes, source: str) -> Sitemap:
    """The sitemap in `body`; FeedError if it is not one (or declares entities)."""
    return read_sitemap(parse_xml(body, source), source)


def read_sitemap(root: Element, source: str) -> Sitemap:
    """The child sitemaps or the article records of a parsed sitemap document."""
    if root.tag == f"{_SITEMAP}sitemapindex":
        children = [
            url
            for entry in root.iter(f"{_SITEMAP}sitemap")
            if (url := web_url(entry.findtext(f"{_SITEMAP}loc"), source))
        ]
        return Sitemap(children, [])
    if root.tag != f"{_SITEMAP}urlset":
        raise FeedError(f"{source}: not a sitemap (root element {root.tag!r})")
    return Sitemap([], [_record(entry, source) for entry in root.iter(f"{_SITEMAP}url")])


def _record(entry: Element, source: str) -> dict[str, Any]:
    """A `<url>` as a raw record: loc -> url and slug, news:title, the publication date, the
    first image:loc; records without a news:title need the page itself (--fetch-pages)."""
    url = web_url(entry.findtext(f"{_SITEMAP}loc"), source)
    news = entry.find(f"{_NEWS}news")
    record: dict[str, Any] = {"url": url, "slug": slug_from_url(url) if url else None}
    if news is not None:
        record["title"] = (news.findtext(f"{_NEWS}title") or "").strip()
        record["published_at"] = news.findtext(f"{_NEWS}publication_date")
        record["language"] = news.findtext(f"{_NEWS}publication/{_NEWS}language")
    record["published_at"] = record.get("published_at") or entry.findtext(f"{_SITEMAP}lastmod")
    record["image"] = web_url(entry.findtext(f"{_IMAGE}image/{_IMAGE}loc"), source)
    return {
        name: value.strip() if isinstance(value, str) else value
        for name, value in record.items()
        if value
    }
