"""RSS 2.0, RSS 1.0 and Atom feeds (read by feedparser) as raw article records."""

from __future__ import annotations

import calendar
import io
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import feedparser

from recommender.errors import FeedError
from recommender.ingest.formats.html_text import html_to_text
from recommender.ingest.formats.safe_xml import read_xml
from recommender.ingest.formats.slugs import slug_from_url
from recommender.ingest.web.web_urls import web_url


def parse_feed(body: bytes, source: str) -> Any:
    """The parsed feed (a feedparser dict); FeedError when it declares entities or holds none.

    The bytes are screened with defusedxml first: feedparser leaves entities unexpanded today,
    but the refusal should not rest on that.

    feedparser is given the bytes, never a URL or a path, so it fetches and opens nothing.
    """
    read_xml(body, source)
    parsed = feedparser.parse(io.BytesIO(body), sanitize_html=False)
    if not parsed.entries and not parsed.feed:
        reason = parsed.get("bozo_exception") or "no channel or entries"
        raise FeedError(f"{source}: not an RSS or Atom feed: {reason}")
    return parsed


def next_page(parsed: Any, page_url: str) -> str | None:
    """The absolute URL of the feed's `rel="next"` page (RFC 5005 paging), if any."""
    for link in parsed.feed.get("links", []):
        if link.get("rel") == "next" and link.get("href"):
            return urljoin(page_url, str(link["href"]))
    return None


def entry_record(entry: Any, page_url: str) -> dict[str, Any]:
    """One entry as a raw record: link -> url and slug, categories -> tags and section, ..."""
    link = web_url(entry.get("link"), page_url)
    guid = entry.get("id")
    tags = [tag["term"] for tag in entry.get("tags", []) if tag.get("term")]
    content = entry.get("content") or []
    record: dict[str, Any] = {
        "slug": slug_from_url(link or guid) if link or guid else None,
        "title": _text(entry, "title"),
        "summary": _text(entry, "summary"),
        "body": html_to_text(content[0].get("value", "")) if content else None,
        "url": link,
        "image": _image(entry, link or page_url),
        "section": tags[0] if tags else None,
        "tags": tags,
        "author": entry.get("author"),
        "published_at": _time(entry.get("published_parsed") or entry.get("updated_parsed")),
    }
    if guid and guid != link:
        record["guid"] = guid
    return {name: value for name, value in record.items() if value not in (None, "", [])}


def _text(entry: Any, name: str) -> str | None:
    value = entry.get(name)
    detail = entry.get(f"{name}_detail") or {}
    if not isinstance(value, str):
        return None
    is_html = "html" in str(detail.get("type", "html"))
    return html_to_text(value) if is_html else value.strip()


def _time(parsed: Any) -> str | None:
    if parsed is None:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC).isoformat()


def _image(entry: Any, base: str) -> str | None:
    """The first picture: media:content (an image), media:thumbnail, an image enclosure."""
    candidates = [
        media.get("url")
        for media in entry.get("media_content", [])
        if media.get("medium") == "image" or media.get("type", "image/").startswith("image/")
    ]
    candidates += [thumb.get("url") for thumb in entry.get("media_thumbnail", [])]
    candidates += [
        link.get("href")
        for link in entry.get("links", [])
        if link.get("rel") == "enclosure" and link.get("type", "").startswith("image/")
    ]
    for candidate in candidates:
        image = web_url(candidate, base)
        if image:
            return image
    return None
