"""Feed readers under generated input: valid articles round-trip through every format, bad
bytes are reported at their line, and whatever is read can be stored and embedded."""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from recommender.articles import (
    KNOWN_FIELDS,
    Article,
    embedding_text,
    has_linkable_scheme,
    text_hash,
)
from recommender.errors import FeedError
from recommender.ingest.feeds import FeedReport, read_feed

GENERATED = settings(max_examples=60, deadline=None, database=None)
#: A character generated text never holds, to mark where a test puts bad bytes.
MARKER = "\ue000"
#: Characters of one line of text: no line breaks, no NUL (refused), no lone surrogates.
LINE_CHARACTERS = st.characters(
    blacklist_categories=["Cs", "Cc", "Zl", "Zp"], blacklist_characters=[MARKER, "\x85"]
)
#: Bytes that are not UTF-8: a stray continuation byte, a truncated sequence, an encoded
#: surrogate, an overlong form, a byte UTF-8 never uses.
INVALID_UTF8 = st.sampled_from([b"\x80", b"\xc3(", b"\xed\xa0\x80", b"\xc0\xaf", b"\xff"])


@contextmanager
def feed_file(name: str, data: bytes) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
        yield path


def read(path: Path) -> tuple[list[Article], FeedReport]:
    report = FeedReport()
    return list(read_feed(path, report)), report


def text(max_size: int, *, min_size: int = 0) -> st.SearchStrategy[str]:
    """Text as a valid record holds it once read: stripped, on one line."""
    return (
        st.text(LINE_CHARACTERS, max_size=max_size)
        .map(str.strip)
        .filter(lambda value: len(value) >= min_size)
    )


SLUGS = st.from_regex(r"[a-z0-9][a-z0-9-]{0,40}", fullmatch=True)
OPTIONAL = st.none() | text(40, min_size=1)
#: Article urls are http(s) or relative: text that reads as another scheme is refused.
URLS = st.none() | text(40, min_size=1).filter(has_linkable_scheme)
TAGS = st.lists(text(20, min_size=1).filter(lambda tag: ";" not in tag), unique=True, max_size=4)


@st.composite
def articles(draw: st.DrawFn, *, metadata: st.SearchStrategy[dict[str, Any]]) -> Article:
    """A valid Article in the form validate_record gives (canonical slug, UTC time, ...)."""
    return Article(
        slug=draw(SLUGS),
        title=draw(text(60, min_size=1)),
        summary=draw(text(120)),
        body=draw(text(300)),
        url=draw(URLS),
        section=draw(OPTIONAL),
        tags=tuple(draw(TAGS)),
        author=draw(OPTIONAL),
        published_at=draw(st.none() | st.datetimes(timezones=st.just(UTC))),
        language=draw(st.none() | st.from_regex(r"[a-z]{2}(-[a-z]{2})?", fullmatch=True)),
        metadata=draw(metadata),
    )


JSON_METADATA = st.dictionaries(
    st.text(max_size=10).filter(lambda key: key not in KNOWN_FIELDS | {"category"}),
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**63 - 1)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=10),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=5), children, max_size=3)
        ),
        max_leaves=6,
    ),
    max_size=3,
)
#: CSV carries text only; an extra column is kept as metadata, as read.
CSV_METADATA = st.fixed_dictionaries(
    {"labels": st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\x00"))}
)


def slug_of(article: Article) -> str:
    return article.slug


def as_record(article: Article) -> dict[str, Any]:
    return {
        "slug": article.slug,
        "title": article.title,
        "summary": article.summary,
        "body": article.body,
        "url": article.url,
        "section": article.section,
        "tags": list(article.tags),
        "author": article.author,
        "published_at": article.published_at.isoformat() if article.published_at else None,
        "language": article.language,
        **article.metadata,
    }


def as_jsonl(records: list[dict[str, Any]], ascii_only: bool) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=ascii_only) + "\n" for r in records).encode()


def as_csv(records: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=[*sorted(KNOWN_FIELDS), "labels"])
    writer.writeheader()
    for record in records:
        writer.writerow({**record, "tags": ";".join(record["tags"])})
    return buffer.getvalue().encode()


# --- valid records round-trip -------------------------------------------------------------------


@GENERATED
@given(
    items=st.lists(articles(metadata=JSON_METADATA), max_size=6, unique_by=slug_of),
    ascii_only=st.booleans(),
    name=st.sampled_from(["feed.jsonl", "feed.ndjson.gz"]),
)
def test_valid_jsonl_records_round_trip(items: list[Article], ascii_only: bool, name: str) -> None:
    with feed_file(name, as_jsonl([as_record(a) for a in items], ascii_only)) as path:
        read_back, report = read(path)
    assert read_back == items
    assert report.bad == [] and report.notes == []


@GENERATED
@given(
    items=st.lists(articles(metadata=CSV_METADATA), max_size=6, unique_by=slug_of),
    name=st.sampled_from(["feed.csv", "feed.csv.gz"]),
)
def test_valid_csv_records_round_trip(items: list[Article], name: str) -> None:
    with feed_file(name, as_csv([as_record(a) for a in items])) as path:
        read_back, report = read(path)
    assert read_back == items
    assert report.bad == [] and report.notes == []


LINES = text(60, min_size=1)


@GENERATED
@given(
    title=LINES,
    summary=st.lists(LINES, max_size=3),
    slug=SLUGS,
    paragraphs=st.lists(st.lists(LINES.map(lambda line: line + "."), min_size=1, max_size=3)),
)
def test_valid_text_articles_round_trip(
    title: str, summary: list[str], slug: str, paragraphs: list[list[str]]
) -> None:
    lines = [line for paragraph in paragraphs for line in paragraph]
    assume(len(set(lines)) == len(lines))  # a repeated line could read as an author box
    body = "\n\n".join("\n".join(paragraph) for paragraph in paragraphs)
    page = "\n".join([title, "", *summary, slug, "", body])
    with feed_file("article.txt", page.encode()) as path:
        read_back, report = read(path)
    expected = Article(slug=slug, title=title, summary=" ".join(summary), body=body)
    assert (read_back, report.bad) == ([expected], [])


# --- bytes that are not UTF-8 -------------------------------------------------------------------


FORMATS: dict[str, Callable[[list[dict[str, Any]]], bytes]] = {
    "feed.jsonl": lambda records: as_jsonl(records, ascii_only=False),
    "feed.csv": as_csv,
}
#: Where each format's record N (from 0) starts: JSON Lines has no header, CSV one line.
FIRST_LINE = {"feed.jsonl": 1, "feed.csv": 2}


@GENERATED
@given(
    items=st.lists(
        articles(metadata=st.just({"labels": "x"})), min_size=1, max_size=5, unique_by=slug_of
    ),
    data=st.data(),
    bad=INVALID_UTF8,
    name=st.sampled_from(sorted(FORMATS)),
)
def test_invalid_utf8_is_reported_at_its_line_and_spoils_only_its_record(
    items: list[Article], data: st.DataObject, bad: bytes, name: str
) -> None:
    spoiled = data.draw(st.integers(0, len(items) - 1), label="spoiled record")
    records = [as_record(article) for article in items]
    records[spoiled]["title"] += MARKER
    feed = FORMATS[name](records).replace(MARKER.encode(), bad)
    with feed_file(name, feed) as path:
        read_back, report = read(path)
        line = FIRST_LINE[name] + spoiled
        assert [str(problem) for problem in report.bad] == [
            f"{path}:{line}: {report.bad[0].message}"
        ]
    assert "invalid UTF-8" in report.bad[0].message
    assert read_back == items[:spoiled] + items[spoiled + 1 :]


@GENERATED
@given(lines=st.lists(LINES, min_size=1, max_size=8), data=st.data(), bad=INVALID_UTF8)
def test_invalid_utf8_in_a_text_article_names_its_line(
    lines: list[str], data: st.DataObject, bad: bytes
) -> None:
    spoiled = data.draw(st.integers(0, len(lines) - 1), label="spoiled line")
    page = "\n".join(lines).encode().split(b"\n")
    page[spoiled] += bad
    with feed_file("article.txt", b"\n".join(page)) as path:
        read_back, report = read(path)
    assert read_back == []
    assert [(problem.line, problem.message) for problem in report.bad] == [
        (1, f"invalid UTF-8 on line {spoiled + 1}")
    ]


# --- whatever is read can be stored and embedded ------------------------------------------------

#: JSON text a generic encoder would not write: lone surrogates, huge and non-finite numbers,
#: deep nesting.
AWKWARD_JSON = st.sampled_from(
    [
        '"\\ud800"',
        '"\\udfff tail"',
        '"ok \\ud83d\\ude00"',  # a valid surrogate pair
        "123456789012345678901234567890",
        "-9223372036854775809",
        "18446744073709551615",
        "1e400",
        "-1e400",
        "[" * 40 + "]" * 40,
        '{"a": ' * 40 + "1" + "}" * 40,
    ]
)
FIELD_NAMES = st.sampled_from(
    ["title", "summary", "body", "url", "section", "tags", "author", "labels", "category"]
)


@GENERATED
@given(
    records=st.lists(
        st.dictionaries(FIELD_NAMES, AWKWARD_JSON | st.just('"Volcano"'), max_size=4),
        min_size=1,
        max_size=8,
    )
)
def test_every_article_read_can_be_stored_and_embedded(
    records: list[dict[str, str]],
) -> None:
    lines = [
        # A title first, which the record's own replaces: a feed without one is refused whole.
        "{"
        + ", ".join([f'"slug": "s{i}", "title": "t"', *(f'"{k}": {v}' for k, v in r.items())])
        + "}"
        for i, r in enumerate(records)
    ]
    with feed_file("feed.jsonl", "\n".join(lines).encode()) as path:
        read_back, report = read(path)
    assert len(read_back) + len(report.bad) == len(records)
    for article in read_back:
        orjson.dumps(article.card())  # an index version stores cards as JSON
        text_hash(embedding_text(article))  # the embedding cache keys on the UTF-8 text


@GENERATED
@given(
    data=st.binary(max_size=300) | st.binary(max_size=300).map(lambda junk: b"\x1f\x8b" + junk),
    name=st.sampled_from(["feed.jsonl.gz", "feed.csv.gz", "article.txt.gz"]),
)
def test_a_damaged_gzip_feed_raises_only_a_feed_error(data: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            read(path)
        except FeedError as exc:
            assert str(exc).startswith(f"{path}: cannot be read")
