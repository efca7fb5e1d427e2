"""The optional `image` field: an absolute http(s) URL (a relative one resolved against the
article's `url`), kept in the card; an unusable image is dropped with a note, not the article."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.articles import FIELD_LIMITS, validate_record
from recommender.errors import InvalidRecord
from recommender.ingest.feeds import FeedReport, read_feed


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
    ("image", "url", "resolved"),
    [
        (
            "/relative/img.jpg",
            "https://news.example/a/story.html",
            "https://news.example/relative/img.jpg",
        ),
        ("img/a.jpg", "https://news.example/a/story.html", "https://news.example/a/img/a.jpg"),
        ("//cdn.example/a.jpg", "http://news.example/story", "http://cdn.example/a.jpg"),
    ],
)
def test_relative_image_is_resolved_against_the_article_url(
    image: str, url: str, resolved: str
) -> None:
    validated = validate_record({"slug": "a", "title": "A", "url": url, "image": image})
    assert validated.article.image == resolved and validated.notes == ()


@pytest.mark.parametrize(
    ("image", "url", "why"),
    [
        ("/relative/a.jpg", None, " and the record has no absolute url to resolve it against"),
        ("/relative/a.jpg", "/news/a", " and the record has no absolute url to resolve it against"),
        ("file:///etc/passwd", "https://news.example/a", ""),
        ("javascript:alert(1)", "https://news.example/a", ""),
        ("ftp://cdn.example/a.jpg", None, ""),
        ("https:///no-host.jpg", "https://news.example/a", ""),
        ("https://cdn.example/a b.jpg", None, ""),
        ("http://[::1/a.jpg", None, ""),
    ],
)
def test_image_that_is_not_an_http_url_is_dropped_with_a_note_and_the_article_kept(
    image: str, url: str | None, why: str
) -> None:
    record = {"slug": "a", "title": "A", "image": image} | ({"url": url} if url else {})
    validated = validate_record(record)
    assert validated.article.slug == "a" and validated.article.image is None
    assert validated.notes == (
        f"image {image!r} is not an absolute http(s) URL{why}; the image is dropped",
    )


def test_jsonl_and_csv_keep_an_article_whose_image_is_relative(tmp_path: Path) -> None:
    jsonl = tmp_path / "feed.jsonl"
    jsonl.write_text(
        '{"slug": "a", "title": "A", "url": "https://news.example/a", "image": "/i/a.jpg"}\n'
        '{"slug": "b", "title": "B", "image": "/relative/img.jpg"}\n'
    )
    csv = tmp_path / "feed.csv"
    csv.write_text("slug,title,url,image\nc,C,https://news.example/c,/i/c.jpg\nd,D,,/i/d.jpg\n")
    report = FeedReport()
    articles = [*read_feed(jsonl, report), *read_feed(csv, report)]
    assert [(a.slug, a.image) for a in articles] == [
        ("a", "https://news.example/i/a.jpg"),
        ("b", None),
        ("c", "https://news.example/i/c.jpg"),
        ("d", None),
    ]
    assert report.bad == []
    assert [f"{p.source}:{p.line}" for p in report.notes] == [f"{jsonl}:2", f"{csv}:3"]


def test_image_longer_than_the_limit_is_refused() -> None:
    image = "https://cdn.example/" + "a" * FIELD_LIMITS["image"]
    with pytest.raises(InvalidRecord, match=r"image is .* characters long"):
        validate_record({"slug": "a", "title": "A", "image": image})


def test_image_must_be_text() -> None:
    with pytest.raises(InvalidRecord, match="image must be text"):
        validate_record({"slug": "a", "title": "A", "image": {"url": "https://x.example/a"}})
