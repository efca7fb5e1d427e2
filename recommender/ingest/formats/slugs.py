"""Slugs for articles whose source gives only a link (RSS, sitemaps, pages)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import unquote, urlsplit

from recommender.articles import MAX_SLUG_LENGTH

_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_PAGE_SUFFIX = re.compile(r"\.(html?|php|aspx?|jsp)$")


def slug_from_url(url: str) -> str:
    """A stable, URL-safe slug from a link: its path and query, without the host.

    The path (and query, e.g. WordPress `?p=123`) is percent-decoded, folded to ASCII and
    lowercase, stripped of a `.html`/`.php`-style ending, and every run of other characters
    becomes one `-`: `https://www.bbc.co.uk/news/uk-68123456.html` -> `news-uk-68123456`. A link
    with no path gives its host. A slug longer than the limit is cut and ends with a hash of the
    whole link, so two long links never share one.
    """
    parts = urlsplit(url.strip())
    path = _PAGE_SUFFIX.sub("", unquote(parts.path).rstrip("/"))
    text = f"{path} {unquote(parts.query)}" if parts.query else path
    slug = _fold(text) or _fold(parts.hostname or "") or "home"
    if len(slug) > MAX_SLUG_LENGTH:
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
        slug = f"{slug[: MAX_SLUG_LENGTH - 13].rstrip('-')}-{digest}"
    return slug


def _fold(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")
