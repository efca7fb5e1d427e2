"""Article pages: main text, title, date, author and og:image, extracted by trafilatura."""

from __future__ import annotations

import json
from typing import Any

from recommender.errors import InvalidRecord
from recommender.ingest.web.web_urls import web_url


def extract_page(html: bytes, url: str) -> dict[str, Any]:
    """The article in a page as a raw record (no slug); InvalidRecord when it holds no text."""
    import trafilatura  # heavy (0.1-0.2 s): only runs that fetch pages need it

    extracted = trafilatura.extract(
        html, url=url, output_format="json", with_metadata=True, include_comments=False
    )
    if not extracted:
        raise InvalidRecord(f"{url}: no article text found in the page")
    found = json.loads(extracted)
    title, text = found.get("title") or "", found.get("text") or ""
    # The headline is usually the first line of the extracted text too.
    body = (
        text.removeprefix(title).lstrip("\n") if title and text.startswith(f"{title}\n") else text
    )
    categories = [name.strip() for name in (found.get("categories") or "").split(",")]
    tags = [name.strip() for name in (found.get("tags") or "").split(",")]
    record = {
        "url": url,
        "title": title,
        "summary": found.get("excerpt"),
        "body": body,
        "author": found.get("author"),
        "published_at": found.get("date"),
        "image": web_url(found.get("image"), url),
        "section": next((name for name in categories if name), None),
        "tags": [name for name in categories + tags if name],
        "language": found.get("language"),
    }
    return {name: value for name, value in record.items() if value not in (None, "", [])}


def merge_page(record: dict[str, Any], page: dict[str, Any]) -> dict[str, Any]:
    """A feed or sitemap record completed by its page: the page's text is the body, and its
    other fields fill only what the record lacks."""
    merged = {**page, **{name: value for name, value in record.items() if value}}
    if page.get("body"):
        merged["body"] = page["body"]
    return merged
