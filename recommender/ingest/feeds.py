"""Reading feeds: the one registry that sends every source to its reader (JSON Lines, CSV and
plain-text files, each optionally gzipped, to `formats/`; URLs, `wordpress+` sites and local
RSS/Atom/sitemap files to `formats.web_sources`), and the validation of what they yield.

A source is a file, a directory of them, or a URL. A record that cannot become an Article is
reported in the caller's `FeedReport` as `file:line: reason` (or `url:item`) and skipped; only a
source that cannot be read at all raises `FeedError`. Files are streamed line by line, so a
37 k-record feed is never held whole.

A format is one reader registered in `READERS` (by file suffix) or `SCHEMES` (by URL scheme);
every reader yields the same `RawItem`s, which are validated here. The file formats are
`formats.jsonl_format`, `formats.csv_format` and `formats.text_format`; the web's are read by
`formats.web_sources`.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from io import BufferedIOBase
from pathlib import Path
from typing import TypeVar

from recommender.articles import Article, validate_record
from recommender.errors import FeedError, InvalidRecord
from recommender.ingest.formats.csv_format import csv_records
from recommender.ingest.formats.jsonl_format import jsonl_records
from recommender.ingest.formats.record_lines import RecordParser
from recommender.ingest.formats.text_format import text_records
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
from recommender.ingest.record_memo import Keyed, Recall, Recalled, RecordMemo, RecordOrigin
from recommender.ingest.web.fetch import Fetcher

T = TypeVar("T")


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
    recalled: int = 0
    """Records of `read` recognised by their bytes and carried over unparsed (`read_catalog`)."""

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
    items = _read_parts(parts, report, options or ReadOptions(), None)
    return (item.article for _, _, item in items if isinstance(item, _Parsed))


def load_articles(
    sources: Sequence[Path | str], report: FeedReport, options: ReadOptions | None = None
) -> dict[str, Article]:
    """Read several sources in order into one catalog keyed by slug.

    Every source is checked before any is read. When a slug comes again the later article wins
    but keeps the dict position where the slug first appeared; each replacement is reported in
    `report.duplicates` at the later record, naming the location of the record it replaces.
    """
    return read_catalog(sources, report, options, lambda article, _origin: article)


def read_catalog(
    sources: Sequence[Path | str],
    report: FeedReport,
    options: ReadOptions | None,
    keep: Callable[[Article, RecordOrigin | None], T],
    memo: RecordMemo[T] | None = None,
) -> dict[str, T]:
    """`load_articles`, keeping of each article only what `keep` makes of it (so that a large
    catalog is never held with its bodies), with the key and notes of the record it came from.

    With a `memo`, records that it recalls by their raw bytes are not parsed: what `memo.carry`
    makes of them is kept instead (see `record_memo`); they are counted, noted, and replace or
    are replaced by duplicates at their own lines, as parsed ones are.
    """
    parts = [part for source in sources for part in _source_parts(source)]
    kept: dict[str, T] = {}
    seen: dict[str, str] = {}
    recall = None if memo is None else memo.recall
    for source, line, item in _read_parts(parts, report, options or ReadOptions(), recall):
        location = f"{source}:{line}"
        if item.slug in seen:
            message = f"duplicate slug {item.slug!r} replaces the record at {seen[item.slug]}"
            report.duplicates.append(Problem(source, line, message))
        seen[item.slug] = location
        if isinstance(item, Recalled):
            assert memo is not None
            kept[item.slug] = memo.carry(item)
        else:
            kept[item.slug] = keep(item.article, item.origin)
    return kept


@dataclass(frozen=True, slots=True)
class _Parsed:
    """An article parsed from its record, with the record's key where the run keys them."""

    article: Article
    origin: RecordOrigin | None

    @property
    def slug(self) -> str:
        return self.article.slug


_Located = tuple[str, int, _Parsed | Recalled]


@dataclass(frozen=True, slots=True)
class ReadContext:
    """What the readers of one run share: its options, the fetcher and the page limit."""

    options: ReadOptions
    fetcher: Fetcher
    limit: PageLimit
    recall: Recall | None
    """Records recognised by their bytes (`read_catalog`'s memo), for the formats that can."""


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
    parts: Iterable[_Part], report: FeedReport, options: ReadOptions, recall: Recall | None
) -> Iterator[_Located]:
    limit = PageLimit(options.fetch.max_pages, options.allow_partial, report.listings)
    with Fetcher(options.fetch) as fetcher:
        context = ReadContext(options, fetcher, limit, recall)
        for source, reader in parts:
            for where, number, raw in reader(source, context):
                item = _accept(where, number, raw, report)
                if item is not None:
                    yield where, number, item


def _file_reader(records: RecordParser) -> SourceReader:
    """The reader of local files (optionally gzipped) whose records `records` parses."""

    def read(source: Path | str, context: ReadContext) -> Iterator[RawItem]:
        where = str(source)
        try:
            with _open(Path(source)) as raw_stream:
                stream = BoundedStream(raw_stream, where, context.options.limits)
                for line, raw in records(stream, context.options.field_map, context.recall):
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


def _accept(source: str, line: int, raw: object, report: FeedReport) -> _Parsed | Recalled | None:
    """Count one record; return its Article (or what recalls it), or report why it is
    skipped."""
    report.read += 1
    if isinstance(raw, Recalled):
        report.recalled += 1
        report.notes.extend(Problem(source, line, note) for note in raw.origin.notes)
        return raw
    key = None
    if isinstance(raw, Keyed):
        key, raw = raw
    try:
        if isinstance(raw, InvalidRecord):
            raise raw
        validated = validate_record(raw)
    except InvalidRecord as exc:
        report.bad.append(Problem(source, line, str(exc)))
        return None
    report.notes.extend(Problem(source, line, note) for note in validated.notes)
    origin = None if key is None else RecordOrigin(key, validated.notes)
    return _Parsed(validated.article, origin)


#: File suffix (before an optional `.gz`) → its reader: where a file format is added.
READERS: dict[str, SourceReader] = {
    ".jsonl": _file_reader(jsonl_records),
    ".ndjson": _file_reader(jsonl_records),
    ".json": _file_reader(jsonl_records),
    ".csv": _file_reader(csv_records),
    ".txt": _file_reader(text_records),
    **dict.fromkeys(XML_SUFFIXES, _web_reader),
}
#: URL scheme → its reader (`check_web_source` admits only these).
SCHEMES: dict[str, SourceReader] = dict.fromkeys(
    ("http", "https", "wordpress+http", "wordpress+https"), _web_reader
)
