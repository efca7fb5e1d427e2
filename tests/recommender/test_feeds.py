"""Feed readers: golden files, the shared sample article, sources, duplicates and junk input."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.articles import Article, validate_record
from recommender.errors import FeedError, InvalidRecord
from recommender.ingest.feeds import FeedReport, Problem, load_articles, read_feed

GOLDEN = Path(__file__).parent / "golden"
INPUTS = sorted((GOLDEN / "input").iterdir())
SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "samples" / "article.txt"
SAMPLE_AUTHOR = "James O\u2019Connor"
# No example database: it would leave a .hypothesis folder in the working tree.
JUNK = settings(max_examples=60, deadline=None, database=None)


def read(path: Path) -> tuple[list[Article], FeedReport]:
    report = FeedReport()
    return list(read_feed(path, report)), report


def as_golden(articles: list[Article], report: FeedReport) -> dict[str, Any]:
    """The shape of an expected file: cards plus body, then problems as 'line: message'."""
    return {
        "articles": [{"card": article.card(), "body": article.body} for article in articles],
        "bad": [f"{problem.line}: {problem.message}" for problem in report.bad],
        "notes": [f"{problem.line}: {problem.message}" for problem in report.notes],
    }


def expected(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((GOLDEN / "expected" / f"{name}.json").read_text())
    return result


# --- golden files -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", INPUTS, ids=lambda path: path.name)
def test_golden_file(path: Path) -> None:
    articles, report = read(path)
    assert as_golden(articles, report) == expected(path.name)
    assert report.read == len(articles) + len(report.bad)
    assert {problem.source for problem in report.bad + report.notes} <= {str(path)}


@pytest.mark.parametrize("path", INPUTS, ids=lambda path: path.name)
def test_gzip_is_transparent(path: Path, tmp_path: Path) -> None:
    gz = tmp_path / f"{path.name}.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    articles, report = read(gz)
    assert as_golden(articles, report) == expected(path.name)
    assert all(problem.source == str(gz) for problem in report.bad + report.notes)


@pytest.mark.parametrize("path", INPUTS, ids=lambda path: path.name)
def test_windows_line_endings_and_bom(path: Path, tmp_path: Path) -> None:
    windows = tmp_path / path.name
    windows.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    assert as_golden(*read(windows)) == expected(path.name)


def test_csv_tags_are_split_and_extra_columns_kept(tmp_path: Path) -> None:
    feed = tmp_path / "feed.csv"
    feed.write_text("slug,title,tags,desk\na,A, world ;politics;;world,Foreign\n")
    [article], _ = read(feed)
    assert article.tags == ("world", "politics")
    assert article.metadata == {"desk": "Foreign"}


# --- the shared plain-text sample ---------------------------------------------------------------


def test_shared_sample_article() -> None:
    [article], report = read(SAMPLE)
    assert (report.read, report.bad, report.notes) == (1, [], [])
    assert article.slug == "putin-victory-alaska-summit"
    assert article.title == "Putin Claims Victory After Alaska Summit with Trump"
    assert article.summary == SAMPLE.read_text(encoding="utf-8").splitlines()[2]
    assert article.summary.startswith("Putin leveraged the Alaska summit")
    assert article.body.startswith("Alaska Summit Outcome\n\nPresident Vladimir Putin departed")
    assert article.body.endswith("leaving conflict resolution uncertain.")
    assert "  • Secure ceasefire commitments" in article.body
    assert "Irish journalist" not in article.body
    assert "Read full bio" not in article.body
    assert "You Might Also Like" not in article.body
    assert SAMPLE_AUTHOR not in article.body
    assert article.author == SAMPLE_AUTHOR


def sample_variant(tmp_path: Path, text: str, encoding: str = "utf-8") -> Article:
    path = tmp_path / "variant.txt"
    path.write_bytes(text.encode(encoding))
    [article], report = read(path)
    assert report.bad == []
    return article


def test_sample_with_windows_line_endings_and_bom(tmp_path: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8").replace("\n", "\r\n")
    assert sample_variant(tmp_path, text, encoding="utf-8-sig") == read(SAMPLE)[0][0]


def test_author_box_is_found_by_its_shape_not_the_name(tmp_path: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8").replace(SAMPLE_AUTHOR, "Dana Smith-Lee")
    article = sample_variant(tmp_path, text)
    assert article.author == "Dana Smith-Lee"
    assert article.body == read(SAMPLE)[0][0].body


def test_author_box_without_read_more_or_trailer(tmp_path: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8").split("\n\nRead full bio")[0]
    article = sample_variant(tmp_path, text)
    assert article.author == SAMPLE_AUTHOR
    assert article.body == read(SAMPLE)[0][0].body


def test_article_without_author_box(tmp_path: Path) -> None:
    head = SAMPLE.read_text(encoding="utf-8").split(f"\n{SAMPLE_AUTHOR}\n")[0]
    article = sample_variant(tmp_path, head + "\nYou Might Also Like\n")
    assert article.author is None
    assert article.body == read(SAMPLE)[0][0].body


@pytest.mark.parametrize(
    "body",
    [
        "First paragraph.\nAmen\nAmen\n\nLast paragraph.",  # no blank line before the "name"
        "First.\n\n" + "This line is far too long to be a name.\n" * 2 + "\nLast paragraph.",
    ],
)
def test_repeated_line_that_is_no_author_box_stays_body(body: str, tmp_path: Path) -> None:
    article = sample_variant(tmp_path, f"Title\n\nSummary.\nslug\n\n{body}\n")
    assert article.author is None
    assert article.body == body


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty article: expected a title line"),
        (b"\n \n", "empty article: expected a title line"),
        (b"Title only\n", "expected a summary paragraph ending in a slug line after the title"),
        (b"Title\nno blank\n", "expected a blank line after the title, on line 2"),
        (
            b"Title\n\nA summary without a slug\n\nBody",
            "expected the slug (one word) on line 3, after the summary",
        ),
        (b"Title\n\nSummary\nslug\n\nBody \xff\n", "invalid UTF-8 on line 6"),
    ],
)
def test_txt_without_the_layout_is_one_bad_record(
    content: bytes, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "broken.txt"
    path.write_bytes(content)
    articles, report = read(path)
    assert articles == []
    assert report.read == 1
    assert [str(problem) for problem in report.bad] == [f"{path}:1: {message}"]


# --- sources ------------------------------------------------------------------------------------


def write_jsonl(path: Path, *records: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_directory_is_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "b" / "feed.jsonl", {"slug": "b1", "title": "B"})
    (tmp_path / "a.csv").write_text("slug,title\na1,A\n")
    nested = tmp_path / "a" / "nested" / "x.txt.gz"
    nested.parent.mkdir(parents=True)
    nested.write_bytes(gzip.compress(b"Nested\n\nSummary.\nnested\n\nBody.\n"))
    write_jsonl(tmp_path / "c.ndjson", {"slug": "c1", "title": "C"})
    write_jsonl(tmp_path / "d.JSON", {"slug": "d1", "title": "D"})
    write_jsonl(tmp_path / ".hidden.jsonl", {"slug": "hidden", "title": "H"})
    write_jsonl(tmp_path / ".cache" / "e.jsonl", {"slug": "cached", "title": "E"})
    (tmp_path / "README.md").write_text("not a feed")
    articles, report = read(tmp_path)
    assert [article.slug for article in articles] == ["nested", "a1", "b1", "c1", "d1"]
    assert (report.read, report.bad) == (5, [])


def test_golden_directory_reports_each_file(tmp_path: Path) -> None:
    articles, report = read(GOLDEN / "input")
    assert [article.slug for article in articles] == [
        slug
        for path in INPUTS
        for slug in (item["card"]["slug"] for item in expected(path.name)["articles"])
    ]
    not_an_article = str(GOLDEN / "input" / "not-an-article.txt")
    assert not_an_article in {problem.source for problem in report.bad}


def test_missing_path_raises_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(FeedError, match=re.escape(f"{missing}: no such feed")):
        read_feed(missing, FeedReport())  # raised at once, before iterating


def test_unsupported_file_raises_naming_it(tmp_path: Path) -> None:
    feed = tmp_path / "feed.yaml"
    feed.write_text("title: A")
    with pytest.raises(FeedError, match=r"feed\.yaml: unsupported feed type"):
        read_feed(feed, FeedReport())


def test_load_articles_checks_every_path_before_reading(tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", {"slug": "a", "title": "A"})
    report = FeedReport()
    with pytest.raises(FeedError, match=r"missing\.csv"):
        load_articles([good, tmp_path / "missing.csv"], report)
    assert report.read == 0


@pytest.mark.parametrize("damage", ["truncated", "not gzip"])
def test_broken_gzip_raises_feed_error(damage: str, tmp_path: Path) -> None:
    packed = gzip.compress((GOLDEN / "input" / "feed.jsonl").read_bytes())
    path = tmp_path / "feed.jsonl.gz"
    path.write_bytes(packed[:-12] if damage == "truncated" else b"plain text")
    with pytest.raises(FeedError, match=r"feed\.jsonl\.gz: cannot be read"):
        read(path)


def test_gzip_feed_is_streamed(tmp_path: Path) -> None:
    path = tmp_path / "big.ndjson.gz"
    with gzip.open(path, "wt", encoding="utf-8") as out:
        for number in range(3_000):
            out.write(json.dumps({"slug": f"a-{number}", "title": "T", "body": "x" * 4_000}) + "\n")
    report = FeedReport()
    tracemalloc.start()
    try:
        count = sum(1 for _ in read_feed(path, report))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == report.read == 3_000
    assert peak < 1_000_000, "12 MB of decompressed feed should never be held at once"


# --- duplicates and line numbers ----------------------------------------------------------------


def test_duplicate_slug_last_wins_keeps_first_position_and_is_reported(tmp_path: Path) -> None:
    first = write_jsonl(
        tmp_path / "first.jsonl",
        {"slug": "x", "title": "Old X"},
        {"slug": "y", "title": "Old Y"},
        {"slug": "X", "title": "X again"},
    )
    second = tmp_path / "second.csv"
    second.write_text("slug,title\ny,New Y\nx,Newest X\n")
    report = FeedReport()
    catalog = load_articles([first, second], report)
    assert list(catalog) == ["x", "y"]
    assert (catalog["x"].title, catalog["y"].title) == ("Newest X", "New Y")
    assert [str(problem) for problem in report.duplicates] == [
        f"{first}:3: duplicate slug 'x' replaces the record at {first}:1",
        f"{second}:2: duplicate slug 'y' replaces the record at {first}:2",
        f"{second}:3: duplicate slug 'x' replaces the record at {first}:3",
    ]
    assert (report.read, report.accepted, report.bad) == (5, 5, [])


def test_jsonl_bad_records_are_reported_at_their_line(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_bytes(
        b'{"slug": "a", "title": "A"}\r\n'
        b"\r\n"
        b'{"slug": "b", "title": "\xff"}\r\n'
        b"   \n"
        b'{"slug": "c", "title": "C", "published_at": "0001-01-01T00:00:00+01:00"}\n'
        b'{"slug": "d", "title": "D"}'
    )
    articles, report = read(path)
    assert [article.slug for article in articles] == ["a", "d"]
    assert [str(problem) for problem in report.bad] == [
        f"{path}:3: invalid UTF-8 at column 25",
        f"{path}:5: published_at '0001-01-01T00:00:00+01:00' is outside the supported range",
    ]


def test_urls_other_than_http_or_relative_are_reported_at_their_line(tmp_path: Path) -> None:
    """Readers follow `url` from the widget and the editors' desk: no `javascript:` reaches them."""
    path = tmp_path / "feed.jsonl"
    urls = [
        "https://news.example/a",
        "javascript:alert(1)",
        "/read/c",
        " JaVaScRiPt:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,x",
        "vbscript:msgbox(1)",
    ]
    records = [{"slug": f"a{n}", "title": "T", "url": url} for n, url in enumerate(urls)]
    path.write_text("\n".join(json.dumps(record) for record in records))
    articles, report = read(path)
    assert [article.url for article in articles] == ["https://news.example/a", "/read/c"]
    assert [problem.line for problem in report.bad] == [2, 4, 5, 6, 7]
    assert all("is not an http(s) or relative URL" in problem.message for problem in report.bad)


def test_csv_bad_records_are_reported_at_their_line(tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_bytes(b'slug,title,body\na,A,"two\nlines"\nb,\xff,x\n\nc,C,x\nd,D\re,x\nf,F,x\n')
    articles, report = read(path)
    assert [article.slug for article in articles] == ["a", "c", "f"]
    assert articles[0].body == "two\nlines"
    assert [str(problem) for problem in report.bad] == [
        f"{path}:4: invalid UTF-8 in field 2",
        f"{path}:7: malformed CSV: new-line character seen in unquoted field",
    ]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"slug,title,slug", "CSV header on line 1 repeats column 'slug'"),
        (b"slug, ,title", "CSV header on line 1: column 2 has no name"),
        (b"slug,titl\xe9", "unusable CSV header on line 1: invalid UTF-8 in field 2"),
    ],
)
def test_unusable_csv_header_skips_every_row(header: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_bytes(header + b"\na,A,x\nb,B,y\n")
    articles, report = read(path)
    assert articles == []
    assert [str(problem) for problem in report.bad] == [
        f"{path}:2: {message}",
        f"{path}:3: {message}",
    ]


@pytest.mark.parametrize("content", [b"", b"\n\n", b"slug,title\n"])
def test_csv_without_rows_reads_nothing(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "feed.csv"
    path.write_bytes(content)
    assert read(path)[1] == FeedReport()


# --- the report ---------------------------------------------------------------------------------


def test_problem_prints_as_file_line_message() -> None:
    assert str(Problem("feeds/a.jsonl", 7, "title is required")) == (
        "feeds/a.jsonl:7: title is required"
    )


def test_summary_lines_condense_each_kind() -> None:
    report = FeedReport(
        read=14,
        bad=[Problem("a.csv", line, "slug is required") for line in (3, 9)],
        notes=[Problem("a.csv", line, "naive") for line in range(1, 13)],
    )
    assert report.summary_lines(limit_per_kind=3) == [
        "read 14 records: 12 accepted, 2 bad",
        "bad records (2):",
        "  a.csv:3: slug is required",
        "  a.csv:9: slug is required",
        "notes (12):",
        "  a.csv:1: naive",
        "  a.csv:2: naive",
        "  a.csv:3: naive",
        "  ... and 9 more notes",
    ]


def test_summary_lines_of_a_large_feed_stay_short(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    record = {"slug": "Same", "title": "T", "published_at": "2020-01-01T00:00"}
    path.write_text((json.dumps(record) + "\n") * 5_000)
    report = FeedReport()
    assert len(load_articles([path], report)) == 1
    assert (len(report.notes), len(report.duplicates)) == (10_000, 4_999)
    lines = report.summary_lines()
    assert len(lines) == 1 + 2 * (1 + 5 + 1)
    assert "  ... and 9,995 more notes" in lines
    assert "  ... and 4,994 more duplicate slugs" in lines


# --- junk input never crashes -------------------------------------------------------------------


def read_junk(data: bytes, name: str) -> tuple[list[Article], FeedReport]:
    """Read `data` as a file called `name`, checking what must hold for any input: it is read
    record by record, or refused as a whole for its header (or keys) with one message."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            articles, report = read(path)
        except FeedError as exc:
            assert re.match(
                rf"{re.escape(str(path))}: (no title|no slug|holds a JSON array)", str(exc)
            )
            return [], FeedReport()
    assert report.read == len(articles) + len(report.bad)
    lines = data.count(b"\n") + 1
    for problem in report.bad + report.notes:
        assert problem.source == str(path)
        assert 1 <= problem.line <= lines
        assert problem.message
    return articles, report


FEED_NAMES = st.sampled_from(["feed.jsonl", "feed.csv", "feed.txt"])


@JUNK
@given(data=st.binary(max_size=400), name=FEED_NAMES)
def test_random_bytes_never_raise(data: bytes, name: str) -> None:
    read_junk(data, name)


@JUNK
@given(text=st.text(max_size=300), name=FEED_NAMES)
def test_random_text_never_raises(text: str, name: str) -> None:
    read_junk(text.encode("utf-8"), name)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
RECORDS = st.fixed_dictionaries(
    {
        "slug": st.sampled_from(["a", "b-2", "Up_Case", "", "no spaces"]) | JSON_VALUES,
        "title": st.text(max_size=10) | JSON_VALUES,
    },
    optional={
        "tags": st.lists(st.text(max_size=6), max_size=3) | JSON_VALUES,
        "published_at": st.sampled_from(["2024-02-29", "2024-02-30", "2024-01-01T10:00Z"])
        | JSON_VALUES,
        "extra": JSON_VALUES,
    },
)


def expected_outcome(record: object) -> Article | None:
    """What validate_record makes of a record (OverflowError: see feeds._accept)."""
    try:
        return validate_record(record).article
    except (InvalidRecord, OverflowError):
        return None


def refused_as_a_whole(values: list[object]) -> bool:
    """Whether a JSON Lines file of these values fails for its first line or its first keys."""
    if values and isinstance(values[0], list):
        return True
    heads = [value for value in values if isinstance(value, dict)][:10]
    keys = {key for head in heads for key in head}
    return bool(heads) and not {"slug", "title"} <= keys


@JUNK
@given(
    values=st.lists(JSON_VALUES | RECORDS, max_size=12),
    ending=st.sampled_from(["\n", "\r\n"]),
    ascii_only=st.booleans(),
)
def test_random_json_values_each_accepted_or_reported(
    values: list[object], ending: str, ascii_only: bool
) -> None:
    lines = [json.dumps(value, ensure_ascii=ascii_only) for value in values]
    articles, report = read_junk(ending.join(lines).encode("utf-8"), "feed.jsonl")
    if refused_as_a_whole(values):
        assert articles == [] and report.read == 0
        return
    outcomes = [expected_outcome(value) for value in values]
    assert articles == [article for article in outcomes if article is not None]
    assert [problem.line for problem in report.bad] == [
        number for number, article in enumerate(outcomes, start=1) if article is None
    ]


CSV_CELLS = st.sampled_from(["", '"', '""', ",", "a;b", " x ", "\n", "Up_Case", "ok"]) | st.text(
    alphabet=st.characters(blacklist_characters="\r", blacklist_categories=["Cs"]), max_size=8
)


@JUNK
@given(
    rows=st.lists(st.lists(CSV_CELLS, min_size=1, max_size=4), max_size=10),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
    ending=st.sampled_from(["\n", "\r\n"]),
)
def test_csv_with_odd_quoting_each_row_accepted_or_reported(
    rows: list[list[str]], quoting: Literal[0, 1, 2, 3], ending: str
) -> None:
    header = ["slug", "title", "tags"]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, quoting=quoting, lineterminator=ending)
    writer.writerow(header)
    starts = []
    for row in rows:
        starts.append(buffer.getvalue().count("\n") + 1)
        writer.writerow(row)
    articles, report = read_junk(buffer.getvalue().encode("utf-8"), "feed.csv")
    outcomes = [
        expected_outcome(dict(zip(header, row, strict=True))) if len(row) == 3 else None
        for row in rows
    ]
    assert articles == [article for article in outcomes if article is not None]
    assert [problem.line for problem in report.bad] == [
        start for start, article in zip(starts, outcomes, strict=True) if article is None
    ]


@JUNK
@given(st.text(alphabet=',"\n\r ab;\x00', max_size=120))
def test_csv_with_broken_quoting_never_raises(body: str) -> None:
    read_junk(("slug,title\n" + body).encode("utf-8"), "feed.csv")


TXT_LINES = st.sampled_from(
    ["", "  ", "Jo Doe", "Read full bio →", "You Might Also Like", "slug-line", "Some words."]
) | st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc", "Zl", "Zp"]), max_size=20)


@JUNK
@given(lines=st.lists(TXT_LINES, max_size=14), ending=st.sampled_from(["\n", "\r\n", "\r"]))
def test_txt_of_random_lines_is_one_record(lines: list[str], ending: str) -> None:
    articles, report = read_junk(ending.join(lines).encode("utf-8"), "feed.txt")
    assert report.read == 1
    assert [problem.line for problem in report.bad] == ([] if articles else [1])
    for article in articles:
        assert article.title == next(line.strip() for line in lines if line.strip())
        assert not article.body.endswith("You Might Also Like")
