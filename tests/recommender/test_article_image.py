"""The optional `image` field: an absolute http(s) URL, validated and kept in the card."""

from __future__ import annotations

import pytest

from recommender.articles import FIELD_LIMITS, validate_record
from recommender.errors import InvalidRecord


@pytest.mark.parametrize(
    "image", ["https://cdn.example/a.jpg", "http://cdn.example/a.png?w=600", "HTTPS://CDN.EX/b"]
)
def test_absolute_http_image_is_kept_in_the_card(image: str) -> None:
    article = validate_record({"slug": "a", "title": "A", "image": f" {image} "}).article
    assert article.image == image
    assert article.card()["image"] == image
    assert "image" not in article.metadata


def test_missing_or_empty_image_is_none() -> None:
    assert validate_record({"slug": "a", "title": "A"}).article.card()["image"] is None
    assert validate_record({"slug": "a", "title": "A", "image": ""}).article.image is None


@pytest.mark.parametrize(
    "image",
    [
        "/relative/a.jpg",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "ftp://cdn.example/a.jpg",
        "https:///no-host.jpg",
        "https://cdn.example/a b.jpg",
    ],
)
def test_image_that_is_not_an_absolute_http_url_is_refused(image: str) -> None:
    with pytest.raises(InvalidRecord, match=r"image .* is not an absolute http\(s\) URL"):
        validate_record({"slug": "a", "title": "A", "image": image})


def test_image_longer_than_the_limit_is_refused() -> None:
    image = "https://cdn.example/" + "a" * FIELD_LIMITS["image"]
    with pytest.raises(InvalidRecord, match=r"image is .* characters long"):
        validate_record({"slug": "a", "title": "A", "image": image})


def test_image_must_be_text() -> None:
    with pytest.raises(InvalidRecord, match="image must be text"):
        validate_record({"slug": "a", "title": "A", "image": {"url": "https://x.example/a"}})
