"""The one page limit of every paged listing: a WordPress site's pages of posts, a feed's
`rel="next"` pages, a sitemap index's child sitemaps.

A listing longer than `RECOMMENDER_FETCH_MAX_PAGES` fails its source (ListingTooLong), unless
partial listings are allowed (`reindex --allow-partial`): then its first pages are read, the cut
is logged, and it is recorded with what was read of how much (the run's summary, the version's
manifest, the editors' status page). A listing is never cut silently.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Literal

from recommender.errors import ListingTooLong

log = logging.getLogger(__name__)

ListingKind = Literal["wordpress", "feed", "sitemap"]
#: What a listing's pages and items are called, by kind.
_WORDS: dict[str, tuple[str, str]] = {
    "wordpress": ("pages", "posts"),
    "feed": ("pages", "entries"),
    "sitemap": ("sitemaps", "URLs"),
}


@dataclass(frozen=True, slots=True)
class Listing:
    """How much of one paged listing was read, of how much it holds (None: not told)."""

    source: str
    kind: ListingKind
    pages_read: int
    pages_total: int | None
    items_read: int
    items_total: int | None
    complete: bool

    def __str__(self) -> str:
        pages, items = _WORDS[self.kind]
        text = (
            f"{self.source}: {_of(self.pages_read, self.pages_total)} {pages}, "
            f"{_of(self.items_read, self.items_total)} {items}"
        )
        if self.complete:
            return text
        return f"{text}; cut at the page limit (RECOMMENDER_FETCH_MAX_PAGES), the rest not read"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Listing:
        return cls(**data)


def _of(read: int, total: int | None) -> str:
    return f"{read:,}" if total is None or total == read else f"{read:,} of {total:,}"


class PageLimit:
    """`max_pages` applied to every listing of one run; what each listing read goes to `read`."""

    def __init__(self, max_pages: int, allow_partial: bool, read: list[Listing]) -> None:
        self.max_pages = max_pages
        self.allow_partial = allow_partial
        self.read = read

    def check_total(
        self, source: str, kind: ListingKind, pages_total: int | None, items_total: int | None
    ) -> None:
        """Fail at once when a listing says it holds more pages than the limit (unless partial
        listings are allowed): nothing of it need be fetched to know."""
        if pages_total is not None and pages_total > self.max_pages and not self.allow_partial:
            pages, items = _WORDS[kind]
            told = f", {items_total:,} {items}" if items_total is not None else ""
            raise self._too_long(source, kind, f"lists {pages_total:,} {pages}{told}")

    def finish(
        self,
        source: str,
        kind: ListingKind,
        *,
        pages_read: int,
        items_read: int,
        more: bool,
        pages_total: int | None = None,
        items_total: int | None = None,
    ) -> None:
        """Record a listing read to its end; `more`: it goes on past the limit, which fails it
        unless partial listings are allowed, and is then logged as a cut."""
        if more and not self.allow_partial:
            pages = _WORDS[kind][0]
            raise self._too_long(source, kind, f"goes on past {self.max_pages:,} {pages}")
        listing = Listing(
            source,
            kind,
            pages_read,
            pages_total if pages_total is not None or more else pages_read,
            items_read,
            items_total if items_total is not None or more else items_read,
            complete=not more,
        )
        if more:
            log.warning("listing cut: %s", listing)
        self.read.append(listing)

    def _too_long(self, source: str, kind: ListingKind, what: str) -> ListingTooLong:
        pages = _WORDS[kind][0]
        return ListingTooLong(
            f"{source}: {what}, more than the limit of {self.max_pages:,} "
            f"(RECOMMENDER_FETCH_MAX_PAGES); raise the limit, or pass --allow-partial to index "
            f"the first {self.max_pages:,} {pages} and record the cut"
        )
