"""Feed readers: JSON Lines, CSV and plain-text articles, each optionally gzipped; and the one
registry that sends every source to its reader (URLs, `wordpress+` sites and local RSS/Atom/
sitemap files to `recommender.ingest.formats.web_sources`).

A source is a file, a directory of them, or a URL. A record that cannot become an Article is
reported in the caller's `FeedReport` as `file:line: reason` (or `url:item`) and skipped; only a
source that cannot be read at all raises `FeedError`. Files are streamed line by line, so a
37 k-record feed is never held whole.

A format is one reader registered in `READERS` (by file suffix) or `SCHEMES` (by URL scheme);
every reader yields the same `RawItem`s, which are validated here. Long (~520 lines): the
JSONL, CSV and text readers still live here, until each moves to its own module in
`formats/` (issue #29).
"""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from io import BufferedIOBase
from pathlib import Path

from recommender.articles import Article, validate_record
from recommender.errors import FeedError, InvalidRecord
from recommender.ingest.field_map import header_problem, rename
from recommender.ingest.formats.web_sources import (
    XML_SUFFIXES,
    RawItem,
    check_web_source,
    is_web_source,
    web_records,
)
from recommender.ingest.limits import BoundedStream
from recommender.ingest.listings import Listing, PageLimit
from recommender.ingest.options import ReadOptions
from recommender.ingest.web.fetch import Fetcher

_BOM = b"\xef\xbb\xbf"
#: Lone surrogates that `surrogateescape` leaves in place of bytes that are not UTF-8.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
#: Above every limit of validate_record, so that it, not csv's 128 KiB default, refuses long fields.
_CSV_FIELD_LIMIT = 1 << 20
#: A .txt article is read whole; a larger file cannot hold a valid one (body <= 500 k characters).
_MAX_TEXT_BYTES = 4 << 20
#: Final lines of saved web pages that lead to other articles, not part of this one.
_TRAILERS = frozenset({"you might also like", "related articles", "read more"})
_READ_BIO = "read full bio"
_MAX_NAME_WORDS = 8
#: JSON Lines objects checked together for a missing required field, as a header would be.
_KEY_SAMPLE = 10

#: (line a record starts on, raw record); an InvalidRecord stands for a record that did not parse.
_Raw = tuple[int, object]
_Reader = Callable[[BoundedStream, Mapping[str, str]], Iterator[_Raw]]
_Located = tuple[str, int, Article]


@dataclass(frozen=True, slots=True)
class Problem:
    """Something to tell the user about one record, located as `source:line`."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


@dataclass
class FeedReport:
    """What reading feeds found: counts, skipped records, replaced duplicates, notes, and how
    much of each paged web listing was read."""

    read: int = 0
    bad: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    duplicates: list[Problem] = field(default_factory=list)
    listings: list[Listing] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        """Records that became articles (including ones a later duplicate replaced)."""
        return self.read - len(self.bad)

    def summary_lines(self, limit_per_kind: int = 5) -> list[str]:
        """Terminal lines: the counts, then the first few problems of each kind."""
        lines = [f"read {self.read:,} records: {self.accepted:,} accepted, {len(self.bad):,} bad"]
        cut = [listing for listing in self.listings if not listing.complete]
        kinds: tuple[tuple[str, Sequence[Problem | Listing]], ...] = (
            ("listings cut at the page limit", cut),
            ("bad records", self.bad),
            ("duplicate slugs", self.duplicates),
            ("notes", self.notes),
        )
        for kind, problems in kinds:
            if problems:
                lines.append(f"{kind} ({len(problems):,}):")
                shown = problems[: max(limit_per_kind, 0)]
                lines.extend(f"  {problem}" for problem in shown)
                if len(problems) > len(shown):
                    lines.append(f"  ... and {len(problems) - len(shown):,} more {kind}")
        return lines


def parse_source(text: str) -> Path | str:
    """A `--source` value: a URL (`http(s)://`, `wordpress+http(s)://`) stays text, anything
    else is a path."""
    return text if is_web_source(text) else Path(text)


def read_feed(
    source: Path | str, report: FeedReport, options: ReadOptions | None = None
) -> Iterator[Article]:
    """Stream the valid articles of one source (a file, a directory or a URL), reporting the rest.

    A missing path, an unsupported file type or a URL that is not http(s) raises FeedError at
    once; a file that breaks off while being read (e.g. a truncated .gz), that exceeds the size
    limits, or a URL that cannot be fetched raises FeedError when reading reaches it.
    """
    parts = _source_parts(source)
    return (article for _, _, article in _read_parts(parts, report, options or ReadOptions()))


def load_articles(
    sources: Sequence[Path | str], report: FeedReport, options: ReadOptions | None = None
) -> dict[str, Article]:
    """Read several sources in order into one catalog keyed by slug.

    Every source is checked before any is read. When a slug comes again the later article wins
    but keeps the dict position where the slug first appeared; each replacement is reported in
    `report.duplicates` at the later record, naming the location of the record it replaces.
    """
    parts = [part for source in sources for part in _source_parts(source)]
    articles: dict[str, Article] = {}
    seen: dict[str, str] = {}
    for source, line, article in _read_parts(parts, report, options or ReadOptions()):
        location = f"{source}:{line}"
        if article.slug in seen:
            message = f"duplicate slug {article.slug!r} replaces the record at {seen[article.slug]}"
            report.duplicates.append(Problem(source, line, message))
        seen[article.slug] = location
        articles[article.slug] = article
    return articles


@dataclass(frozen=True, slots=True)
class ReadContext:
    """What the readers of one run share: its options, the fetcher and the page limit."""

    options: ReadOptions
    fetcher: Fetcher
    limit: PageLimit


#: How one source is read: every format yields the same `RawItem`s (where, number, raw record).
SourceReader = Callable[[Path | str, ReadContext], Iterator[RawItem]]
_Part = tuple[Path | str, SourceReader]


def _source_parts(source: Path | str) -> list[_Part]:
    """The parts of a source with their readers: a URL, or files (a directory gives its
    supported record files, sorted).

    Hidden entries of a directory (names starting with '.') are left out: editors and macOS put
    junk there under the same extensions. So are its XML files: feeds and sitemaps beside
    article files are a site's furniture, read only when named.
    """
    if isinstance(source, str):
        check_web_source(source)
        return [(source, SCHEMES[source.split("://", 1)[0].lower()])]
    path = source
    if path.is_dir():
        files = sorted(file for file in path.rglob("*") if file.is_file())
        return [
            (file, reader)
            for file in files
            if not any(part.startswith(".") for part in file.relative_to(path).parts)
            and (reader := _reader_for(file)) is not None
            and reader is not _web_reader
        ]
    if not path.is_file():
        raise FeedError(f"{path}: no such feed file or directory")
    reader = _reader_for(path)
    if reader is None:
        raise FeedError(
            f"{path}: unsupported feed type; expected .jsonl, .ndjson, .json, .csv, .txt, "
            ".xml, .rss or .atom, optionally followed by .gz, or an http(s):// or "
            "wordpress+https:// URL"
        )
    return [(path, reader)]


def _reader_for(path: Path) -> SourceReader | None:
    name = path.name.lower().removesuffix(".gz")
    return READERS.get(Path(name).suffix)


def _read_parts(
    parts: Iterable[_Part], report: FeedReport, options: ReadOptions
) -> Iterator[_Located]:
    limit = PageLimit(options.fetch.max_pages, options.allow_partial, report.listings)
    with Fetcher(options.fetch) as fetcher:
        context = ReadContext(options, fetcher, limit)
        for source, reader in parts:
            for where, number, raw in reader(source, context):
                article = _accept(where, number, raw, report)
                if article is not None:
                    yield where, number, article


def _file_reader(records: _Reader) -> SourceReader:
    """The reader of local files (optionally gzipped) whose records `records` parses."""

    def read(source: Path | str, context: ReadContext) -> Iterator[RawItem]:
        where = str(source)
        try:
            with _open(Path(source)) as raw_stream:
                stream = BoundedStream(raw_stream, where, context.options.limits)
                for line, raw in records(stream, context.options.field_map):
                    yield where, line, raw
        except (OSError, EOFError, zlib.error) as exc:
            raise FeedError(f"{where}: cannot be read: {exc}") from exc

    return read


def _web_reader(source: Path | str, context: ReadContext) -> Iterator[RawItem]:
    """Feeds, sitemaps and WordPress sites, by URL or as local XML files (`sources.web`)."""
    return web_records(source, context.options, context.fetcher, context.limit)


def _open(path: Path) -> BufferedIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return path.open("rb")


def _accept(source: str, line: int, raw: object, report: FeedReport) -> Article | None:
    """Count one record; return its Article, or report why it is skipped."""
    report.read += 1
    try:
        if isinstance(raw, InvalidRecord):
            raise raw
        validated = validate_record(raw)
    except InvalidRecord as exc:
        report.bad.append(Problem(source, line, str(exc)))
        return None
    report.notes.extend(Problem(source, line, note) for note in validated.notes)
    return validated.article


def _lines(stream: BoundedStream) -> Iterator[tuple[int, str | None]]:
    """Numbered lines, line endings kept, None for one over the record limit; bytes that are not
    UTF-8 become lone surrogates so that one bad line spoils one record, not the file."""
    for number, raw in stream.lines():
        if raw is None:
            yield number, None
            continue
        data = raw.removeprefix(_BOM) if number == 1 else raw
        yield number, data.decode("utf-8", "surrogateescape")


def _too_large(stream: BoundedStream) -> InvalidRecord:
    return InvalidRecord(
        f"record too large: over {stream.limits.max_record_bytes:,} bytes "
        "(RECOMMENDER_FEED_MAX_RECORD_BYTES)"
    )


def _jsonl_records(stream: BoundedStream, field_map: Mapping[str, str]) -> Iterator[_Raw]:
    """Records of a JSON Lines file, renamed by `field_map`.

    Its first objects stand in for a header: when together they lack a required field (so each
    of them does), the file fails with one message naming the keys found, not once per record.
    """
    raw_records = _jsonl_raw(stream)
    head: list[_Raw] = []
    keys: dict[str, None] = {}
    objects = 0
    for number, raw in raw_records:
        head.append((number, raw))
        if isinstance(raw, Mapping):
            keys.update(dict.fromkeys(raw))
            objects += 1
            if objects == _KEY_SAMPLE:
                break
    problem = header_problem(stream.source, keys, field_map, "field in the first records")
    if objects and problem is not None:
        raise problem
    for number, raw in itertools.chain(head, raw_records):
        yield number, rename(raw, field_map) if isinstance(raw, Mapping) else raw


def _jsonl_raw(stream: BoundedStream) -> Iterator[_Raw]:
    for number, text in _lines(stream):
        if text is None:
            yield number, _too_large(stream)
            continue
        if not text.strip(" \t\r\n"):
            continue
        undecodable = _UNDECODABLE.search(text)
        if undecodable:
            yield number, InvalidRecord(f"invalid UTF-8 at column {undecodable.start() + 1}")
        elif number == 1 and text.lstrip().startswith("["):
            raise FeedError(
                f"{stream.source}: holds a JSON array; JSON Lines is expected, one object per "
                "line (convert it with: jq -c '.[]' FILE > feed.jsonl)"
            )
        else:
            yield number, _parse_json(text.rstrip("\r\n"))


def _parse_json(text: str) -> object:
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        return InvalidRecord(f"invalid JSON at column {exc.colno}: {exc.msg}")
    except ValueError as exc:  # NaN/Infinity, or an integer too long to convert
        return InvalidRecord(f"invalid JSON: {exc}")
    except RecursionError:
        return InvalidRecord("invalid JSON: nested too deeply")


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _csv_records(stream: BoundedStream, field_map: Mapping[str, str]) -> Iterator[_Raw]:
    """Rows after the header as dicts of text, columns renamed by `field_map`; validate_record
    splits the ';'-separated tags. A header that lacks a required column fails the file."""
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    rows = _csv_rows(stream)
    first = next(rows, None)
    if first is None:
        return
    header_line, header = first
    found, unusable = _csv_header(header_line, header)
    missing = None if unusable else header_problem(stream.source, found, field_map, "column")
    if missing is not None:
        raise missing
    names = [field_map.get(name, name) for name in found]
    for number, row in rows:
        if isinstance(row, InvalidRecord):
            yield number, row
        elif unusable:
            yield number, InvalidRecord(unusable)
        elif len(row) != len(names):
            message = f"expected {len(names)} fields as in the header, found {len(row)}"
            yield number, InvalidRecord(message)
        else:
            # A file saved with Windows line endings keeps them inside quoted fields too.
            values = (value.replace("\r\n", "\n") for value in row)
            yield number, dict(zip(names, values, strict=True))


class _RecordTooLarge(Exception):
    """A CSV row whose lines add up to more than the record limit."""


class _CsvLines:
    """The text lines csv.reader parses, counting the bytes of the row being read.

    An iterator object rather than a generator: raising from a generator would end it, while csv
    resets its state on the next row, so reading goes on after an oversized row.
    """

    def __init__(self, stream: BoundedStream) -> None:
        self._lines = _lines(stream)
        self._limit = stream.limits.max_record_bytes
        self.line = 0
        self.row_bytes = 0

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        self.line, text = next(self._lines)
        self.row_bytes += len(text) if text is not None else self._limit + 1
        if text is None or self.row_bytes > self._limit:
            raise _RecordTooLarge
        return text


def _csv_rows(stream: BoundedStream) -> Iterator[tuple[int, list[str] | InvalidRecord]]:
    """Non-empty rows with the line each starts on; a malformed or oversized row becomes an
    InvalidRecord."""
    lines = _CsvLines(stream)
    reader = csv.reader(lines)
    while True:
        start = lines.line + 1
        lines.row_bytes = 0
        try:
            row = next(reader)
        except StopIteration:
            return
        except _RecordTooLarge:
            yield start, _too_large(stream)
            continue
        except csv.Error as exc:
            # Drop csv's advice about opening the file, which is ours to follow, not the user's.
            yield start, InvalidRecord(f"malformed CSV: {str(exc).split(' - ')[0]}")
            continue
        undecodable = [index for index, value in enumerate(row, 1) if _UNDECODABLE.search(value)]
        if undecodable:
            yield start, InvalidRecord(f"invalid UTF-8 in field {undecodable[0]}")
        elif row:
            yield start, row


def _csv_header(line: int, header: list[str] | InvalidRecord) -> tuple[list[str], str | None]:
    """Column names, and why the header cannot name the fields (every row is then skipped)."""
    if isinstance(header, InvalidRecord):
        return [], f"unusable CSV header on line {line}: {header}"
    names = [name.strip() for name in header]
    if "" in names:
        return names, f"CSV header on line {line}: column {names.index('') + 1} has no name"
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        return names, f"CSV header on line {line} repeats column {repeated[0]!r}"
    return names, None


def _txt_records(stream: BoundedStream, _field_map: Mapping[str, str]) -> Iterator[_Raw]:
    """One article per file: title, blank line, summary paragraph ending in the slug, body."""
    data = stream.read(_MAX_TEXT_BYTES + 1)
    if len(data) > _MAX_TEXT_BYTES:
        yield 1, InvalidRecord(f"larger than {_MAX_TEXT_BYTES:,} bytes; not one article")
        return
    try:
        text = data.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        yield 1, InvalidRecord(f"invalid UTF-8 on line {line}")
        return
    try:
        yield 1, _article_text_fields(text)
    except InvalidRecord as exc:
        yield 1, exc


def _article_text_fields(text: str) -> dict[str, str]:
    """Fields of a plain-text article; raises InvalidRecord when the layout is not followed."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    start = _skip_blank(lines, 0)
    if start == len(lines):
        raise InvalidRecord("empty article: expected a title line")
    if start + 1 < len(lines) and lines[start + 1]:
        raise InvalidRecord(f"expected a blank line after the title, on line {start + 2}")
    first = _skip_blank(lines, start + 1)
    end = first
    while end < len(lines) and lines[end]:
        end += 1
    if first == end:
        raise InvalidRecord("expected a summary paragraph ending in a slug line after the title")
    *summary, slug = (line.strip() for line in lines[first:end])
    if len(slug.split()) != 1:
        raise InvalidRecord(f"expected the slug (one word) on line {end}, after the summary")
    body, author = _split_author_box(lines[end:])
    fields = {"title": lines[start].strip(), "summary": " ".join(summary), "slug": slug}
    fields["body"] = "\n".join(body)
    if author is not None:
        fields["author"] = author
    return fields


def _skip_blank(lines: list[str], index: int) -> int:
    while index < len(lines) and not lines[index]:
        index += 1
    return index


def _split_author_box(lines: list[str]) -> tuple[list[str], str | None]:
    """Split the body from a closing author box, returning the body lines and the author.

    The box is recognised by its shape, not by a name: after a blank line, a short name line
    repeated on the next line, then one bio paragraph, optionally "Read full bio"; only trailer
    lines (e.g. "You Might Also Like") may follow it. Without a box, trailer lines are dropped.
    """
    for index in range(len(lines) - 2, -1, -1):
        name = lines[index].strip()
        if (
            name
            and lines[index + 1].strip() == name
            and len(name.split()) <= _MAX_NAME_WORDS
            and (index == 0 or not lines[index - 1])
            and _is_bio(lines[index + 2 :])
        ):
            return lines[:index], name
    return _drop_furniture(lines, extra=False), None


def _is_bio(lines: list[str]) -> bool:
    """Whether these lines are one paragraph followed only by page furniture."""
    bio = _drop_furniture(lines, extra=True)
    return bool(bio) and all(bio)


def _drop_furniture(lines: list[str], *, extra: bool) -> list[str]:
    """Lines without blank edges and closing trailers (and "Read full bio" lines when `extra`)."""
    end = len(lines)
    while end and (not lines[end - 1] or _is_furniture(lines[end - 1], extra=extra)):
        end -= 1
    start = _skip_blank(lines, 0)
    return lines[start:end]


def _is_furniture(line: str, *, extra: bool) -> bool:
    text = line.strip().lower()
    return text in _TRAILERS or (extra and text.startswith(_READ_BIO))


#: File suffix (before an optional `.gz`) → its reader: where a file format is added.
READERS: dict[str, SourceReader] = {
    ".jsonl": _file_reader(_jsonl_records),
    ".ndjson": _file_reader(_jsonl_records),
    ".json": _file_reader(_jsonl_records),
    ".csv": _file_reader(_csv_records),
    ".txt": _file_reader(_txt_records),
    **dict.fromkeys(XML_SUFFIXES, _web_reader),
}
#: URL scheme → its reader (`check_web_source` admits only these).
SCHEMES: dict[str, SourceReader] = dict.fromkeys(
    ("http", "https", "wordpress+http", "wordpress+https"), _web_reader
)
