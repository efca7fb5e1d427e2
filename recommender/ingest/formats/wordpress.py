"""WordPress sites through their REST API (`/wp-json/wp/v2/posts`, paged, with `_embed`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from recommender.errors import FeedError, FetchError, InvalidRecord
from recommender.ingest.formats.html_text import html_to_text
from recommender.ingest.listings import PageLimit
from recommender.ingest.web.fetch import Fetcher
from recommender.ingest.web.web_urls import web_url

#: Posts asked for per request (the API's maximum).
PER_PAGE = 100
#: The prefix of a `--source` that names a WordPress site.
WORDPRESS = "wordpress+"


def posts_url(site: str, page: int) -> str:
    """The API URL of one page of a site's posts, with authors, terms and media embedded."""
    return f"{site.rstrip('/')}/wp-json/wp/v2/posts?per_page={PER_PAGE}&page={page}&_embed=1"


def post_records(site: str, fetcher: Fetcher, limit: PageLimit) -> Iterator[tuple[int, object]]:
    """Every post of `site` as (item number, raw record or InvalidRecord).

    Pages are read up to the last the API counts (`X-WP-TotalPages`), an empty page, or the
    API's 400 for a page past the last (its `rest_post_invalid_page_number`); a listing longer
    than `limit` fails (ListingTooLong), at once when the API says so, or is cut and recorded.
    Any other failure is FetchError.
    """
    source = WORDPRESS + site
    number = pages = last = 0
    total_pages = total_posts = None
    more = False
    while True:
        if pages == limit.max_pages:
            # Without the API's count, a full last page is taken to mean that more follow.
            more = total_pages > pages if total_pages is not None else last == PER_PAGE
            break
        url = posts_url(site, pages + 1)
        try:
            fetched = fetcher.get(url)
        except FetchError as exc:
            if pages and exc.status == 400:
                break
            raise
        if not pages:
            total_pages = _count(fetched.headers, "x-wp-totalpages")
            total_posts = _count(fetched.headers, "x-wp-total")
            limit.check_total(source, "wordpress", total_pages, total_posts)
        posts = _posts(fetched.body, url)
        if not posts:
            break
        pages, last = pages + 1, len(posts)
        for post in posts:
            number += 1
            if not _protected(post):
                yield number, post_record(post, url)
        if total_pages is not None and pages >= total_pages:
            break
    limit.finish(
        source,
        "wordpress",
        pages_read=pages,
        items_read=number,
        more=more,
        pages_total=total_pages,
        items_total=total_posts,
    )


def _count(headers: dict[str, str], name: str) -> int | None:
    value = headers.get(name, "").strip()
    return int(value) if value.isdigit() else None


def _protected(post: object) -> bool:
    # A password-protected post is listed with its text withheld; it is not a public article
    # (the WordPress plugin retracts such posts too, so nightly runs and live sync agree).
    content = post.get("content") if isinstance(post, dict) else None
    return isinstance(content, dict) and content.get("protected") is True


def _posts(body: bytes, url: str) -> list[object]:
    try:
        posts = json.loads(body)
    except ValueError as exc:
        raise FeedError(f"{url}: not JSON: {exc}") from None
    if not isinstance(posts, list):
        raise FeedError(f"{url}: expected a JSON list of posts, got {type(posts).__name__}")
    return posts


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
