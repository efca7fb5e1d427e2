"""The slug rule for sources that give only a link (documented in docs/feeds.md)."""

from __future__ import annotations

import pytest

from recommender.articles import MAX_SLUG_LENGTH, SLUG_PATTERN
from recommender.ingest.formats.slugs import slug_from_url


@pytest.mark.parametrize(
    ("url", "slug"),
    [
        ("https://www.bbc.co.uk/news/uk-68123456.html", "news-uk-68123456"),
        ("https://blog.example/?p=123", "p-123"),
        ("https://example.com/2024/05/01/Storm_Warning/", "2024-05-01-storm-warning"),
        ("https://example.com/actualit%C3%A9/caf%C3%A9-cr%C3%A8me.php", "actualite-cafe-creme"),
        ("https://example.com/", "example-com"),
        ("tag:bbc.co.uk,2024:article-9", "bbc-co-uk-2024-article-9"),
    ],
)
def test_slug_from_link(url: str, slug: str) -> None:
    assert slug_from_url(url) == slug


def test_long_links_are_cut_with_a_hash_and_stay_distinct() -> None:
    first = slug_from_url("https://example.com/" + "a" * 300 + "/1")
    second = slug_from_url("https://example.com/" + "a" * 300 + "/2")
    assert first != second
    assert all(len(s) <= MAX_SLUG_LENGTH and SLUG_PATTERN.match(s) for s in (first, second))
