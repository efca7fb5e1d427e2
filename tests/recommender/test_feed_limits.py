"""Size limits of local feeds: an oversized record is skipped without being held (issue 20.4)."""

from __future__ import annotations

import gzip
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from recommender.articles import Article
from recommender.errors import FeedError
from recommender.ingest.feeds import FeedReport, read_feed
from recommender.ingest.limits import ReadLimits, gunzip_bounded
from recommender.ingest.options import ReadOptions

RECORD_LIMIT = 1 << 20
HUGE = 64 << 20  # a 64 MB line, about 64 kB gzipped


def gzip_feed(path: Path, before: bytes, huge_line_start: bytes, after: bytes) -> Path:
    """A gzipped feed with one `HUGE`-byte line between two ordinary parts, written in chunks."""
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(before + huge_line_start)
        chunk = b"x" * (1 << 20)
        for _ in range(HUGE // len(chunk)):
            out.write(chunk)
        out.write(b'"}\n' + after)
    return path


def read_traced(path: Path, limits: ReadLimits) -> tuple[list[Article], FeedReport, int]:
    report = FeedReport()
    tracemalloc.start()
    try:
        articles = list(read_feed(path, report, ReadOptions(limits=limits)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return articles, report, peak


@pytest.fixture(scope="module")
def huge_jsonl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("bomb") / "feed.jsonl.gz"
    yield gzip_feed(
        path,
        b'{"slug": "a", "title": "A"}\n',
        b'{"slug": "b", "title": "',
        b'{"slug": "c", "title": "C"}\n',
    )


def test_jsonl_line_over_the_limit_is_one_bad_record_and_never_held(huge_jsonl: Path) -> None:
    articles, report, peak = read_traced(huge_jsonl, ReadLimits(max_record_bytes=RECORD_LIMIT))
    assert [article.slug for article in articles] == ["a", "c"]
    assert [str(problem) for problem in report.bad] == [
        f"{huge_jsonl}:2: record too large: over {RECORD_LIMIT:,} bytes "
        "(RECOMMENDER_FEED_MAX_RECORD_BYTES)"
    ]
    assert peak < 4 * RECORD_LIMIT, f"peak {peak:,} bytes for a {HUGE:,}-byte line"


def test_csv_row_over_the_limit_is_one_bad_record_and_never_held(tmp_path: Path) -> None:
    path = gzip_feed(tmp_path / "feed.csv.gz", b"slug,title\na,A\n", b'b,"', b"c,C\n")
    articles, report, peak = read_traced(path, ReadLimits(max_record_bytes=RECORD_LIMIT))
    assert [article.slug for article in articles] == ["a", "c"]
    assert [problem.line for problem in report.bad] == [3]
    assert report.bad[0].message.startswith("record too large")
    assert peak < 4 * RECORD_LIMIT


def test_csv_row_of_many_lines_over_the_limit_is_refused(tmp_path: Path) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text('slug,title,body\nlong,L,"' + "line\n" * 400 + '"\nok,OK,\n')
    report = FeedReport()
    articles = list(read_feed(feed, report, ReadOptions(limits=ReadLimits(max_record_bytes=1024))))
    # csv's quoting state is lost with the row, so what follows it may be misread: only the
    # refusal itself is promised, and that reading goes on.
    assert report.bad[0].line == 2
    assert report.bad[0].message.startswith("record too large")
    assert articles == []


def test_source_over_the_decompressed_limit_fails_naming_the_file(huge_jsonl: Path) -> None:
    limits = ReadLimits(max_record_bytes=RECORD_LIMIT, max_source_bytes=8 << 20)
    with pytest.raises(FeedError, match=rf"^{huge_jsonl}: more than 8,388,608 bytes"):
        read_traced(huge_jsonl, limits)


def test_gunzip_bounded_refuses_a_bomb_and_passes_small_data() -> None:
    assert gunzip_bounded(gzip.compress(b"hello"), 10, "x.gz") == b"hello"
    bomb = gzip.compress(b"\0" * (20 << 20))
    with pytest.raises(FeedError, match=r"^x\.gz: more than 1,048,576 bytes once decompressed"):
        gunzip_bounded(bomb, 1 << 20, "x.gz")
    with pytest.raises(FeedError, match=r"^x\.gz: not valid gzip"):
        gunzip_bounded(b"not gzip at all", 1 << 20, "x.gz")
