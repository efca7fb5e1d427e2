"""WordPress sites through their REST API (`/wp-json/wp/v2/posts`, paged, with `_embed`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from recommender.errors import FeedError, FetchError, InvalidRecord
from recommender.sources.fetch import Fetcher
from recommender.sources.html_text import html_to_text
from recommender.sources.web_urls import web_url

#: Posts asked for per request (the API's maximum).
PER_PAGE = 100


def posts_url(site: str, page: int) -> str:
    """The API URL of one page of a site's posts, with authors, terms and media embedded."""
    return f"{site.rstrip('/')}/wp-json/wp/v2/posts?per_page={PER_PAGE}&page={page}&_embed=1"


def post_records(site: str, fetcher: Fetcher) -> Iterator[tuple[int, object]]:
    """Every post of `site` as (item number, raw record or InvalidRecord).

    Pages are read until one is empty or the API answers 400 for a page past the last (its
    `rest_post_invalid_page_number`), at most `max_pages`; any other failure is FetchError.
    """
    number = 0
    for page in range(1, fetcher.policy.max_pages + 1):
        url = posts_url(site, page)
        try:
            fetched = fetcher.get(url)
        except FetchError as exc:
            if page > 1 and exc.status == 400:
                return
            raise
        try:
            posts = json.loads(fetched.body)
        except ValueError as exc:
            raise FeedError(f"{url}: not JSON: {exc}") from None
        if not isinstance(posts, list):
            raise FeedError(f"{url}: expected a JSON list of posts, got {type(posts).__name__}")
        if not posts:
            return
        for post in posts:
            number += 1
            yield number, post_record(post, url)


def post_record(post: object, page_url: str) -> dict[str, Any] | InvalidRecord:
    """One post as a raw record: rendered HTML becomes text; embedded author, categories
    (first one = section), tags and featured image are used."""
    if not isinstance(post, dict):
        return InvalidRecord(f"a post must be an object, not {type(post).__name__}")
    embedded: dict[str, Any] = post.get("_embedded") or {}
    if not isinstance(embedded, dict):
        embedded = {}
    terms = [
        term
        for group in embedded.get("wp:term", [])
        if isinstance(group, list)
        for term in group
        if isinstance(term, dict) and isinstance(term.get("name"), str)
    ]
    categories = [term["name"] for term in terms if term.get("taxonomy") == "category"]
    tags = [term["name"] for term in terms if term.get("taxonomy") == "post_tag"]
    date = post.get("date_gmt")
    record = {
        "slug": post.get("slug"),
        "title": _rendered(post, "title"),
        "summary": _rendered(post, "excerpt"),
        "body": _rendered(post, "content"),
        "url": web_url(post.get("link"), page_url),
        "image": web_url(_first(embedded, "wp:featuredmedia").get("source_url"), page_url),
        "author": _first(embedded, "author").get("name"),
        "section": categories[0] if categories else None,
        "tags": categories + tags,
        "published_at": f"{date}Z" if isinstance(date, str) and date else post.get("date"),
    }
    return {name: value for name, value in record.items() if value not in (None, "", [])}


def _rendered(post: dict[str, Any], name: str) -> str | None:
    field = post.get(name)
    rendered = field.get("rendered") if isinstance(field, dict) else None
    return html_to_text(rendered) if isinstance(rendered, str) else None


def _first(embedded: dict[str, Any], name: str) -> dict[str, Any]:
    items = embedded.get(name)
    first = items[0] if isinstance(items, list) and items else None
    return first if isinstance(first, dict) else {}
