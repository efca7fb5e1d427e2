"""Links found in feeds, sitemaps and pages, made absolute and kept only when http(s)."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit


def web_url(link: object, base: str) -> str | None:
    """`link` resolved against `base`, or None when it is missing or not an http(s) URL
    (a `file://` or `javascript:` link in a feed is never followed nor stored)."""
    if not isinstance(link, str) or not link.strip():
        return None
    url = urljoin(base, link.strip())
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.hostname else None
