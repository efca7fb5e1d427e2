"""Web sources as raw records: feed and sitemap URLs, `wordpress+` sites, local XML files.

A source is read whole or not at all: a feed page, a child sitemap or a WordPress page that
cannot be fetched (after retries) raises FetchError and the run publishes nothing, and so does
a listing longer than the page limit unless partial listings are allowed
(`recommender.ingest.listings`). One article page that cannot be fetched or extracted is one
bad record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from recommender.errors import FeedError, InvalidRecord
from recommender.ingest.formats.pages import extract_page, merge_page
from recommender.ingest.formats.safe_xml import parse_xml, read_xml
from recommender.ingest.formats.sitemaps import is_sitemap, read_sitemap
from recommender.ingest.formats.slugs import slug_from_url
from recommender.ingest.formats.syndication import entry_record, next_page, parse_feed
from recommender.ingest.formats.wordpress import WORDPRESS, post_records
from recommender.ingest.limits import gunzip_bounded
from recommender.ingest.listings import PageLimit
from recommender.ingest.options import ReadOptions
from recommender.ingest.web.fetch import Fetcher, check_web_url

#: Local files read as feeds or sitemaps (optionally .gz).
XML_SUFFIXES = (".xml", ".rss", ".atom")
#: Sitemap indexes inside sitemap indexes, at most.
MAX_SITEMAP_DEPTH = 3
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HTML_STARTS = (b"<!doctype html", b"<html")

#: (where: a file or URL, item number there, raw record or the InvalidRecord it could not be).
RawItem = tuple[str, int, object]


def is_web_source(source: str) -> bool:
    """Whether a --source value is a URL rather than a path."""
    return bool(_SCHEME.match(source))


def check_web_source(source: str) -> None:
    """FetchError unless `source` is an http(s) URL or `wordpress+` one."""
    check_web_url(source.removeprefix(WORDPRESS))


def web_records(
    source: str | Path, options: ReadOptions, fetcher: Fetcher, limit: PageLimit
) -> Iterator[RawItem]:
    """The raw records of one web source, with their pages' text when `options.fetch_pages`;
    its paged listings are read within `limit`."""
    if isinstance(source, str) and source.startswith(WORDPRESS):
        site = source.removeprefix(WORDPRESS)
        yield from ((site, number, raw) for number, raw in post_records(site, fetcher, limit))
        return
    if isinstance(source, Path):
        items = _document(str(source), _read_file(source, options), "", options, fetcher, limit)
    else:
        fetched = fetcher.get(source)
        if _is_html(fetched.body, fetched.content_type):
            yield source, 1, _page_record(fetched.body, fetched.url)
            return
        items = _document(source, fetched.body, fetched.url, options, fetcher, limit)
    yield from _with_pages(items, fetcher, options.show_progress) if options.fetch_pages else items


def _read_file(path: Path, options: ReadOptions) -> bytes:
    limit = options.fetch.max_bytes
    with path.open("rb") as handle:
        body = handle.read(limit + 1)
    if len(body) > limit:
        raise FeedError(f"{path}: more than {limit:,} bytes; refused (RECOMMENDER_FETCH_MAX_BYTES)")
    return gunzip_bounded(body, limit, str(path)) if body[:2] == b"\x1f\x8b" else body


def _is_html(body: bytes, content_type: str) -> bool:
    return "html" in content_type.lower() or body.lstrip()[:20].lower().startswith(_HTML_STARTS)


def _page_record(body: bytes, url: str) -> dict[str, Any] | InvalidRecord:
    try:
        record = extract_page(body, url)
    except InvalidRecord as exc:
        return exc
    return {"slug": slug_from_url(url), **record}


def _document(
    label: str, body: bytes, url: str, options: ReadOptions, fetcher: Fetcher, limit: PageLimit
) -> Iterator[RawItem]:
    """A feed (followed through its pages) or a sitemap (through its children)."""
    root = read_xml(body, label)
    if root is not None and is_sitemap(root):
        return _sitemap_items(label, body, options, fetcher, limit, depth=0)
    return _feed_items(label, body, url, fetcher, limit)


def _feed_items(
    label: str, body: bytes, url: str, fetcher: Fetcher, limit: PageLimit
) -> Iterator[RawItem]:
    """Entries of a feed and of its `rel="next"` pages, within the page limit."""
    seen = {url}
    number = pages = 0
    page_label = label
    while True:
        parsed = parse_feed(body, page_label)
        pages += 1
        for entry in parsed.entries:
            number += 1
            yield label, number, entry_record(entry, url)
        following = next_page(parsed, url) if url else None
        if following is None or following in seen or pages == limit.max_pages:
            break
        seen.add(following)
        url = page_label = following
        body = fetcher.get(following).body
    more = following is not None and following not in seen
    limit.finish(label, "feed", pages_read=pages, items_read=number, more=more)


def _sitemap_items(
    label: str, body: bytes, options: ReadOptions, fetcher: Fetcher, limit: PageLimit, depth: int
) -> Iterator[RawItem]:
    sitemap = read_sitemap(parse_xml(body, label), label)
    for number, record in enumerate(sitemap.records, start=1):
        if "title" in record or options.fetch_pages:
            yield label, number, record
        else:
            message = "no news:title in the sitemap; add --fetch-pages to read the page"
            yield label, number, InvalidRecord(message)
    if not sitemap.children:
        return
    limit.check_total(label, "sitemap", len(sitemap.children), None)
    children = sitemap.children[: limit.max_pages]
    found = 0
    for child in children:
        if depth == MAX_SITEMAP_DEPTH:
            raise FeedError(f"{child}: sitemap indexes nested deeper than {MAX_SITEMAP_DEPTH}")
        child_body = fetcher.get(child).body
        for item in _sitemap_items(child, child_body, options, fetcher, limit, depth + 1):
            found += 1
            yield item
    more = len(sitemap.children) > len(children)
    limit.finish(
        label,
        "sitemap",
        pages_read=len(children),
        items_read=found,
        more=more,
        pages_total=len(sitemap.children),
    )


def _with_pages(
    items: Iterable[RawItem], fetcher: Fetcher, show_progress: bool
) -> Iterator[RawItem]:
    """Each record completed by its page, fetched `concurrency` at a time; a page that cannot
    be fetched or extracted makes its record a bad one, naming the page and the reason."""
    listed = list(items)
    urls = list(dict.fromkeys(url for _, _, raw in listed if (url := _url_of(raw))))
    pages: dict[str, dict[str, Any] | InvalidRecord] = {}
    failed = 0
    with tqdm(total=len(urls), unit="page", desc="pages", disable=not show_progress) as bar:
        for url, fetched in fetcher.get_many(urls):
            if isinstance(fetched, FeedError):
                pages[url] = InvalidRecord(str(fetched))
            else:
                pages[url] = _page_record(fetched.body, fetched.url)
            failed += isinstance(pages[url], InvalidRecord)
            bar.set_postfix(failed=failed, refresh=False)
            bar.update()
    for label, number, raw in listed:
        page = pages.get(_url_of(raw) or "")
        if isinstance(page, dict) and isinstance(raw, dict):
            yield label, number, merge_page(raw, page)
        else:
            yield label, number, page if page is not None else raw


def _url_of(raw: object) -> str | None:
    url = raw.get("url") if isinstance(raw, dict) else None
    return url if isinstance(url, str) else None
